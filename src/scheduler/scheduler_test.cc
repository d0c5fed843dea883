// Scheduler tests that run in memory: a FakeLauncher hands the scheduler "processes" that are
// threads speaking the Runtime API over loopback, so scaling, queueing, deadlines, crashes,
// keep-alive, retirement and log attribution are exercised through the real Runtime API
// listener without starting a single process. Timing tests use the manifest minimums (1 s).
#include "scheduler/scheduler.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "scheduler/fake_launcher.h"

namespace nimbus::scheduler {
namespace {

using Clock = std::chrono::steady_clock;
using fake::EnvValue;
using fake::FakeLauncher;
using fake::FakeScript;
using observability::LogLine;
using observability::LogStream;
using namespace std::chrono_literals;

constexpr char kCodeDir[] = "/srv/nimbus/code/echo/1";
constexpr char kRuntimesDir[] = "/opt/nimbus/runtimes";

double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Polls `pred` until it holds or `limit` passes.
template <typename Pred>
bool WaitUntil(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// True when something accepts TCP connections at "127.0.0.1:PORT".
bool CanConnect(const std::string& host_port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1))));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

struct Done {
  InvokeResult result;
  double ms = 0;  // from Invoke() to the completion
};

// One Invoke() in flight.
struct Call {
  std::string request_id;
  std::future<Done> future;

  // The result, or a sentinel that fails every outcome assertion when none came within `limit`.
  Done Get(std::chrono::seconds limit = 10s) {
    if (future.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "request " << request_id << " got no result within " << limit.count() << " s";
      Done d;
      d.result.outcome = Outcome::kShutdown;
      d.result.error_type = "test: no result";
      return d;
    }
    return future.get();
  }
  bool Ready() { return future.wait_for(0s) == std::future_status::ready; }
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { loops_->Start(); }
  void TearDown() override { StopAll(); }

  // Stops the loops and shuts the scheduler down (once).
  void StopAll() {
    if (stopped_) return;
    stopped_ = true;
    launcher_.ReleaseLaunches();  // a loop blocked in Launch() would never stop
    loops_->Stop();
    if (sched_) sched_->Shutdown();
  }

  Scheduler& sched() {
    if (!sched_) sched_ = std::make_unique<Scheduler>(*loops_, launcher_, logs_, options_);
    return *sched_;
  }

  template <typename Edit>
  static catalog::ConfigPtr Fn(std::string version, Edit edit) {
    auto fn = std::make_shared<catalog::FunctionConfig>();
    fn->name = "echo";
    fn->version = std::move(version);
    fn->code_dir = kCodeDir;
    fn->arn = catalog::FunctionArn("echo");
    fn->manifest.name = "echo";
    fn->manifest.runtime = "python3";
    fn->manifest.handler = "app.handler";
    fn->manifest.memory_mb = 256;
    fn->manifest.timeout_s = 3;
    fn->manifest.keep_alive_s = 60;
    fn->manifest.concurrency.max = 10;
    edit(fn->manifest);
    return fn;
  }
  static catalog::ConfigPtr Fn(std::string version = "1") {
    return Fn(std::move(version), [](manifest::Manifest&) {});
  }

  Call Start(const catalog::ConfigPtr& fn, std::string payload, bool want_log_tail = false) {
    auto promise = std::make_shared<std::promise<Done>>();
    Call call;
    char id[64];
    snprintf(id, sizeof id, "%08x-1111-4222-8333-%012x", 0xc0ffee00u + next_id_, next_id_);
    ++next_id_;
    call.request_id = id;
    call.future = promise->get_future();
    InvokeRequest req;
    req.request_id = call.request_id;
    req.payload = std::move(payload);
    req.want_log_tail = want_log_tail;
    auto started = Clock::now();
    sched().Invoke(fn, std::move(req), [promise, started](InvokeResult&& r) {
      promise->set_value(Done{std::move(r), MsSince(started)});
    });
    return call;
  }

  Done Run(const catalog::ConfigPtr& fn, std::string payload, bool want_log_tail = false) {
    return Start(fn, std::move(payload), want_log_tail).Get();
  }

  // After a failed instance: a well-behaved runtime serves the next request on a second process.
  void ExpectNextRequestRunsOnASecondInstance(const catalog::ConfigPtr& fn, const std::string& payload) {
    launcher_.SetScript(FakeScript{});
    Done next = Run(fn, payload);
    EXPECT_EQ(next.result.outcome, Outcome::kSuccess);
    EXPECT_EQ(next.result.body, payload);
    EXPECT_EQ(launcher_.launches(), 2u);
    EXPECT_EQ(launcher_.events().back().process, 1u);
  }

  // Waits until the function has `n` idle instances parked in /next.
  bool WaitIdle(int n) {
    return WaitUntil([&] { return sched().CountsFor("echo").idle == n; });
  }

  observability::LogStore logs_;
  FakeLauncher launcher_;
  std::unique_ptr<http::LoopGroup> loops_ = std::make_unique<http::LoopGroup>(2);
  Options options_{kRuntimesDir};
  std::unique_ptr<Scheduler> sched_;
  bool stopped_ = false;
  unsigned next_id_ = 1;
};

// ---- starting and reusing instances -------------------------------------------------------------

TEST_F(SchedulerTest, AFirstRequestStartsOneInstanceAndTheWarmSecondRequestReusesIt) {
  auto fn = Fn();
  Done first = Run(fn, R"({"n":1})");
  EXPECT_EQ(first.result.outcome, Outcome::kSuccess) << first.result.body;
  EXPECT_EQ(first.result.body, R"({"n":1})");
  EXPECT_EQ(first.result.version, "1");
  EXPECT_EQ(first.result.error_type, "");
  ASSERT_TRUE(WaitIdle(1));

  Done second = Run(fn, R"({"n":2})");
  EXPECT_EQ(second.result.outcome, Outcome::kSuccess) << second.result.body;
  EXPECT_EQ(second.result.body, R"({"n":2})");
  EXPECT_EQ(launcher_.launches(), 1u);
  EXPECT_EQ(sched().LiveInstances(), 1u);
  auto events = launcher_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].process, 0u);
  EXPECT_EQ(events[1].process, 0u);
}

// Regression: a request arriving while the only instance was between its response and its next
// /next (state kFinishing) started a second, cold instance, because only starting instances
// counted as capacity on the way. A client invoking back-to-back almost always hit this window.
TEST_F(SchedulerTest, ARequestArrivingRightAfterAResponseReusesTheFinishingInstance) {
  auto fn = Fn();
  ASSERT_EQ(Run(fn, "1").result.outcome, Outcome::kSuccess);
  for (int i = 2; i <= 5; ++i) {
    Done d = Run(fn, std::to_string(i));  // at once, as a sequential client does
    EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
    EXPECT_EQ(d.result.body, std::to_string(i));
  }
  EXPECT_EQ(launcher_.launches(), 1u) << "back-to-back requests should stay on the warm instance";
}

TEST_F(SchedulerTest, ThePythonLaunchSpecCarriesTheLambdaEnvironmentAndTheSharedBootstrap) {
  auto fn = Fn("1", [](manifest::Manifest& m) { m.environment["GREETING"] = "hello"; });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  const auto& s = specs[0];
  EXPECT_EQ(s.executable, std::string(kRuntimesDir) + "/python3/bootstrap");
  ASSERT_EQ(s.argv.size(), 1u);
  EXPECT_EQ(s.argv[0], s.executable);
  EXPECT_EQ(s.cwd, kCodeDir);
  EXPECT_EQ(s.memory_bytes, 256ull << 20);
  std::string api = EnvValue(s.env, "AWS_LAMBDA_RUNTIME_API");
  EXPECT_EQ(api.rfind("127.0.0.1:", 0), 0u) << api;
  EXPECT_GT(std::stoi(api.substr(10)), 0);
  EXPECT_EQ(EnvValue(s.env, "_HANDLER"), "app.handler");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_NAME"), "echo");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_VERSION"), "1");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_TIMEOUT"), "3");
  EXPECT_EQ(EnvValue(s.env, "LAMBDA_TASK_ROOT"), kCodeDir);
  EXPECT_EQ(EnvValue(s.env, "LAMBDA_RUNTIME_DIR"), std::string(kRuntimesDir) + "/python3");
  EXPECT_EQ(EnvValue(s.env, "GREETING"), "hello");
}

TEST_F(SchedulerTest, AProvidedRuntimeRunsTheBootstrapFromTheCodeDirectory) {
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.runtime = "provided";
    m.handler = "bootstrap";
  });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].executable, std::string(kCodeDir) + "/bootstrap");
  EXPECT_EQ(EnvValue(specs[0].env, "LAMBDA_RUNTIME_DIR"), kCodeDir);
  EXPECT_EQ(EnvValue(specs[0].env, "_HANDLER"), "bootstrap");
}

TEST_F(SchedulerTest, TheEventCarriesTheRequestIdTheArnAndADeadlineOneTimeoutAway) {
  auto fn = Fn();
  int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  Call c = Start(fn, R"({"k":"v"})");
  ASSERT_EQ(c.Get().result.outcome, Outcome::kSuccess);
  auto events = launcher_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].request_id, c.request_id);
  EXPECT_EQ(events[0].body, R"({"k":"v"})");
  EXPECT_EQ(events[0].function_arn, "arn:aws:lambda:local:000000000000:function:echo");
  EXPECT_NE(events[0].trace_id.find(c.request_id), std::string::npos) << events[0].trace_id;
  EXPECT_GE(events[0].deadline_ms, before + 3000);
  EXPECT_LE(events[0].deadline_ms, before + 3000 + 2000);
}

// ---- concurrency and queueing ------------------------------------------------------------------

TEST_F(SchedulerTest, ConcurrencyMaxTwoRunsThreeSlowRequestsOnTwoInstancesAndTheThirdWaits) {
  FakeScript slow;
  slow.delay = 300ms;
  launcher_.SetScript(slow);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 2; });
  Call a = Start(fn, "a"), b = Start(fn, "b"), c = Start(fn, "c");
  EXPECT_TRUE(WaitUntil([&] { return sched().CountsFor("echo").busy == 2; }));
  EXPECT_EQ(sched().CountsFor("echo").queued, 1u);
  Done da = a.Get(), db = b.Get(), dc = c.Get();
  EXPECT_EQ(da.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(db.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(dc.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(da.result.body + db.result.body + dc.result.body, "abc");
  EXPECT_EQ(launcher_.launches(), 2u);
  // The third ran only after one of the first two had finished.
  EXPECT_GE(dc.ms, std::min(da.ms, db.ms) + 300 - 20) << "the third request did not wait for a free instance";
}

TEST_F(SchedulerTest, AQueuedRequestThatFindsNoFreeInstanceWithinTheTimeoutIsThrottled) {
  // The instance takes 0.5 s to initialise, so the first request's 1 s deadline ends half a
  // second after the second request has waited its whole 1 s timeout in the queue.
  FakeScript slow_init_hang;
  slow_init_hang.init_delay = 500ms;
  slow_init_hang.action = FakeScript::Action::kHang;
  launcher_.SetScript(slow_init_hang);
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.concurrency.max = 1;
    m.timeout_s = 1;
  });
  Call running = Start(fn, "first"), queued = Start(fn, "second");
  Done q = queued.Get();
  EXPECT_EQ(q.result.outcome, Outcome::kThrottled);
  EXPECT_EQ(q.result.error_type, "TooManyRequestsException");
  EXPECT_NE(q.result.body.find("concurrency.max"), std::string::npos) << q.result.body;
  EXPECT_GE(q.ms, 950);
  EXPECT_LT(q.ms, 1400);
  EXPECT_EQ(running.Get().result.outcome, Outcome::kTimeout);
  EXPECT_EQ(launcher_.launches(), 1u);
}

TEST_F(SchedulerTest, AFullQueueThrottlesAtOnce) {
  options_.queue_per_slot = 2;  // concurrency.max 1 * 2 = two queued requests at most
  FakeScript slow_init;
  slow_init.init_delay = 400ms;
  launcher_.SetScript(slow_init);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Call a = Start(fn, "a"), b = Start(fn, "b"), c = Start(fn, "c");
  Done dc = c.Get();
  EXPECT_EQ(dc.result.outcome, Outcome::kThrottled);
  EXPECT_EQ(dc.result.error_type, "TooManyRequestsException");
  EXPECT_NE(dc.result.body.find("queue is full"), std::string::npos) << dc.result.body;
  EXPECT_LT(dc.ms, 200) << "a full queue should answer without waiting";
  EXPECT_EQ(a.Get().result.body, "a");
  EXPECT_EQ(b.Get().result.body, "b");
  EXPECT_EQ(launcher_.launches(), 1u);
}

// ---- deadlines, crashes and errors -------------------------------------------------------------

TEST_F(SchedulerTest, AnInvocationPastItsDeadlineTimesOutAndTheNextRequestGetsANewInstance) {
  FakeScript hang;
  hang.action = FakeScript::Action::kHang;
  launcher_.SetScript(hang);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.timeout_s = 1; });
  Done d = Run(fn, "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kTimeout);
  EXPECT_EQ(d.result.error_type, "Sandbox.Timedout");
  EXPECT_NE(d.result.body.find("Task timed out after 1.00 seconds"), std::string::npos) << d.result.body;
  EXPECT_GE(d.ms, 1000);
  EXPECT_LT(d.ms, 2000);  // within timeout + 1 s, as the platform promises
  EXPECT_TRUE(launcher_.WaitEnded(0, 2s));
  EXPECT_TRUE(launcher_.Killed(0));
  ExpectNextRequestRunsOnASecondInstance(fn, "again");
}

TEST_F(SchedulerTest, ACrashMidInvocationIsAnExitErrorAndTheNextRequestRunsOnANewInstance) {
  FakeScript crash;
  crash.action = FakeScript::Action::kCrash;
  crash.exit_code = 3;
  launcher_.SetScript(crash);
  auto fn = Fn();
  Call c = Start(fn, "{}");
  Done d = c.Get();
  EXPECT_EQ(d.result.outcome, Outcome::kCrash);
  EXPECT_EQ(d.result.error_type, "Runtime.ExitError");
  EXPECT_NE(d.result.body.find("Runtime exited with error: exit status 3"), std::string::npos) << d.result.body;
  EXPECT_NE(d.result.body.find(c.request_id), std::string::npos) << d.result.body;
  EXPECT_FALSE(launcher_.Killed(0));
  ExpectNextRequestRunsOnASecondInstance(fn, "fine");
}

TEST_F(SchedulerTest, AnOomKilledProcessGivesOutOfMemory) {
  FakeScript oom;
  oom.action = FakeScript::Action::kCrash;
  oom.oom = true;
  launcher_.SetScript(oom);
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kOutOfMemory);
  EXPECT_EQ(d.result.error_type, "Runtime.OutOfMemory");
  EXPECT_NE(d.result.body.find("256 MB"), std::string::npos) << d.result.body;
}

TEST_F(SchedulerTest, AHandlerErrorReturnsTheRuntimesErrorJsonAndKeepsTheInstance) {
  FakeScript err;
  err.action = FakeScript::Action::kError;
  launcher_.SetScript(err);
  auto fn = Fn();
  Done d = Run(fn, "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kFunctionError);
  EXPECT_EQ(d.result.error_type, "ValueError");
  EXPECT_EQ(d.result.body, R"({"errorMessage":"boom","errorType":"ValueError"})");
  ASSERT_TRUE(WaitIdle(1));
  EXPECT_EQ(Run(fn, "{}").result.outcome, Outcome::kFunctionError);
  EXPECT_EQ(launcher_.launches(), 1u);
}

TEST_F(SchedulerTest, AnInitErrorFailsEachWaitingRequestWithTheRuntimesErrorTypeAndIsNotRetriedForever) {
  FakeScript init;
  init.init_error = true;
  launcher_.SetScript(init);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Call a = Start(fn, "a"), b = Start(fn, "b");
  Done da = a.Get(), db = b.Get();
  for (const Done* d : {&da, &db}) {
    EXPECT_EQ(d->result.outcome, Outcome::kFunctionError);
    EXPECT_EQ(d->result.error_type, "Runtime.ImportModuleError");
    EXPECT_NE(d->result.body.find("Unable to import module"), std::string::npos) << d->result.body;
  }
  EXPECT_LT(db.ms, 2000) << "the second request should not wait for its queue timeout";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(launcher_.launches(), 2u) << "one start attempt per waiting request, no retry loop";
  EXPECT_EQ(sched().LiveInstances(), 0u);
  auto report = logs_.Tail("echo", 100);
  bool saw_init_report = false;
  for (const auto& l : report) saw_init_report |= l.text.find("INIT_REPORT") == 0 &&
                                                  l.text.find("Error Type: Runtime.ImportModuleError") != std::string::npos;
  EXPECT_TRUE(saw_init_report);
}

TEST_F(SchedulerTest, ALaunchFailureFailsTheWaitingRequestWithStartFailed) {
  launcher_.FailLaunches(Status::Io("exec /srv/nimbus/code/echo/1/bootstrap: permission denied"));
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kStartFailed);
  EXPECT_EQ(d.result.error_type, "Runtime.StartError");
  EXPECT_NE(d.result.body.find("permission denied"), std::string::npos) << d.result.body;
  EXPECT_EQ(sched().LiveInstances(), 0u);

  launcher_.FailLaunches(Status::Ok());
  EXPECT_EQ(Run(Fn(), "ok").result.outcome, Outcome::kSuccess);
}

// Regression: when a launch failed, only the front request of the queue was failed and nothing
// started another instance for the rest, so a request queued behind it waited its whole
// timeout and then got a misleading 429 ("no instance became free") instead of the start
// failure.
TEST_F(SchedulerTest, ALaunchFailureFailsEveryRequestQueuedBehindItWithStartFailed) {
  launcher_.FailLaunches(Status::Io("exec bootstrap: permission denied"));
  launcher_.HoldLaunches();
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.concurrency.max = 1;
    m.timeout_s = 1;
  });
  Call a = Start(fn, "a");
  ASSERT_TRUE(WaitUntil([&] { return launcher_.held_launches() == 1; }));
  Call b = Start(fn, "b");  // queued behind the launch in progress
  EXPECT_EQ(sched().CountsFor("echo").queued, 2u);
  launcher_.ReleaseLaunches();
  Done da = a.Get(), db = b.Get();
  EXPECT_EQ(da.result.outcome, Outcome::kStartFailed);
  EXPECT_EQ(db.result.outcome, Outcome::kStartFailed) << db.result.error_type << " " << db.result.body;
  EXPECT_LT(db.ms, 500);
}

// ---- keep-alive, min_warm and retirement -------------------------------------------------------

TEST_F(SchedulerTest, AnIdleInstanceIsStoppedAfterKeepAlive) {
  auto fn = Fn("1", [](manifest::Manifest& m) { m.keep_alive_s = 1; });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  auto idle_since = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return sched().LiveInstances() == 0; }, 3s));
  double ms = MsSince(idle_since);
  EXPECT_GE(ms, 900);
  EXPECT_LT(ms, 2000);
  EXPECT_TRUE(launcher_.WaitEnded(0, 1s));
  EXPECT_TRUE(launcher_.Killed(0));
}

TEST_F(SchedulerTest, MinWarmOneKeepsAnIdleInstancePastKeepAlive) {
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.keep_alive_s = 1;
    m.concurrency.min_warm = 1;
  });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(sched().LiveInstances(), 1u);
  EXPECT_FALSE(launcher_.Ended(0));
  EXPECT_EQ(Run(fn, "warm").result.body, "warm");
  EXPECT_EQ(launcher_.launches(), 1u);
}

TEST_F(SchedulerTest, RetiringAVersionStopsItsIdleInstanceAtOnceAndTheNewVersionGetsItsOwn) {
  auto v1 = Fn("1"), v2 = Fn("2");
  ASSERT_EQ(Run(v1, "{}").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  sched().RetireVersions("echo", {"2"});
  EXPECT_EQ(sched().LiveInstances(), 0u);
  EXPECT_TRUE(launcher_.WaitEnded(0, 2s));
  EXPECT_TRUE(launcher_.Killed(0));

  Done d = Run(v2, "new");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.version, "2");
  ASSERT_EQ(launcher_.launches(), 2u);
  EXPECT_EQ(EnvValue(launcher_.specs()[1].env, "AWS_LAMBDA_FUNCTION_VERSION"), "2");
}

TEST_F(SchedulerTest, RetiringAVersionLetsItsBusyInstanceFinishThenStopsIt) {
  FakeScript slow;
  slow.delay = 500ms;
  launcher_.SetScript(slow);
  auto v1 = Fn("1"), v2 = Fn("2");
  Call old = Start(v1, "old");
  ASSERT_TRUE(WaitUntil([&] { return sched().CountsFor("echo").busy == 1; }));
  sched().RetireVersions("echo", {"2"});
  EXPECT_EQ(sched().LiveInstances(), 1u) << "a busy instance must not be stopped";
  EXPECT_FALSE(launcher_.Ended(0));
  Call fresh = Start(v2, "new");

  Done d_old = old.Get();
  EXPECT_EQ(d_old.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d_old.result.body, "old");
  EXPECT_EQ(d_old.result.version, "1");
  EXPECT_TRUE(launcher_.WaitEnded(0, 2s)) << "the retired instance should stop after its request";
  EXPECT_TRUE(launcher_.Killed(0));

  Done d_new = fresh.Get();
  EXPECT_EQ(d_new.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d_new.result.version, "2");
  EXPECT_EQ(launcher_.launches(), 2u);
  EXPECT_TRUE(WaitUntil([&] { return sched().LiveInstances() == 1; }));  // only v2's
  EXPECT_FALSE(launcher_.Ended(1));
}

// ---- logs --------------------------------------------------------------------------------------

// Lines of `request_id` in store order, as "stream:text".
std::vector<std::string> LinesOf(const std::vector<LogLine>& all, const std::string& request_id) {
  std::vector<std::string> out;
  for (const auto& l : all) {
    if (l.request_id == request_id) out.push_back(std::string(observability::LogStreamName(l.stream)) + ":" + l.text);
  }
  return out;
}

size_t IndexOf(const std::vector<LogLine>& all, std::string_view prefix, const std::string& rid) {
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].text.rfind(prefix, 0) == 0 && all[i].text.find(rid) != std::string::npos) return i;
  }
  return all.size();
}

TEST_F(SchedulerTest, LinesPrintedDuringAnInvocationAreStoredWithItsRequestIdBetweenStartAndEnd) {
  FakeScript talk;
  talk.stdout_lines = {"hello from {id}"};
  talk.stderr_lines = {"careful in {id}"};
  talk.peak_memory_bytes = 50ull << 20;
  launcher_.SetScript(talk);
  auto fn = Fn();
  Call cold = Start(fn, "{}", /*want_log_tail=*/true);
  Done dc = cold.Get();
  ASSERT_EQ(dc.result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  Call warm = Start(fn, "{}", true);
  Done dw = warm.Get();
  ASSERT_EQ(dw.result.outcome, Outcome::kSuccess);

  auto all = logs_.Tail("echo", 1000);
  for (const Call* c : {&cold, &warm}) {
    const std::string& rid = c->request_id;
    size_t start = IndexOf(all, "START RequestId: ", rid);
    size_t hello = IndexOf(all, "hello from ", rid);
    size_t careful = IndexOf(all, "careful in ", rid);
    size_t end = IndexOf(all, "END RequestId: ", rid);
    size_t report = IndexOf(all, "REPORT RequestId: ", rid);
    ASSERT_LT(report, all.size()) << "no REPORT line for " << rid;
    EXPECT_LT(start, hello);
    EXPECT_LT(start, careful);
    EXPECT_LT(hello, end) << "the printed line came after END";
    EXPECT_LT(careful, end) << "the printed line came after END";
    EXPECT_EQ(end + 1, report);
    ASSERT_LT(hello, all.size());
    ASSERT_LT(careful, all.size());
    EXPECT_EQ(all[hello].request_id, rid);
    EXPECT_EQ(all[hello].stream, LogStream::kStdout);
    EXPECT_EQ(all[careful].request_id, rid);
    EXPECT_EQ(all[careful].stream, LogStream::kStderr);
    EXPECT_EQ(all[start].text, "START RequestId: " + rid + " Version: 1");
    EXPECT_EQ(all[start].stream, LogStream::kPlatform);
    EXPECT_EQ(LinesOf(all, rid).size(), 5u);
    const std::string& r = all[report].text;
    EXPECT_NE(r.find("\tDuration: "), std::string::npos) << r;
    EXPECT_NE(r.find("\tBilled Duration: "), std::string::npos) << r;
    EXPECT_NE(r.find("\tMemory Size: 256 MB"), std::string::npos) << r;
    EXPECT_NE(r.find("\tMax Memory Used: 50 MB"), std::string::npos) << r;
    bool has_init = r.find("Init Duration: ") != std::string::npos;
    EXPECT_EQ(has_init, c == &cold) << r;
  }
  for (const auto* d : {&dc, &dw}) {
    const std::string& tail = d->result.log_tail;
    EXPECT_NE(tail.find("START RequestId: "), std::string::npos) << tail;
    EXPECT_NE(tail.find("hello from "), std::string::npos) << tail;
    EXPECT_NE(tail.find("careful in "), std::string::npos) << tail;
    EXPECT_NE(tail.find("END RequestId: "), std::string::npos) << tail;
    EXPECT_NE(tail.find("REPORT RequestId: "), std::string::npos) << tail;
  }
  EXPECT_NE(dc.result.log_tail.find(cold.request_id), std::string::npos);
  EXPECT_EQ(dc.result.log_tail.find(warm.request_id), std::string::npos);
  EXPECT_NE(dw.result.log_tail.find(warm.request_id), std::string::npos);
}

TEST_F(SchedulerTest, WithoutWantLogTailTheResultCarriesNoLogTail) {
  FakeScript talk;
  talk.stdout_lines = {"hello from {id}"};
  launcher_.SetScript(talk);
  Done d = Run(Fn(), "{}");
  ASSERT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.log_tail, "");
}

// Regression (was intermittent, about 1 run in 4): output printed just before the response was
// logged after END with an empty request id. END/REPORT were written without draining the
// pipes, and even a drain missed a chunk that an async_read_some had already read (Asio reads
// speculatively when a read is re-armed) but whose handler was still queued behind the Runtime
// API request's handler on the same loop. Pipes are now read with wait_read + ::read.
TEST_F(SchedulerTest, EveryLinePrintedJustBeforeTheResponseBelongsToTheInvocation) {
  FakeScript chatty;
  for (int i = 0; i < 40; ++i) chatty.stdout_lines.push_back("{id} line " + std::to_string(i) + " " + std::string(500, 'x'));
  launcher_.SetScript(chatty);
  Call c = Start(Fn(), "{}");
  ASSERT_EQ(c.Get().result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  std::this_thread::sleep_for(50ms);  // let any late pipe reads land
  auto all = logs_.Tail("echo", 1000);
  size_t end = IndexOf(all, "END RequestId: ", c.request_id);
  size_t printed = 0, attributed_before_end = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].stream != LogStream::kStdout) continue;
    ++printed;
    if (all[i].request_id == c.request_id && i < end) ++attributed_before_end;
  }
  EXPECT_EQ(printed, 40u);
  EXPECT_EQ(attributed_before_end, 40u);
}

// ---- Runtime API and shutdown ------------------------------------------------------------------

TEST_F(SchedulerTest, TheRuntimeApiAnswersInvalidRequestIdToAResponseForAnUnknownRequest) {
  FakeScript wrong;
  wrong.wrong_id_first = true;
  launcher_.SetScript(wrong);
  Done d = Run(Fn(), "still fine");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.body, "still fine");
  auto stray = launcher_.stray_answers();
  ASSERT_EQ(stray.size(), 1u);
  EXPECT_EQ(stray[0].status, 400);
  EXPECT_NE(stray[0].body.find("\"errorType\":\"InvalidRequestID\""), std::string::npos) << stray[0].body;
}

TEST_F(SchedulerTest, ShutdownFailsQueuedRequestsAndLaterOnes) {
  FakeScript slow_init;
  slow_init.init_delay = 10s;  // never ready before the shutdown
  launcher_.SetScript(slow_init);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Call a = Start(fn, "a"), b = Start(fn, "b");
  ASSERT_TRUE(WaitUntil([&] { return launcher_.launches() == 1; }));
  EXPECT_EQ(sched().CountsFor("echo").queued, 2u);
  auto before = Clock::now();
  StopAll();
  ASSERT_TRUE(a.Ready());
  ASSERT_TRUE(b.Ready());
  for (Call* c : {&a, &b}) {
    Done d = c->Get();
    EXPECT_EQ(d.result.outcome, Outcome::kShutdown);
    EXPECT_EQ(d.result.error_type, "ServiceException");
  }
  EXPECT_LT(MsSince(before), 1000) << "shutdown should not wait for a slow instance";
  EXPECT_TRUE(launcher_.Ended(0));
  Call late = Start(fn, "late");
  ASSERT_TRUE(late.Ready());
  EXPECT_EQ(late.Get().result.outcome, Outcome::kShutdown);
}

// Regression: Shutdown() left every live Instance in pools_, and Pool::instances and
// Instance::pool (both shared_ptr) point at each other, so destroying the Scheduler leaked each
// instance and its pool together with the instance's Runtime API listening socket, which kept
// accepting.
TEST_F(SchedulerTest, ShutdownReleasesEveryInstanceSoNoRuntimeApiPortStaysOpen) {
  ASSERT_EQ(Run(Fn(), "{}").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  std::string api = EnvValue(launcher_.specs().at(0).env, "AWS_LAMBDA_RUNTIME_API");
  ASSERT_TRUE(CanConnect(api));
  StopAll();
  EXPECT_TRUE(launcher_.Ended(0));
  sched_.reset();
  loops_.reset();  // drops whatever the stopped loops still held
  EXPECT_FALSE(CanConnect(api)) << "the Runtime API of a shut-down instance still accepts connections";
}

}  // namespace
}  // namespace nimbus::scheduler
