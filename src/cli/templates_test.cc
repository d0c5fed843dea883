#include "cli/templates.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "cli/test_util.h"
#include "manifest/manifest.h"

namespace nimbus::cli {
namespace {

using testing::TempDir;
using testing::WriteText;

struct Expected {
  std::string runtime;           // as typed to init
  std::string manifest_runtime;  // as written in function.yaml
  std::string handler;
  std::string build;
  std::string code_file;
};

class TemplateTest : public ::testing::TestWithParam<Expected> {};

TEST_P(TemplateTest, WritesAManifestTheParserAccepts) {
  const Expected& e = GetParam();
  auto files = RenderTemplate(e.runtime, "my-fn_1");
  ASSERT_TRUE(files.ok()) << files.status().message();
  TempDir dir;
  for (const auto& f : *files) WriteText(dir.path() / f.path, f.content);
  auto m = manifest::ParseFile(dir.path() / "function.yaml");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->name, "my-fn_1");
  EXPECT_EQ(m->runtime, e.manifest_runtime);
  EXPECT_EQ(m->handler, e.handler);
  EXPECT_EQ(m->build, e.build);
  EXPECT_EQ(m->memory_mb, 128);
  EXPECT_EQ(m->timeout_s, 3);
  EXPECT_EQ(m->keep_alive_s, 60);
  EXPECT_EQ(m->concurrency.max, 10);
  EXPECT_EQ(m->concurrency.min_warm, 0);
  ASSERT_EQ(m->http.size(), 1u);
  EXPECT_EQ(m->http[0].method, "GET");
  EXPECT_EQ(m->http[0].path, "/my-fn_1");
  EXPECT_TRUE(std::filesystem::exists(dir.path() / e.code_file));
}

INSTANTIATE_TEST_SUITE_P(
    EveryRuntime, TemplateTest,
    ::testing::Values(Expected{"python3", "python3", "app.handler", "", "app.py"},
                      Expected{"nodejs", "nodejs", "index.handler", "", "index.js"},
                      Expected{"cpp", "provided", "bootstrap", "make", "main.cpp"}),
    [](const auto& info) { return info.param.runtime; });

TEST(RenderTemplate, PythonHandlerAnswersInApiGatewayV2Shape) {
  auto files = RenderTemplate("python3", "hello");
  ASSERT_TRUE(files.ok());
  const std::string& code = (*files)[1].content;
  EXPECT_NE(code.find("def handler(event, context):"), std::string::npos);
  EXPECT_NE(code.find("\"statusCode\": 200"), std::string::npos);
  EXPECT_NE(code.find("\"content-type\": \"application/json\""), std::string::npos);
  EXPECT_NE(code.find("json.dumps("), std::string::npos);
}

TEST(RenderTemplate, NodeHandlerIsAnAsyncExport) {
  auto files = RenderTemplate("nodejs", "hello");
  ASSERT_TRUE(files.ok());
  EXPECT_NE((*files)[1].content.find("exports.handler = async (event, context) =>"), std::string::npos);
}

TEST(RenderTemplate, CppMakefileBuildsBootstrapAgainstTheCopiedHeader) {
  auto files = RenderTemplate("cpp", "hello");
  ASSERT_TRUE(files.ok());
  EXPECT_NE((*files)[1].content.find("#include <nimbus/lambda_runtime.hpp>"), std::string::npos);
  EXPECT_NE((*files)[2].content.find("-O2 -std=c++17 -I. -o bootstrap main.cpp"), std::string::npos);
}

TEST(RenderTemplate, RejectsAnUnknownRuntimeListingTheChoices) {
  auto files = RenderTemplate("ruby", "hello");
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().message().find("python3, nodejs or cpp"), std::string::npos);
}

// Compiles the C++ starter against the real SDK header when the SDK is present in the tree.
TEST(RenderTemplate, CppStarterCompilesWithTheSdk) {
  const std::filesystem::path header =
      std::filesystem::path(NIMBUS_SOURCE_DIR) / "sdk/cpp" / kCppSdkHeaderPath;
  if (!std::filesystem::exists(header)) GTEST_SKIP() << "no SDK header at " << header;
  auto files = RenderTemplate("cpp", "hello");
  ASSERT_TRUE(files.ok());
  TempDir dir;
  for (const auto& f : *files) WriteText(dir.path() / f.path, f.content);
  std::filesystem::create_directories((dir.path() / kCppSdkHeaderPath).parent_path());
  std::filesystem::copy_file(header, dir.path() / kCppSdkHeaderPath);
  std::string cmd = "cd '" + dir.path().string() + "' && make -s >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "make failed in " << dir.path();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "bootstrap"));
}

}  // namespace
}  // namespace nimbus::cli
