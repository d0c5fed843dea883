// End-to-end tests of the CLI: RunCli with captured streams against a fake daemon.
#include "cli/cli.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/fake_daemon.h"
#include "cli/test_util.h"

namespace nimbus::cli {
namespace {

using testing::CliRun;
using testing::FakeDaemon;
using testing::JsonAnswer;
using testing::ReadText;
using testing::RecordedRequest;
using testing::RunCliCaptured;
using testing::TempDir;
using testing::WriteText;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string ClosedPortUrl() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::string url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  a.close();
  return url;
}

const char* kFunctionDoc = R"({
  "name": "hello", "runtime": "python3", "handler": "app.handler",
  "memory": 128, "timeout": 3, "keep_alive": 60,
  "concurrency": {"max": 10, "min_warm": 0},
  "version": "2", "code_sha256": "ab12cd34ef567890", "code_size": 1234,
  "routes": [{"method": "GET", "path": "/hello/{name}"}],
  "versions": ["1", "2"], "aliases": {"live": "1"},
  "instances": {"busy": 0, "idle": 1},
  "last_modified_ms": 1700000000000
})";

const char* kNotFound =
    R"({"Type": "User", "message": "function 'helo' does not exist; `nimbus ls` lists deployed functions", "errorType": "ResourceNotFoundException"})";

// --- exit codes and usage -------------------------------------------------------------------

TEST(ExitCodeForHttpStatus, MapsSuccessNotFoundAndEverythingElse) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(201), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(204), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(404), kExitNotFound);
  EXPECT_EQ(ExitCodeForHttpStatus(400), kExitFailed);
  EXPECT_EQ(ExitCodeForHttpStatus(413), kExitFailed);
  EXPECT_EQ(ExitCodeForHttpStatus(429), kExitFailed);
  EXPECT_EQ(ExitCodeForHttpStatus(500), kExitFailed);
}

TEST(RunCli, WithoutACommandIsAUsageError) {
  CliRun r = RunCliCaptured({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "missing command"));
}

TEST(RunCli, RejectsAnUnknownCommand) {
  CliRun r = RunCliCaptured({"deplyo", "x"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "unknown command 'deplyo'"));
}

TEST(RunCli, RejectsAnUnknownFlagWithTheCommandsUsageLine) {
  CliRun r = RunCliCaptured({"ls", "--all"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "unknown flag '--all'"));
  EXPECT_TRUE(Contains(r.err, "usage: nimbus ls"));
}

TEST(RunCli, RejectsAMissingArgumentWithTheUsageLine) {
  CliRun r = RunCliCaptured({"alias", "hello", "live"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "missing VERSION"));
  EXPECT_TRUE(Contains(r.err, "usage: nimbus alias NAME ALIAS VERSION"));
}

TEST(RunCli, RejectsABadEndpointAsAUsageError) {
  CliRun r = RunCliCaptured({"ls", "--endpoint", "https://x"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "only plain http://"));
}

TEST(RunCli, PrintsTheVersion) {
  CliRun r = RunCliCaptured({"--version"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "nimbus 0.1.0\n");
}

TEST(RunCli, TopLevelHelpListsCommandsAndExitStatuses) {
  CliRun r = RunCliCaptured({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  for (const char* word : {"init", "deploy", "invoke", "ls", "info", "logs", "alias", "rm",
                           "exit status", "5  cannot reach the daemon"}) {
    EXPECT_TRUE(Contains(r.out, word)) << word;
  }
}

TEST(RunCli, CommandHelpWorksWithoutArgumentsAndViaHelpCommand) {
  CliRun a = RunCliCaptured({"invoke", "--help"});
  EXPECT_EQ(a.code, kExitOk);
  EXPECT_TRUE(Contains(a.out, "usage: nimbus invoke NAME [--payload JSON|@FILE|-]"));
  CliRun b = RunCliCaptured({"help", "invoke"});
  EXPECT_EQ(b.code, kExitOk);
  EXPECT_EQ(a.out, b.out);
}

// --- unreachable daemon ---------------------------------------------------------------------

TEST(RunCli, UnreachableDaemonExits5WithAMessageSayingHowToStartIt) {
  const std::string url = ClosedPortUrl();
  CliRun r = RunCliCaptured({"ls", "--endpoint", url});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_EQ(r.err, "error: cannot reach nimbus at " + url +
                       ": connection refused; start it with `nimbus serve` or `make run`, or set "
                       "--endpoint\n");
}

TEST(RunCli, TakesTheEndpointFromTheEnvironmentUnlessTheFlagIsGiven) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); });
  CliEnvironment env;
  env.endpoint = daemon.url();
  EXPECT_EQ(RunCliCaptured({"ls"}, env).code, kExitOk);
  EXPECT_EQ(daemon.requests().size(), 1u);
  env.endpoint = ClosedPortUrl();
  EXPECT_EQ(RunCliCaptured({"--endpoint", daemon.url(), "ls"}, env).code, kExitOk);
  EXPECT_EQ(daemon.requests().size(), 2u);
}

// --- the admin token ------------------------------------------------------------------------

constexpr const char* kToken = "5f0c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5";

HttpResponse NoContent() {
  HttpResponse r;
  r.status = 204;
  return r;
}

TEST(AdminToken, EveryAdminCommandSendsTheTokenGivenWithTheFlag) {
  TempDir tmp;
  const auto dir = tmp.path() / "hello";
  ASSERT_EQ(RunCliCaptured({"init", "hello", "--runtime", "python3", "--dir", dir.string()}).code, kExitOk);
  FakeDaemon daemon(
      [](const RecordedRequest& req) {
        if (req.method == "DELETE" && req.target.find("/events") != std::string::npos) {
          return JsonAnswer(200, R"({"purged": 0})");
        }
        if (req.method == "DELETE") return NoContent();
        if (req.target.find("/events/replay") != std::string::npos) return JsonAnswer(200, R"({"replayed": 1, "missing": []})");
        if (req.target == "/v1/functions") return JsonAnswer(200, R"({"functions": []})");
        if (req.target.find("/logs") != std::string::npos) return JsonAnswer(200, R"({"lines": []})");
        if (req.target.find("/aliases/") != std::string::npos) return JsonAnswer(200, R"({"name": "live", "version": "1"})");
        return JsonAnswer(200, kFunctionDoc);
      },
      kToken);
  const std::vector<std::vector<std::string>> commands = {
      {"ls"}, {"info", "hello"}, {"logs", "hello"}, {"alias", "hello", "live", "1"}, {"rm", "hello"},
      {"deploy", dir.string()}, {"events", "ls", "hello"}, {"events", "dlq", "hello"},
      {"events", "replay", "hello", "--all"}, {"events", "purge", "hello"}, {"events", "purge", "hello", "--dlq"}};
  for (auto args : commands) {
    args.insert(args.end(), {"--endpoint", daemon.url(), "--token", kToken});
    CliRun r = RunCliCaptured(args);
    EXPECT_EQ(r.code, kExitOk) << args[0] << ": " << r.err;
  }
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), commands.size());
  for (auto& req : reqs) {
    EXPECT_EQ(req.headers["authorization"], std::string("Bearer ") + kToken) << req.method << " " << req.target;
  }
}

TEST(AdminToken, TheFlagMayComeBeforeTheCommand) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); }, kToken);
  CliRun r = RunCliCaptured({"--token", kToken, "--endpoint", daemon.url(), "ls"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  CliRun s = RunCliCaptured({std::string("--token=") + kToken, "ls", "--endpoint", daemon.url()});
  EXPECT_EQ(s.code, kExitOk) << s.err;
}

TEST(AdminToken, ComesFromNimbusTokenWhenNoFlagIsGivenAndTheFlagWins) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); });
  CliEnvironment env;
  env.token = "from-env";
  ASSERT_EQ(RunCliCaptured({"ls", "--endpoint", daemon.url()}, env).code, kExitOk);
  ASSERT_EQ(RunCliCaptured({"ls", "--endpoint", daemon.url(), "--token", "from-flag"}, env).code, kExitOk);
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer from-env");
  EXPECT_EQ(reqs[1].headers["authorization"], "Bearer from-flag");
}

TEST(AdminToken, WithoutFlagOrEnvironmentTheDaemonsRegistrationIsUsed) {
  TempDir home, data;
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); }, kToken);
  const std::string port = daemon.url().substr(daemon.url().rfind(':') + 1);
  WriteText(data.path() / "admin.token", std::string(kToken) + "\n");
  WriteText(home.path() / ".config/nimbus/endpoints" / ("127.0.0.1_" + port), (data.path() / "admin.token").string() + "\n");
  CliEnvironment env;
  env.endpoint = daemon.url();
  env.home = home.path();
  CliRun r = RunCliCaptured({"ls"}, env);
  EXPECT_EQ(r.code, kExitOk) << r.err;
}

TEST(AdminToken, FallsBackToTheLocalDataDirectorysTokenFile) {
  TempDir home, cwd;
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); }, kToken);
  WriteText(cwd.path() / ".nimbus/admin.token", std::string(kToken) + "\n");
  CliEnvironment env;
  env.home = home.path();  // nothing registered there
  env.local_token_file = cwd.path() / ".nimbus/admin.token";
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url()}, env);
  EXPECT_EQ(r.code, kExitOk) << r.err;
}

TEST(AdminToken, WithNoTokenAnywhereRequestsGoWithoutAnAuthorizationHeader) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); });
  ASSERT_EQ(RunCliCaptured({"ls", "--endpoint", daemon.url()}).code, kExitOk);
  EXPECT_EQ(daemon.requests().at(0).headers.count("authorization"), 0u);
}

TEST(AdminToken, IsNeverSentToTheInvokeApi) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, "{}"); }, kToken);
  CliEnvironment env;
  env.token = kToken;
  CliRun r = RunCliCaptured({"invoke", "hello", "--endpoint", daemon.url(), "--token", kToken}, env);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(daemon.requests().at(0).headers.count("authorization"), 0u);
}

TEST(AdminToken, AWrongTokenExits1WithTheDaemonsMessageAndSaysWhereTheTokenCameFrom) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); }, kToken);
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url(), "--token", "wrong"});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: the admin API token in the request is wrong: send the token in DATA/admin.token "
            "(UnauthorizedException)\n"
            "note: the token sent came from --token\n");
}

TEST(AdminToken, ARefusalWithoutATokenSaysWhereTheCliLooked) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); }, kToken);
  CliRun r = RunCliCaptured({"rm", "hello", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "(UnauthorizedException)\n")) << r.err;
  EXPECT_TRUE(Contains(r.err, "note: no token was sent")) << r.err;
  EXPECT_TRUE(Contains(r.err, "NIMBUS_TOKEN")) << r.err;
}

TEST(AdminToken, AnEmptyFlagIsAUsageError) {
  CliRun r = RunCliCaptured({"ls", "--token="});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "--token needs a value")) << r.err;
}

TEST(AdminToken, HelpDescribesTheFlagAndTheLookupOrder) {
  CliRun top = RunCliCaptured({"--help"});
  EXPECT_TRUE(Contains(top.out, "--token TOKEN")) << top.out;
  EXPECT_TRUE(Contains(top.out, "$NIMBUS_TOKEN")) << top.out;
  CliRun ls = RunCliCaptured({"ls", "--help"});
  EXPECT_TRUE(Contains(ls.out, "--token TOKEN")) << ls.out;
  EXPECT_TRUE(Contains(ls.out, "./.nimbus/admin.token")) << ls.out;
}

// --- invoke ---------------------------------------------------------------------------------

TEST(ReadPayload, AcceptsInlineJson) {
  std::istringstream in;
  auto p = ReadPayload(R"({"name": "world"})", in);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, R"({"name": "world"})");
}

TEST(ReadPayload, RejectsTextThatIsNotJsonWithAQuotingHint) {
  std::istringstream in;
  auto p = ReadPayload("{name: world}", in);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Contains(p.status().message(), "--payload is not valid JSON"));
  EXPECT_TRUE(Contains(p.status().message(), "quote it for the shell"));
}

TEST(ReadPayload, RejectsTrailingGarbageAfterAValue) {
  std::istringstream in;
  EXPECT_FALSE(ReadPayload("{} {}", in).ok());
}

TEST(ReadPayload, ReadsAFileAfterAnAtSign) {
  TempDir dir;
  WriteText(dir.path() / "event.json", "[1, 2]\n");
  std::istringstream in;
  auto p = ReadPayload("@" + (dir.path() / "event.json").string(), in);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, "[1, 2]\n");
  auto missing = ReadPayload("@" + (dir.path() / "nope.json").string(), in);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "cannot read payload file"));
}

TEST(ReadPayload, ReadsStandardInputForADash) {
  std::istringstream in(R"("just a string")");
  auto p = ReadPayload("-", in);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, R"("just a string")");
  std::istringstream bad("oops");
  auto q = ReadPayload("-", bad);
  ASSERT_FALSE(q.ok());
  EXPECT_TRUE(Contains(q.status().message(), "standard input is not valid JSON"));
}

TEST(Invoke, RejectsABadPayloadBeforeSendingAnything) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, "{}"); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--payload", "{oops", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "not valid JSON"));
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Invoke, RejectsAnUnknownInvocationType) {
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Async"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "RequestResponse, Event or DryRun"));
}

TEST(Invoke, PostsThePayloadAndPrintsTheAnswer) {
  FakeDaemon daemon([](const RecordedRequest&) {
    auto r = JsonAnswer(200, R"({"statusCode":200,"body":"hi"})");
    r.headers.emplace_back("X-Amz-Executed-Version", "1");
    return r;
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--payload", R"({"a":1})", "--qualifier", "live",
                             "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"statusCode\":200,\"body\":\"hi\"}\n");
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/2015-03-31/functions/hello/invocations?Qualifier=live");
  EXPECT_EQ(reqs[0].headers["x-amz-invocation-type"], "RequestResponse");
  EXPECT_EQ(reqs[0].headers.count("x-amz-log-type"), 0u);
  EXPECT_EQ(reqs[0].body, R"({"a":1})");
}

TEST(Invoke, SendsAnEmptyObjectWhenNoPayloadIsGiven) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, "null"); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(daemon.requests().at(0).body, "{}");
}

TEST(Invoke, WithLogAsksForTheTailAndPrintsItDecodedOnStderr) {
  FakeDaemon daemon([](const RecordedRequest&) {
    auto r = JsonAnswer(200, "\"ok\"");
    // base64 of "START RequestId: abc\nhello\n"
    r.headers.emplace_back("X-Amz-Log-Result", "U1RBUlQgUmVxdWVzdElkOiBhYmMKaGVsbG8K");
    return r;
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--log", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(daemon.requests().at(0).headers["x-amz-log-type"], "Tail");
  EXPECT_EQ(r.err, "START RequestId: abc\nhello\n");
  EXPECT_EQ(r.out, "\"ok\"\n");
}

TEST(Invoke, AFunctionErrorPrintsTheErrorDocumentAndExits4) {
  const std::string body =
      R"({"errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"})";
  FakeDaemon daemon([&](const RecordedRequest&) {
    auto r = JsonAnswer(200, body);
    r.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
    return r;
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFunctionError);
  EXPECT_EQ(r.out, body + "\n");
  EXPECT_TRUE(Contains(r.err, "function hello failed (Unhandled): Sandbox.Timedout: Task timed out"));
}

TEST(Invoke, AnUnknownFunctionExits3WithTheServersMessage) {
  FakeDaemon daemon([](const RecordedRequest&) {
    auto r = JsonAnswer(404, kNotFound);
    r.headers.emplace_back("x-amzn-ErrorType", "ResourceNotFoundException");
    return r;
  });
  CliRun r = RunCliCaptured({"invoke", "helo", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err,
            "error: function 'helo' does not exist; `nimbus ls` lists deployed functions "
            "(ResourceNotFoundException)\n");
  EXPECT_EQ(r.out, "");
}

TEST(Invoke, ThrottlingExits1NamingTheErrorType) {
  FakeDaemon daemon([](const RecordedRequest&) {
    return JsonAnswer(429, R"({"message": "too many requests for 'hello'", "errorType": "TooManyRequestsException"})");
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "(TooManyRequestsException)"));
}

TEST(Invoke, AnEventIsQueuedAndReportedWithItsRequestId) {
  FakeDaemon daemon([](const RecordedRequest&) {
    HttpResponse r;
    r.status = 202;
    r.headers = {{"x-amzn-RequestId", "req-1"}};
    return r;
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(daemon.requests().at(0).headers["x-amz-invocation-type"], "Event");
  EXPECT_EQ(r.out, "queued an event for hello (request id req-1)\n");
}

// The daemon's 202 for an Event; for a repeat of an idempotency key already queued it carries
// the first event's request id and "X-Nimbus-Idempotent-Replay: true".
HttpResponse Accepted(const std::string& request_id, bool replay = false) {
  HttpResponse r;
  r.status = 202;
  r.headers = {{"x-amzn-RequestId", request_id}};
  if (replay) r.headers.emplace_back("X-Nimbus-Idempotent-Replay", "true");
  return r;
}

TEST(Invoke, AnEventWithJsonPrintsTheRequestIdAndThatItWasNew) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-1"); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--json", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(boost::json::parse(r.out), boost::json::parse(R"({"request_id": "req-1", "duplicate": false})")) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(Invoke, AnEventWithJsonSaysDuplicateWhenTheDaemonAnsweredWithTheReplayHeader) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-first", /*replay=*/true); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--idempotency-key", "order-42", "--json",
                             "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(boost::json::parse(r.out), boost::json::parse(R"({"request_id": "req-first", "duplicate": true})"))
      << r.out;
}

TEST(Invoke, AnEventTheDaemonHadAlreadyQueuedForTheKeySaysNothingNewWasQueued) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-first", /*replay=*/true); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--idempotency-key", "order-42",
                             "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "an event with this idempotency key was already queued for hello (request id req-first); "
            "nothing new was queued\n");
  EXPECT_EQ(r.err, "");
}

TEST(Invoke, AnEventWithAnIdempotencyKeySendsItInAHeader) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-1"); });
  CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--idempotency-key", "order-42",
                             "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  auto req = daemon.requests().at(0);
  EXPECT_EQ(req.headers["x-amz-invocation-type"], "Event");
  EXPECT_EQ(req.headers["x-nimbus-idempotency-key"], "order-42");
  EXPECT_EQ(r.out, "queued an event for hello (request id req-1)\n");
}

TEST(Invoke, AnEventWithoutAnIdempotencyKeySendsNoKeyHeader) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-2"); });
  ASSERT_EQ(RunCliCaptured({"invoke", "hello", "--type", "Event", "--endpoint", daemon.url()}).code, kExitOk);
  EXPECT_EQ(daemon.requests().at(0).headers.count("x-nimbus-idempotency-key"), 0u);
}

TEST(Invoke, RefusesAnIdempotencyKeyWithoutTypeEventBeforeSendingAnything) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, "{}"); });
  for (std::vector<std::string> args : {std::vector<std::string>{"invoke", "hello", "--idempotency-key", "k"},
                                        {"invoke", "hello", "--type", "DryRun", "--idempotency-key", "k"},
                                        {"invoke", "hello", "--type", "RequestResponse", "--idempotency-key", "k"}}) {
    args.insert(args.end(), {"--endpoint", daemon.url()});
    CliRun r = RunCliCaptured(args);
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_TRUE(Contains(r.err, "error: --idempotency-key applies to --type Event\n")) << r.err;
    EXPECT_TRUE(Contains(r.err, "usage: nimbus invoke NAME")) << r.err;
  }
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Invoke, RefusesAnIdempotencyKeyThatIsNotOneTo256VisibleAsciiCharactersBeforeSendingAnything) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-1"); });
  for (const std::string& key : {std::string(""), std::string(257, 'k'), std::string("order 42"),
                                 std::string("order-42\r\nX-Injected: yes"), std::string("order-42\n"),
                                 std::string("tab\tkey"), std::string("nul\0key", 7), std::string("del\x7f"),
                                 std::string("caf\xc3\xa9")}) {
    CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--idempotency-key=" + key,
                               "--endpoint", daemon.url()});
    EXPECT_EQ(r.code, kExitUsage) << key;
    EXPECT_TRUE(Contains(r.err,
                         "error: --idempotency-key wants 1-256 visible ASCII characters (letters, digits, "
                         "punctuation; no spaces)\n"))
        << r.err;
    EXPECT_TRUE(Contains(r.err, "usage: nimbus invoke NAME")) << r.err;
    EXPECT_FALSE(Contains(r.err, "cannot reach")) << r.err;
  }
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Invoke, AcceptsAnIdempotencyKeyOf256VisibleAsciiCharactersIncludingPunctuation) {
  FakeDaemon daemon([](const RecordedRequest&) { return Accepted("req-1"); });
  std::string printable;
  for (char c = 0x21; c <= 0x7E; ++c) printable.push_back(c);
  const std::string longest = std::string(256 - printable.size(), 'k') + printable;
  for (const std::string& key : {std::string("k"), printable, longest}) {
    CliRun r = RunCliCaptured({"invoke", "hello", "--type", "Event", "--idempotency-key=" + key,
                               "--endpoint", daemon.url()});
    EXPECT_EQ(r.code, kExitOk) << key << ": " << r.err;
  }
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].headers["x-nimbus-idempotency-key"], "k");
  EXPECT_EQ(reqs[1].headers["x-nimbus-idempotency-key"], printable);
  EXPECT_EQ(reqs[2].headers["x-nimbus-idempotency-key"], longest);
}

TEST(Invoke, ATimeoutFlagBoundsTheWaitForTheDaemon) {
  FakeDaemon daemon([](const RecordedRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return JsonAnswer(200, "{}");
  });
  CliRun r = RunCliCaptured({"invoke", "hello", "--timeout", "0.1", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_TRUE(Contains(r.err, "did not answer within 100 ms"));
  EXPECT_EQ(RunCliCaptured({"invoke", "hello", "--timeout", "soon"}).code, kExitUsage);
}

// --- deploy ---------------------------------------------------------------------------------

TEST(Deploy, SaysUnchangedWhenTheDaemonKeptTheDeployedVersion) {
  TempDir tmp;
  const auto dir = tmp.path() / "hello";
  ASSERT_EQ(RunCliCaptured({"init", "hello", "--runtime", "python3", "--dir", dir.string()}).code,
            kExitOk);
  std::string doc = kFunctionDoc;
  doc.insert(doc.rfind('}'), ",\"created\":false");
  FakeDaemon daemon([doc](const RecordedRequest&) { return JsonAnswer(200, doc); });
  CliRun r = RunCliCaptured({"deploy", dir.string(), "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(Contains(r.out, "unchanged hello version 2 (python3, 1.2 KB, sha256 ab12cd34): identical to what is deployed\n"))
      << r.out;
}

TEST(Deploy, PutsAZipOfTheDirectoryAndPrintsVersionSizeHashAndUrls) {
  TempDir tmp;
  const auto dir = tmp.path() / "hello";
  ASSERT_EQ(RunCliCaptured({"init", "hello", "--runtime", "python3", "--dir", dir.string()}).code,
            kExitOk);
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(201, kFunctionDoc); });
  CliRun r = RunCliCaptured({"deploy", dir.string(), "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/v1/functions/hello");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/zip");
  ASSERT_GE(reqs[0].body.size(), 4u);
  EXPECT_EQ(reqs[0].body.substr(0, 4), std::string("PK\x03\x04", 4));
  EXPECT_TRUE(Contains(reqs[0].body, "function.yaml"));
  EXPECT_TRUE(Contains(reqs[0].body, "app.py"));
  EXPECT_EQ(r.out, "deployed hello version 2 (python3, 1.2 KB, sha256 ab12cd34)\n"
                   "  " + daemon.url() + "/fn/hello\n"
                   "  GET " + daemon.url() + "/hello/{name}\n");
}

TEST(Deploy, WithJsonPrintsTheFunctionDocumentAsIs) {
  TempDir tmp;
  const auto dir = tmp.path() / "hello";
  ASSERT_EQ(RunCliCaptured({"init", "hello", "--runtime", "nodejs", "--dir", dir.string()}).code, kExitOk);
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kFunctionDoc); });
  CliRun r = RunCliCaptured({"--json", "deploy", dir.string(), "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, std::string(kFunctionDoc) + "\n");
}

TEST(Deploy, ABadManifestIsReportedWithItsLineBeforeAnythingIsSent) {
  TempDir tmp;
  WriteText(tmp.path() / "function.yaml", "name: hello\nruntime: python3\nhandler: app.handler\nmemroy: 128\n");
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(201, kFunctionDoc); });
  CliRun r = RunCliCaptured({"deploy", tmp.path().string(), "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "function.yaml:4")) << r.err;
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Deploy, ADirectoryWithoutAManifestSaysHowToMakeOne) {
  TempDir tmp;
  CliRun r = RunCliCaptured({"deploy", tmp.path().string(), "--endpoint", ClosedPortUrl()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "no function.yaml in")) << r.err;
  EXPECT_TRUE(Contains(r.err, "nimbus init"));
}

TEST(Deploy, RunsTheBuildInTheDirectoryAndPackagesWhatItMade) {
  TempDir tmp;
  WriteText(tmp.path() / "function.yaml",
            "name: built\nruntime: python3\nhandler: app.handler\nbuild: echo compiling; echo out > built.txt\n");
  WriteText(tmp.path() / "app.py", "def handler(e, c):\n  return 1\n");
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(201, kFunctionDoc); });
  CliRun r = RunCliCaptured({"deploy", tmp.path().string(), "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(Contains(r.err, "compiling\n"));
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "built.txt"));
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].target, "/v1/functions/built");
  EXPECT_TRUE(Contains(daemon.requests()[0].body, "built.txt"));
}

TEST(Deploy, AFailingBuildExitsWithItsStatusAndSendsNothing) {
  TempDir tmp;
  WriteText(tmp.path() / "function.yaml",
            "name: broken\nruntime: python3\nhandler: app.handler\nbuild: echo bad code >&2; exit 7\n");
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(201, kFunctionDoc); });
  CliRun r = RunCliCaptured({"deploy", tmp.path().string(), "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, 7);
  EXPECT_TRUE(Contains(r.err, "bad code\n"));
  EXPECT_TRUE(Contains(r.err, "build failed"));
  EXPECT_TRUE(Contains(r.err, "exited with status 7"));
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Deploy, ARefusedPackageExits1WithTheServersMessage) {
  TempDir tmp;
  const auto dir = tmp.path() / "hello";
  ASSERT_EQ(RunCliCaptured({"init", "hello", "--runtime", "python3", "--dir", dir.string()}).code, kExitOk);
  FakeDaemon daemon([](const RecordedRequest&) {
    return JsonAnswer(413, R"({"message": "package is 60 MB zipped; the limit is 50 MB", "errorType": "CodeStorageExceededException"})");
  });
  CliRun r = RunCliCaptured({"deploy", dir.string(), "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_EQ(r.err, "error: package is 60 MB zipped; the limit is 50 MB (CodeStorageExceededException)\n");
}

// --- ls, info, rm, alias --------------------------------------------------------------------

TEST(Ls, PrintsATableOfFunctions) {
  FakeDaemon daemon([](const RecordedRequest& req) {
    EXPECT_EQ(req.target, "/v1/functions");
    return JsonAnswer(200, std::string(R"({"functions": [)") + kFunctionDoc + R"(,
      {"name": "worker", "runtime": "provided", "version": "7", "memory": 256, "timeout": 30,
       "routes": [], "instances": {"busy": 3, "idle": 0}}]})");
  });
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "NAME     RUNTIME    VERSION   MEMORY   TIMEOUT   ROUTES              INSTANCES\n"
            "hello    python3    2         128 MB   3 s       GET /hello/{name}   0/1\n"
            "worker   provided   7         256 MB   30 s      -                   3/0\n");
}

// A function with an async route (answered 202 at once, run as a queued event).
const char* kRoutesDoc = R"({
  "name": "jobs", "runtime": "python3", "handler": "app.handler", "version": "1",
  "memory": 128, "timeout": 3, "keep_alive": 60, "concurrency": {"max": 10, "min_warm": 0},
  "code_sha256": "ef567890ab12cd34", "code_size": 2048,
  "routes": [{"method": "GET", "path": "/jobs"}, {"method": "POST", "path": "/jobs", "async": true},
             {"method": "PUT", "path": "/jobs/{id}", "async": false}],
  "instances": {"busy": 0, "idle": 0}
})";

TEST(Ls, MarksAsyncRoutesInTheRoutesColumn) {
  FakeDaemon daemon([](const RecordedRequest&) {
    return JsonAnswer(200, std::string(R"({"functions": [)") + kFunctionDoc + "," + kRoutesDoc + "]}");
  });
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "NAME    RUNTIME   VERSION   MEMORY   TIMEOUT   ROUTES                                        INSTANCES\n"
            "hello   python3   2         128 MB   3 s       GET /hello/{name}                             0/1\n"
            "jobs    python3   1         128 MB   3 s       GET /jobs,POST /jobs (async),PUT /jobs/{id}   0/0\n");
}

TEST(Ls, SaysHowToStartWhenNothingIsDeployed) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"functions": []})"); });
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(Contains(r.err, "no functions deployed"));
}

TEST(Ls, WithJsonPrintsTheServersDocument) {
  const std::string body = R"({"functions": []})";
  FakeDaemon daemon([&](const RecordedRequest&) { return JsonAnswer(200, body); });
  CliRun r = RunCliCaptured({"ls", "--json", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, body + "\n");
}

TEST(Info, DescribesVersionsAliasesRoutesAndUrls) {
  FakeDaemon daemon([](const RecordedRequest& req) {
    EXPECT_EQ(req.target, "/v1/functions/hello");
    return JsonAnswer(200, kFunctionDoc);
  });
  CliRun r = RunCliCaptured({"info", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  for (const std::string line : {"name:          hello\n",
                                 "runtime:       python3 (handler app.handler)\n",
                                 "versions:      1, 2\n", "aliases:       live -> 1\n",
                                 "instances:     0 busy, 1 idle\n",
                                 "code:          1.2 KB, sha256 ab12cd34ef567890\n",
                                 "modified:      2023-11-14T22:13:20.000Z\n",
                                 "routes:        GET /hello/{name}\n"}) {
    EXPECT_TRUE(Contains(r.out, line)) << line << "in:\n" << r.out;
  }
  EXPECT_TRUE(Contains(r.out, "urls:          " + daemon.url() + "/fn/hello\n"));
  EXPECT_TRUE(Contains(r.out, "               GET " + daemon.url() + "/hello/{name}\n"));
}

TEST(Info, MarksAsyncRoutesInTheRoutesAndUrlsLines) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kRoutesDoc); });
  CliRun r = RunCliCaptured({"info", "jobs", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string url = daemon.url();
  EXPECT_TRUE(Contains(r.out,
                       "routes:        GET /jobs\n"
                       "               POST /jobs (async)\n"
                       "               PUT /jobs/{id}\n"
                       "urls:          " + url + "/fn/jobs\n"
                       "               GET " + url + "/jobs\n"
                       "               POST " + url + "/jobs (async)\n"
                       "               PUT " + url + "/jobs/{id}\n"))
      << r.out;
}

TEST(Info, AnUnknownFunctionExits3) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(404, kNotFound); });
  CliRun r = RunCliCaptured({"info", "helo", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_TRUE(Contains(r.err, "does not exist"));
}

TEST(Ls, AddsANextFiringColumnWhenAFunctionHasASchedule) {
  FakeDaemon daemon([](const RecordedRequest&) {
    return JsonAnswer(200, R"({"functions": [
      {"name": "hello", "runtime": "python3", "version": "2", "memory": 128, "timeout": 3,
       "routes": [], "instances": {"busy": 0, "idle": 0}},
      {"name": "nightly", "runtime": "nodejs", "version": "1", "memory": 128, "timeout": 60,
       "routes": [], "instances": {"busy": 0, "idle": 0}, "next_firing": "2026-11-30T02:00:00.000Z"}]})");
  });
  CliRun r = RunCliCaptured({"ls", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "NAME      RUNTIME   VERSION   MEMORY   TIMEOUT   ROUTES   INSTANCES   NEXT FIRING\n"
            "hello     python3   2         128 MB   3 s       -        0/0         -\n"
            "nightly   nodejs    1         128 MB   60 s      -        0/0         2026-11-30T02:00:00.000Z\n");
}

std::string WithFields(std::string doc, const std::string& fields) {
  doc.insert(doc.rfind('}'), "," + fields);
  return doc;
}

TEST(Info, ShowsAsyncSettingsScheduleWithNextFiringAndEventCounts) {
  const std::string doc = WithFields(kFunctionDoc, R"json(
    "async": {"retries": 2, "max_event_age": 21600, "on_success": "", "on_failure": "failures"},
    "schedule": {"expression": "rate(5 minutes)", "timezone": "UTC", "missed": "once",
                 "next_firing": "2026-11-29T12:05:00.000Z"},
    "events": {"queued": 3, "retrying": 1, "in_flight": 2, "dead_letters": 4})json");
  FakeDaemon daemon([&](const RecordedRequest&) { return JsonAnswer(200, doc); });
  CliRun r = RunCliCaptured({"info", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string expected =
      "instances:     0 busy, 1 idle\n"
      "async:         retries 2, max event age 21600 s\n"
      "on_failure:    failures\n"
      "schedule:      rate(5 minutes), timezone UTC, missed firings: once\n"
      "               next firing 2026-11-29T12:05:00.000Z\n"
      "events:        queued 3, retrying 1, in flight 2, dead letters 4 (`nimbus events dlq hello`)\n"
      "code:          1.2 KB, sha256 ab12cd34ef567890\n";
  EXPECT_TRUE(Contains(r.out, expected)) << r.out;
  EXPECT_FALSE(Contains(r.out, "on_success:")) << r.out;
}

TEST(Info, SaysWhenAScheduleHasNoNextFiringAndLeavesOutWhatTheDocumentLacks) {
  const std::string doc = WithFields(kFunctionDoc, R"json(
    "schedule": {"expression": "cron(0 12 1 1 ? 2020)", "timezone": "Europe/Paris", "missed": "skip",
                 "next_firing": null},
    "events": {"queued": 0, "retrying": 0, "in_flight": 0, "dead_letters": 0})json");
  FakeDaemon daemon([&](const RecordedRequest&) { return JsonAnswer(200, doc); });
  CliRun r = RunCliCaptured({"info", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(Contains(r.out,
                       "schedule:      cron(0 12 1 1 ? 2020), timezone Europe/Paris, missed firings: skip\n"
                       "               no next firing: the expression names no future time\n"
                       "events:        queued 0, retrying 0, in flight 0, dead letters 0\n"))
      << r.out;
  EXPECT_FALSE(Contains(r.out, "async:")) << r.out;

  FakeDaemon plain([](const RecordedRequest&) { return JsonAnswer(200, kFunctionDoc); });
  CliRun p = RunCliCaptured({"info", "hello", "--endpoint", plain.url()});
  ASSERT_EQ(p.code, kExitOk) << p.err;
  for (const char* label : {"async:", "schedule:", "next firing", "events:"}) {
    EXPECT_FALSE(Contains(p.out, label)) << label << " in:\n" << p.out;
  }
}

TEST(Rm, DeletesTheFunction) {
  FakeDaemon daemon([](const RecordedRequest&) {
    HttpResponse r;
    r.status = 204;
    return r;
  });
  CliRun r = RunCliCaptured({"rm", "hello", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "removed hello\n");
  EXPECT_EQ(daemon.requests().at(0).method, "DELETE");
  EXPECT_EQ(daemon.requests().at(0).target, "/v1/functions/hello");
}

TEST(Rm, EscapesNamesSoTheyCannotReachOtherPaths) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(404, kNotFound); });
  CliRun r = RunCliCaptured({"rm", "../x", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(daemon.requests().at(0).target, "/v1/functions/..%2Fx");
}

TEST(Alias, PutsTheVersionAsJson) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"name": "live", "version": "3"})"); });
  CliRun r = RunCliCaptured({"alias", "hello", "live", "3", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  auto req = daemon.requests().at(0);
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/functions/hello/aliases/live");
  EXPECT_EQ(boost::json::parse(req.body), boost::json::parse(R"({"version": "3"})"));
  EXPECT_EQ(r.out, "hello:live -> version 3\n");
}

// --- logs -----------------------------------------------------------------------------------

std::string LogLines(const std::vector<std::tuple<int64_t, std::string, std::string>>& lines) {
  boost::json::array a;
  for (const auto& [t, id, text] : lines) {
    a.push_back({{"time_ms", t}, {"request_id", id}, {"stream", "stdout"}, {"text", text}});
  }
  return boost::json::serialize(boost::json::object{{"lines", a}});
}

TEST(Logs, PrintsTimeRequestIdAndTextAndPassesTheFilters) {
  FakeDaemon daemon([](const RecordedRequest&) {
    return JsonAnswer(200, LogLines({{1700000000000, "r1", "START RequestId: r1"},
                                     {1700000000005, "r1", "hello\n"},
                                     {1700000000009, "", "runtime started"}}));
  });
  CliRun r = RunCliCaptured({"logs", "hello", "--limit", "5", "--request-id", "r1", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(daemon.requests().at(0).target, "/v1/functions/hello/logs?limit=5&request_id=r1");
  EXPECT_EQ(r.out,
            "2023-11-14T22:13:20.000Z r1 START RequestId: r1\n"
            "2023-11-14T22:13:20.005Z r1 hello\n"
            "2023-11-14T22:13:20.009Z - runtime started\n");
}

TEST(Logs, RejectsANonNumericLimit) {
  EXPECT_EQ(RunCliCaptured({"logs", "hello", "--limit", "ten"}).code, kExitUsage);
  EXPECT_EQ(RunCliCaptured({"logs", "hello", "--limit", "0"}).code, kExitUsage);
}

TEST(Logs, FollowPrintsOnlyNewLinesFromOverlappingPolls) {
  std::atomic<int> poll{0};
  FakeDaemon daemon([&](const RecordedRequest&) {
    switch (poll++) {
      case 0:
        return JsonAnswer(200, LogLines({{1, "a", "one"}, {2, "a", "two"}}));
      case 1:  // same window plus a line at the same millisecond as the last one shown
        return JsonAnswer(200, LogLines({{1, "a", "one"}, {2, "a", "two"}, {2, "a", "two"}, {3, "b", "three"}}));
      default:  // the window slid: old lines fell off, one new line
        return JsonAnswer(200, LogLines({{3, "b", "three"}, {4, "b", "four"}}));
    }
  });
  int waits = 0;
  CliEnvironment env;
  env.wait_for_next_poll = [&] { return ++waits <= 2; };
  CliRun r = RunCliCaptured({"logs", "hello", "--follow", "--endpoint", daemon.url()}, env);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(poll.load(), 3);
  EXPECT_EQ(r.out,
            "1970-01-01T00:00:00.001Z a one\n"
            "1970-01-01T00:00:00.002Z a two\n"
            "1970-01-01T00:00:00.002Z a two\n"
            "1970-01-01T00:00:00.003Z b three\n"
            "1970-01-01T00:00:00.004Z b four\n");
}

TEST(Logs, FollowStopsWithExit3WhenTheFunctionIsDeleted) {
  std::atomic<int> poll{0};
  FakeDaemon daemon([&](const RecordedRequest&) {
    if (poll++ == 0) return JsonAnswer(200, LogLines({{1, "a", "one"}}));
    return JsonAnswer(404, kNotFound);
  });
  CliEnvironment env;
  env.wait_for_next_poll = [] { return true; };
  CliRun r = RunCliCaptured({"logs", "hello", "--follow", "--endpoint", daemon.url()}, env);
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.out, "1970-01-01T00:00:00.001Z a one\n");
}

// --- events ---------------------------------------------------------------------------------

const char* kEventsDoc = R"({"function": "hello", "queued": 1, "retrying": 1, "in_flight": 0, "dead_letters": 0,
  "events": [
    {"id": 12, "request_id": "r-12", "state": "retrying", "attempts": 1,
     "enqueued": "2026-11-29T12:00:00.123Z", "next_attempt": "2026-11-29T12:01:00.000Z",
     "last_error": "Sandbox.Timedout: Task timed out after 3.00 seconds", "source": "invoke"},
    {"id": 13, "request_id": "r-13", "state": "queued", "attempts": 0,
     "enqueued": "2026-11-29T12:00:01.000Z", "source": "schedule"}]})";

const char* kDeadLettersDoc = R"({"function": "hello", "total": 2, "dead_letters": [
    {"id": 7, "request_id": "r-7", "condition": "RetriesExhausted", "attempts": 3,
     "enqueued": "2026-11-29T11:00:00.000Z", "dead_at": "2026-11-29T11:03:00.000Z", "error": "Unhandled: boom",
     "payload": "{\"order\": 1}", "record": {"version": "1.0"}},
    {"id": 9, "request_id": "r-9", "condition": "EventAgeExceeded", "attempts": 0,
     "enqueued": "2026-11-29T05:00:00.000Z", "dead_at": "2026-11-29T11:00:00.000Z",
     "payload": "{}", "record": {"version": "1.0"}}]})";

TEST(Events, LsPrintsTheCountsThenOneRowPerEvent) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kEventsDoc); }, kToken);
  CliRun r = RunCliCaptured({"events", "ls", "hello", "--limit", "5", "--endpoint", daemon.url(), "--token", kToken});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto req = daemon.requests().at(0);
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/v1/functions/hello/events?limit=5");
  EXPECT_EQ(r.out,
            "queued 1, retrying 1, in flight 0, dead letters 0\n"
            "ID   REQUEST ID   STATE      ATTEMPTS   ENQUEUED                   NEXT ATTEMPT               LAST ERROR\n"
            "12   r-12         retrying   1          2026-11-29T12:00:00.123Z   2026-11-29T12:01:00.000Z   "
            "Sandbox.Timedout: Task timed out after 3.00 seconds\n"
            "13   r-13         queued     0          2026-11-29T12:00:01.000Z   -                          -\n");
  EXPECT_EQ(r.err, "");
}

TEST(Events, LsShortensLongErrorsToOneLineAndSaysWhatTheLimitLeftOut) {
  const std::string long_error = "Unhandled: Traceback (most recent call last):\n  File \"app.py\", line 3, in handler\n"
                                 "    raise ValueError('the order is not there')";
  boost::json::object doc = {{"function", "hello"}, {"queued", 5}, {"retrying", 0}, {"in_flight", 0},
                             {"dead_letters", 2}};
  doc["events"] = boost::json::array{{{"id", 1}, {"request_id", "r-1"}, {"state", "queued"}, {"attempts", 2},
                                      {"enqueued", "2026-11-29T12:00:00.000Z"}, {"last_error", long_error}}};
  FakeDaemon daemon([&](const RecordedRequest&) { return JsonAnswer(200, boost::json::serialize(doc)); });
  CliRun r = RunCliCaptured({"events", "ls", "hello", "--limit", "1", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(Contains(r.out, "   Unhandled: Traceback (most recent call last):   File \"app...\n")) << r.out;
  EXPECT_EQ(r.err,
            "showing 1 of 5 events; --limit N shows more (up to 10000)\n"
            "`nimbus events dlq hello` lists the dead letters\n");
}

TEST(Events, LsWithNothingWaitingPrintsOnlyTheCounts) {
  FakeDaemon daemon([](const RecordedRequest& req) {
    EXPECT_EQ(req.target, "/v1/functions/hello/events");
    return JsonAnswer(200, R"({"function": "hello", "queued": 0, "retrying": 0, "in_flight": 0,
                               "dead_letters": 0, "events": []})");
  });
  CliRun r = RunCliCaptured({"events", "ls", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "queued 0, retrying 0, in flight 0, dead letters 0\n");
  EXPECT_EQ(r.err, "");
}

TEST(Events, LsWithJsonPrintsTheDaemonsDocumentAsIs) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kEventsDoc); });
  CliRun r = RunCliCaptured({"--json", "events", "ls", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, std::string(kEventsDoc) + "\n");
}

TEST(Events, LsOfAnUnknownFunctionExits3WithTheDaemonsMessage) {
  FakeDaemon daemon([](const RecordedRequest&) {
    auto r = JsonAnswer(404, kNotFound);
    r.headers.emplace_back("x-amzn-ErrorType", "ResourceNotFoundException");
    return r;
  });
  CliRun r = RunCliCaptured({"events", "ls", "helo", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err,
            "error: function 'helo' does not exist; `nimbus ls` lists deployed functions "
            "(ResourceNotFoundException)\n");
  EXPECT_EQ(r.out, "");
}

TEST(Events, LsAndDlqRefuseALimitOutsideOneTo10000BeforeSendingAnything) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kEventsDoc); });
  for (const char* sub : {"ls", "dlq"}) {
    for (const char* limit : {"0", "10001", "ten", "-1", ""}) {
      CliRun r = RunCliCaptured({"events", sub, "hello", std::string("--limit=") + limit, "--endpoint", daemon.url()});
      EXPECT_EQ(r.code, kExitUsage) << sub << " " << limit;
      EXPECT_TRUE(Contains(r.err, "give a number from 1 to 10000")) << r.err;
      EXPECT_TRUE(Contains(r.err, std::string("usage: nimbus events ") + sub + " NAME [--limit N]")) << r.err;
    }
  }
  EXPECT_TRUE(daemon.requests().empty());
  FakeDaemon ok([](const RecordedRequest&) { return JsonAnswer(200, kEventsDoc); });
  EXPECT_EQ(RunCliCaptured({"events", "ls", "hello", "--limit", "10000", "--endpoint", ok.url()}).code, kExitOk);
  EXPECT_EQ(ok.requests().at(0).target, "/v1/functions/hello/events?limit=10000");
}

TEST(Events, DlqPrintsTheDeadLettersAndHowToReplayThem) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kDeadLettersDoc); });
  CliRun r = RunCliCaptured({"events", "dlq", "hello", "--limit", "2", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto req = daemon.requests().at(0);
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/v1/functions/hello/events/dlq?limit=2");
  EXPECT_EQ(r.out,
            "ID   REQUEST ID   CONDITION          ATTEMPTS   DEAD AT                    ERROR\n"
            "7    r-7          RetriesExhausted   3          2026-11-29T11:03:00.000Z   Unhandled: boom\n"
            "9    r-9          EventAgeExceeded   0          2026-11-29T11:00:00.000Z   -\n");
  EXPECT_EQ(r.err,
            "replay with `nimbus events replay hello --id 7` (several: --id 7,9) or `--all`; "
            "`nimbus events purge hello --dlq` deletes them\n");
}

TEST(Events, DlqSaysWhenThereAreNoneAndWhenTheLimitLeftSomeOut) {
  FakeDaemon empty([](const RecordedRequest&) {
    return JsonAnswer(200, R"({"function": "hello", "total": 0, "dead_letters": []})");
  });
  CliRun r = RunCliCaptured({"events", "dlq", "hello", "--endpoint", empty.url()});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "no dead letters for hello\n");

  std::string doc = kDeadLettersDoc;
  doc.replace(doc.find("\"total\": 2"), 10, "\"total\": 40");
  FakeDaemon more([&](const RecordedRequest&) { return JsonAnswer(200, doc); });
  CliRun m = RunCliCaptured({"events", "dlq", "hello", "--endpoint", more.url()});
  EXPECT_EQ(m.code, kExitOk) << m.err;
  EXPECT_TRUE(Contains(m.err, "showing 2 of 40 dead letters; --limit N shows more (up to 10000)\n")) << m.err;
}

TEST(Events, DlqWithJsonPrintsPayloadsAndRecordsAsTheDaemonSentThem) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, kDeadLettersDoc); });
  CliRun r = RunCliCaptured({"events", "dlq", "hello", "--json", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, std::string(kDeadLettersDoc) + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(Events, ReplayPostsTheCommaSeparatedIds) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"replayed": 2, "missing": []})"); });
  CliRun r = RunCliCaptured({"events", "replay", "hello", "--id", "7,9", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto req = daemon.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/functions/hello/events/replay");
  EXPECT_EQ(req.headers["content-type"], "application/json");
  EXPECT_EQ(boost::json::parse(req.body), boost::json::parse(R"({"ids": [7, 9]})"));
  EXPECT_EQ(r.out, "replayed 2\n");
  EXPECT_EQ(r.err, "");
}

TEST(Events, ReplayAllPostsAllTrue) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"replayed": 5, "missing": []})"); });
  CliRun r = RunCliCaptured({"events", "replay", "hello", "--all", "--endpoint", daemon.url()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(boost::json::parse(daemon.requests().at(0).body), boost::json::parse(R"({"all": true})"));
  EXPECT_EQ(r.out, "replayed 5\n");
}

TEST(Events, ReplayNamesTheIdsThatWereNotDeadLettersAndExits1) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"replayed": 1, "missing": [9, 11]})"); });
  CliRun r = RunCliCaptured({"events", "replay", "hello", "--id", "7,9,11", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_EQ(r.out, "replayed 1\n");
  EXPECT_EQ(r.err,
            "error: hello has no dead letter with ids 9, 11 (already replayed or purged?); "
            "`nimbus events dlq hello` lists the ones there are\n");

  FakeDaemon one([](const RecordedRequest&) { return JsonAnswer(200, R"({"replayed": 0, "missing": [9]})"); });
  CliRun j = RunCliCaptured({"events", "replay", "hello", "--id", "9", "--json", "--endpoint", one.url()});
  EXPECT_EQ(j.code, kExitFailed);
  EXPECT_EQ(j.out, "{\"replayed\": 0, \"missing\": [9]}\n");
  EXPECT_TRUE(Contains(j.err, "error: hello has no dead letter with id 9 (")) << j.err;
}

TEST(Events, ReplayNeedsExactlyOneOfIdAndAllAndWellFormedIds) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(200, R"({"replayed": 0, "missing": []})"); });
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const Case& c : {Case{{}, "error: say which dead letters: --id ID[,ID...] or --all\n"},
                        Case{{"--id", "7", "--all"}, "error: give either --id or --all, not both\n"},
                        Case{{"--id", "7,x"}, "error: bad --id '7,x'; give dead-letter ids from"},
                        Case{{"--id", "7,"}, "error: bad --id '7,'"},
                        Case{{"--id", "-3"}, "error: bad --id '-3'"},
                        Case{{"--id", "7", "--id", "9"}, "error: flag '--id' given twice"}}) {
    std::vector<std::string> args = {"events", "replay", "hello", "--endpoint", daemon.url()};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    CliRun r = RunCliCaptured(args);
    EXPECT_EQ(r.code, kExitUsage) << c.message;
    EXPECT_TRUE(Contains(r.err, c.message)) << r.err;
    EXPECT_TRUE(Contains(r.err, "usage: nimbus events replay NAME [--id ID[,ID...]] [--all]")) << r.err;
  }
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(Events, PurgeDeletesTheQueuedEventsOrWithDlqTheDeadLetters) {
  FakeDaemon daemon([](const RecordedRequest& req) {
    return JsonAnswer(200, req.target.ends_with("/dlq") ? R"({"purged": 4})" : R"({"purged": 6})");
  });
  CliRun q = RunCliCaptured({"events", "purge", "hello", "--endpoint", daemon.url()});
  ASSERT_EQ(q.code, kExitOk) << q.err;
  EXPECT_EQ(q.out, "purged 6 queued events\n");
  CliRun d = RunCliCaptured({"events", "purge", "hello", "--dlq", "--endpoint", daemon.url()});
  ASSERT_EQ(d.code, kExitOk) << d.err;
  EXPECT_EQ(d.out, "purged 4 dead letters\n");
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "DELETE");
  EXPECT_EQ(reqs[0].target, "/v1/functions/hello/events");
  EXPECT_EQ(reqs[1].method, "DELETE");
  EXPECT_EQ(reqs[1].target, "/v1/functions/hello/events/dlq");
}

TEST(Events, PurgeOfAnUnknownFunctionExits3) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(404, kNotFound); });
  CliRun r = RunCliCaptured({"events", "purge", "helo", "--dlq", "--endpoint", daemon.url()});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_TRUE(Contains(r.err, "does not exist")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Events, EscapesTheFunctionName) {
  FakeDaemon daemon([](const RecordedRequest&) { return JsonAnswer(404, kNotFound); });
  RunCliCaptured({"events", "ls", "../x", "--endpoint", daemon.url()});
  EXPECT_EQ(daemon.requests().at(0).target, "/v1/functions/..%2Fx/events");
}

TEST(Events, WithoutASubcommandIsAUsageErrorListingThem) {
  CliRun r = RunCliCaptured({"events"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "error: `nimbus events` needs a subcommand right after it: ls, dlq, replay or purge\n")) << r.err;
  EXPECT_TRUE(Contains(r.err, "  nimbus events purge NAME [--dlq]\n")) << r.err;
  CliRun flag_first = RunCliCaptured({"events", "--json", "ls", "hello"});
  EXPECT_EQ(flag_first.code, kExitUsage);
  EXPECT_TRUE(Contains(flag_first.err, "needs a subcommand")) << flag_first.err;
}

TEST(Events, AnUnknownSubcommandIsAUsageError) {
  CliRun r = RunCliCaptured({"events", "list", "hello"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "error: unknown subcommand 'list' for `nimbus events`; use ls, dlq, replay or purge\n"))
      << r.err;
}

TEST(Events, HelpListsTheSubcommandsAndEachHasItsOwn) {
  CliRun group = RunCliCaptured({"events", "--help"});
  EXPECT_EQ(group.code, kExitOk);
  for (const char* line : {"  nimbus events ls NAME [--limit N]\n", "  nimbus events dlq NAME [--limit N]\n",
                           "  nimbus events replay NAME [--id ID[,ID...]] [--all]\n",
                           "  nimbus events purge NAME [--dlq]\n"}) {
    EXPECT_TRUE(Contains(group.out, line)) << line << "in:\n" << group.out;
  }
  EXPECT_EQ(RunCliCaptured({"help", "events"}).out, group.out);

  CliRun sub = RunCliCaptured({"events", "replay", "--help"});
  EXPECT_EQ(sub.code, kExitOk);
  EXPECT_TRUE(Contains(sub.out, "usage: nimbus events replay NAME [--id ID[,ID...]] [--all]")) << sub.out;
  EXPECT_TRUE(Contains(sub.out, "Give exactly one of --id and --all.")) << sub.out;
  EXPECT_EQ(RunCliCaptured({"help", "events", "replay"}).out, sub.out);

  CliRun top = RunCliCaptured({"--help"});
  for (const char* word : {"events ls", "events dlq", "events replay", "events purge"}) {
    EXPECT_TRUE(Contains(top.out, std::string("  ") + word + " ")) << word;
  }
}

// --- init -----------------------------------------------------------------------------------

TEST(Init, CreatesTheDirectoryWithManifestAndHandler) {
  TempDir tmp;
  const auto dir = tmp.path() / "fn";
  CliRun r = RunCliCaptured({"init", "hello", "--runtime", "python3", "--dir", dir.string()});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(Contains(ReadText(dir / "function.yaml"), "name: hello\n"));
  EXPECT_TRUE(Contains(ReadText(dir / "app.py"), "def handler(event, context):"));
  EXPECT_TRUE(Contains(r.out, "nimbus deploy " + dir.string()));
}

TEST(Init, RefusesADirectoryThatIsNotEmpty) {
  TempDir tmp;
  WriteText(tmp.path() / "keep.txt", "mine");
  CliRun r = RunCliCaptured({"init", "hello", "--runtime", "nodejs", "--dir", tmp.path().string()});
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "already exists and is not empty"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "function.yaml"));
}

TEST(Init, RejectsABadNameOrRuntimeAsUsageErrors) {
  TempDir tmp;
  CliRun bad_name =
      RunCliCaptured({"init", "bad.name", "--runtime", "python3", "--dir", (tmp.path() / "a").string()});
  EXPECT_EQ(bad_name.code, kExitUsage);
  EXPECT_TRUE(Contains(bad_name.err, "function name 'bad.name' is not valid; use 1 to 64 letters, digits, '-' or '_'"))
      << bad_name.err;
  CliRun r = RunCliCaptured({"init", "ok", "--runtime", "ruby", "--dir", (tmp.path() / "b").string()});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(Contains(r.err, "python3, nodejs or cpp"));
  EXPECT_EQ(RunCliCaptured({"init", "ok"}).code, kExitUsage);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "a"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "b"));
}

TEST(Init, CppCopiesTheSdkHeaderFromTheShareDirectory) {
  TempDir share;
  WriteText(share.path() / "sdk/cpp/nimbus/lambda_runtime.hpp", "// the sdk\n");
  TempDir tmp;
  const auto dir = tmp.path() / "native";
  CliEnvironment env;
  env.share_dir = share.path().string();
  CliRun r = RunCliCaptured({"init", "native", "--runtime", "cpp", "--dir", dir.string()}, env);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(ReadText(dir / "nimbus/lambda_runtime.hpp"), "// the sdk\n");
  EXPECT_TRUE(Contains(ReadText(dir / "function.yaml"), "runtime: provided\n"));
  EXPECT_TRUE(Contains(ReadText(dir / "function.yaml"), "build: make"));
  EXPECT_TRUE(std::filesystem::exists(dir / "Makefile"));
  EXPECT_TRUE(std::filesystem::exists(dir / "main.cpp"));
}

TEST(Init, CppFindsTheSdkBesideTheExecutable) {
  TempDir root;
  WriteText(root.path() / "share/nimbus/sdk/cpp/nimbus/lambda_runtime.hpp", "// beside\n");
  CliEnvironment env;
  env.exe_path = root.path() / "nimbus";
  const auto dir = root.path() / "fn";
  ASSERT_EQ(RunCliCaptured({"init", "fn", "--runtime", "cpp", "--dir", dir.string()}, env).code, kExitOk);
  EXPECT_EQ(ReadText(dir / "nimbus/lambda_runtime.hpp"), "// beside\n");
}

TEST(Init, CppWithoutTheSdkSaysWhereItLookedAndCreatesNothing) {
  TempDir tmp;
  CliEnvironment env;
  env.share_dir = (tmp.path() / "nowhere").string();
  const auto dir = tmp.path() / "native";
  CliRun r = RunCliCaptured({"init", "native", "--runtime", "cpp", "--dir", dir.string()}, env);
  EXPECT_EQ(r.code, kExitFailed);
  EXPECT_TRUE(Contains(r.err, "NIMBUS_SHARE_DIR"));
  EXPECT_TRUE(Contains(r.err, (tmp.path() / "nowhere").string()));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace nimbus::cli
