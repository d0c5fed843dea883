// The Store contract, run against every implementation (SQLite and in-memory): whatever the
// admin API, scheduler and invoke path may rely on is pinned here.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "store/testing/memory_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace nimbus::store {
namespace {

namespace fs = std::filesystem;

struct Impl {
  std::string name;
  std::function<std::unique_ptr<Store>(const fs::path& dir)> open;
};

void PrintTo(const Impl& impl, std::ostream* os) { *os << impl.name; }

class StoreContractTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  FunctionVersion MustPublish(const std::string& name, const std::string& sha,
                              const std::string& manifest, bool expect_created = true) {
    bool created = !expect_created;
    auto v = store_->Publish(name, sha, manifest, &created);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(created, expect_created);
    return v.ok() ? *v : FunctionVersion{};
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContractTest, FirstPublishCreatesTheFunctionAtVersionOne) {
  FunctionVersion v = MustPublish("hello", "sha-a", "name: hello\n");
  EXPECT_EQ(v.function, "hello");
  EXPECT_EQ(v.version, "1");
  EXPECT_EQ(v.code_sha256, "sha-a");
  EXPECT_EQ(v.manifest_yaml, "name: hello\n");
  EXPECT_GT(v.created_ms, 0);
  auto fn = store_->GetFunction("hello");
  ASSERT_TRUE(fn.ok());
  EXPECT_EQ(fn->latest_version, "1");
  EXPECT_GT(fn->created_ms, 0);
  EXPECT_EQ(fn->created_ms, fn->updated_ms);
}

TEST_P(StoreContractTest, PublishingWhatLatestAlreadyHoldsChangesNothing) {
  MustPublish("hello", "sha-a", "m1");
  FunctionVersion again = MustPublish("hello", "sha-a", "m1", /*expect_created=*/false);
  EXPECT_EQ(again.version, "1");
  auto versions = store_->ListVersions("hello");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 1u);
}

TEST_P(StoreContractTest, ANewManifestOrNewCodeMakesTheNextVersion) {
  MustPublish("hello", "sha-a", "m1");
  EXPECT_EQ(MustPublish("hello", "sha-a", "m2").version, "2");
  EXPECT_EQ(MustPublish("hello", "sha-b", "m2").version, "3");
  // Going back to an older version's content is still a new version: only $LATEST is compared.
  EXPECT_EQ(MustPublish("hello", "sha-a", "m1").version, "4");
  auto versions = store_->ListVersions("hello");
  ASSERT_TRUE(versions.ok());
  std::vector<std::string> numbers;
  for (const auto& v : *versions) numbers.push_back(v.version);
  EXPECT_EQ(numbers, (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ((*versions)[2].code_sha256, "sha-b");
  EXPECT_EQ(store_->GetFunction("hello")->latest_version, "4");
}

TEST_P(StoreContractTest, GetVersionResolvesLatestAndNumbers) {
  MustPublish("hello", "sha-a", "m1");
  MustPublish("hello", "sha-b", "m2");
  auto latest = store_->GetVersion("hello", "$LATEST");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, "2");
  EXPECT_EQ(latest->code_sha256, "sha-b");
  auto first = store_->GetVersion("hello", "1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->manifest_yaml, "m1");
  auto missing = store_->GetVersion("hello", "7");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("has no version '7'; its versions are 1 to 2"),
            std::string::npos)
      << missing.status().message();
}

TEST_P(StoreContractTest, AnUnknownFunctionIsNotFoundWithAHintToDeploy) {
  auto fn = store_->GetFunction("ghost");
  EXPECT_EQ(fn.status().code(), Code::kNotFound);
  EXPECT_NE(fn.status().message().find("function 'ghost' does not exist; deploy it with `nimbus deploy DIR`"),
            std::string::npos);
  EXPECT_EQ(store_->GetVersion("ghost", "1").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListVersions("ghost").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ResolveQualifier("ghost", "").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListAliases("ghost").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteFunction("ghost").code(), Code::kNotFound);
  EXPECT_EQ(store_->PutAlias("ghost", "live", "1").code(), Code::kNotFound);
}

TEST_P(StoreContractTest, ListFunctionsIsSortedByName) {
  MustPublish("zeta", "s", "m");
  MustPublish("alpha", "s", "m");
  MustPublish("Mid", "s", "m");
  auto list = store_->ListFunctions();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const auto& f : *list) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Mid", "alpha", "zeta"}));
}

TEST_P(StoreContractTest, RefusesInvalidFunctionNames) {
  bool created = false;
  for (const std::string& bad : std::vector<std::string>{"", "has space", "../x", std::string(65, 'a'), "a.b"}) {
    auto v = store_->Publish(bad, "s", "m", &created);
    EXPECT_EQ(v.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(store_->Publish(std::string(64, 'a'), "s", "m", &created).ok());
}

TEST_P(StoreContractTest, ResolveQualifierHandlesLatestNumbersAndAliases) {
  MustPublish("hello", "sha-a", "m1");
  MustPublish("hello", "sha-b", "m2");
  ASSERT_TRUE(store_->PutAlias("hello", "live", "1").ok());
  EXPECT_EQ(*store_->ResolveQualifier("hello", ""), "2");
  EXPECT_EQ(*store_->ResolveQualifier("hello", "$LATEST"), "2");
  EXPECT_EQ(*store_->ResolveQualifier("hello", "1"), "1");
  EXPECT_EQ(*store_->ResolveQualifier("hello", "live"), "1");
  EXPECT_EQ(store_->ResolveQualifier("hello", "3").status().code(), Code::kNotFound);
  auto missing = store_->ResolveQualifier("hello", "beta");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("has no alias 'beta'"), std::string::npos);
}

TEST_P(StoreContractTest, AliasesCanBeCreatedMovedListedAndDeleted) {
  MustPublish("hello", "sha-a", "m1");
  MustPublish("hello", "sha-b", "m2");
  ASSERT_TRUE(store_->PutAlias("hello", "live", "1").ok());
  ASSERT_TRUE(store_->PutAlias("hello", "beta", "2").ok());
  ASSERT_TRUE(store_->PutAlias("hello", "live", "2").ok());  // moving an alias
  auto aliases = store_->ListAliases("hello");
  ASSERT_TRUE(aliases.ok());
  ASSERT_EQ(aliases->size(), 2u);
  EXPECT_EQ((*aliases)[0].name, "beta");
  EXPECT_EQ((*aliases)[1].name, "live");
  EXPECT_EQ((*aliases)[1].version, "2");
  EXPECT_EQ((*aliases)[1].function, "hello");
  ASSERT_TRUE(store_->DeleteAlias("hello", "live").ok());
  EXPECT_EQ(store_->DeleteAlias("hello", "live").code(), Code::kNotFound);
  EXPECT_EQ(store_->ListAliases("hello")->size(), 1u);
}

TEST_P(StoreContractTest, RefusesBadAliasNamesAndMissingVersions) {
  MustPublish("hello", "sha-a", "m1");
  for (const std::string& bad : std::vector<std::string>{"", "123", "$LATEST", "a b", std::string(129, 'a')}) {
    EXPECT_EQ(store_->PutAlias("hello", bad, "1").code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(store_->PutAlias("hello", std::string(128, 'a'), "1").ok());
  EXPECT_TRUE(store_->PutAlias("hello", "v-1_ok", "1").ok());
  EXPECT_EQ(store_->PutAlias("hello", "live", "9").code(), Code::kNotFound);
  EXPECT_EQ(store_->PutAlias("hello", "live", "$LATEST").code(), Code::kInvalidArgument);
}

TEST_P(StoreContractTest, DeleteFunctionRemovesVersionsAndAliasesAndNumberingRestarts) {
  MustPublish("hello", "sha-a", "m1");
  MustPublish("hello", "sha-b", "m2");
  ASSERT_TRUE(store_->PutAlias("hello", "live", "2").ok());
  MustPublish("other", "sha-c", "m");
  ASSERT_TRUE(store_->DeleteFunction("hello").ok());
  EXPECT_EQ(store_->GetFunction("hello").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListFunctions()->size(), 1u);
  // As in Lambda, a function deployed again after deletion starts at version 1, without aliases.
  EXPECT_EQ(MustPublish("hello", "sha-d", "m").version, "1");
  EXPECT_EQ(store_->ListVersions("hello")->size(), 1u);
  EXPECT_TRUE(store_->ListAliases("hello")->empty());
  EXPECT_EQ(store_->ResolveQualifier("hello", "live").status().code(), Code::kNotFound);
}

TEST_P(StoreContractTest, ReferencedCodeListsEveryShaStillInUseOnce) {
  MustPublish("a", "sha-1", "m1");
  MustPublish("a", "sha-2", "m1");
  MustPublish("b", "sha-1", "m");
  MustPublish("c", "sha-3", "m");
  EXPECT_EQ(*store_->ReferencedCode(), (std::vector<std::string>{"sha-1", "sha-2", "sha-3"}));
  ASSERT_TRUE(store_->DeleteFunction("a").ok());
  EXPECT_EQ(*store_->ReferencedCode(), (std::vector<std::string>{"sha-1", "sha-3"}));
}

TEST_P(StoreContractTest, ConcurrentPublishesGetDistinctConsecutiveVersions) {
  constexpr int kThreads = 6, kEach = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        bool created = false;
        std::string manifest = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto v = store_->Publish("busy", "sha", manifest, &created);
        EXPECT_TRUE(v.ok()) << v.status().ToString();
        auto other = store_->Publish("own-" + std::to_string(t), "sha", manifest, &created);
        EXPECT_TRUE(other.ok()) << other.status().ToString();
        EXPECT_TRUE(store_->ListFunctions().ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto versions = store_->ListVersions("busy");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), static_cast<size_t>(kThreads * kEach));
  std::set<std::string> manifests;
  for (size_t i = 0; i < versions->size(); ++i) {
    EXPECT_EQ((*versions)[i].version, std::to_string(i + 1));
    manifests.insert((*versions)[i].manifest_yaml);
  }
  EXPECT_EQ(manifests.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(store_->GetFunction("busy")->latest_version, std::to_string(kThreads * kEach));
  EXPECT_EQ(store_->ListVersions("own-0")->size(), static_cast<size_t>(kEach));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, StoreContractTest,
    ::testing::Values(Impl{"Sqlite",
                           [](const fs::path& dir) -> std::unique_ptr<Store> {
                             auto s = OpenSqliteStore(dir / "nimbus.db");
                             EXPECT_TRUE(s.ok()) << s.status().ToString();
                             return s.ok() ? std::move(s).value() : nullptr;
                           }},
                      Impl{"Memory", [](const fs::path&) { return NewMemoryStore(); }}),
    [](const ::testing::TestParamInfo<Impl>& info) { return info.param.name; });

}  // namespace
}  // namespace nimbus::store
