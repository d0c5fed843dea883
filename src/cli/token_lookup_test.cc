// Where the CLI finds the admin token: --token, NIMBUS_TOKEN, a daemon's registration, then
// ./.nimbus/admin.token.
#include "cli/token_lookup.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "endpoints/endpoint_registry.h"
#include "cli/test_util.h"

namespace nimbus::cli {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

Endpoint Parse(const std::string& url) {
  auto ep = ParseEndpoint(url);
  EXPECT_TRUE(ep.ok()) << ep.status().message();
  return *ep;
}

// What a daemon listening on HOST:PORT leaves behind: the registration (the layout is spelled
// out here rather than taken from the daemon's code, so a change to it shows up as a failure)
// and the token file it points at.
fs::path Register(const fs::path& home, const fs::path& data, const std::string& host, int port,
                  const std::string& token) {
  const fs::path token_file = data / "admin.token";
  WriteText(token_file, token + "\n");
  WriteText(home / ".config" / "nimbus" / "endpoints" / (host + "_" + std::to_string(port)),
            token_file.string() + "\n");
  return token_file;
}

TEST(FindRegisteredToken, ReadsTheTokenFileADaemonRegisteredForTheAddress) {
  TempDir home, data;
  const fs::path token_file = Register(home.path(), data.path(), "127.0.0.1", 8080, "tok-8080");
  auto found = FindRegisteredToken(Parse("http://127.0.0.1:8080"), home.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->token, "tok-8080");
  EXPECT_NE(found->source.find(token_file.string()), std::string::npos) << found->source;
}

TEST(FindRegisteredToken, MatchesThePortAndIgnoresAPathPrefix) {
  TempDir home, data;
  Register(home.path(), data.path(), "127.0.0.1", 8080, "tok");
  EXPECT_FALSE(FindRegisteredToken(Parse("http://127.0.0.1:8081"), home.path()));
  EXPECT_TRUE(FindRegisteredToken(Parse("http://127.0.0.1:8080/nimbus"), home.path()));
  EXPECT_TRUE(FindRegisteredToken(Parse("127.0.0.1:8080"), home.path()));
}

TEST(FindRegisteredToken, LocalhostFindsADaemonOnTheLoopbackAddress) {
  TempDir home, data;
  Register(home.path(), data.path(), "127.0.0.1", 8080, "v4");
  auto found = FindRegisteredToken(Parse("http://localhost:8080"), home.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->token, "v4");
}

TEST(FindRegisteredToken, ALoopbackEndpointFindsADaemonListeningOnAllAddresses) {
  TempDir home, data;
  Register(home.path(), data.path(), "0.0.0.0", 8080, "wild");
  auto found = FindRegisteredToken(Parse("http://127.0.0.1:8080"), home.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->token, "wild");
  EXPECT_FALSE(FindRegisteredToken(Parse("http://192.0.2.7:8080"), home.path()))
      << "another machine's address is not this machine's wildcard listener";
}

TEST(FindRegisteredToken, SkipsAStaleRegistrationWhoseTokenFileIsGone) {
  TempDir home, data, gone;
  WriteText(home.path() / ".config/nimbus/endpoints/127.0.0.1_8080", (gone.path() / "x/admin.token").string() + "\n");
  EXPECT_FALSE(FindRegisteredToken(Parse("http://127.0.0.1:8080"), home.path()));
  Register(home.path(), data.path(), "0.0.0.0", 8080, "live");
  auto found = FindRegisteredToken(Parse("http://127.0.0.1:8080"), home.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->token, "live");
}

TEST(FindRegisteredToken, FindsNothingWithoutAHome) {
  EXPECT_FALSE(FindRegisteredToken(Parse("http://127.0.0.1:8080"), fs::path()));
}

TEST(FindTokenForEndpoint, LooksUnderHome) {
  TempDir home, data;
  Register(home.path(), data.path(), "127.0.0.1", 9123, "from-home");
  const char* old = getenv("HOME");
  const std::string saved = old ? old : "";
  setenv("HOME", home.path().c_str(), 1);
  auto token = FindTokenForEndpoint("http://127.0.0.1:9123");
  auto none = FindTokenForEndpoint("http://127.0.0.1:9124");
  auto bad = FindTokenForEndpoint("https://127.0.0.1:9123");
  if (old) setenv("HOME", saved.c_str(), 1); else unsetenv("HOME");
  EXPECT_EQ(token, "from-home");
  EXPECT_EQ(none, std::nullopt);
  EXPECT_EQ(bad, std::nullopt);
}

TEST(ResolveAdminToken, TakesTheFlagThenTheEnvironmentThenTheRegistrationThenTheLocalFile) {
  TempDir home, data, cwd;
  Register(home.path(), data.path(), "127.0.0.1", 8080, "registered");
  WriteText(cwd.path() / ".nimbus/admin.token", "local\n");
  const Endpoint ep = Parse("http://127.0.0.1:8080");
  CliEnvironment env;
  env.token = "from-env";
  env.home = home.path();
  env.local_token_file = cwd.path() / ".nimbus/admin.token";

  auto t = ResolveAdminToken("from-flag", env, ep);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "from-flag");
  EXPECT_EQ(t->source, "--token");

  t = ResolveAdminToken("", env, ep);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "from-env");
  EXPECT_EQ(t->source, "NIMBUS_TOKEN");

  env.token.clear();
  t = ResolveAdminToken("", env, ep);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "registered");

  env.home.clear();
  t = ResolveAdminToken("", env, ep);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "local");
  EXPECT_EQ(t->source, env.local_token_file.string());

  env.local_token_file = cwd.path() / "missing/admin.token";
  EXPECT_FALSE(ResolveAdminToken("", env, ep));
}

}  // namespace
}  // namespace nimbus::cli
