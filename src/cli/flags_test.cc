#include "cli/flags.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nimbus::cli {
namespace {

// The parser itself is specified in common/flags_test.cc; these cover what the CLI adds.
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

TEST(ParseArgs, AcceptsGlobalFlagsOnEveryCommand) {
  auto parsed = ParseArgs(kSpec, {"hello", "--runtime", "r", "--json", "--endpoint", "http://h:1", "--token=t"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->Has("json"));
  EXPECT_EQ(parsed->Get("endpoint"), "http://h:1");
  EXPECT_EQ(parsed->Get("token"), "t");
}

TEST(ParseArgs, RejectsAnUnknownFlagNamingItAndTheCommand) {
  auto parsed = ParseArgs(kSpec, {"hello", "--runtime", "r", "--paylod", "{}"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "unknown flag '--paylod' for `nimbus invoke`");
}

TEST(ParseArgs, RejectsAMissingPositionalOrRequiredFlagNamingTheCommand) {
  auto parsed = ParseArgs(kSpec, {"--runtime", "r"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "missing NAME for `nimbus invoke`");
  parsed = ParseArgs(kSpec, {"hello"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "missing --runtime R for `nimbus invoke`");
}

TEST(ParseArgs, HelpSkipsTheChecksForMissingArguments) {
  for (const char* help : {"-h", "--help"}) {
    auto parsed = ParseArgs(kSpec, {help});
    ASSERT_TRUE(parsed.ok()) << help;
    EXPECT_TRUE(parsed->Has("help"));
  }
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
