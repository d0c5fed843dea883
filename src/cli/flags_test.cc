#include "cli/flags.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nimbus::cli {
namespace {

const CommandSpec kSpec = {
    "invoke",
    "call a function",
    {{"NAME", "the function"}},
    {{"payload", "JSON", "the event"}, {"log", "", "show the log"}, {"runtime", "R", "", true}},
    "",
};

TEST(ParseArgs, AcceptsFlagsBeforeBetweenAndAfterPositionals) {
  auto parsed = ParseArgs(kSpec, {"--log", "hello", "--payload", "{}", "--runtime=x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"hello"});
  EXPECT_TRUE(parsed->Has("log"));
  EXPECT_EQ(parsed->Get("payload"), "{}");
  EXPECT_EQ(parsed->Get("runtime"), "x");
}

TEST(ParseArgs, TakesTheNextWordAsAValueEvenWhenItStartsWithADash) {
  auto parsed = ParseArgs(kSpec, {"hello", "--payload", "-", "--runtime", "--x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->Get("payload"), "-");
  EXPECT_EQ(parsed->Get("runtime"), "--x");
}

TEST(ParseArgs, AcceptsGlobalFlagsOnEveryCommand) {
  auto parsed = ParseArgs(kSpec, {"hello", "--runtime", "r", "--json", "--endpoint", "http://h:1"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->Has("json"));
  EXPECT_EQ(parsed->Get("endpoint"), "http://h:1");
}

TEST(ParseArgs, RejectsAnUnknownFlagByName) {
  auto parsed = ParseArgs(kSpec, {"hello", "--runtime", "r", "--paylod", "{}"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("--paylod"), std::string::npos);
}

TEST(ParseArgs, RejectsASingleDashFlag) {
  EXPECT_FALSE(ParseArgs(kSpec, {"hello", "--runtime", "r", "-x"}).ok());
}

TEST(ParseArgs, RejectsAMissingPositionalNamingIt) {
  auto parsed = ParseArgs(kSpec, {"--runtime", "r"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("missing NAME"), std::string::npos);
}

TEST(ParseArgs, RejectsAnExtraPositional) {
  auto parsed = ParseArgs(kSpec, {"a", "b", "--runtime", "r"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("'b'"), std::string::npos);
}

TEST(ParseArgs, RejectsAMissingRequiredFlag) {
  auto parsed = ParseArgs(kSpec, {"hello"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("--runtime"), std::string::npos);
}

TEST(ParseArgs, RejectsAValueFlagAtTheEnd) {
  auto parsed = ParseArgs(kSpec, {"hello", "--runtime", "r", "--payload"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("needs a value"), std::string::npos);
}

TEST(ParseArgs, RejectsAValueOnABooleanFlag) {
  EXPECT_FALSE(ParseArgs(kSpec, {"hello", "--runtime", "r", "--log=yes"}).ok());
}

TEST(ParseArgs, RejectsARepeatedFlag) {
  EXPECT_FALSE(ParseArgs(kSpec, {"hello", "--runtime", "r", "--runtime", "s"}).ok());
}

TEST(ParseArgs, TreatsWordsAfterDoubleDashAsPositionals) {
  auto parsed = ParseArgs(kSpec, {"--runtime", "r", "--", "--weird-name"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"--weird-name"});
}

TEST(ParseArgs, HelpSkipsTheChecksForMissingArguments) {
  auto parsed = ParseArgs(kSpec, {"-h"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->Has("help"));
}

TEST(UsageLine, ListsPositionalsRequiredAndOptionalFlags) {
  EXPECT_EQ(UsageLine(kSpec), "nimbus invoke NAME [--payload JSON] [--log] --runtime R");
}

TEST(PrintCommandHelp, MentionsEveryFlagIncludingTheGlobalOnes) {
  std::ostringstream out;
  PrintCommandHelp(kSpec, out);
  for (const char* word : {"--payload JSON", "--log", "--runtime R", "--endpoint URL", "--json", "NAME"}) {
    EXPECT_NE(out.str().find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace nimbus::cli
