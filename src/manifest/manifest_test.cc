// Specification of function.yaml as the parser enforces it: one small test per rule, each
// asserting where the message points (file:line:col) and the words that tell the user the fix.
#include "manifest/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace nimbus::manifest {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kFile = "hello/function.yaml";
// Three valid lines; a test appends its own from line 4 on.
constexpr std::string_view kBase = "name: hello\nruntime: python3\nhandler: app.handler\n";

Manifest ParseOk(std::string_view text) {
  Result<Manifest> r = Parse(text, kFile);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : Manifest{};
}

// The error message for `text`, failing the test when it parses.
std::string ErrorOf(std::string_view text) {
  Result<Manifest> r = Parse(text, kFile);
  EXPECT_FALSE(r.ok()) << "parsed although it should not:\n" << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

std::string ErrorWithBase(std::string_view rest) { return ErrorOf(std::string(kBase) + std::string(rest)); }

// ---- the whole format ----

// Verbatim from BRIEF section 3, including the unquoted {name} inside flow mappings.
constexpr std::string_view kBriefExample = R"(name: hello                 # [a-zA-Z0-9-_]{1,64}
runtime: python3            # python3 | nodejs | provided (an executable `bootstrap`) | more later
handler: app.handler        # python: module.function; nodejs: file.export; provided: passed as _HANDLER
memory: 128                 # MiB, enforced
timeout: 10                 # seconds, enforced
concurrency: {max: 50, min_warm: 0}
keep_alive: 60              # seconds an idle instance lives
environment: {GREETING: hi}
http:                       # routes on the gateway, API Gateway HTTP API style
  - {method: GET, path: /hello/{name}}
  - {method: ANY, path: /hooks/{proxy+}}
auth: none                  # none | key
rate_limit: {rps: 100, burst: 200, per: client}
schedule: rate(5 minutes)   # or cron(0 12 * * ? *)
)";

TEST(Manifest, TheBriefsExampleIsRefusedOnlyForTheKeyNotSupportedYet) {
  EXPECT_EQ(ErrorOf(kBriefExample),
            "hello/function.yaml:13:1: 'rate_limit' is not supported yet; remove it (rate limits "
            "arrive with the gateway)");
}

TEST(Manifest, TheBriefsExampleWithoutRateLimitParsesToExactlyTheExpectedStruct) {
  std::string text(kBriefExample);
  const size_t rate_limit = text.find("rate_limit:");
  text.erase(rate_limit, text.find('\n', rate_limit) + 1 - rate_limit);
  Manifest want;
  want.name = "hello";
  want.runtime = "python3";
  want.handler = "app.handler";
  want.memory_mb = 128;
  want.timeout_s = 10;
  want.concurrency = {50, 0};
  want.keep_alive_s = 60;
  want.environment = {{"GREETING", "hi"}};
  want.http = {{"GET", "/hello/{name}"}, {"ANY", "/hooks/{proxy+}"}};
  want.auth = Auth::kNone;
  want.schedule = Schedule{"rate(5 minutes)", "UTC", Schedule::Missed::kOnce};
  Manifest got = ParseOk(text);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.timeout_s, want.timeout_s);
  EXPECT_EQ(got.concurrency, want.concurrency);
  EXPECT_EQ(got.http, want.http);
  EXPECT_EQ(got.schedule, want.schedule);
  EXPECT_TRUE(got == want);
}

TEST(Manifest, TheExampleInTheManifestReferenceParses) {
  std::ifstream in(NIMBUS_MANIFEST_DOC);
  ASSERT_TRUE(in) << "cannot read " << NIMBUS_MANIFEST_DOC;
  std::stringstream all;
  all << in.rdbuf();
  std::string doc = all.str();
  size_t start = doc.find("```yaml\n", doc.find("## Example"));
  ASSERT_NE(start, std::string::npos);
  start += 8;
  std::string example = doc.substr(start, doc.find("```", start) - start);
  Manifest m = ParseOk(example);
  EXPECT_EQ(m.name, "hello");
  EXPECT_EQ(m.build, "make");
  EXPECT_EQ(m.http.size(), 3u);
  EXPECT_TRUE(m.http.at(2).async);
  EXPECT_EQ(m.schedule,
            (Schedule{"cron(0 9 * * ? *)", "Europe/Copenhagen", Schedule::Missed::kOnce}));
  EXPECT_EQ(m.async, (AsyncConfig{1, 3600, "", "dlq"}));
}

TEST(Manifest, BlockStyleAndQuotedPathsParseTheSameAsTheBriefsFlowStyle) {
  Manifest m = ParseOk(std::string(kBase) +
                       "http:\n"
                       "  - method: GET\n"
                       "    path: /hello/{name}\n"
                       "  - {method: ANY, path: \"/hooks/{proxy+}\"}\n");
  EXPECT_EQ(m.http, (std::vector<Route>{{"GET", "/hello/{name}"}, {"ANY", "/hooks/{proxy+}"}}));
}

TEST(Manifest, OmittedKeysTakeTheirDefaults) {
  Manifest m = ParseOk(kBase);
  EXPECT_EQ(m.memory_mb, 128);
  EXPECT_EQ(m.timeout_s, 3);
  EXPECT_EQ(m.concurrency, (Concurrency{10, 0}));
  EXPECT_EQ(m.keep_alive_s, 60);
  EXPECT_TRUE(m.environment.empty());
  EXPECT_TRUE(m.http.empty());
  EXPECT_EQ(m.auth, Auth::kNone);
  EXPECT_FALSE(m.rate_limit.has_value());
  EXPECT_FALSE(m.schedule.has_value());
  EXPECT_EQ(m.async.retries, 2);
  EXPECT_EQ(m.async.max_event_age_s, 21600);
  EXPECT_EQ(m.async.on_success, "");
  EXPECT_EQ(m.async.on_failure, "");
  EXPECT_EQ(m.network, Network::kEgress);
  EXPECT_EQ(m.ephemeral_storage_mb, 512);
  EXPECT_TRUE(m.filesystems.empty());
  EXPECT_EQ(m.build, "");
  EXPECT_EQ(m.description, "");
}

TEST(Manifest, EveryOptionalKeyIsRead) {
  Manifest m = ParseOk(std::string(kBase) +
                       "memory: 10240\ntimeout: 900\nkeep_alive: 86400\n"
                       "concurrency:\n  max: 1000\n  min_warm: 1000\n"
                       "auth: none\n"
                       "schedule: {expression: \"cron(0 9 * * ? *)\", timezone: Europe/Copenhagen, "
                       "missed: skip}\n"
                       "async: {retries: 0, max_event_age: 60, on_success: audit, on_failure: "
                       "retry-later}\n"
                       "network: none\n"
                       "ephemeral_storage: 10240\n"
                       "filesystems: [{host: /srv/shared, mount: /mnt/shared, read_only: true}]\n"
                       "build: make -j2\n"
                       "description: says hello\n");
  EXPECT_EQ(m.memory_mb, 10240);
  EXPECT_EQ(m.timeout_s, 900);
  EXPECT_EQ(m.keep_alive_s, 86400);
  EXPECT_EQ(m.concurrency, (Concurrency{1000, 1000}));
  EXPECT_EQ(m.auth, Auth::kNone);
  EXPECT_EQ(m.schedule,
            (Schedule{"cron(0 9 * * ? *)", "Europe/Copenhagen", Schedule::Missed::kSkip}));
  EXPECT_EQ(m.async, (AsyncConfig{0, 60, "audit", "retry-later"}));
  EXPECT_EQ(m.network, Network::kNone);
  EXPECT_EQ(m.ephemeral_storage_mb, 10240);
  EXPECT_EQ(m.filesystems, (std::vector<Filesystem>{{"/srv/shared", "/mnt/shared", true}}));
  EXPECT_EQ(m.build, "make -j2");
  EXPECT_EQ(m.description, "says hello");
}

// ---- file-level problems ----

TEST(Manifest, AnEmptyFileSaysWhatToWrite) {
  std::string e = ErrorOf("");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:1:1: the manifest is empty"));
  EXPECT_THAT(e, HasSubstr("name: hello"));
}

TEST(Manifest, AFileOfOnlyCommentsIsEmpty) {
  EXPECT_THAT(ErrorOf("# nothing here\n"), HasSubstr("the manifest is empty"));
}

TEST(Manifest, ATopLevelListIsRefused) {
  std::string e = ErrorOf("- name: hello\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:1:1: the top level must be a mapping"));
  EXPECT_THAT(e, HasSubstr("got a list"));
}

TEST(Manifest, ATopLevelScalarIsRefused) {
  EXPECT_THAT(ErrorOf("hello\n"), HasSubstr("top level must be a mapping of keys such as "
                                            "'name: hello', got 'hello'"));
}

TEST(Manifest, YamlSyntaxErrorsCarryLineAndColumn) {
  std::string e = ErrorWithBase("environment: {A: [1, 2}\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:4:"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
  EXPECT_THAT(e, HasSubstr("check the indentation, quotes and brackets"));
}

TEST(Manifest, ASyntaxErrorAfterAnUnquotedFlowPathPointsAtTheRealMistake) {
  // Line 5 is fine (the unquoted path form of the brief); line 6 lacks its closing brace.
  std::string e = ErrorWithBase("http:\n  - {method: GET, path: /a/{b}}\n  - {method: GET, path: /c/{d}\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:7:"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
}

TEST(Manifest, BadIndentationIsASyntaxError) {
  std::string e = ErrorOf("name: hello\n  runtime: python3\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:2:"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
}

TEST(Manifest, ASecondYamlDocumentIsRefused) {
  std::string e = ErrorOf(std::string(kBase) + "---\nname: other\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:5:1: a second YAML document"));
  EXPECT_THAT(e, HasSubstr("remove the extra '---'"));
}

TEST(Manifest, AnOversizedFileIsRefusedBeforeParsing) {
  std::string big(kMaxManifestBytes + 1, '#');
  EXPECT_THAT(ErrorOf(big), HasSubstr("the limit is 1 MiB"));
}

TEST(Manifest, SeveralProblemsAreReportedTogetherInDocumentOrder) {
  std::string e = ErrorOf("name: hello\nruntime: python3\nhandler: app.handler\nmemory: lots\n"
                          "timeout: 0\n");
  EXPECT_EQ(e,
            "hello/function.yaml:4:9: memory must be an integer between 64 and 10240 (MiB), got 'lots'\n"
            "hello/function.yaml:5:10: timeout must be an integer between 1 and 900 (seconds), got '0'");
}

// ---- keys ----

TEST(Manifest, AnUnknownKeySuggestsTheNearestOne) {
  EXPECT_EQ(ErrorWithBase("memroy: 256\n"),
            "hello/function.yaml:4:1: unknown key 'memroy'; did you mean 'memory'? (allowed: "
            "name, runtime, handler, memory, timeout, concurrency, keep_alive, environment, "
            "http, auth, rate_limit, schedule, async, network, ephemeral_storage, filesystems, "
            "build, description)");
}

TEST(Manifest, AnUnknownKeyWithNothingNearListsTheAllowedKeys) {
  std::string e = ErrorWithBase("colour: blue\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:4:1: unknown key 'colour'; remove it or use one of: name, runtime"));
}

TEST(Manifest, KeysFromOtherToolsPointToOurs) {
  EXPECT_THAT(ErrorWithBase("env: {A: b}\n"), HasSubstr("did you mean 'environment'?"));
  EXPECT_THAT(ErrorWithBase("keep-alive: 5\n"), HasSubstr("did you mean 'keep_alive'?"));
  EXPECT_THAT(ErrorWithBase("memory_size: 256\n"), HasSubstr("did you mean 'memory'?"));
}

TEST(Manifest, KeysAreCaseSensitive) {
  EXPECT_THAT(ErrorWithBase("Memory: 256\n"),
              HasSubstr("4:1: unknown key 'Memory'; did you mean 'memory'?"));
}

TEST(Manifest, ADuplicateKeyIsRefusedEvenThoughYamlCppWouldKeepOne) {
  std::string e = ErrorWithBase("memory: 256\nmemory: 512\n");
  EXPECT_EQ(e, "hello/function.yaml:5:1: duplicate key 'memory' (first set on line 4); keep only "
               "one of them");
}

TEST(Manifest, ANonScalarKeyIsRefused) {
  EXPECT_THAT(ErrorWithBase("? [a, b]\n: 1\n"), HasSubstr("a key must be a plain name, got a list"));
}

// ---- name ----

TEST(Manifest, NameIsRequired) {
  std::string e = ErrorOf("runtime: python3\nhandler: app.handler\n");
  EXPECT_EQ(e, "hello/function.yaml:1:1: missing required key 'name'; add e.g. 'name: hello'");
}

TEST(Manifest, NameAcceptsLettersDigitsDashAndUnderscore) {
  EXPECT_EQ(ParseOk("name: My-fn_2\nruntime: provided\n").name, "My-fn_2");
  EXPECT_EQ(ParseOk("name: " + std::string(64, 'a') + "\nruntime: provided\n").name.size(), 64u);
}

TEST(Manifest, NameWithASpaceIsRefused) {
  std::string e = ErrorOf("name: my fn\nruntime: provided\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:1:7: name 'my fn' is not valid"));
  EXPECT_THAT(e, HasSubstr("letters, digits, '-' or '_'"));
}

TEST(Manifest, NameLongerThan64IsRefused) {
  EXPECT_THAT(ErrorOf("name: " + std::string(65, 'a') + "\nruntime: provided\n"),
              HasSubstr("1 to 64"));
}

TEST(Manifest, NameWithoutValueSaysWhatToWrite) {
  EXPECT_EQ(ErrorOf("name:\nruntime: provided\n"),
            "hello/function.yaml:1:1: name has no value; write e.g. 'name: hello'");
}

TEST(Manifest, NameGivenAsAListIsAWrongType) {
  EXPECT_THAT(ErrorOf("name: [a]\nruntime: provided\n"),
              HasSubstr("1:7: name must be text, got a list; write e.g. 'name: hello'"));
}

// ---- runtime and handler ----

TEST(Manifest, RuntimeIsRequired) {
  EXPECT_THAT(ErrorOf("name: hello\nhandler: app.handler\n"),
              HasSubstr("1:1: missing required key 'runtime'; add e.g. 'runtime: python3'"));
}

TEST(Manifest, AnUnsupportedRuntimeListsTheSupportedOnes) {
  EXPECT_EQ(ErrorOf("name: hello\nruntime: ruby\nhandler: app.handler\n"),
            "hello/function.yaml:2:10: runtime 'ruby' is not supported; use python3, nodejs or "
            "provided");
}

TEST(Manifest, LambdaStyleRuntimeNamesSuggestOurs) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: python3.12\nhandler: app.handler\n"),
              HasSubstr("did you mean 'python3'?"));
  EXPECT_THAT(ErrorOf("name: hello\nruntime: nodejs20.x\nhandler: index.handler\n"),
              HasSubstr("did you mean 'nodejs'?"));
  EXPECT_THAT(ErrorOf("name: hello\nruntime: provided.al2\n"),
              HasSubstr("did you mean 'provided'?"));
}

TEST(Manifest, HandlerIsRequiredForPython) {
  EXPECT_EQ(ErrorOf("name: hello\nruntime: python3\n"),
            "hello/function.yaml:1:1: missing required key 'handler'; add e.g. 'handler: "
            "app.handler'");
}

TEST(Manifest, HandlerIsRequiredForNode) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: nodejs\n"),
              HasSubstr("missing required key 'handler'; add e.g. 'handler: index.handler'"));
}

TEST(Manifest, HandlerDefaultsToBootstrapForProvided) {
  EXPECT_EQ(ParseOk("name: hello\nruntime: provided\n").handler, "bootstrap");
}

TEST(Manifest, HandlerForProvidedIsAnyNonEmptyText) {
  EXPECT_EQ(ParseOk("name: hello\nruntime: provided\nhandler: my handler/with.stuff\n").handler,
            "my handler/with.stuff");
}

TEST(Manifest, AnEmptyHandlerIsRefused) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: provided\nhandler: ''\n"),
              HasSubstr("3:10: handler is empty"));
}

TEST(Manifest, PythonHandlersMayUseDottedOrSlashedModulePaths) {
  for (const char* h : {"app.handler", "pkg.mod.fn", "pkg/mod.fn", "_private.main2"}) {
    EXPECT_EQ(ParseOk(std::string("name: a\nruntime: python3\nhandler: ") + h + "\n").handler, h);
  }
}

TEST(Manifest, APythonHandlerWithoutAFunctionIsRefused) {
  std::string e = ErrorOf("name: hello\nruntime: python3\nhandler: app\n");
  EXPECT_THAT(e, StartsWith("hello/function.yaml:3:10: handler 'app' must be module.function for "
                            "python3, e.g. 'app.handler'"));
}

TEST(Manifest, APythonHandlerWithAHyphenatedModuleIsRefused) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: python3\nhandler: my-app.handler\n"),
              HasSubstr("must be module.function"));
}

TEST(Manifest, NodeHandlersAreFileDotExport) {
  for (const char* h : {"index.handler", "src/app.main", "my-file.handler", "index.a.b"}) {
    EXPECT_EQ(ParseOk(std::string("name: a\nruntime: nodejs\nhandler: ") + h + "\n").handler, h);
  }
}

TEST(Manifest, ANodeHandlerWithoutAnExportIsRefused) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: nodejs\nhandler: index\n"),
              HasSubstr("3:10: handler 'index' must be file.export for nodejs, e.g. 'index.handler'"));
}

TEST(Manifest, ANodeHandlerThatClimbsOutOfThePackageIsRefused) {
  EXPECT_THAT(ErrorOf("name: hello\nruntime: nodejs\nhandler: ../x/index.handler\n"),
              HasSubstr("must be file.export"));
}

TEST(Manifest, TheHandlerIsCheckedAgainstARuntimeWrittenAfterIt) {
  EXPECT_THAT(ErrorOf("name: hello\nhandler: app\nruntime: python3\n"),
              HasSubstr("2:10: handler 'app' must be module.function"));
}

TEST(Manifest, AHandlerOver128CharactersIsRefused) {
  EXPECT_THAT(ErrorOf("name: a\nruntime: provided\nhandler: " + std::string(129, 'h') + "\n"),
              HasSubstr("the limit is 128"));
}

// ---- numbers ----

TEST(Manifest, MemoryThatIsNotANumberShowsTheRange) {
  EXPECT_EQ(ErrorWithBase("memory: lots\n"),
            "hello/function.yaml:4:9: memory must be an integer between 64 and 10240 (MiB), got "
            "'lots'");
}

TEST(Manifest, MemoryBoundsAreInclusive) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "memory: 64\n").memory_mb, 64);
  EXPECT_THAT(ErrorWithBase("memory: 63\n"), HasSubstr("got '63'"));
  EXPECT_THAT(ErrorWithBase("memory: 10241\n"), HasSubstr("got '10241'"));
}

TEST(Manifest, MemoryMustBeWhole) {
  EXPECT_THAT(ErrorWithBase("memory: 128.5\n"), HasSubstr("must be an integer"));
  EXPECT_THAT(ErrorWithBase("memory: 128MB\n"), HasSubstr("got '128MB'"));
}

TEST(Manifest, AHugeNumberIsOutOfRangeNotAnOverflow) {
  EXPECT_THAT(ErrorWithBase("memory: 99999999999999999999999\n"), HasSubstr("must be an integer between 64"));
}

TEST(Manifest, TimeoutIsOneTo900Seconds) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "timeout: 1\n").timeout_s, 1);
  EXPECT_EQ(ErrorWithBase("timeout: 901\n"),
            "hello/function.yaml:4:10: timeout must be an integer between 1 and 900 (seconds), "
            "got '901'");
}

TEST(Manifest, KeepAliveIsOneSecondToOneDay) {
  EXPECT_THAT(ErrorWithBase("keep_alive: 0\n"),
              HasSubstr("4:13: keep_alive must be an integer between 1 and 86400 (seconds)"));
  EXPECT_THAT(ErrorWithBase("keep_alive: 86401\n"), HasSubstr("got '86401'"));
}

TEST(Manifest, ANumberWithNoValueIsReportedAtTheKey) {
  EXPECT_EQ(ErrorWithBase("timeout:\n"),
            "hello/function.yaml:4:1: timeout must be an integer between 1 and 900 (seconds), got "
            "nothing");
}

TEST(Manifest, ANumberGivenAsAListIsAWrongType) {
  EXPECT_THAT(ErrorWithBase("memory: [128]\n"), HasSubstr("4:9: memory must be an integer between 64 and 10240 (MiB), got a list"));
}

// ---- concurrency ----

TEST(Manifest, ConcurrencyMaxIsOneTo1000) {
  EXPECT_THAT(ErrorWithBase("concurrency: {max: 0}\n"),
              HasSubstr("4:20: concurrency.max must be an integer between 1 and 1000"));
  EXPECT_THAT(ErrorWithBase("concurrency: {max: 1001}\n"), HasSubstr("got '1001'"));
}

TEST(Manifest, ConcurrencyMinWarmMayNotExceedMax) {
  EXPECT_EQ(ErrorWithBase("concurrency: {max: 5, min_warm: 6}\n"),
            "hello/function.yaml:4:33: concurrency.min_warm (6) must not exceed concurrency.max "
            "(5); lower min_warm or raise max");
}

TEST(Manifest, ConcurrencyMinWarmIsComparedWithTheDefaultMax) {
  EXPECT_THAT(ErrorWithBase("concurrency: {min_warm: 11}\n"), HasSubstr("must not exceed concurrency.max (10)"));
  EXPECT_EQ(ParseOk(std::string(kBase) + "concurrency: {min_warm: 2}\n").concurrency,
            (Concurrency{10, 2}));
}

TEST(Manifest, ConcurrencyMinWarmIsNotNegative) {
  EXPECT_THAT(ErrorWithBase("concurrency: {min_warm: -1}\n"),
              HasSubstr("concurrency.min_warm must be an integer between 0"));
}

TEST(Manifest, AnUnknownKeyInConcurrencyIsRefused) {
  EXPECT_THAT(ErrorWithBase("concurrency: {max: 5, minwarm: 1}\n"),
              HasSubstr("4:23: unknown key 'concurrency.minwarm'; did you mean 'min_warm'? (allowed: max, min_warm)"));
}

TEST(Manifest, ConcurrencyGivenAsANumberSaysToWriteAMapping) {
  EXPECT_EQ(ErrorWithBase("concurrency: 50\n"),
            "hello/function.yaml:4:14: concurrency must be a mapping, got '50'; write e.g. "
            "'concurrency: {max: 10, min_warm: 0}'");
}

// ---- environment ----

TEST(Manifest, EnvironmentNumbersAndBooleansBecomeTheirText) {
  Manifest m = ParseOk(std::string(kBase) +
                       "environment:\n  PORT: 8080\n  DEBUG: true\n  RATIO: 0.5\n  EMPTY: \"\"\n");
  EXPECT_EQ(m.environment, (std::map<std::string, std::string>{
                               {"PORT", "8080"}, {"DEBUG", "true"}, {"RATIO", "0.5"}, {"EMPTY", ""}}));
}

TEST(Manifest, AnEnvironmentWithNoEntriesIsEmpty) {
  EXPECT_TRUE(ParseOk(std::string(kBase) + "environment:\n  # none yet\n").environment.empty());
}

TEST(Manifest, AnEnvironmentNameWithADashIsRefused) {
  EXPECT_THAT(ErrorWithBase("environment:\n  MY-VAR: x\n"),
              HasSubstr("5:3: environment variable name 'MY-VAR' is not valid; use letters, digits and '_'"));
}

TEST(Manifest, AnEnvironmentNameStartingWithADigitIsRefused) {
  EXPECT_THAT(ErrorWithBase("environment: {1X: y}\n"), HasSubstr("name '1X' is not valid"));
}

TEST(Manifest, ReservedEnvironmentNamesAreRefused) {
  for (const char* name : {"AWS_REGION", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_ANYTHING",
                           "LAMBDA_TASK_ROOT", "AWS_ACCESS_KEY_ID", "_X_AMZN_TRACE_ID", "NIMBUS_PRIMED",
                           "NIMBUS_RUNTIME_FD", "NIMBUS_ANYTHING"}) {
    EXPECT_THAT(ErrorWithBase(std::string("environment: {") + name + ": x}\n"),
                HasSubstr(std::string("environment variable '") + name + "' is reserved"))
        << name;
  }
}

TEST(Manifest, AnEnvironmentValueWithANulOrInvalidUtf8IsRefused) {
  EXPECT_THAT(ErrorWithBase("environment: {A: \"x\\0AWS_LAMBDA_FUNCTION_NAME=spoofed\"}\n"),
              HasSubstr("environment variable 'A' contains a NUL character"));
  EXPECT_THAT(ErrorWithBase("environment: {RAW: \"a\xff\xfe" "b\"}\n"),
              HasSubstr("environment variable 'RAW' is not valid UTF-8 text"));
  EXPECT_EQ(ParseOk(std::string(kBase) + "environment: {GREETING: \"gr\u00fc\u00df dich \\t\"}\n")
                .environment.at("GREETING"),
            "gr\xc3\xbc\xc3\x9f dich \t");
}

TEST(Manifest, AwsNamesThatLambdaLeavesFreeAreAllowed) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "environment: {AWS_XRAY_CONTEXT_MISSING: LOG_ERROR, TZ: UTC}\n")
                .environment.size(),
            2u);
}

TEST(Manifest, AnEnvironmentValueThatIsAListIsRefused) {
  EXPECT_THAT(ErrorWithBase("environment:\n  LIST: [1, 2]\n"),
              HasSubstr("5:9: environment variable 'LIST' must be text, a number or a boolean, got a list"));
}

TEST(Manifest, AnEnvironmentValueThatIsMissingSaysHowToWriteAnEmptyOne) {
  EXPECT_THAT(ErrorWithBase("environment:\n  X:\n"),
              HasSubstr("5:3: environment variable 'X' has no value; write X: \"\""));
}

TEST(Manifest, ADuplicateEnvironmentVariableIsRefused) {
  EXPECT_THAT(ErrorWithBase("environment:\n  A: 1\n  A: 2\n"),
              HasSubstr("6:3: duplicate environment variable 'A' (first set on line 5)"));
}

TEST(Manifest, EnvironmentUpTo4KBIsAccepted) {
  // Name "A" (1 byte) + 4095 bytes of value = 4096.
  EXPECT_EQ(ParseOk(std::string(kBase) + "environment: {A: " + std::string(4095, 'v') + "}\n")
                .environment.at("A").size(),
            4095u);
}

TEST(Manifest, EnvironmentOver4KBIsRefused) {
  EXPECT_THAT(ErrorWithBase("environment: {A: " + std::string(4096, 'v') + "}\n"),
              HasSubstr("4:14: environment is 4097 bytes (names plus values); the limit is 4096"));
}

TEST(Manifest, EnvironmentGivenAsAListSaysToWriteAMapping) {
  EXPECT_THAT(ErrorWithBase("environment: [A=1]\n"),
              HasSubstr("4:14: environment must be a mapping, got a list; write e.g. 'environment: {GREETING: hi}'"));
}

// ---- http ----

TEST(Manifest, RouteMethodsAreStoredUpperCase) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "http: [{method: post, path: /a}]\n").http[0].method, "POST");
}

TEST(Manifest, AnUnsupportedMethodListsTheSupportedOnes) {
  EXPECT_EQ(ErrorWithBase("http:\n  - {method: FETCH, path: /a}\n"),
            "hello/function.yaml:5:14: method 'FETCH' is not supported; use one of GET, POST, "
            "PUT, PATCH, DELETE, HEAD, OPTIONS, ANY (ANY matches every method)");
}

TEST(Manifest, ARouteNeedsAMethodAndAPath) {
  EXPECT_THAT(ErrorWithBase("http:\n  - {path: /a}\n"), HasSubstr("5:5: route is missing 'method'"));
  EXPECT_THAT(ErrorWithBase("http:\n  - {method: GET}\n"), HasSubstr("5:5: route is missing 'path'"));
}

TEST(Manifest, ARoutePathMustStartWithASlash) {
  EXPECT_EQ(ErrorWithBase("http:\n  - {method: GET, path: hello}\n"),
            "hello/function.yaml:5:25: path 'hello' must start with '/', e.g. '/hello'");
}

TEST(Manifest, ARoutePathUnderAReservedPrefixIsRefused) {
  for (const char* p : {"/fn/x", "/v1/things", "/2015-03-31/functions", "/metrics"}) {
    EXPECT_THAT(ErrorWithBase(std::string("http: [{method: GET, path: ") + p + "}]\n"),
                HasSubstr("which nimbus serves itself"))
        << p;
  }
}

TEST(Manifest, ARoutePathErrorPointsAtTheUnquotedFlowPathAsWritten) {
  // The flow-style path is repaired into quotes internally; the column must still be the one
  // the user sees in the file.
  EXPECT_THAT(ErrorWithBase("http:\n  - {method: GET, path: /a/{bad-name}}\n"),
              HasSubstr("5:25: path '/a/{bad-name}' parameter '{bad-name}' has a bad name"));
}

TEST(Manifest, AnErrorAfterARepairedPathOnTheSameLineKeepsItsColumn) {
  // "  - {path: /a/{x}, method: FETCH}" : FETCH starts at column 28 as written.
  EXPECT_THAT(ErrorWithBase("http:\n  - {path: /a/{x}, method: FETCH}\n"),
              HasSubstr("5:28: method 'FETCH' is not supported"));
}

TEST(Manifest, AGreedyParameterOnlyAsTheLastSegment) {
  EXPECT_THAT(ErrorWithBase("http:\n  - method: GET\n    path: /a/{proxy+}/b\n"),
              HasSubstr("6:11: path '/a/{proxy+}/b' greedy parameter '{proxy+}' must be the last segment"));
}

TEST(Manifest, TheSameRouteTwiceIsRefused) {
  EXPECT_EQ(ErrorWithBase("http:\n  - {method: GET, path: /a}\n  - {method: GET, path: /a}\n"),
            "hello/function.yaml:6:5: route GET /a is listed twice (first on line 5); remove one "
            "of them");
}

TEST(Manifest, RoutesThatDifferOnlyInParameterNamesAreDuplicates) {
  EXPECT_THAT(
      ErrorWithBase("http:\n  - {method: GET, path: /a/{x}}\n  - {method: GET, path: /a/{y}}\n"),
      HasSubstr("6:5: route GET /a/{y} matches the same requests as GET /a/{x} (line 5)"));
}

TEST(Manifest, RoutesThatDifferOnlyInHowALiteralIsEscapedAreDuplicates) {
  // The router compares request paths with literals after percent-decoding both.
  EXPECT_THAT(
      ErrorWithBase("http:\n  - {method: GET, path: /h%65llo}\n  - {method: GET, path: /hello}\n"),
      HasSubstr("6:5: route GET /hello matches the same requests as GET /h%65llo (line 5)"));
}

TEST(Manifest, ARouteNamesAtMost16Parameters) {
  std::string path;
  for (int i = 0; i <= 16; ++i) path += "/{p" + std::to_string(i) + "}";
  EXPECT_THAT(ErrorWithBase("http:\n  - method: GET\n    path: " + path + "\n"),
              HasSubstr("6:11: path '/{p0}/{p1}/"));
  EXPECT_THAT(ErrorWithBase("http:\n  - method: GET\n    path: " + path + "\n"),
              HasSubstr("names 17 parameters; the limit is 16"));
}

TEST(Manifest, TheSamePathWithDifferentMethodsIsFine) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "http: [{method: GET, path: /a}, {method: ANY, path: /a}]\n")
                .http.size(),
            2u);
}

TEST(Manifest, ARouteIsSynchronousUnlessMarkedAsync) {
  Manifest m = ParseOk(std::string(kBase) +
                       "http:\n"
                       "  - {method: GET, path: /a}\n"
                       "  - {method: POST, path: /jobs, async: true}\n"
                       "  - method: POST\n"
                       "    path: /b/{id}\n"
                       "    async: false\n");
  EXPECT_EQ(m.http, (std::vector<Route>{{"GET", "/a", false},
                                        {"POST", "/jobs", true},
                                        {"POST", "/b/{id}", false}}));
}

TEST(Manifest, ARouteAsyncIsTrueOrFalse) {
  EXPECT_EQ(ErrorWithBase("http:\n  - {method: POST, path: /jobs, async: yes}\n"),
            "hello/function.yaml:5:40: http.async must be true or false, got 'yes'");
  EXPECT_EQ(ErrorWithBase("http:\n  - method: POST\n    path: /jobs\n    async:\n"),
            "hello/function.yaml:7:5: http.async must be true or false, got nothing; write e.g. "
            "'async: true'");
}

TEST(Manifest, ARouteWithABadAsyncIsLeftOutAndTheRestIsStillChecked) {
  // The first route is left out, so the second is not reported as a duplicate of it.
  EXPECT_EQ(ErrorWithBase("http:\n  - {method: GET, path: /a, async: 1}\n"
                          "  - {method: GET, path: /a, asynch: true}\n"),
            "hello/function.yaml:5:36: http.async must be true or false, got '1'\n"
            "hello/function.yaml:6:29: unknown key 'http.asynch'; did you mean 'async'? "
            "(allowed: method, path, async)");
}

TEST(Manifest, AnUnknownKeyInARouteIsRefused) {
  EXPECT_THAT(ErrorWithBase("http:\n  - {method: GET, path: /a, pth: /b}\n"),
              HasSubstr("5:29: unknown key 'http.pth'; did you mean 'path'? (allowed: method, path, "
                        "async)"));
}

TEST(Manifest, HttpGivenAsAMappingSaysToWriteAList) {
  EXPECT_THAT(ErrorWithBase("http: {method: GET, path: /a}\n"),
              HasSubstr("4:7: http must be a list of routes, got a mapping; write e.g. 'http: [{method: GET, path: /hello}]'"));
}

TEST(Manifest, ARouteGivenAsTextSaysToWriteAMapping) {
  EXPECT_THAT(ErrorWithBase("http:\n  - GET /a\n"),
              HasSubstr("5:5: a route must be a mapping with method and path, got 'GET /a'"));
}

// ---- auth: `none` works; `key` is validated, then refused as not supported yet ----

TEST(Manifest, AuthNoneIsAccepted) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "auth: none\n").auth, Auth::kNone);
}

TEST(Manifest, AuthKeyIsRefusedAsNotSupportedYet) {
  EXPECT_EQ(ErrorWithBase("auth: key\n"),
            "hello/function.yaml:4:7: 'auth: key' is not supported yet; remove it or write "
            "'auth: none' (API keys arrive with the gateway)");
}

TEST(Manifest, AnUnknownAuthModeSaysToUseNone) {
  EXPECT_EQ(ErrorWithBase("auth: token\n"),
            "hello/function.yaml:4:7: auth 'token' is not supported; use none (public); key "
            "(callers send an API key) is not supported yet");
}

// ---- rate_limit: validated, then refused as not supported yet ----

TEST(Manifest, AValidRateLimitIsRefusedAsNotSupportedYet) {
  EXPECT_EQ(ErrorWithBase("rate_limit: {rps: 100, burst: 200, per: client}\n"),
            "hello/function.yaml:4:1: 'rate_limit' is not supported yet; remove it (rate limits "
            "arrive with the gateway)");
  EXPECT_EQ(ErrorWithBase("rate_limit:\n  rps: 0.5\n"),
            "hello/function.yaml:4:1: 'rate_limit' is not supported yet; remove it (rate limits "
            "arrive with the gateway)");
}

TEST(Manifest, AMistypedRateLimitGetsItsPreciseErrorAndNotTheRefusal) {
  std::string e = ErrorWithBase("rate_limit: {rps: lots}\n");
  EXPECT_EQ(e, "hello/function.yaml:4:19: rate_limit.rps must be a number greater than 0 "
               "(requests per second), got 'lots'");
}

TEST(Manifest, RateLimitRpsMustBePositive) {
  EXPECT_EQ(ErrorWithBase("rate_limit: {rps: 0}\n"),
            "hello/function.yaml:4:19: rate_limit.rps must be a number greater than 0 (requests "
            "per second), got '0'");
  EXPECT_THAT(ErrorWithBase("rate_limit: {rps: .inf}\n"), HasSubstr("got '.inf'"));
  EXPECT_THAT(ErrorWithBase("rate_limit: {rps: fast}\n"), HasSubstr("got 'fast'"));
}

TEST(Manifest, RateLimitRpsIsRequired) {
  EXPECT_THAT(ErrorWithBase("rate_limit: {burst: 5}\n"),
              HasSubstr("4:13: rate_limit is missing 'rps'; add e.g. 'rps: 100'"));
}

TEST(Manifest, RateLimitBurstIsAtLeastOne) {
  EXPECT_THAT(ErrorWithBase("rate_limit: {rps: 10, burst: 0.5}\n"),
              HasSubstr("4:30: rate_limit.burst must be a number of at least 1 (requests), got '0.5'"));
}

TEST(Manifest, RateLimitPerIsClientOrFunction) {
  EXPECT_THAT(ErrorWithBase("rate_limit: {rps: 10, per: ip}\n"),
              HasSubstr("4:28: rate_limit.per 'ip' is not supported; use client"));
}

TEST(Manifest, AnUnknownKeyInRateLimitIsRefused) {
  EXPECT_THAT(ErrorWithBase("rate_limit: {rps: 10, brust: 20}\n"),
              HasSubstr("4:23: unknown key 'rate_limit.brust'; did you mean 'burst'?"));
}

// ---- schedule ----

TEST(Manifest, AScheduleWrittenAsAnExpressionRunsInUtcAndCatchesUpOnce) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "schedule: rate(5 minutes)\n").schedule,
            (Schedule{"rate(5 minutes)", "UTC", Schedule::Missed::kOnce}));
  EXPECT_EQ(ParseOk(std::string(kBase) + "schedule: cron(0/15 9-17 ? * MON-FRI *)\n").schedule,
            (Schedule{"cron(0/15 9-17 ? * MON-FRI *)", "UTC", Schedule::Missed::kOnce}));
}

TEST(Manifest, AScheduleMappingReadsExpressionTimezoneAndMissed) {
  EXPECT_EQ(ParseOk(std::string(kBase) +
                    "schedule: {expression: \"cron(0 9 * * ? *)\", timezone: Europe/Copenhagen, "
                    "missed: skip}\n")
                .schedule,
            (Schedule{"cron(0 9 * * ? *)", "Europe/Copenhagen", Schedule::Missed::kSkip}));
  EXPECT_EQ(ParseOk(std::string(kBase) +
                    "schedule:\n  expression: cron(30 2 * * ? *)\n  missed: once\n"
                    "  timezone: America/New_York\n")
                .schedule,
            (Schedule{"cron(30 2 * * ? *)", "America/New_York", Schedule::Missed::kOnce}));
}

TEST(Manifest, AScheduleMappingDefaultsToUtcAndCatchingUpOnce) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "schedule:\n  expression: rate(1 day)\n").schedule,
            (Schedule{"rate(1 day)", "UTC", Schedule::Missed::kOnce}));
}

// yaml-cpp reads " ? " inside { } as YAML syntax, so docs/manifest.md says to quote a cron
// expression in flow style. Block style needs no quotes.
TEST(Manifest, ACronWithAQuestionMarkMustBeQuotedInsideBraces) {
  EXPECT_THAT(ErrorWithBase("schedule: {expression: cron(0 9 * * ? *), timezone: UTC}\n"),
              StartsWith("hello/function.yaml:4:37: YAML syntax error"));
  EXPECT_EQ(ParseOk(std::string(kBase) + "schedule: {expression: 'cron(0 9 * * ? *)'}\n")
                .schedule->expression,
            "cron(0 9 * * ? *)");
  EXPECT_EQ(ParseOk(std::string(kBase) + "schedule:\n  expression: cron(0 9 * * ? *)\n")
                .schedule->expression,
            "cron(0 9 * * ? *)");
}

TEST(Manifest, TheTextFormAndTheMappingWithDefaultsParseToEqualManifests) {
  Manifest text = ParseOk(std::string(kBase) + "schedule: rate(5 minutes)\n");
  Manifest map = ParseOk(std::string(kBase) +
                         "schedule: {expression: rate(5 minutes), timezone: UTC, missed: once}\n");
  EXPECT_TRUE(text == map);
  Manifest skip = ParseOk(std::string(kBase) +
                          "schedule: {expression: rate(5 minutes), missed: skip}\n");
  EXPECT_FALSE(text == skip);
  Manifest copenhagen = ParseOk(std::string(kBase) +
                                "schedule: {expression: rate(5 minutes), timezone: "
                                "Europe/Copenhagen}\n");
  EXPECT_FALSE(text == copenhagen);
}

TEST(Manifest, ATimezoneWithARateIsAllowed) {
  EXPECT_EQ(ParseOk(std::string(kBase) +
                    "schedule: {expression: rate(1 hour), timezone: Asia/Tokyo}\n")
                .schedule->timezone,
            "Asia/Tokyo");
}

TEST(Manifest, TimezonesOfTheIanaShapeAreAcceptedWithoutLookingThemUp) {
  for (const std::string& tz : std::vector<std::string>{
           "UTC", "Europe/Copenhagen", "America/Argentina/Buenos_Aires", "Etc/GMT+1", "Etc/GMT-14",
        "America/Port-au-Prince", "Mars/Olympus_Mons", std::string(64, 'Z')}) {
    Manifest m = ParseOk(std::string(kBase) + "schedule: {expression: rate(1 hour), timezone: " +
                         tz + "}\n");
    ASSERT_TRUE(m.schedule.has_value()) << tz;
    EXPECT_EQ(m.schedule->timezone, tz);
  }
}

TEST(Manifest, ATimezoneThatIsNotAnIanaNameIsRefusedAtItsValue) {
  // "schedule:\n  expression: rate(1 hour)\n  timezone: X": X starts at line 6, column 13.
  const std::string rule =
      " is not an IANA time zone name; write e.g. 'Europe/Copenhagen', 'America/New_York' or "
      "'UTC' (letters, digits, '_', '+' and '-', with '/' between parts)";
  for (const std::string& tz : std::vector<std::string>{
           "Europe/../etc", "/etc/localtime", "Europe/", "Europe.Copenhagen", "CET;rm",
           "Europe Paris", "''"}) {
    const std::string shown = tz == "''" ? "" : tz;
    EXPECT_EQ(ErrorWithBase("schedule:\n  expression: rate(1 hour)\n  timezone: " + tz + "\n"),
              "hello/function.yaml:6:13: schedule.timezone '" + shown + "'" + rule)
        << tz;
  }
}

TEST(Manifest, ATimezoneLongerThan64CharactersIsRefused) {
  EXPECT_EQ(ErrorWithBase("schedule:\n  expression: rate(1 hour)\n  timezone: " +
                          std::string(65, 'Z') + "\n"),
            "hello/function.yaml:6:13: schedule.timezone is 65 characters long; the limit is "
            "64, write an IANA zone name such as 'Europe/Copenhagen'");
}

TEST(Manifest, MissedIsOnceOrSkip) {
  EXPECT_EQ(ErrorWithBase("schedule: {expression: rate(1 hour), missed: all}\n"),
            "hello/function.yaml:4:46: schedule.missed 'all' is not supported; use once (firings "
            "missed while the daemon was down fire once at start-up, the default) or skip (they "
            "are not caught up)");
}

TEST(Manifest, AScheduleMappingNeedsAnExpression) {
  EXPECT_EQ(ErrorWithBase("schedule: {timezone: UTC}\n"),
            "hello/function.yaml:4:11: schedule is missing 'expression'; add e.g. 'expression: "
            "rate(5 minutes)' or 'expression: \"cron(0 9 * * ? *)\"'");
}

TEST(Manifest, ABadExpressionInAScheduleMappingIsReportedAtItsValue) {
  EXPECT_EQ(ErrorWithBase("schedule: {expression: rate(5 minute)}\n"),
            "hello/function.yaml:4:24: schedule.expression 'rate(5 minute)': use the plural unit "
            "for 5: rate(5 minutes)");
}

TEST(Manifest, AnUnknownKeyInAScheduleSuggestsTheNearestOne) {
  EXPECT_EQ(ErrorWithBase("schedule: {expression: rate(1 hour), tz: UTC}\n"),
            "hello/function.yaml:4:38: unknown key 'schedule.tz'; did you mean 'timezone'? "
            "(allowed: expression, timezone, missed)");
  EXPECT_THAT(ErrorWithBase("schedule: {expresion: rate(1 hour)}\n"),
              HasSubstr("4:12: unknown key 'schedule.expresion'; did you mean 'expression'?"));
  EXPECT_THAT(ErrorWithBase("schedule: {ScheduleExpression: rate(1 hour)}\n"),
              HasSubstr("unknown key 'schedule.ScheduleExpression'; did you mean 'expression'?"));
}

TEST(Manifest, ATopLevelTimezonePointsIntoTheSchedule) {
  EXPECT_THAT(ErrorWithBase("timezone: Europe/Copenhagen\n"),
              HasSubstr("4:1: unknown key 'timezone'; did you mean 'schedule'?"));
}

TEST(Manifest, AScheduleGivenAsAListSaysWhatToWrite) {
  EXPECT_EQ(ErrorWithBase("schedule: [rate(1 hour)]\n"),
            "hello/function.yaml:4:11: schedule must be text or a mapping, got a list; write e.g. "
            "'schedule: rate(5 minutes)' or 'schedule: {expression: \"cron(0 9 * * ? *)\", "
            "timezone: Europe/Copenhagen}'");
}

TEST(Manifest, AScheduleWithoutValueSaysWhatToWrite) {
  EXPECT_EQ(ErrorWithBase("schedule:\n"),
            "hello/function.yaml:4:1: schedule has no value; write e.g. 'schedule: rate(5 "
            "minutes)'");
}

TEST(Manifest, ABadScheduleIsReportedAtItsValueWithTheFix) {
  EXPECT_EQ(ErrorWithBase("schedule: rate(5 minute)\n"),
            "hello/function.yaml:4:11: schedule 'rate(5 minute)': use the plural unit for 5: "
            "rate(5 minutes)");
}

TEST(Manifest, AFiveFieldCrontabExplainsTheAwsForm) {
  EXPECT_THAT(ErrorWithBase("schedule: cron(0 12 * * *)\n"),
              HasSubstr("needs 6 fields"));
}

TEST(Manifest, EveryNotYetSupportedKeyIsReportedInDocumentOrderAndAScheduleIsNotAmongThem) {
  EXPECT_EQ(ErrorWithBase("schedule: rate(1 hour)\nauth: key\nrate_limit: {rps: 1}\n"),
            "hello/function.yaml:5:7: 'auth: key' is not supported yet; remove it or write "
            "'auth: none' (API keys arrive with the gateway)\n"
            "hello/function.yaml:6:1: 'rate_limit' is not supported yet; remove it (rate limits "
            "arrive with the gateway)");
}

// ---- async ----

TEST(Manifest, AsyncReadsEveryKey) {
  EXPECT_EQ(ParseOk(std::string(kBase) +
                    "async: {retries: 1, max_event_age: 3600, on_success: audit, on_failure: dlq}\n")
                .async,
            (AsyncConfig{1, 3600, "audit", "dlq"}));
}

TEST(Manifest, AsyncKeysAreAllOptional) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {}\n").async, AsyncConfig{});
  EXPECT_EQ(ParseOk(std::string(kBase) + "async:\n  retries: 0\n").async,
            (AsyncConfig{0, 21600, "", ""}));
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {on_failure: errors}\n").async,
            (AsyncConfig{2, 21600, "", "errors"}));
}

TEST(Manifest, AsyncRetriesAreZeroToTwoAsOnLambda) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {retries: 0}\n").async.retries, 0);
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {retries: 2}\n").async.retries, 2);
  EXPECT_EQ(ErrorWithBase("async: {retries: 3}\n"),
            "hello/function.yaml:4:18: async.retries must be an integer between 0 and 2 (retries "
            "after a failed attempt), got '3'");
  EXPECT_THAT(ErrorWithBase("async: {retries: -1}\n"), HasSubstr("4:18: async.retries must be an "
                                                                 "integer between 0 and 2"));
  EXPECT_THAT(ErrorWithBase("async: {retries: many}\n"), HasSubstr("got 'many'"));
}

TEST(Manifest, AsyncMaxEventAgeIsAMinuteToSixHoursInWholeSeconds) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {max_event_age: 60}\n").async.max_event_age_s, 60);
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {max_event_age: 21600}\n").async.max_event_age_s,
            21600);
  const std::string rule =
      "async.max_event_age must be between 60 and 21600 seconds (1 minute to 6 hours), written "
      "as whole seconds or as a duration such as '90s', '30m' or '6h'";
  EXPECT_EQ(ErrorWithBase("async: {max_event_age: 59}\n"),
            "hello/function.yaml:4:24: " + rule + ", got '59'");
  EXPECT_EQ(ErrorWithBase("async: {max_event_age: 21601}\n"),
            "hello/function.yaml:4:24: " + rule + ", got '21601'");
  EXPECT_EQ(ErrorWithBase("async:\n  max_event_age:\n"),
            "hello/function.yaml:5:3: " + rule + ", got nothing");
}

TEST(Manifest, AsyncMaxEventAgeAcceptsADurationInSecondsMinutesOrHours) {
  for (auto [text, seconds] : {std::pair{"90s", 90}, std::pair{"1m", 60}, std::pair{"30m", 1800},
                               std::pair{"6h", 21600}, std::pair{"360m", 21600}}) {
    EXPECT_EQ(ParseOk(std::string(kBase) + "async: {max_event_age: " + text + "}\n")
                  .async.max_event_age_s,
              seconds)
        << text;
  }
}

TEST(Manifest, AsyncMaxEventAgeOutOfRangeAsADurationShowsItsSeconds) {
  EXPECT_THAT(ErrorWithBase("async: {max_event_age: 7h}\n"),
              HasSubstr("4:24: async.max_event_age must be between 60 and 21600 seconds"));
  EXPECT_THAT(ErrorWithBase("async: {max_event_age: 7h}\n"), HasSubstr("got '7h' (25200 seconds)"));
  EXPECT_THAT(ErrorWithBase("async: {max_event_age: 0m}\n"), HasSubstr("got '0m' (0 seconds)"));
  EXPECT_THAT(ErrorWithBase("async: {max_event_age: 59s}\n"), testing::EndsWith("got '59s'"));
}

TEST(Manifest, AsyncMaxEventAgeRefusesOtherForms) {
  for (const char* bad : {"1h30m", "1.5h", "h", "-60", "+60", "0x3c", "60 s", "6d", "60.0",
                          "99999999999999999999h"}) {
    EXPECT_THAT(ErrorWithBase(std::string("async: {max_event_age: ") + bad + "}\n"),
                HasSubstr(std::string("got '") + bad + "'"))
        << bad;
  }
}

TEST(Manifest, AsyncOnSuccessMayNotBeTheDeadLetterStore) {
  EXPECT_EQ(ErrorWithBase("async: {on_success: dlq}\n"),
            "hello/function.yaml:4:21: async.on_success takes a function name; dead letters are "
            "for failures (write 'on_failure: dlq')");
}

TEST(Manifest, AsyncDestinationsMayNameThisFunctionItself) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {on_success: hello, on_failure: hello}\n").async,
            (AsyncConfig{2, 21600, "hello", "hello"}));
}

TEST(Manifest, AnEmptyAsyncDestinationIsTheDefault) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "async: {on_success: \"\", on_failure: \"\"}\n").async,
            AsyncConfig{});
}

TEST(Manifest, AsyncDestinationsFollowTheNameRules) {
  EXPECT_EQ(ErrorWithBase("async: {on_success: audit log}\n"),
            "hello/function.yaml:4:21: async.on_success 'audit log' is not a function name; use "
            "1 to 64 letters, digits, '-' or '_', e.g. 'audit'");
  EXPECT_EQ(ErrorWithBase("async: {on_failure: arn:aws:sqs:dlq}\n"),
            "hello/function.yaml:4:21: async.on_failure 'arn:aws:sqs:dlq' is not a function "
            "name; use 1 to 64 letters, digits, '-' or '_', e.g. 'audit', or dlq for the "
            "dead-letter store");
  EXPECT_THAT(ErrorWithBase("async: {on_failure: " + std::string(65, 'f') + "}\n"),
              HasSubstr("4:21: async.on_failure '"));
  EXPECT_THAT(ErrorWithBase("async: {on_failure: [a, b]}\n"),
              HasSubstr("4:21: async.on_failure must be text, got a list"));
}

TEST(Manifest, MistypedAsyncKeysSuggestOurs) {
  EXPECT_EQ(ErrorWithBase("async: {retry: 1}\n"),
            "hello/function.yaml:4:9: unknown key 'async.retry'; did you mean 'retries'? "
            "(allowed: retries, max_event_age, on_success, on_failure)");
  EXPECT_THAT(ErrorWithBase("async: {max_age: 60}\n"), HasSubstr("did you mean 'max_event_age'?"));
  EXPECT_THAT(ErrorWithBase("async: {onFailure: dlq}\n"), HasSubstr("did you mean 'on_failure'?"));
  EXPECT_THAT(ErrorWithBase("async: {OnSuccess: audit}\n"), HasSubstr("did you mean 'on_success'?"));
  EXPECT_THAT(ErrorWithBase("async: {MaximumRetryAttempts: 1}\n"),
              HasSubstr("did you mean 'retries'?"));
  EXPECT_THAT(ErrorWithBase("async: {MaximumEventAgeInSeconds: 60}\n"),
              HasSubstr("did you mean 'max_event_age'?"));
  EXPECT_THAT(ErrorWithBase("async: {dead_letter: dlq}\n"), HasSubstr("did you mean 'on_failure'?"));
  EXPECT_THAT(ErrorWithBase("async: {dlq: errors}\n"), HasSubstr("did you mean 'on_failure'?"));
}

TEST(Manifest, AsyncSettingsAtTheTopLevelPointIntoAsync) {
  for (const char* key : {"dlq", "dead_letter", "destinations", "on_failure", "retries",
                          "max_event_age", "DeadLetterQueue"}) {
    EXPECT_THAT(ErrorWithBase(std::string(key) + ": x\n"),
                HasSubstr(std::string("4:1: unknown key '") + key + "'; did you mean 'async'?"))
        << key;
  }
}

TEST(Manifest, ATopLevelAsyncTrueSaysItBelongsOnARoute) {
  EXPECT_EQ(ErrorWithBase("async: true\n"),
            "hello/function.yaml:4:8: async must be a mapping of settings for asynchronous "
            "invocations, got 'true'; write e.g. 'async: {retries: 1, max_event_age: 3600, "
            "on_failure: dlq}' (to answer an HTTP route with 202 at once, write 'async: true' in "
            "the route)");
}

TEST(Manifest, AsyncGivenAsTextOrNothingSaysToWriteAMapping) {
  EXPECT_EQ(ErrorWithBase("async: 5\n"),
            "hello/function.yaml:4:8: async must be a mapping, got '5'; write e.g. 'async: "
            "{retries: 1, max_event_age: 3600, on_failure: dlq}'");
  EXPECT_EQ(ErrorWithBase("async:\n"),
            "hello/function.yaml:4:1: async must be a mapping, got nothing; write e.g. 'async: "
            "{retries: 1, max_event_age: 3600, on_failure: dlq}'");
}

TEST(Manifest, EveryAsyncProblemIsItsOwnLine) {
  EXPECT_EQ(ErrorWithBase("async:\n  retries: 5\n  max_event_age: 10\n  on_success: dlq\n"),
            "hello/function.yaml:5:12: async.retries must be an integer between 0 and 2 (retries "
            "after a failed attempt), got '5'\n"
            "hello/function.yaml:6:18: async.max_event_age must be between 60 and 21600 seconds "
            "(1 minute to 6 hours), written as whole seconds or as a duration such as '90s', "
            "'30m' or '6h', got '10'\n"
            "hello/function.yaml:7:15: async.on_success takes a function name; dead letters are "
            "for failures (write 'on_failure: dlq')");
}

// ---- network ----

TEST(Manifest, NetworkIsEgressOrNone) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "network: none\n").network, Network::kNone);
  EXPECT_EQ(ParseOk(std::string(kBase) + "network: egress\n").network, Network::kEgress);
}

TEST(Manifest, AnUnknownNetworkModeListsTheSupportedOnes) {
  EXPECT_EQ(ErrorWithBase("network: off\n"),
            "hello/function.yaml:4:10: network 'off' is not supported; use egress (outbound "
            "connections allowed, the default) or none (only the instance's own loopback)");
}

TEST(Manifest, NetworkWithoutValueSaysWhatToWrite) {
  EXPECT_EQ(ErrorWithBase("network:\n"),
            "hello/function.yaml:4:1: network has no value; write e.g. 'network: none'");
}

// ---- ephemeral_storage ----

TEST(Manifest, EphemeralStorageIs512To10240MiBAsOnLambda) {
  EXPECT_EQ(ParseOk(std::string(kBase) + "ephemeral_storage: 512\n").ephemeral_storage_mb, 512);
  EXPECT_EQ(ParseOk(std::string(kBase) + "ephemeral_storage: 10240\n").ephemeral_storage_mb,
            10240);
  EXPECT_EQ(ErrorWithBase("ephemeral_storage: 511\n"),
            "hello/function.yaml:4:20: ephemeral_storage must be an integer between 512 and "
            "10240 (MiB), got '511'");
  EXPECT_THAT(ErrorWithBase("ephemeral_storage: 10241\n"), HasSubstr("4:20: ephemeral_storage"));
  EXPECT_THAT(ErrorWithBase("ephemeral_storage: 1GB\n"), HasSubstr("got '1GB'"));
}

// ---- filesystems ----

TEST(Manifest, FilesystemsAreReadInOrderWithReadOnlyDefaultingToFalse) {
  Manifest m = ParseOk(std::string(kBase) +
                       "filesystems:\n"
                       "  - host: /srv/shared\n"
                       "    mount: /mnt/shared\n"
                       "  - {host: /var/lib/models, mount: /mnt/models.v2, read_only: true}\n"
                       "  - {host: /srv/x_y-z, mount: /mnt/A_b-9, read_only: false}\n");
  EXPECT_EQ(m.filesystems, (std::vector<Filesystem>{{"/srv/shared", "/mnt/shared", false},
                                                    {"/var/lib/models", "/mnt/models.v2", true},
                                                    {"/srv/x_y-z", "/mnt/A_b-9", false}}));
}

TEST(Manifest, FilesystemsWithNoEntriesIsEmpty) {
  EXPECT_TRUE(ParseOk(std::string(kBase) + "filesystems:\n").filesystems.empty());
  EXPECT_TRUE(ParseOk(std::string(kBase) + "filesystems: []\n").filesystems.empty());
}

// Line 5 holds host (value at column 11), line 6 mount (value at column 12).
std::string FilesystemError(std::string_view host, std::string_view mount) {
  return ErrorWithBase("filesystems:\n  - host: " + std::string(host) + "\n    mount: " +
                       std::string(mount) + "\n");
}

TEST(Manifest, AFilesystemHostMustBeAbsolute) {
  EXPECT_EQ(FilesystemError("srv/shared", "/mnt/shared"),
            "hello/function.yaml:5:11: filesystems.host 'srv/shared' must be an absolute path, "
            "e.g. '/srv/shared'");
}

TEST(Manifest, AFilesystemHostMustNotClimbWithDotDot) {
  EXPECT_EQ(FilesystemError("/srv/../etc", "/mnt/shared"),
            "hello/function.yaml:5:11: filesystems.host '/srv/../etc' must not contain '..'; "
            "write the directory's path without it");
}

TEST(Manifest, AFilesystemHostMustNotBeTheRoot) {
  EXPECT_EQ(FilesystemError("/", "/mnt/shared"),
            "hello/function.yaml:5:11: filesystems.host '/' would share the host's whole "
            "filesystem; name a directory, e.g. '/srv/shared'");
}

TEST(Manifest, AFilesystemHostMustBeNormalised) {
  EXPECT_EQ(FilesystemError("/srv//shared/", "/mnt/shared"),
            "hello/function.yaml:5:11: filesystems.host '/srv//shared/' is not in normal form; "
            "write '/srv/shared'");
  EXPECT_THAT(FilesystemError("/srv/./shared", "/mnt/shared"),
              HasSubstr("5:11: filesystems.host '/srv/./shared' is not in normal form; write "
                        "'/srv/shared'"));
}

TEST(Manifest, AFilesystemHostIsNotCheckedForExistenceByTheParser) {
  Manifest m = ParseOk(std::string(kBase) +
                       "filesystems: [{host: /no/such/dir/anywhere, mount: /mnt/x}]\n");
  EXPECT_EQ(m.filesystems.at(0).host, "/no/such/dir/anywhere");
}

TEST(Manifest, AFilesystemMountMustBeANameUnderMnt) {
  const std::string rule =
      " must be /mnt/NAME, NAME made of letters, digits, '.', '_' and '-' (not '.' or '..'), "
      "e.g. '/mnt/shared'";
  EXPECT_EQ(FilesystemError("/srv/shared", "/data"),
            "hello/function.yaml:6:12: filesystems.mount '/data'" + rule);
  for (const char* bad : {"/mnt/", "/mnt", "/mnt/a/b", "/mnt/..", "/mnt/.", "mnt/shared",
                          "/mnt/sp ace", "/mnt/shared/"}) {
    EXPECT_EQ(FilesystemError("/srv/shared", bad),
              "hello/function.yaml:6:12: filesystems.mount '" + std::string(bad) + "'" + rule);
  }
}

TEST(Manifest, AFilesystemMountIsUsedOnlyOnce) {
  EXPECT_EQ(ErrorWithBase("filesystems:\n"
                          "  - host: /srv/a\n"
                          "    mount: /mnt/shared\n"
                          "  - host: /srv/b\n"
                          "    mount: /mnt/shared\n"),
            "hello/function.yaml:8:12: filesystems.mount '/mnt/shared' is used twice (first on "
            "line 5); give each filesystem its own mount");
}

TEST(Manifest, TheSameHostDirectoryMayBeMountedTwice) {
  Manifest m = ParseOk(std::string(kBase) +
                       "filesystems:\n"
                       "  - {host: /srv/a, mount: /mnt/rw}\n"
                       "  - {host: /srv/a, mount: /mnt/ro, read_only: true}\n");
  EXPECT_EQ(m.filesystems.size(), 2u);
}

TEST(Manifest, AFilesystemReadOnlyIsTrueOrFalse) {
  EXPECT_EQ(ErrorWithBase("filesystems:\n"
                          "  - host: /srv/a\n"
                          "    mount: /mnt/a\n"
                          "    read_only: yes\n"),
            "hello/function.yaml:7:16: filesystems.read_only must be true or false, got 'yes'");
  EXPECT_EQ(ErrorWithBase("filesystems:\n"
                          "  - host: /srv/a\n"
                          "    mount: /mnt/a\n"
                          "    read_only:\n"),
            "hello/function.yaml:7:5: filesystems.read_only must be true or false, got nothing; "
            "write e.g. 'read_only: true'");
}

TEST(Manifest, AtMostFiveFilesystems) {
  std::string text = "filesystems:\n";
  for (int i = 1; i <= 5; ++i) {
    text += "  - {host: /srv/" + std::to_string(i) + ", mount: /mnt/" + std::to_string(i) + "}\n";
  }
  EXPECT_EQ(ParseOk(std::string(kBase) + text).filesystems.size(), 5u);
  text += "  - {host: /srv/6, mount: /mnt/6}\n";
  EXPECT_EQ(ErrorWithBase(text),
            "hello/function.yaml:10:5: filesystems has more than 5 entries; the limit is 5: "
            "share a common parent directory instead");
}

TEST(Manifest, AnUnknownKeyInAFilesystemSuggestsTheNearestOne) {
  EXPECT_EQ(ErrorWithBase("filesystems:\n"
                          "  - host: /srv/a\n"
                          "    mount: /mnt/a\n"
                          "    readonly: true\n"),
            "hello/function.yaml:7:5: unknown key 'filesystems.readonly'; did you mean "
            "'read_only'? (allowed: host, mount, read_only)");
  EXPECT_THAT(ErrorWithBase("filesystems: [{hots: /srv/a, mount: /mnt/a}]\n"),
              HasSubstr("4:16: unknown key 'filesystems.hots'; did you mean 'host'?"));
}

TEST(Manifest, AFilesystemNeedsAHostAndAMount) {
  EXPECT_EQ(ErrorWithBase("filesystems:\n  - {mount: /mnt/a}\n"),
            "hello/function.yaml:5:5: filesystem is missing 'host'; add e.g. 'host: /srv/shared' "
            "(the host directory to share)");
  EXPECT_EQ(ErrorWithBase("filesystems:\n  - {host: /srv/a}\n"),
            "hello/function.yaml:5:5: filesystem is missing 'mount'; add e.g. 'mount: /mnt/shared' "
            "(where the instance sees it)");
}

TEST(Manifest, FilesystemsGivenAsTextSaysToWriteAList) {
  EXPECT_EQ(ErrorWithBase("filesystems: /srv/shared\n"),
            "hello/function.yaml:4:14: filesystems must be a list of host directories to mount, "
            "got '/srv/shared'; write e.g. 'filesystems: [{host: /srv/shared, mount: "
            "/mnt/shared}]'");
}

TEST(Manifest, AFilesystemGivenAsTextSaysToWriteAMapping) {
  EXPECT_EQ(ErrorWithBase("filesystems:\n  - /srv/shared\n"),
            "hello/function.yaml:5:5: a filesystem must be a mapping with host and mount, got "
            "'/srv/shared'; write e.g. '- {host: /srv/shared, mount: /mnt/shared}'");
}

// ---- build and description ----

TEST(Manifest, DescriptionUpTo256CharactersIsAccepted) {
  // 256 two-byte characters: the limit counts characters, not bytes.
  std::string text;
  for (int i = 0; i < 256; ++i) text += "\xc3\xa9";
  EXPECT_EQ(ParseOk(std::string(kBase) + "description: " + text + "\n").description, text);
}

TEST(Manifest, DescriptionOver256CharactersIsRefused) {
  EXPECT_THAT(ErrorWithBase("description: " + std::string(257, 'd') + "\n"),
              HasSubstr("4:14: description is 257 characters long; the limit is 256"));
}

TEST(Manifest, BuildGivenAsAListIsAWrongType) {
  EXPECT_THAT(ErrorWithBase("build: [make, test]\n"),
              HasSubstr("4:8: build must be text, got a list; write e.g. 'build: make'"));
}

// ---- ParseFile ----

class ParseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("manifest_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path Write(const std::string& text) {
    std::filesystem::path p = dir_ / "function.yaml";
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(ParseFileTest, ReadsTheFile) {
  Result<Manifest> r = ParseFile(Write(std::string(kBase)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "hello");
}

TEST_F(ParseFileTest, MessagesNameThePath) {
  std::filesystem::path p = Write("name: hello\nruntime: ruby\n");
  Result<Manifest> r = ParseFile(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), StartsWith(p.string() + ":2:10: runtime 'ruby'"));
}

TEST_F(ParseFileTest, AMissingFileIsNotFoundAndSaysWhatIsNeeded) {
  Result<Manifest> r = ParseFile(dir_ / "nope.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("needs a function.yaml"));
}

TEST_F(ParseFileTest, ADirectoryIsRefused) {
  Result<Manifest> r = ParseFile(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("is a directory"));
}

}  // namespace
}  // namespace nimbus::manifest
