#include "daemon/serve_flags.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

namespace nimbus::daemon {
namespace {

ServeOptions Parsed(const std::vector<std::string>& args) {
  Result<ServeArgs> parsed = ParseServeArgs(args);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_FALSE(parsed.ok() && parsed->help);
  return parsed.ok() ? parsed->options : ServeOptions{};
}

std::string Refusal(const std::vector<std::string>& args) {
  Result<ServeArgs> parsed = ParseServeArgs(args);
  EXPECT_FALSE(parsed.ok()) << "accepted: " << ::testing::PrintToString(args);
  return parsed.ok() ? "" : parsed.status().message();
}

struct Printed {
  std::optional<int> exit_code;
  ServeOptions options;
  std::string out, err;
};

Printed ParseAndPrint(const std::vector<std::string>& args) {
  Printed r;
  std::ostringstream out, err;
  r.exit_code = ParseServeFlags(args, r.options, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(ParseServeArgs, WithoutFlagsKeepsEveryDefault) {
  ServeOptions o = Parsed({});
  EXPECT_EQ(o.listen, "127.0.0.1:8080");
  EXPECT_EQ(o.data_dir, ".nimbus");
  EXPECT_EQ(o.share_dir, "");
  EXPECT_EQ(o.threads, 0u);
  EXPECT_TRUE(o.sandbox);
  EXPECT_EQ(o.init_timeout_s, 10);
  EXPECT_EQ(o.primed_per_runtime, 2u);
  EXPECT_EQ(o.async_max_payload, 262144u);
  EXPECT_EQ(o.async_retry_base_ms, 60'000);
  EXPECT_EQ(o.idempotency_window_ms, 3'600'000);
}

TEST(ParseServeArgs, AcceptsEveryFlagWithItsValueAsTheNextWord) {
  ServeOptions o = Parsed({"--listen", "0.0.0.0:9000", "--data-dir", "/var/lib/nimbus", "--threads", "4",
                           "--share-dir", "/opt/share", "--init-timeout", "30", "--primed-per-runtime", "0", "--async-max-payload", "1048576",
                           "--async-retry-base", "200ms", "--idempotency-window", "10m", "--insecure-no-sandbox"});
  EXPECT_EQ(o.listen, "0.0.0.0:9000");
  EXPECT_EQ(o.data_dir, "/var/lib/nimbus");
  EXPECT_EQ(o.threads, 4u);
  EXPECT_EQ(o.share_dir, "/opt/share");
  EXPECT_EQ(o.init_timeout_s, 30);
  EXPECT_EQ(o.primed_per_runtime, 0u);
  EXPECT_EQ(o.async_max_payload, 1048576u);
  EXPECT_EQ(o.async_retry_base_ms, 200);
  EXPECT_EQ(o.idempotency_window_ms, 600'000);
  EXPECT_FALSE(o.sandbox);
}

TEST(ParseServeArgs, AcceptsEveryFlagWithItsValueAfterAnEqualsSign) {
  ServeOptions o = Parsed({"--listen=[::1]:9000", "--data-dir=d", "--threads=2", "--share-dir=s",
                           "--init-timeout=900", "--primed-per-runtime=16", "--async-max-payload=1024", "--async-retry-base=1h",
                           "--idempotency-window=168h"});
  EXPECT_EQ(o.listen, "[::1]:9000");
  EXPECT_EQ(o.data_dir, "d");
  EXPECT_EQ(o.threads, 2u);
  EXPECT_EQ(o.share_dir, "s");
  EXPECT_EQ(o.init_timeout_s, 900);
  EXPECT_EQ(o.primed_per_runtime, 16u);
  EXPECT_EQ(o.async_max_payload, 1024u);
  EXPECT_EQ(o.async_retry_base_ms, 3'600'000);
  EXPECT_EQ(o.idempotency_window_ms, 168 * 3'600'000LL);
}

TEST(ParseServeArgs, ReadsEveryDurationForm) {
  EXPECT_EQ(Parsed({"--async-retry-base", "250ms"}).async_retry_base_ms, 250);
  EXPECT_EQ(Parsed({"--async-retry-base", "30s"}).async_retry_base_ms, 30'000);
  EXPECT_EQ(Parsed({"--async-retry-base", "5m"}).async_retry_base_ms, 300'000);
  EXPECT_EQ(Parsed({"--async-retry-base", "1h"}).async_retry_base_ms, 3'600'000);
  EXPECT_EQ(Parsed({"--async-retry-base", "45"}).async_retry_base_ms, 45'000);  // bare: seconds
}

TEST(ParseServeArgs, TakesZeroThreadsAsOnePerCore) { EXPECT_EQ(Parsed({"--threads", "0"}).threads, 0u); }

TEST(ParseServeArgs, RefusesAnUnknownFlagNamingItAndSuggestingTheNearest) {
  std::string message = Refusal({"--listen", "127.0.0.1:1", "--data-dri", "d"});
  EXPECT_NE(message.find("unknown flag '--data-dri' for `nimbus serve`"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean --data-dir?"), std::string::npos) << message;
  message = Refusal({"--verbose"});
  EXPECT_NE(message.find("unknown flag '--verbose'"), std::string::npos) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST(ParseServeArgs, RefusesAnArgumentThatIsNotAFlag) {
  EXPECT_NE(Refusal({"8080"}).find("unexpected argument '8080'"), std::string::npos);
  EXPECT_NE(Refusal({"-l"}).find("unknown flag '-l'"), std::string::npos);
}

TEST(ParseServeArgs, RefusesAFlagWithoutItsValue) {
  for (const char* flag : {"--listen", "--data-dir", "--threads", "--share-dir", "--init-timeout",
                           "--primed-per-runtime", "--async-max-payload", "--async-retry-base", "--idempotency-window"}) {
    std::string message = Refusal({flag});
    EXPECT_NE(message.find(std::string("flag '") + flag + "' needs a value"), std::string::npos) << message;
  }
}

TEST(ParseServeArgs, RefusesAValueOnTheBooleanFlag) {
  EXPECT_NE(Refusal({"--insecure-no-sandbox=yes"}).find("takes no value"), std::string::npos);
}

TEST(ParseServeArgs, RefusesAFlagGivenTwice) {
  EXPECT_NE(Refusal({"--listen", "a:1", "--listen", "b:2"}).find("'--listen' given twice"), std::string::npos);
}

TEST(ParseServeArgs, RefusesBadNumbersSayingWhatTheFlagWants) {
  struct Case {
    const char* flag;
    const char* value;
    const char* wants;
  };
  const Case cases[] = {
      {"--threads", "four", "--threads wants a whole number of event loops up to 1024"},
      {"--threads", "-1", "--threads wants"},
      {"--threads", "1025", "--threads wants"},
      {"--init-timeout", "0", "--init-timeout wants whole seconds from 1 to 900"},
      {"--init-timeout", "901", "--init-timeout wants"},
      {"--init-timeout", "10s", "--init-timeout wants"},
      {"--init-timeout", " 10", "--init-timeout wants"},
      {"--primed-per-runtime", "17", "--primed-per-runtime wants a whole number of instances from 0 to 16"},
      {"--primed-per-runtime", "one", "--primed-per-runtime wants"},
      {"--async-max-payload", "1023", "--async-max-payload wants bytes from 1024 to 6291456"},
      {"--async-max-payload", "6291457", "--async-max-payload wants"},
      {"--async-max-payload", "-1", "--async-max-payload wants"},
      {"--async-max-payload", "99999999999999999999", "--async-max-payload wants"},
      {"--async-retry-base", "9ms", "--async-retry-base wants a duration from 10ms to 1h"},
      {"--async-retry-base", "61m", "--async-retry-base wants"},
      {"--async-retry-base", "1d", "--async-retry-base wants"},
      {"--async-retry-base", "ms", "--async-retry-base wants"},
      {"--idempotency-window", "999ms", "--idempotency-window wants a duration from 1s to 168h"},
      {"--idempotency-window", "169h", "--idempotency-window wants"},
      {"--listen", "", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1:65536", "--listen wants ADDR:PORT, an IPv4 address or an IPv6 one in brackets"},
      {"--listen", "::1:8080", "--listen wants ADDR:PORT"},
      {"--listen", "[127.0.0.1]:8080", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1:080", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1:99999999999", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1:-1", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1:", "--listen wants ADDR:PORT"},
      {"--listen", "127.0.0.1", "--listen wants ADDR:PORT"},
      {"--listen", "localhost:8080", "--listen wants ADDR:PORT"},
      {"--listen", "300.1.1.1:8080", "--listen wants ADDR:PORT"},
      {"--data-dir", "", "--data-dir wants a directory"},
  };
  for (const Case& c : cases) {
    std::string message = Refusal({c.flag, c.value});
    EXPECT_NE(message.find(c.wants), std::string::npos) << c.flag << " " << c.value << ": " << message;
    EXPECT_NE(message.find(std::string("got '") + c.value + "'"), std::string::npos) << message;
  }
}

TEST(ParseServeArgs, AnswersHelpWithoutCheckingTheOtherValues) {
  for (const char* help : {"--help", "-h"}) {
    Result<ServeArgs> parsed = ParseServeArgs({"--threads", "many", help});
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_TRUE(parsed->help);
  }
}

TEST(ParseServeFlags, PrintsTheHelpAndExitsZero) {
  Printed r = ParseAndPrint({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, ServeHelp());
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind("usage: nimbus serve [--listen ADDR:PORT] [--data-dir DIR]", 0), 0u) << r.out;
}

TEST(ParseServeFlags, PrintsAUsageErrorWithAPointerToTheHelpAndExitsTwo) {
  Printed r = ParseAndPrint({"--lisen", "0.0.0.0:80"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "nimbus serve: unknown flag '--lisen' for `nimbus serve` (did you mean --listen?)\n"
            "run `nimbus serve --help` for the flags and the values they take\n");
}

TEST(ParseServeFlags, FillsTheOptionsAndGoesOnServing) {
  Printed r = ParseAndPrint({"--data-dir", "/tmp/d", "--insecure-no-sandbox"});
  EXPECT_EQ(r.exit_code, std::nullopt);
  EXPECT_EQ(r.options.data_dir, "/tmp/d");
  EXPECT_FALSE(r.options.sandbox);
  EXPECT_EQ(r.out + r.err, "");
}

TEST(ParseServeFlags, LeavesTheOptionsAloneOnAUsageError) {
  Printed r = ParseAndPrint({"--data-dir", "/tmp/d", "--threads", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.options.data_dir, ".nimbus");
}

TEST(ServeHelp, DescribesExactlyTheFlagsThatAreAccepted) {
  std::set<std::string> in_help;
  const std::string& help = ServeHelp();
  std::regex row("\n  --([a-z-]+)");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), row); it != std::sregex_iterator(); ++it) {
    in_help.insert((*it)[1]);
  }
  std::set<std::string> declared;
  for (const FlagSpec& f : ServeFlags()) {
    if (f.name != "help") declared.insert(f.name);
  }
  EXPECT_EQ(in_help, declared);
  for (const FlagSpec& f : ServeFlags()) {
    if (f.value_name.empty()) continue;
    std::string shown = "--" + f.name + " " + f.value_name;
    EXPECT_NE(help.find("\n  " + shown), std::string::npos) << shown;
  }
}

TEST(ParseDurationMs, RefusesMalformedDurations) {
  for (const char* text : {"", "ms", "1.5s", "-1s", "1 s", "1S", "1d", "1234567890"}) {
    EXPECT_EQ(ParseDurationMs(text), std::nullopt) << text;
  }
  EXPECT_EQ(ParseDurationMs("0"), 0);
  EXPECT_EQ(ParseDurationMs("999999999ms"), 999'999'999);
}

TEST(ParseListen, GivesTheAddressWithoutBracketsAndThePort) {
  auto v4 = ParseListen("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  auto v6 = ParseListen("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"::1:8080", "[127.0.0.1]:80", "127.0.0.1:080", "127.0.0.1:65536", "[::1]", "localhost:80"}) {
    EXPECT_FALSE(ParseListen(bad)) << bad;
  }
}

}  // namespace
}  // namespace nimbus::daemon
