// The admin token's file, its checks and the endpoint registration the CLI reads.
#include "admin/admin_token.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "endpoints/endpoint_registry.h"

namespace nimbus::admin {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "nimbus-token-XXXXXX").string();
    path_ = mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p, std::ios::binary) << text;
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::string kUserToken = "0123456789abcdefghijklmnopqrstuvwxyzABCD";  // 40 visible characters

// --- LoadOrCreateToken ------------------------------------------------------------------------

TEST(LoadOrCreateToken, CreatesA64HexCharacterTokenInAPrivateFileOnFirstStart) {
  TempDir data;
  auto token = LoadOrCreateToken(data.path());
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(token->size(), 64u);
  EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos) << *token;
  EXPECT_EQ(ReadFile(data.path() / "admin.token"), *token + "\n");
  EXPECT_EQ(ModeOf(data.path() / "admin.token"), 0600u);
}

TEST(LoadOrCreateToken, LeavesNoTemporaryFileBehind) {
  TempDir data;
  ASSERT_TRUE(LoadOrCreateToken(data.path()).ok());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(data.path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"admin.token"});
}

TEST(LoadOrCreateToken, ReadsTheSameTokenBackOnLaterStarts) {
  TempDir data;
  auto first = LoadOrCreateToken(data.path());
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = LoadOrCreateToken(data.path());
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*first, *second);
}

TEST(LoadOrCreateToken, DrawsADifferentTokenForEachDataDirectory) {
  TempDir a, b;
  auto ta = LoadOrCreateToken(a.path());
  auto tb = LoadOrCreateToken(b.path());
  ASSERT_TRUE(ta.ok() && tb.ok());
  EXPECT_NE(*ta, *tb);
}

TEST(LoadOrCreateToken, ProcessesStartingTogetherAgreeOnOneToken) {
  TempDir data;
  constexpr int kThreads = 8;
  std::vector<std::string> tokens(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto t = LoadOrCreateToken(data.path());
      tokens[i] = t.ok() ? *t : "error: " + t.status().message();
    });
  }
  for (auto& t : threads) t.join();
  const std::string on_disk = ReadFile(data.path() / "admin.token");
  for (const auto& t : tokens) EXPECT_EQ(t + "\n", on_disk);
}

TEST(LoadOrCreateToken, UsesATokenTheOperatorWrote) {
  TempDir data;
  WriteFile(data.path() / "admin.token", kUserToken + "\n", 0600);
  auto token = LoadOrCreateToken(data.path());
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(*token, kUserToken);
}

TEST(LoadOrCreateToken, RefusesAGroupReadableFileNamingTheChmodCommand) {
  TempDir data;
  const fs::path file = data.path() / "admin.token";
  WriteFile(file, kUserToken + "\n", 0640);
  auto token = LoadOrCreateToken(data.path());
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(token.status().message(), "mode 0640")) << token.status().message();
  EXPECT_TRUE(Contains(token.status().message(), "run `chmod 600 " + file.string() + "`")) << token.status().message();
  EXPECT_EQ(ModeOf(file), 0640u) << "the file's mode is the operator's to fix, not nimbus's";
}

TEST(LoadOrCreateToken, RefusesAWorldReadableOrWritableFile) {
  for (mode_t mode : {0604, 0602, 0644, 0666}) {
    TempDir data;
    WriteFile(data.path() / "admin.token", kUserToken + "\n", mode);
    auto token = LoadOrCreateToken(data.path());
    ASSERT_FALSE(token.ok()) << std::oct << mode;
    EXPECT_TRUE(Contains(token.status().message(), "chmod 600")) << token.status().message();
  }
}

TEST(LoadOrCreateToken, RefusesAFileOwnedBySomeoneElse) {
  TempDir data;
  const fs::path file = data.path() / "admin.token";
  WriteFile(file, kUserToken + "\n", 0600);
  const uid_t other = ::geteuid() + 4242;
  if (::chown(file.c_str(), other, static_cast<gid_t>(-1)) != 0) GTEST_SKIP() << "cannot chown without root";
  auto token = LoadOrCreateToken(data.path());
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(token.status().message(), "owned by uid " + std::to_string(other))) << token.status().message();
  EXPECT_TRUE(Contains(token.status().message(), "chown " + std::to_string(::geteuid()))) << token.status().message();
}

TEST(LoadOrCreateToken, RefusesASymbolicLink) {
  TempDir data;
  WriteFile(data.path() / "elsewhere", kUserToken + "\n", 0600);
  fs::create_symlink(data.path() / "elsewhere", data.path() / "admin.token");
  auto token = LoadOrCreateToken(data.path());
  ASSERT_FALSE(token.ok());
  EXPECT_TRUE(Contains(token.status().message(), "symbolic link")) << token.status().message();
}

TEST(LoadOrCreateToken, RefusesADirectory) {
  TempDir data;
  fs::create_directory(data.path() / "admin.token");
  ::chmod((data.path() / "admin.token").c_str(), 0700);
  auto token = LoadOrCreateToken(data.path());
  ASSERT_FALSE(token.ok());
  EXPECT_TRUE(Contains(token.status().message(), "not a regular file")) << token.status().message();
}

TEST(LoadOrCreateToken, RefusesAFileWithoutAUsableToken) {
  for (const std::string& text : {std::string(""), std::string("\n"), std::string("short\n"),
                                 kUserToken.substr(0, 16) + " " + kUserToken.substr(16) + "\n"}) {
    TempDir data;
    WriteFile(data.path() / "admin.token", text, 0600);
    auto token = LoadOrCreateToken(data.path());
    ASSERT_FALSE(token.ok()) << "'" << text << "'";
    EXPECT_TRUE(Contains(token.status().message(), "no usable admin token")) << token.status().message();
  }
}

TEST(LoadOrCreateToken, ReportsADataDirectoryItCannotWriteTo) {
  TempDir parent;
  auto token = LoadOrCreateToken(parent.path() / "missing");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kIo);
}

// --- TokenMatches and CheckAuthorization ----------------------------------------------------

TEST(TokenMatches, AcceptsOnlyTheExactToken) {
  EXPECT_TRUE(TokenMatches(kUserToken, kUserToken));
  std::string last = kUserToken;
  last.back() = 'X';
  EXPECT_FALSE(TokenMatches(last, kUserToken));
  std::string first = kUserToken;
  first.front() = 'X';
  EXPECT_FALSE(TokenMatches(first, kUserToken));
  EXPECT_FALSE(TokenMatches(kUserToken.substr(0, 39), kUserToken));
  EXPECT_FALSE(TokenMatches(kUserToken + "x", kUserToken));
  EXPECT_FALSE(TokenMatches(kUserToken + kUserToken, kUserToken)) << "a repetition of the token is not the token";
  EXPECT_FALSE(TokenMatches("", kUserToken));
}

TEST(TokenMatches, AnEmptyTokenMatchesNothing) {
  EXPECT_FALSE(TokenMatches("", ""));
  EXPECT_FALSE(TokenMatches("x", ""));
}

TEST(CheckAuthorization, TellsMissingMalformedWrongAndRightApart) {
  EXPECT_EQ(CheckAuthorization("", kUserToken), AuthCheck::kMissing);
  EXPECT_EQ(CheckAuthorization("   ", kUserToken), AuthCheck::kMissing);
  EXPECT_EQ(CheckAuthorization("Basic dXNlcjpwYXNz", kUserToken), AuthCheck::kMalformed);
  EXPECT_EQ(CheckAuthorization("Bearer", kUserToken), AuthCheck::kMalformed);
  EXPECT_EQ(CheckAuthorization("Bearer   ", kUserToken), AuthCheck::kMalformed);
  EXPECT_EQ(CheckAuthorization(kUserToken, kUserToken), AuthCheck::kMalformed) << "the scheme is required";
  EXPECT_EQ(CheckAuthorization("Bearer wrong", kUserToken), AuthCheck::kWrong);
  EXPECT_EQ(CheckAuthorization("Bearer " + kUserToken, kUserToken), AuthCheck::kOk);
  EXPECT_EQ(CheckAuthorization("bearer " + kUserToken, kUserToken), AuthCheck::kOk);
  EXPECT_EQ(CheckAuthorization("BEARER  " + kUserToken + " ", kUserToken), AuthCheck::kOk);
}

TEST(UnauthorizedMessage, SaysWhereTheTokenIsAndHowToSendIt) {
  for (AuthCheck check : {AuthCheck::kMissing, AuthCheck::kMalformed, AuthCheck::kWrong}) {
    const std::string m = UnauthorizedMessage(check);
    for (const char* part : {"DATA/admin.token", "'Authorization: Bearer TOKEN'", "CLI", "--token", "NIMBUS_TOKEN"}) {
      EXPECT_TRUE(Contains(m, part)) << part << " in: " << m;
    }
  }
  EXPECT_TRUE(Contains(UnauthorizedMessage(AuthCheck::kWrong), "wrong"));
  EXPECT_TRUE(Contains(UnauthorizedMessage(AuthCheck::kMissing), "has none"));
}

// --- RegisterEndpoint -----------------------------------------------------------------------

TEST(RegisterEndpoint, WritesTheTokenFilesAbsolutePathWhereTheCliLooks) {
  TempDir home, data;
  const fs::path token_file = data.path() / "admin.token";
  ASSERT_TRUE(RegisterEndpoint(home.path(), "127.0.0.1", 8080, token_file).ok());
  const fs::path reg = home.path() / ".config/nimbus/endpoints/127.0.0.1_8080";
  EXPECT_EQ(ReadFile(reg), token_file.string() + "\n");
  EXPECT_EQ(ModeOf(reg), 0600u);
  EXPECT_EQ(ModeOf(reg.parent_path()), 0700u);
  EXPECT_EQ(endpoints::RegistrationFile(home.path(), "127.0.0.1", 8080), reg);
}

TEST(RegisterEndpoint, MakesARelativeTokenPathAbsolute) {
  TempDir home;
  ASSERT_TRUE(RegisterEndpoint(home.path(), "0.0.0.0", 9000, ".nimbus/admin.token").ok());
  const std::string text = ReadFile(home.path() / ".config/nimbus/endpoints/0.0.0.0_9000");
  EXPECT_EQ(text, (fs::current_path() / ".nimbus/admin.token").string() + "\n");
}

TEST(RegisterEndpoint, ReplacesAnEarlierRegistrationOfTheSameAddress) {
  TempDir home;
  ASSERT_TRUE(RegisterEndpoint(home.path(), "127.0.0.1", 8080, "/old/admin.token").ok());
  ASSERT_TRUE(RegisterEndpoint(home.path(), "127.0.0.1", 8080, "/new/admin.token").ok());
  const fs::path dir = home.path() / ".config/nimbus/endpoints";
  EXPECT_EQ(ReadFile(dir / "127.0.0.1_8080"), "/new/admin.token\n");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
}

TEST(RegisterEndpoint, TightensAnExistingRegistryDirectory) {
  TempDir home;
  const fs::path dir = home.path() / ".config/nimbus/endpoints";
  fs::create_directories(dir);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_TRUE(RegisterEndpoint(home.path(), "127.0.0.1", 8080, "/d/admin.token").ok());
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(RegisterEndpoint, RefusesAHostThatIsNotAFileName) {
  TempDir home;
  EXPECT_FALSE(RegisterEndpoint(home.path(), "../../etc", 80, "/d/admin.token").ok());
  EXPECT_FALSE(RegisterEndpoint(home.path(), "..", 80, "/d/admin.token").ok());
  EXPECT_FALSE(fs::exists(home.path() / ".config/nimbus/endpoints/.._80"));
}

TEST(RegisterEndpoint, ReportsAHomeItCannotWriteTo) {
  TempDir home;
  WriteFile(home.path() / ".config", "not a directory", 0600);
  Status st = RegisterEndpoint(home.path(), "127.0.0.1", 8080, "/d/admin.token");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "--token or NIMBUS_TOKEN")) << st.message();
}

// --- the token file format both sides read --------------------------------------------------

TEST(ParseTokenText, TakesOneLineOfVisibleAscii) {
  EXPECT_EQ(endpoints::ParseTokenText("abc\n"), "abc");
  EXPECT_EQ(endpoints::ParseTokenText("abc\r\n"), "abc");
  EXPECT_EQ(endpoints::ParseTokenText("abc"), "abc");
  EXPECT_EQ(endpoints::ParseTokenText(""), std::nullopt);
  EXPECT_EQ(endpoints::ParseTokenText("a b\n"), std::nullopt);
  EXPECT_EQ(endpoints::ParseTokenText("abc\ndef\n"), std::nullopt);
  EXPECT_EQ(endpoints::ParseTokenText("t\xc3\xa9st"), std::nullopt);
}

}  // namespace
}  // namespace nimbus::admin
