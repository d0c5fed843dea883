// The front door alone, through its seams: a scripted Invoker stands in for the scheduler, the
// catalog is a snapshot built here, the delivery engine runs on a SQLite queue in a temporary
// directory without its thread, and requests come over loopback through the real HTTP core.
// Each test checks what reached the invoker (function, version, payload, headers) and how each
// outcome comes back as HTTP: status, Lambda or API Gateway error shape, headers.
#include "gateway/front_door.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <filesystem>
#include <future>

#include "gateway/apigw_v2.h"
#include "gateway/testing/local_server.h"
#include "queue/sqlite_event_queue.h"
#include "scheduler/testing/fake_invoker.h"

namespace nimbus::gateway {
namespace {

namespace fs = std::filesystem;
namespace nhttp = ::nimbus::http;
namespace json = boost::json;
namespace bhttp = ::nimbus::http::bhttp;
using bhttp::verb;
using scheduler::InvokeResult;
using scheduler::Outcome;
using scheduler::testing::FakeInvoker;
using testing::LocalServer;
using testing::MakeRequest;

catalog::ConfigPtr Config(const std::string& name, const std::string& version,
                          std::vector<manifest::Route> routes = {}) {
  auto cfg = std::make_shared<catalog::FunctionConfig>();
  cfg->name = name;
  cfg->version = version;
  cfg->arn = catalog::FunctionArn(name);
  cfg->manifest.name = name;
  cfg->manifest.http = std::move(routes);
  return cfg;
}

InvokeResult Result(Outcome outcome, std::string body, std::string error_type = {}, std::string version = "1") {
  InvokeResult r;
  r.outcome = outcome;
  r.body = std::move(body);
  r.error_type = std::move(error_type);
  r.version = std::move(version);
  return r;
}

json::object ParseObject(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

// A JSON value as text: a string's own text, anything else serialised.
std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : json::serialize(v); }

class FrontDoorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-front-door-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    // echo: versions 1 and 2, $LATEST 2, alias live -> 1. hello: one route, GET /hello/{name}.
    auto snap = std::make_shared<catalog::Snapshot>();
    auto& echo = snap->functions["echo"];
    echo.versions["1"] = Config("echo", "1");
    echo.versions["2"] = Config("echo", "2");
    echo.latest = "2";
    echo.aliases["live"] = "1";
    auto& hello = snap->functions["hello"];
    hello.versions["1"] = Config("hello", "1", {{"GET", "/hello/{name}"}});
    hello.latest = "1";
    ASSERT_TRUE(catalog::RebuildRoutes(*snap).ok());
    catalog_.Set(snap);

    auto q = queue::OpenSqliteEventQueue(dir_ / "queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    journal_ = std::make_unique<queue::Journal>(*queue_);
    delivery_ = std::make_unique<queue::Delivery>(*queue_, *journal_, catalog_, queue::InvokeThrough(invoker_),
                                                  queue::DeliveryOptions{});
    ASSERT_TRUE(delivery_->Recover().ok());
    front_door_ = std::make_unique<FrontDoor>(
        catalog_, invoker_, *delivery_,
        [](const nhttp::ConnectionPtr& conn, nhttp::Request&& req) {
          conn->Reply(nhttp::MakeResponse(req, bhttp::status::ok, "admin", "text/plain"));
        },
        [] { return std::string("nimbus_up 1\n"); });
    server_ = std::make_unique<LocalServer>(
        [this](const nhttp::ConnectionPtr& conn, nhttp::Request&& req) { front_door_->Handle(conn, std::move(req)); });
  }
  void TearDown() override {
    server_.reset();
    front_door_.reset();
    if (journal_) journal_->Flush();  // its callbacks reach the delivery engine
    delivery_.reset();
    journal_.reset();
    queue_.reset();
    fs::remove_all(dir_);
  }

  // Sends `req`, waits for it to reach the invoker, answers it with `result` (and `log_tail`
  // as the invocation's log lines), returns the reply.
  nhttp::Response Exchange(nhttp::Request req, InvokeResult result, std::string_view log_tail = {}) {
    const size_t before = invoker_.invokes().size();
    auto reply = server_->SendAsync(std::move(req));
    EXPECT_TRUE(invoker_.WaitForInvokes(before + 1)) << "the request never reached the invoker";
    EXPECT_TRUE(invoker_.Complete(before, std::move(result), log_tail));
    return reply.get();
  }
  FakeInvoker::InvokeCall LastInvoke() {
    auto calls = invoker_.invokes();
    return calls.empty() ? FakeInvoker::InvokeCall{} : calls.back();
  }
  static nhttp::Request Invoke(std::string target, std::string body = "{}") {
    return MakeRequest(verb::post, "/2015-03-31/functions/" + target, std::move(body));
  }

  fs::path dir_;
  catalog::Catalog catalog_;
  FakeInvoker invoker_;
  std::unique_ptr<queue::EventQueue> queue_;
  std::unique_ptr<queue::Journal> journal_;
  std::unique_ptr<queue::Delivery> delivery_;
  std::unique_ptr<FrontDoor> front_door_;
  std::unique_ptr<LocalServer> server_;
};

// ---- the Invoke API ------------------------------------------------------------------------------

TEST_F(FrontDoorTest, TheInvokeApiRunsTheAliasedVersionWithThePayloadAndTheCallersHeaders) {
  auto req = Invoke("echo:live/invocations", R"({"a":1})");
  req.set("X-Amz-Client-Context", "eyJjIjoxfQ==");
  req.set("X-Amz-Log-Type", "Tail");
  const std::string log_tail = "START RequestId: x\nEND RequestId: x\n";
  nhttp::Response res = Exchange(std::move(req), Result(Outcome::kSuccess, R"({"ok":true})"), log_tail);

  auto call = LastInvoke();
  ASSERT_TRUE(call.fn);
  EXPECT_EQ(call.fn->name, "echo");
  EXPECT_EQ(call.fn->version, "1");
  EXPECT_EQ(call.req.payload, R"({"a":1})");
  EXPECT_EQ(call.req.client_context, "eyJjIjoxfQ==");
  EXPECT_TRUE(call.req.want_log_tail);
  EXPECT_EQ(call.req.invoked_arn, catalog::FunctionArn("echo") + ":live");
  EXPECT_FALSE(call.req.request_id.empty());

  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), R"({"ok":true})");
  EXPECT_EQ(res["x-amzn-RequestId"], call.req.request_id);
  EXPECT_EQ(res["X-Amz-Executed-Version"], "1");
  EXPECT_EQ(res["X-Amz-Log-Result"], Base64Encode(log_tail));
  EXPECT_EQ(res.count("X-Amz-Function-Error"), 0u);
}

TEST_F(FrontDoorTest, TheInvokeApiTakesAFunctionArnAndAQualifierParameterAndDefaultsToLatest) {
  Exchange(Invoke(catalog::FunctionArn("echo") + "/invocations?Qualifier=1"), Result(Outcome::kSuccess, "{}"));
  EXPECT_EQ(LastInvoke().fn->version, "1");
  EXPECT_EQ(LastInvoke().req.invoked_arn, catalog::FunctionArn("echo") + ":1");
  Exchange(Invoke("echo/invocations"), Result(Outcome::kSuccess, "{}", {}, "2"));
  EXPECT_EQ(LastInvoke().fn->version, "2");
  EXPECT_EQ(LastInvoke().req.invoked_arn, catalog::FunctionArn("echo"));
  EXPECT_EQ(LastInvoke().req.payload, "{}");
  EXPECT_FALSE(LastInvoke().req.want_log_tail);
}

TEST_F(FrontDoorTest, WithoutALogTypeTheInvokeApiSendsNoLogResult) {
  nhttp::Response res =
      Exchange(Invoke("echo/invocations"), Result(Outcome::kSuccess, "{}"), "START RequestId: x\nEND RequestId: x\n");
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.count("X-Amz-Log-Result"), 0u) << "the request did not ask for its log tail";
}

TEST_F(FrontDoorTest, EachInvocationsContextStartsWhenTheFrontDoorReceivedItsRequest) {
  const auto before = scheduler::RequestContext::Clock::now();
  Exchange(Invoke("echo/invocations"), Result(Outcome::kSuccess, "{}"));
  Exchange(MakeRequest(verb::get, "/hello/world"), Result(Outcome::kSuccess, "{}"));
  const auto after = scheduler::RequestContext::Clock::now();
  auto calls = invoker_.invokes();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_NE(calls[0].req.request_id, calls[1].req.request_id);
  for (const auto& call : calls) {
    EXPECT_GE(call.received_at, before);
    EXPECT_LE(call.received_at, after);
  }
  EXPECT_LE(calls[0].received_at, calls[1].received_at);
}

TEST_F(FrontDoorTest, AThrottledInvocationIs429WithLambdasTooManyRequestsShape) {
  invoker_.AnswerNext(Result(Outcome::kThrottled,
                             R"({"errorMessage":"queue is full; retry later","errorType":"TooManyRequestsException"})",
                             "TooManyRequestsException"));
  nhttp::Response res = server_->Send(Invoke("echo/invocations"));
  EXPECT_EQ(res.result(), bhttp::status::too_many_requests);
  EXPECT_EQ(res["x-amzn-ErrorType"], "TooManyRequestsException");
  auto body = ParseObject(res.body());
  EXPECT_EQ(Str(body["Reason"]), "ReservedFunctionConcurrentInvocationLimitExceeded");
  EXPECT_EQ(Str(body["message"]), "queue is full; retry later");
  EXPECT_EQ(Str(body["Type"]), "User");
}

TEST_F(FrontDoorTest, FunctionErrorsTimeoutsCrashesAndFailedStartsAre200WithTheErrorDocument) {
  for (Outcome o : {Outcome::kFunctionError, Outcome::kTimeout, Outcome::kCrash, Outcome::kOutOfMemory,
                    Outcome::kStartFailed}) {
    const std::string doc = R"({"errorMessage":"boom","errorType":"Runtime.ExitError"})";
    invoker_.AnswerNext(Result(o, doc, "Runtime.ExitError"));
    nhttp::Response res = server_->Send(Invoke("echo/invocations"));
    EXPECT_EQ(res.result(), bhttp::status::ok) << static_cast<int>(o);
    EXPECT_EQ(res["X-Amz-Function-Error"], "Unhandled") << static_cast<int>(o);
    EXPECT_EQ(res.body(), doc) << static_cast<int>(o);
  }
}

TEST_F(FrontDoorTest, AnInvocationDuringShutdownIs503ServiceException) {
  invoker_.AnswerNext(Result(Outcome::kShutdown, R"({"errorMessage":"stopping"})", "ServiceException"));
  nhttp::Response res = server_->Send(Invoke("echo/invocations"));
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(res["x-amzn-ErrorType"], "ServiceException");
}

TEST_F(FrontDoorTest, RequestsTheInvokeApiRefusesNeverReachTheInvoker) {
  EXPECT_EQ(server_->Send(Invoke("nope/invocations")).result(), bhttp::status::not_found);
  EXPECT_EQ(server_->Send(Invoke("echo:nope/invocations")).result(), bhttp::status::not_found);
  EXPECT_EQ(server_->Send(Invoke("echo/invocations", "{not json")).result(), bhttp::status::bad_request);
  EXPECT_EQ(server_->Send(MakeRequest(verb::get, "/2015-03-31/functions/echo/invocations")).result(),
            bhttp::status::method_not_allowed);
  auto dry = Invoke("echo:live/invocations");
  dry.set("X-Amz-Invocation-Type", "DryRun");
  nhttp::Response res = server_->Send(std::move(dry));
  EXPECT_EQ(res.result(), bhttp::status::no_content);
  EXPECT_EQ(res["X-Amz-Executed-Version"], "1");
  EXPECT_TRUE(invoker_.invokes().empty());
}

TEST_F(FrontDoorTest, AnEventInvocationIsAcceptedByTheQueueAndRunsLaterFromTheDeliveryEngine) {
  auto req = Invoke("echo:live/invocations", R"({"later":true})");
  req.set("X-Amz-Invocation-Type", "Event");
  nhttp::Response res = server_->Send(std::move(req));
  EXPECT_EQ(res.result(), bhttp::status::accepted);
  const std::string request_id(res["x-amzn-RequestId"]);
  EXPECT_FALSE(request_id.empty());
  EXPECT_TRUE(invoker_.invokes().empty()) << "an event runs from the delivery engine, not from the request";
  EXPECT_EQ(delivery_->Counts("echo").queued, 1);

  delivery_->PumpOnce();
  ASSERT_EQ(invoker_.invokes().size(), 1u);
  auto call = LastInvoke();
  EXPECT_EQ(call.fn->version, "1");
  EXPECT_EQ(call.req.payload, R"({"later":true})");
  EXPECT_EQ(call.req.request_id, request_id);
  EXPECT_TRUE(invoker_.Complete(0, Result(Outcome::kSuccess, "{}")));
}

// ---- the HTTP trigger ----------------------------------------------------------------------------

TEST_F(FrontDoorTest, AManifestRouteInvokesItsFunctionWithAnApiGatewayEventAndMapsTheResult) {
  nhttp::Response res = Exchange(MakeRequest(verb::get, "/hello/world?lang=en"),
                                Result(Outcome::kSuccess, R"({"statusCode":201,"headers":{"x-a":"b"},"body":"hi"})"));
  auto call = LastInvoke();
  ASSERT_TRUE(call.fn);
  EXPECT_EQ(call.fn->name, "hello");
  EXPECT_EQ(call.fn->version, "1");
  auto event = ParseObject(call.req.payload);
  EXPECT_EQ(Str(event["routeKey"]), "GET /hello/{name}");
  EXPECT_EQ(Str(event["rawPath"]), "/hello/world");
  EXPECT_EQ(Str(event["rawQueryString"]), "lang=en");
  EXPECT_EQ(Str(event["pathParameters"].as_object()["name"]), "world");
  EXPECT_EQ(Str(event["requestContext"].as_object()["requestId"]), call.req.request_id);

  EXPECT_EQ(res.result(), bhttp::status::created);
  EXPECT_EQ(res.body(), "hi");
  EXPECT_EQ(res["x-a"], "b");
  EXPECT_EQ(res["apigw-requestid"], call.req.request_id);
}

TEST_F(FrontDoorTest, TheFnPathNamesFunctionVersionAndProxyPath) {
  Exchange(MakeRequest(verb::post, "/fn/echo:1/a/b%20c", "x"), Result(Outcome::kSuccess, "{}"));
  auto call = LastInvoke();
  EXPECT_EQ(call.fn->version, "1");
  auto event = ParseObject(call.req.payload);
  EXPECT_EQ(Str(event["routeKey"]), "ANY /fn/echo:1/{proxy+}");
  EXPECT_EQ(Str(event["pathParameters"].as_object()["proxy"]), "a/b c");
}

TEST_F(FrontDoorTest, TriggerFailuresAreApiGatewayErrorsWithTheRightStatus) {
  struct Case {
    Outcome outcome;
    bhttp::status status;
    std::string message;
  };
  for (const Case& c : {Case{Outcome::kTimeout, bhttp::status::gateway_timeout, "Endpoint request timed out"},
                        Case{Outcome::kThrottled, bhttp::status::too_many_requests, "Too Many Requests"},
                        Case{Outcome::kShutdown, bhttp::status::service_unavailable, "Service Unavailable"},
                        Case{Outcome::kCrash, bhttp::status::bad_gateway, "Internal Server Error"},
                        Case{Outcome::kFunctionError, bhttp::status::bad_gateway, "Internal Server Error"},
                        Case{Outcome::kStartFailed, bhttp::status::bad_gateway, "Internal Server Error"}}) {
    nhttp::Response res =
        Exchange(MakeRequest(verb::get, "/hello/x"), Result(c.outcome, R"({"errorMessage":"e"})", "Some.Type"));
    EXPECT_EQ(res.result(), c.status) << static_cast<int>(c.outcome);
    EXPECT_EQ(Str(ParseObject(res.body())["message"]), c.message) << static_cast<int>(c.outcome);
    EXPECT_EQ(res["x-amzn-ErrorType"], "Some.Type") << static_cast<int>(c.outcome);
    EXPECT_EQ(res["apigw-requestid"], LastInvoke().req.request_id);
  }
}

TEST_F(FrontDoorTest, UnknownRoutesAndFunctionsAre404AndNeverReachTheInvoker) {
  EXPECT_EQ(server_->Send(MakeRequest(verb::get, "/nowhere")).result(), bhttp::status::not_found);
  EXPECT_EQ(server_->Send(MakeRequest(verb::post, "/hello/world")).result(), bhttp::status::not_found);
  EXPECT_EQ(server_->Send(MakeRequest(verb::get, "/fn/nope/x")).result(), bhttp::status::not_found);
  EXPECT_TRUE(invoker_.invokes().empty());
}

TEST_F(FrontDoorTest, AdminAndMetricsPathsGoToTheirHandlers) {
  EXPECT_EQ(server_->Send(MakeRequest(verb::get, "/v1/functions")).body(), "admin");
  EXPECT_EQ(server_->Send(MakeRequest(verb::get, "/metrics")).body(), "nimbus_up 1\n");
  EXPECT_TRUE(invoker_.invokes().empty());
}

}  // namespace
}  // namespace nimbus::gateway
