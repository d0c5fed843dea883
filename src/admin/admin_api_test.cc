// The admin API alone, through its seams: a scripted Invoker stands in for the scheduler, the
// Store lives in memory, packages go to a CodeStore in a temporary directory, and requests come
// over loopback through the real HTTP core. Each test checks what the scheduler is told after a
// change (which versions to retire, which to keep warm) and where the listings' instance counts
// come from.
#include "admin/admin_api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <filesystem>

#include "gateway/testing/local_server.h"
#include "package/test_zip.h"
#include "scheduler/testing/fake_invoker.h"
#include "store/testing/memory_store.h"

namespace nimbus::admin {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace nhttp = ::nimbus::http;
namespace bhttp = ::nimbus::http::bhttp;
using bhttp::verb;
using gateway::testing::LocalServer;
using gateway::testing::MakeRequest;
using scheduler::testing::FakeInvoker;

constexpr char kToken[] = "nimbus-admin-test-token-0123456789abcdef";

std::string Manifest(const std::string& name, const std::string& extra = "") {
  return "name: " + name + "\nruntime: python3\nhandler: app.handler\n" + extra;
}

// A package with function.yaml and app.py; `code` makes packages differ.
std::string Package(const std::string& name, const std::string& code = "def handler(e, c): return e\n") {
  return package::testing::MakeArchive(
      {package::testing::File("function.yaml", Manifest(name)), package::testing::File("app.py", code)});
}

json::object ParseObject(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-admin-api-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    code_ = std::make_unique<package::CodeStore>(dir_);
    api_ = std::make_unique<AdminApi>(*store_, *code_, catalog_, invoker_, logs_, blocking_, kToken);
    server_ = std::make_unique<LocalServer>(
        [this](const nhttp::ConnectionPtr& conn, nhttp::Request&& req) { api_->Handle(conn, std::move(req)); });
  }
  void TearDown() override {
    server_.reset();
    blocking_.join();
    api_.reset();
    fs::remove_all(dir_);
  }

  nhttp::Response Send(verb method, const std::string& target, std::string body = {}, bool authorized = true) {
    auto req = MakeRequest(method, target, std::move(body));
    if (authorized) req.set(bhttp::field::authorization, std::string("Bearer ") + kToken);
    return server_->Send(std::move(req));
  }
  nhttp::Response Deploy(const std::string& name, const std::string& code = "def handler(e, c): return e\n") {
    return Send(verb::put, "/v1/functions/" + name, Package(name, code));
  }
  static std::vector<std::string> Versions(const std::vector<catalog::ConfigPtr>& configs) {
    std::vector<std::string> out;
    for (const auto& c : configs) out.push_back(c->name + "/" + c->version);
    return out;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_ = store::NewMemoryStore();
  std::unique_ptr<package::CodeStore> code_;
  catalog::Catalog catalog_;
  FakeInvoker invoker_;
  observability::LogStore logs_;
  boost::asio::thread_pool blocking_{2};
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<LocalServer> server_;
};

TEST_F(AdminApiTest, ADeployRetiresEveryOtherVersionAndKeepsTheNewLatestWarm) {
  ASSERT_EQ(Deploy("echo").result(), bhttp::status::created);
  auto retires = invoker_.retire_calls();
  ASSERT_EQ(retires.size(), 1u);
  EXPECT_EQ(retires[0].function, "echo");
  EXPECT_EQ(retires[0].keep, std::vector<std::string>{"1"});
  EXPECT_EQ(Versions(invoker_.keep_warm_calls()), std::vector<std::string>{"echo/1"});

  ASSERT_EQ(Deploy("echo", "def handler(e, c): return 2\n").result(), bhttp::status::ok);
  retires = invoker_.retire_calls();
  ASSERT_EQ(retires.size(), 2u);
  EXPECT_EQ(retires[1].keep, std::vector<std::string>{"2"});
  EXPECT_EQ(Versions(invoker_.keep_warm_calls()), (std::vector<std::string>{"echo/1", "echo/2"}));
  EXPECT_TRUE(invoker_.invokes().empty());
}

TEST_F(AdminApiTest, AnAliasKeepsItsVersionRunningBesideLatest) {
  ASSERT_EQ(Deploy("echo").result(), bhttp::status::created);
  ASSERT_EQ(Deploy("echo", "def handler(e, c): return 2\n").result(), bhttp::status::ok);
  ASSERT_EQ(Send(verb::put, "/v1/functions/echo/aliases/live", R"({"version":"1"})").result(), bhttp::status::ok);
  auto retires = invoker_.retire_calls();
  ASSERT_EQ(retires.size(), 3u);
  EXPECT_EQ(retires[2].keep, (std::vector<std::string>{"2", "1"}));
  auto warm = Versions(invoker_.keep_warm_calls());
  ASSERT_EQ(warm.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(warm.begin() + 2, warm.end()), (std::vector<std::string>{"echo/2", "echo/1"}));

  ASSERT_EQ(Send(verb::delete_, "/v1/functions/echo/aliases/live").result(), bhttp::status::no_content);
  EXPECT_EQ(invoker_.retire_calls().back().keep, std::vector<std::string>{"2"});
}

TEST_F(AdminApiTest, DeletingAFunctionRetiresAllItsVersionsAndWarmsNothing) {
  ASSERT_EQ(Deploy("echo").result(), bhttp::status::created);
  const size_t warm_before = invoker_.keep_warm_calls().size();
  ASSERT_EQ(Send(verb::delete_, "/v1/functions/echo").result(), bhttp::status::no_content);
  auto retires = invoker_.retire_calls();
  ASSERT_EQ(retires.size(), 2u);
  EXPECT_EQ(retires[1].function, "echo");
  EXPECT_TRUE(retires[1].keep.empty());
  EXPECT_EQ(invoker_.keep_warm_calls().size(), warm_before);
}

TEST_F(AdminApiTest, TheListingShowsEachFunctionsInstanceCountsFromOnePassOverThePools) {
  ASSERT_EQ(Deploy("echo").result(), bhttp::status::created);
  ASSERT_EQ(Deploy("other").result(), bhttp::status::created);
  invoker_.SetCounts("echo", {/*busy=*/2, /*idle=*/1, /*starting=*/3, /*queued=*/5});
  const size_t counts_for_before = invoker_.counts_for_calls();

  auto res = Send(verb::get, "/v1/functions");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  auto list = ParseObject(res.body())["functions"].as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].as_object().at("name"), "echo");
  EXPECT_EQ(list[0].as_object().at("instances"), (json::object{{"busy", 2}, {"idle", 1}, {"starting", 3}, {"queued", 5}}));
  EXPECT_EQ(list[1].as_object().at("instances"), (json::object{{"busy", 0}, {"idle", 0}, {"starting", 0}, {"queued", 0}}));
  EXPECT_EQ(invoker_.all_counts_calls(), 1u);
  EXPECT_EQ(invoker_.counts_for_calls(), counts_for_before) << "a listing asks once for all counts";

  res = Send(verb::get, "/v1/functions/echo");
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(ParseObject(res.body())["instances"].as_object().at("queued"), 5);
  EXPECT_EQ(invoker_.counts_for_calls(), counts_for_before + 1);
}

TEST_F(AdminApiTest, LoadingTheCatalogAtStartUpKeepsEachFunctionsLatestVersionWarm) {
  bool created = false;
  ASSERT_TRUE(store_->Publish("echo", "aaaa", Manifest("echo", "concurrency: {max: 2, min_warm: 1}\n"), &created).ok());
  ASSERT_TRUE(store_->Publish("echo", "bbbb", Manifest("echo", "concurrency: {max: 2, min_warm: 1}\n"), &created).ok());
  ASSERT_TRUE(store_->Publish("other", "cccc", Manifest("other"), &created).ok());
  ASSERT_TRUE(api_->Load().ok());
  EXPECT_EQ(Versions(invoker_.keep_warm_calls()), (std::vector<std::string>{"echo/2", "other/1"}));
  EXPECT_EQ(invoker_.keep_warm_calls()[0]->manifest.concurrency.min_warm, 1);
  EXPECT_TRUE(invoker_.retire_calls().empty());
}

TEST_F(AdminApiTest, ARequestWithoutTheTokenIsRefusedBeforeTheSchedulerIsAsked) {
  EXPECT_EQ(Send(verb::put, "/v1/functions/echo", Package("echo"), /*authorized=*/false).result(),
            bhttp::status::unauthorized);
  EXPECT_EQ(Send(verb::get, "/v1/functions", {}, /*authorized=*/false).result(), bhttp::status::unauthorized);
  EXPECT_TRUE(invoker_.retire_calls().empty());
  EXPECT_TRUE(invoker_.keep_warm_calls().empty());
  EXPECT_EQ(invoker_.all_counts_calls(), 0u);
}

}  // namespace
}  // namespace nimbus::admin
