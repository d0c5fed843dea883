// Every example in examples/ must be deployable: its function.yaml parses with the same parser
// the CLI and the daemon use, and says what the example's README promises (runtime, handler,
// routes, benchmark settings). A manifest that drifts from docs/manifest.md fails here first.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "manifest/manifest.h"

namespace nimbus {
namespace {

namespace fs = std::filesystem;
using manifest::Manifest;
using manifest::Route;

Manifest ParseExample(const std::string& name) {
  fs::path file = fs::path(NIMBUS_EXAMPLES_DIR) / name / "function.yaml";
  auto parsed = manifest::ParseFile(file);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  return parsed.ok() ? *parsed : Manifest{};
}

TEST(ExamplesManifestTest, EveryExampleDirectoryHasAValidManifestNamedAfterIt) {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(NIMBUS_EXAMPLES_DIR)) {
    if (!entry.is_directory()) continue;
    ++seen;
    std::string dir = entry.path().filename().string();
    SCOPED_TRACE(dir);
    EXPECT_EQ(ParseExample(dir).name, dir);
    EXPECT_TRUE(fs::exists(entry.path() / "README.md"));
  }
  EXPECT_GE(seen, 8);
}

TEST(ExamplesManifestTest, HelloFunctionsServeTheirNamedRoutes) {
  EXPECT_EQ(ParseExample("hello-python").http, (std::vector<Route>{{"GET", "/hello/{name}"}}));
  EXPECT_EQ(ParseExample("hello-python").handler, "app.handler");
  EXPECT_EQ(ParseExample("hello-node").http, (std::vector<Route>{{"GET", "/hello-node/{name}"}}));
  EXPECT_EQ(ParseExample("hello-node").runtime, "nodejs");
  Manifest cpp = ParseExample("hello-cpp");
  EXPECT_EQ(cpp.http, (std::vector<Route>{{"GET", "/hello-cpp/{name}"}}));
  EXPECT_EQ(cpp.runtime, "provided");
  EXPECT_EQ(cpp.build, "make");
}

TEST(ExamplesManifestTest, NoopFunctionsAreSetUpForBenchmarks) {
  for (const char* lang : {"python", "node", "cpp"}) {
    SCOPED_TRACE(lang);
    Manifest m = ParseExample(std::string("noop-") + lang);
    EXPECT_EQ(m.http, (std::vector<Route>{{"GET", std::string("/noop/") + lang}}));
    EXPECT_EQ(m.concurrency.max, 4);
    EXPECT_EQ(m.keep_alive_s, 600);
  }
  EXPECT_EQ(ParseExample("noop-cpp").build, "make");
}

TEST(ExamplesManifestTest, RepoAlertShipsAPlaceholderWebhookUrl) {
  Manifest m = ParseExample("repo-alert");
  EXPECT_EQ(m.http, (std::vector<Route>{{"POST", "/hooks/github"}}));
  EXPECT_EQ(m.environment["CHAT_WEBHOOK_URL"], "http://127.0.0.1:9/unset");
}

TEST(ExamplesManifestTest, TmpEnvSetsItsGreeting) {
  Manifest m = ParseExample("tmp-env");
  EXPECT_EQ(m.runtime, "nodejs");
  EXPECT_FALSE(m.environment["GREETING"].empty());
}

}  // namespace
}  // namespace nimbus
