#include "common/flags.h"

#include <gtest/gtest.h>

namespace nimbus {
namespace {

const std::vector<FlagSpec> kOwnFlags = {
    {"payload", "JSON", "the event"},
    {"log", "", "show the log"},
    {"runtime", "R", "", true},
};
const std::vector<FlagSpec> kSharedFlags = {
    {"endpoint", "URL", "the daemon"},
    {"help", "", "show this help"},
};

ArgsSpec Spec() { return {"nimbus invoke", {{"NAME", "the function"}}, {&kOwnFlags, &kSharedFlags}}; }

bool Mentions(const Result<ParsedArgs>& parsed, const std::string& text) {
  return !parsed.ok() && parsed.status().message().find(text) != std::string::npos;
}

TEST(ParseFlags, AcceptsFlagsBeforeBetweenAndAfterPositionals) {
  auto parsed = ParseFlags(Spec(), {"--log", "hello", "--payload", "{}", "--runtime=x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"hello"});
  EXPECT_TRUE(parsed->Has("log"));
  EXPECT_EQ(parsed->Get("log", "absent"), "");
  EXPECT_EQ(parsed->Get("payload"), "{}");
  EXPECT_EQ(parsed->Get("runtime"), "x");
  EXPECT_FALSE(parsed->Has("endpoint"));
  EXPECT_EQ(parsed->Get("endpoint", "fallback"), "fallback");
}

TEST(ParseFlags, TakesTheNextWordAsAValueEvenWhenItStartsWithADash) {
  auto parsed = ParseFlags(Spec(), {"hello", "--payload", "-", "--runtime", "--x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->Get("payload"), "-");
  EXPECT_EQ(parsed->Get("runtime"), "--x");
}

TEST(ParseFlags, KeepsAnEmptyOrEqualsSignValueGivenInline) {
  auto parsed = ParseFlags(Spec(), {"hello", "--runtime=", "--payload=a=b"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->Has("runtime"));
  EXPECT_EQ(parsed->Get("runtime", "absent"), "");
  EXPECT_EQ(parsed->Get("payload"), "a=b");
}

TEST(ParseFlags, LooksFlagsUpInEveryListItIsGiven) {
  auto parsed = ParseFlags(Spec(), {"hello", "--runtime", "r", "--endpoint", "http://h:1"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->Get("endpoint"), "http://h:1");
}

TEST(ParseFlags, RejectsAnUnknownFlagNamingItAndTheCommand) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "--paylod", "{}"}),
                       "unknown flag '--paylod' for `nimbus invoke`"));
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "--paylod={}"}), "'--paylod'"));
}

TEST(ParseFlags, AppendsTheCallersHintToAnUnknownFlagMessage) {
  ArgsSpec spec = Spec();
  spec.unknown_flag_hint = [](std::string_view name) { return " (hint for " + std::string(name) + ")"; };
  auto parsed = ParseFlags(spec, {"hello", "--runtime", "r", "--paylod={}"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "unknown flag '--paylod' for `nimbus invoke` (hint for paylod)");
}

TEST(ParseFlags, RejectsASingleDashFlagSayingHowFlagsAreSpelled) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "-x"}), "flags are spelled --name"));
}

TEST(ParseFlags, RejectsAMissingPositionalNamingIt) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"--runtime", "r"}), "missing NAME for `nimbus invoke`"));
}

TEST(ParseFlags, RejectsAnExtraPositional) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"a", "b", "--runtime", "r"}), "unexpected argument 'b'"));
}

TEST(ParseFlags, RejectsAMissingRequiredFlag) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello"}), "missing --runtime R"));
}

TEST(ParseFlags, RejectsAValueFlagAtTheEndNamingTheValueItWants) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "--payload"}),
                       "flag '--payload' needs a value (JSON)"));
}

TEST(ParseFlags, RejectsAValueOnABooleanFlag) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "--log=yes"}), "takes no value"));
}

TEST(ParseFlags, RejectsARepeatedFlag) {
  EXPECT_TRUE(Mentions(ParseFlags(Spec(), {"hello", "--runtime", "r", "--runtime", "s"}), "given twice"));
}

TEST(ParseFlags, TreatsWordsAfterDoubleDashAndALoneDashAsPositionals) {
  auto parsed = ParseFlags(Spec(), {"--runtime", "r", "--", "--weird-name"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"--weird-name"});
  parsed = ParseFlags(Spec(), {"--runtime", "r", "-"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"-"});
}

TEST(ParseFlags, HelpSkipsTheChecksForMissingArguments) {
  for (const char* help : {"-h", "--help"}) {
    auto parsed = ParseFlags(Spec(), {help});
    ASSERT_TRUE(parsed.ok()) << help << ": " << parsed.status().message();
    EXPECT_TRUE(parsed->Has("help"));
  }
}

TEST(ParseFlags, KnowsDashHOnlyWhereHelpIsDeclared) {
  const std::vector<FlagSpec> no_help = {{"log", "", ""}};
  EXPECT_FALSE(ParseFlags({"nimbus x", {}, {&no_help}}, {"-h"}).ok());
}

TEST(ParseFlags, AcceptsNoArgumentsWhenNothingIsRequired) {
  auto parsed = ParseFlags({"nimbus serve", {}, {&kSharedFlags}}, {});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->flags.empty());
  EXPECT_TRUE(parsed->positionals.empty());
}

TEST(FindFlag, FindsADeclaredFlagByItsNameWithoutDashes) {
  ArgsSpec spec = Spec();
  ASSERT_NE(FindFlag(spec, "endpoint"), nullptr);
  EXPECT_EQ(FindFlag(spec, "endpoint")->value_name, "URL");
  EXPECT_EQ(FindFlag(spec, "--endpoint"), nullptr);
  EXPECT_EQ(FindFlag(spec, "nope"), nullptr);
}

}  // namespace
}  // namespace nimbus
