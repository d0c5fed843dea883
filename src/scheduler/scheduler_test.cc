// Scheduler tests that run in memory: a FakeLauncher hands the scheduler "processes" that are
// threads speaking the Runtime API over loopback, so scaling, queueing, deadlines, crashes,
// keep-alive, retirement, init timeouts, the /next state machine and log attribution are
// exercised through the real Runtime API listener without starting a single process. These are
// the executor's tests (processes, the Runtime API, timers, logs); the pool's rules themselves
// (scale-out, queue deadlines, coverage by starting instances, keep-alive, min_warm,
// retirement) are specified in virtual time in pool_policy_test.cc. Timing tests here use the
// manifest minimums (1 s) or a short init_timeout and check only bounds that cannot be missed
// early (a timer never fires before its time), with a generous margin above.
#include "scheduler/scheduler.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <stdexcept>
#include <thread>

#include "common/iso_time.h"
#include "runtimeapi/runtime_api.h"
#include "scheduler/testing/fake_launcher.h"

namespace nimbus::scheduler {
namespace {

using Clock = std::chrono::steady_clock;
using fake::EnvValue;
using fake::HasEnv;
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

// True when a line of `all` starts with `prefix` and contains `part`.
bool HasLine(const std::vector<LogLine>& all, std::string_view prefix, std::string_view part) {
  return std::any_of(all.begin(), all.end(), [&](const LogLine& l) {
    return l.text.rfind(prefix, 0) == 0 && l.text.find(part) != std::string::npos;
  });
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

// An HTTP answer as RawClient read it.
struct Answer {
  int status = 0;  // 0: the connection closed without an answer; -1: none came in time
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A client of an instance's Runtime API that is not the instance's runtime: a foreign process
// on the same host. With `fsuid`, its socket belongs to that uid (needs root).
class RawClient {
 public:
  explicit RawClient(const std::string& host_port, int fsuid = -1) {
    // The socket's owner is the fsuid of the thread that creates it; setfsuid is per thread.
    std::thread([&] {
      if (fsuid >= 0) {
        setfsuid(static_cast<uid_t>(fsuid));
        if (setfsuid(static_cast<uid_t>(-1)) != fsuid) return;
      }
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }).join();
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1))));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Close();
  }
  ~RawClient() { Close(); }
  bool connected() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view method, std::string_view target, std::string_view body = {}) {
    std::string msg = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: runtime\r\n";
    if (method != "GET") msg += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    msg += "\r\n";
    msg += body;
    return fd_ >= 0 && ::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
  }
  bool Next() { return Send("GET", "/2018-06-01/runtime/invocation/next"); }

  Answer Read(std::chrono::milliseconds limit = 5s) {
    Answer a;
    auto until = Clock::now() + limit;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      int r = Fill(until);
      if (r <= 0) {
        a.status = r;
        return a;
      }
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    a.status = std::atoi(head.c_str() + head.find(' ') + 1);
    for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
      size_t e = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, e == std::string::npos ? std::string::npos : e - pos - 2);
      pos = e;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      size_t value = line.find_first_not_of(' ', colon + 1);
      a.headers[name] = value == std::string::npos ? std::string() : line.substr(value);
    }
    size_t len = a.headers.count("content-length") ? std::stoul(a.headers["content-length"]) : 0;
    while (buf_.size() < len) {
      if (Fill(until) <= 0) break;
    }
    a.body = buf_.substr(0, len);
    buf_.erase(0, std::min(len, buf_.size()));
    return a;
  }

 private:
  // 1: read something; 0: closed; -1: timed out.
  int Fill(Clock::time_point until) {
    if (fd_ < 0) return 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd_, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return -1;
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return 0;
    buf_.append(tmp, static_cast<size_t>(n));
    return 1;
  }

  int fd_ = -1;
  std::string buf_;
};

struct Done {
  InvokeResult result;
  double ms = 0;  // from Invoke() to the completion
  std::string log_tail;
  RequestContext::Observations obs;
  RequestContext::Clock::time_point received_at;
};

// A caller's context as these tests make it: Complete() hands the result, the log tail and the
// observations to the test, and counts how often it ran (exactly once, whatever races).
class TestContext final : public RequestContext {
 public:
  TestContext(catalog::ConfigPtr fn, InvokeRequest req, std::shared_ptr<std::promise<Done>> promise)
      : RequestContext(std::move(fn), std::move(req)), promise_(std::move(promise)) {}
  int completions() const { return completions_.load(); }

 private:
  void Complete(InvokeResult&& r) override {
    if (completions_.fetch_add(1) != 0) return;  // counted; a second answer would throw here
    promise_->set_value(Done{std::move(r), MsBetween(received_at, Clock::now()), std::string(log_tail()),
                             observations(), received_at});
  }
  std::shared_ptr<std::promise<Done>> promise_;
  std::atomic<int> completions_{0};
};

// One Invoke() in flight.
struct Call {
  std::string request_id;
  std::future<Done> future;
  std::shared_ptr<TestContext> ctx;  // for its completion count; kept by the test

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
  void TearDown() override {
    StopAll();
    // The launcher contract: every process goes back through Release(), none is destroyed by
    // the scheduler itself.
    EXPECT_EQ(launcher_.released(), launcher_.launches()) << "a process was never given back to the launcher";
    EXPECT_EQ(launcher_.destroyed_unreleased(), 0u);
  }

  // Stops the loops and shuts the scheduler down (once).
  void StopAll() {
    if (stopped_) return;
    stopped_ = true;
    launcher_.ReleaseLaunches();  // Shutdown() waits for every launch under way
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

  // concurrency.max 1, timeout 1 s, an instance that takes 0.5 s to initialise and then hangs.
  catalog::ConfigPtr OneSlowHangingInstance() {
    FakeScript slow_init_hang;
    slow_init_hang.init_delay = std::chrono::milliseconds(500);
    slow_init_hang.action = FakeScript::Action::kHang;
    launcher_.SetScript(slow_init_hang);
    return Fn("1", [](manifest::Manifest& m) {
      m.concurrency.max = 1;
      m.timeout_s = 1;
    });
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
    call.ctx = std::make_shared<TestContext>(fn, std::move(req), std::move(promise));
    sched().Invoke(call.ctx);
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

  // Returns once every loop has run what was queued on it when called (twice over, so work
  // that queued more work has run too).
  void DrainLoops() {
    for (int round = 0; round < 2; ++round) {
      for (size_t i = 0; i < loops_->size(); ++i) {
        std::promise<void> ran;
        boost::asio::post(loops_->loop(i), [&ran] { ran.set_value(); });
        ran.get_future().wait();
      }
    }
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

// ---- the request context ------------------------------------------------------------------------

TEST_F(SchedulerTest, AContextComesBackWithWhatTheSchedulerObservedColdThenWarm) {
  FakeScript script;
  script.init_delay = 500ms;
  script.delay = 100ms;
  script.peak_memory_bytes = 64ull << 20;
  launcher_.SetScript(script);
  auto fn = Fn();
  Done cold = Run(fn, "{}");
  ASSERT_EQ(cold.result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  Done warm = Run(fn, "{}");
  ASSERT_EQ(warm.result.outcome, Outcome::kSuccess);

  for (const Done* d : {&cold, &warm}) {
    const auto& o = d->obs;
    EXPECT_EQ(o.outcome, Outcome::kSuccess);
    EXPECT_LE(d->received_at, o.queued_at);
    EXPECT_LE(o.queued_at, o.started_at);
    EXPECT_LE(o.started_at, o.finished_at);
    EXPECT_DOUBLE_EQ(o.queue_wait_ms, RequestContext::MsBetween(o.queued_at, o.started_at));
    EXPECT_GE(o.duration_ms, 95) << "the handler takes 100 ms";
    EXPECT_LE(o.duration_ms, RequestContext::MsBetween(o.started_at, o.finished_at));
    EXPECT_EQ(o.max_memory_used_mb, 64u);
  }
  EXPECT_TRUE(cold.obs.cold);
  EXPECT_GE(cold.obs.init_ms, 495) << "the runtime takes 500 ms to ask for its first event";
  EXPECT_GE(cold.obs.queue_wait_ms, cold.obs.init_ms) << "the cold request waited for the whole init";
  EXPECT_FALSE(warm.obs.cold);
  EXPECT_EQ(warm.obs.init_ms, 0);
  EXPECT_LT(warm.obs.queue_wait_ms, 250) << "the warm request waited for no instance";
}

TEST_F(SchedulerTest, AContextThrottledInTheQueueNeverStartedAndWaitedItsWholeTimeout) {
  auto fn = OneSlowHangingInstance();
  Call running = Start(fn, "first"), queued = Start(fn, "second");
  Done q = queued.Get();
  ASSERT_EQ(q.result.outcome, Outcome::kThrottled);
  EXPECT_EQ(q.obs.outcome, Outcome::kThrottled);
  EXPECT_EQ(q.obs.started_at, RequestContext::Clock::time_point{});
  EXPECT_FALSE(q.obs.cold);
  EXPECT_EQ(q.obs.duration_ms, 0);
  EXPECT_GE(q.obs.queue_wait_ms, 950) << "its timeout is 1 s";
  EXPECT_DOUBLE_EQ(q.obs.queue_wait_ms, RequestContext::MsBetween(q.obs.queued_at, q.obs.finished_at));

  Done r = running.Get();
  EXPECT_EQ(r.obs.outcome, Outcome::kTimeout);
  EXPECT_TRUE(r.obs.cold);
  EXPECT_GE(r.obs.duration_ms, 1000) << "it ran until its deadline";
}

// The deadline timer and the runtime's response land on the instance's loop within a
// millisecond of each other, in either order: each request is finished once, by whichever came
// first, and the other finds nothing to finish.
TEST_F(SchedulerTest, AResponseRacingItsDeadlineFinishesTheContextExactlyOnce) {
  FakeScript on_the_deadline;
  on_the_deadline.delay = 1000ms;  // the timeout
  launcher_.SetScript(on_the_deadline);
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.timeout_s = 1;
    m.concurrency.max = 4;
  });
  std::vector<Call> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(Start(fn, "p" + std::to_string(i)));
  for (Call& c : calls) {
    Done d = c.Get();
    EXPECT_TRUE(d.result.outcome == Outcome::kSuccess || d.result.outcome == Outcome::kTimeout)
        << d.result.error_type << " " << d.result.body;
  }
  // Whatever lost the race has arrived by now: each fake has answered or been killed, and each
  // loop has run what that queued.
  for (size_t i = 0; i < launcher_.launches(); ++i) {
    if (launcher_.Killed(i)) {
      EXPECT_TRUE(launcher_.WaitEnded(i, 2s));
    }
  }
  ASSERT_TRUE(WaitUntil([&] {
    Counts c = sched().CountsFor("echo");
    return c.busy == 0 && c.starting == 0;
  }));
  DrainLoops();
  for (Call& c : calls) EXPECT_EQ(c.ctx->completions(), 1) << c.request_id;
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

TEST_F(SchedulerTest, AManifestsValueOfAFixedVariableReplacesTheDefaultOnce) {
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.environment["TZ"] = "Asia/Tokyo";
    m.environment["HOME"] = "/var/task";
  });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  const auto& env = specs[0].env;
  for (const char* name : {"TZ=", "HOME=", "LANG="}) {
    EXPECT_EQ(std::count_if(env.begin(), env.end(), [name](const std::string& e) { return e.rfind(name, 0) == 0; }), 1)
        << name;
  }
  EXPECT_EQ(EnvValue(env, "TZ"), "Asia/Tokyo");
  EXPECT_EQ(EnvValue(env, "HOME"), "/var/task");
  EXPECT_EQ(EnvValue(env, "LANG"), "C.UTF-8");
}

TEST_F(SchedulerTest, ThePythonLaunchSpecCarriesTheLambdaEnvironmentTheLimitsAndTheSharedRuntime) {
  auto fn = Fn("1", [](manifest::Manifest& m) { m.environment["GREETING"] = "hello"; });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  const auto& s = specs[0];
  EXPECT_EQ(s.code_dir, kCodeDir);
  EXPECT_EQ(s.runtime_dir, std::string(kRuntimesDir) + "/python3");
  EXPECT_EQ(s.memory_bytes, 256ull << 20);
  EXPECT_EQ(s.pids_max, 1024u);
  EXPECT_EQ(s.tmp_bytes, 512ull << 20);
  EXPECT_EQ(s.network, sandbox::Network::kEgress);
  EXPECT_TRUE(s.mounts.empty());
  EXPECT_EQ(s.label, "echo/1");
  EXPECT_EQ(EnvValue(s.env, "_HANDLER"), "app.handler");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_NAME"), "echo");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_VERSION"), "1");
  EXPECT_EQ(EnvValue(s.env, "AWS_LAMBDA_FUNCTION_TIMEOUT"), "3");
  EXPECT_EQ(EnvValue(s.env, "HOME"), "/tmp");
  EXPECT_EQ(EnvValue(s.env, "TMPDIR"), "/tmp");
  EXPECT_EQ(EnvValue(s.env, "GREETING"), "hello");
  // What every launch shares (a launcher may give it to an instance before its function is known).
  for (const std::string& e : FixedEnvironment(options_)) {
    EXPECT_NE(std::find(s.env.begin(), s.env.end(), e), s.env.end()) << e;
  }
  // Where the instance sees its code and how it reaches its Runtime API is the launcher's to say.
  EXPECT_FALSE(HasEnv(s.env, "AWS_LAMBDA_RUNTIME_API"));
  EXPECT_FALSE(HasEnv(s.env, "LAMBDA_TASK_ROOT"));
  EXPECT_FALSE(HasEnv(s.env, "LAMBDA_RUNTIME_DIR"));
  // The runtime reached the scheduler through the socket the launcher made and named.
  std::string api = EnvValue(launcher_.env(0), "AWS_LAMBDA_RUNTIME_API");
  EXPECT_EQ(api, launcher_.runtime_api(0));
  EXPECT_EQ(api.rfind("127.0.0.1:", 0), 0u) << api;
}

TEST_F(SchedulerTest, AProvidedRuntimeHasNoRuntimeDirectory) {
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.runtime = "provided";
    m.handler = "bootstrap";
  });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].code_dir, kCodeDir);
  EXPECT_EQ(specs[0].runtime_dir, "");
  EXPECT_EQ(EnvValue(specs[0].env, "_HANDLER"), "bootstrap");
}

TEST_F(SchedulerTest, TheManifestsNetworkStorageAndFileSystemsReachTheLaunchSpec) {
  auto fn = Fn("1", [](manifest::Manifest& m) {
    m.network = manifest::Network::kNone;
    m.ephemeral_storage_mb = 2048;
    m.filesystems = {{"/srv/shared", "/mnt/shared", true}, {"/srv/scratch", "/mnt/scratch", false}};
  });
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 1u);
  const auto& s = specs[0];
  EXPECT_EQ(s.network, sandbox::Network::kNone);
  EXPECT_EQ(s.tmp_bytes, 2048ull << 20);
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[0].host, "/srv/shared");
  EXPECT_EQ(s.mounts[0].target, "/mnt/shared");
  EXPECT_TRUE(s.mounts[0].read_only);
  EXPECT_EQ(s.mounts[1].host, "/srv/scratch");
  EXPECT_EQ(s.mounts[1].target, "/mnt/scratch");
  EXPECT_FALSE(s.mounts[1].read_only);
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
  EXPECT_EQ(launcher_.launches(), 2u) << "the third request waited for a free instance";
}

TEST_F(SchedulerTest, AQueuedRequestThatFindsNoFreeInstanceWithinTheTimeoutIsThrottled) {
  // The instance takes 0.5 s to initialise, so the first request's 1 s deadline ends half a
  // second after the second request has waited its whole 1 s timeout in the queue.
  auto fn = OneSlowHangingInstance();
  Call running = Start(fn, "first"), queued = Start(fn, "second");
  Done q = queued.Get();
  EXPECT_EQ(q.result.outcome, Outcome::kThrottled);
  EXPECT_EQ(q.result.error_type, "TooManyRequestsException");
  EXPECT_NE(q.result.body.find("concurrency.max"), std::string::npos) << q.result.body;
  EXPECT_GE(q.ms, 950) << "not before its deadline";
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
  EXPECT_TRUE(c.Ready()) << "a full queue answers before Invoke returns";
  Done dc = c.Get();
  EXPECT_EQ(dc.result.outcome, Outcome::kThrottled);
  EXPECT_EQ(dc.result.error_type, "TooManyRequestsException");
  EXPECT_NE(dc.result.body.find("queue is full"), std::string::npos) << dc.result.body;
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

TEST_F(SchedulerTest, ARuntimeThatExitsBeforeItIsReadyFailsTheRequestAndSaysSoInTheLog) {
  FakeScript gone;
  gone.exit_at_start = true;
  gone.exit_code = 3;
  gone.init_stderr_lines = {"bootstrap: cannot open config"};
  launcher_.SetScript(gone);
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kCrash);
  EXPECT_EQ(d.result.error_type, "Runtime.ExitError");
  EXPECT_NE(d.result.body.find("exit status 3"), std::string::npos) << d.result.body;
  // The log says it too (the request's caller may not be the one reading the log).
  EXPECT_TRUE(WaitUntil([&] {
    return HasLine(logs_.Tail("echo", 100), "INIT_REPORT", "Status: error\tError Type: Runtime.ExitError") &&
           HasLine(logs_.Tail("echo", 100), "nimbus: the runtime exited before it was ready (exit status 3)",
                   "cannot open config");
  }, 2s));
}

TEST_F(SchedulerTest, TheLastOutputOfARuntimeThatExitsIncludesAnUnterminatedLastLine) {
  FakeScript gone;
  gone.exit_at_start = true;
  gone.init_stderr_lines = {"first line"};
  gone.init_stderr_unterminated = "final words without newline";
  launcher_.SetScript(gone);
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.error_type, "Runtime.ExitError");
  EXPECT_NE(d.result.body.find("last output: final words without newline"), std::string::npos) << d.result.body;
  EXPECT_TRUE(WaitUntil([&] {
    return HasLine(logs_.Tail("echo", 100), "nimbus: the runtime exited before it was ready", "final words without newline");
  }, 2s));
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
  EXPECT_GE(MsSince(idle_since), 900) << "not before keep_alive";
  // The pool drops the instance first; its loop then logs why and stops the process.
  EXPECT_TRUE(WaitUntil([&] { return HasLine(logs_.Tail("echo", 100), "nimbus: instance", "idle (keep_alive)"); }, 1s));
  EXPECT_TRUE(launcher_.WaitEnded(0, 1s));
  EXPECT_TRUE(launcher_.Killed(0));
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
  EXPECT_EQ(launcher_.specs()[1].label, "echo/2");
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
    const std::string& tail = d->log_tail;
    EXPECT_NE(tail.find("START RequestId: "), std::string::npos) << tail;
    EXPECT_NE(tail.find("hello from "), std::string::npos) << tail;
    EXPECT_NE(tail.find("careful in "), std::string::npos) << tail;
    EXPECT_NE(tail.find("END RequestId: "), std::string::npos) << tail;
    EXPECT_NE(tail.find("REPORT RequestId: "), std::string::npos) << tail;
  }
  EXPECT_NE(dc.log_tail.find(cold.request_id), std::string::npos);
  EXPECT_EQ(dc.log_tail.find(warm.request_id), std::string::npos);
  EXPECT_NE(dw.log_tail.find(warm.request_id), std::string::npos);
}

TEST_F(SchedulerTest, WithoutWantLogTailTheContextCarriesNoLogTail) {
  FakeScript talk;
  talk.stdout_lines = {"hello from {id}"};
  launcher_.SetScript(talk);
  Done d = Run(Fn(), "{}");
  ASSERT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.log_tail, "");
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

// ---- the runtime channel -----------------------------------------------------------------------
// The same state rules as over HTTP, with the runtime speaking docs/runtime-channel.md: its
// response and next request arrive as one frame pair, and refusals come back as X frames.

FakeScript OverTheChannel(FakeScript s = {}) {
  s.channel = true;
  return s;
}

TEST_F(SchedulerTest, OverTheChannelAWarmInstanceServesBackToBackRequestsWithEveryEventField) {
  launcher_.SetScript(OverTheChannel());
  auto fn = Fn();
  int64_t before = EpochMs();
  for (int i = 1; i <= 5; ++i) {
    Call c = Start(fn, "{\"n\":" + std::to_string(i) + "}");
    Done d = c.Get();
    EXPECT_EQ(d.result.outcome, Outcome::kSuccess) << d.result.body;
    EXPECT_EQ(d.result.body, "{\"n\":" + std::to_string(i) + "}");
    auto ev = launcher_.events().back();
    EXPECT_EQ(ev.request_id, c.request_id);
    EXPECT_EQ(ev.function_arn, "arn:aws:lambda:local:000000000000:function:echo");
    EXPECT_NE(ev.trace_id.find(c.request_id), std::string::npos) << ev.trace_id;
    EXPECT_GE(ev.deadline_ms, before + 3000);
  }
  EXPECT_EQ(launcher_.launches(), 1u);
  EXPECT_TRUE(launcher_.stray_answers().empty());
  EXPECT_EQ(EnvValue(launcher_.env(0), "NIMBUS_RUNTIME_FD"), "4");
}

TEST_F(SchedulerTest, OverTheChannelAFunctionErrorCarriesItsTypeAndTheInstanceStaysWarm) {
  FakeScript err = OverTheChannel();
  err.action = FakeScript::Action::kError;
  launcher_.SetScript(err);
  auto fn = Fn();
  for (int i = 0; i < 2; ++i) {
    Done d = Run(fn, "{}");
    EXPECT_EQ(d.result.outcome, Outcome::kFunctionError);
    EXPECT_EQ(d.result.error_type, "ValueError");
    EXPECT_EQ(d.result.body, R"({"errorMessage":"boom","errorType":"ValueError"})");
  }
  EXPECT_EQ(launcher_.launches(), 1u);
}

TEST_F(SchedulerTest, OverTheChannelAnInitErrorFailsTheRequestWithTheRuntimesType) {
  FakeScript init = OverTheChannel();
  init.init_error = true;
  launcher_.SetScript(init);
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kFunctionError);
  EXPECT_EQ(d.result.error_type, "Runtime.ImportModuleError");
  EXPECT_NE(d.result.body.find("Unable to import module"), std::string::npos) << d.result.body;
}

TEST_F(SchedulerTest, OverTheChannelAResponseForAnUnknownRequestIsRefusedAndTheRealOneServed) {
  FakeScript wrong = OverTheChannel();
  wrong.wrong_id_first = true;
  launcher_.SetScript(wrong);
  Done d = Run(Fn(), "still fine");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.body, "still fine");
  auto stray = launcher_.stray_answers();
  ASSERT_EQ(stray.size(), 1u);
  EXPECT_EQ(stray[0].status, 400);
  EXPECT_EQ(stray[0].body, "InvalidRequestID: Invalid request ID");
}

TEST_F(SchedulerTest, OverTheChannelAResponseOverSixMebibytesFailsItsInvocationAndTheInstanceGoesOn) {
  launcher_.SetScript(OverTheChannel());
  auto fn = Fn();
  std::string big(runtimeapi::kMaxResponseBytes + 1, 'x');
  Done d = Run(fn, big);  // the fake echoes it
  EXPECT_EQ(d.result.outcome, Outcome::kFunctionError);
  EXPECT_EQ(d.result.error_type, "Function.ResponseSizeTooLarge");
  Done next = Run(fn, "small");
  EXPECT_EQ(next.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(next.result.body, "small");
  EXPECT_EQ(launcher_.launches(), 1u);
  auto stray = launcher_.stray_answers();
  ASSERT_EQ(stray.size(), 1u);
  EXPECT_EQ(stray[0].status, 413);
}

TEST_F(SchedulerTest, OverTheChannelACrashMidInvocationIsAnExitErrorAndTheNextRequestGetsANewInstance) {
  FakeScript crash = OverTheChannel();
  crash.action = FakeScript::Action::kCrash;
  crash.exit_code = 3;
  launcher_.SetScript(crash);
  auto fn = Fn();
  Done d = Run(fn, "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kCrash);
  EXPECT_EQ(d.result.error_type, "Runtime.ExitError");
  launcher_.SetScript(OverTheChannel());
  Done next = Run(fn, "again");
  EXPECT_EQ(next.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(launcher_.launches(), 2u);
}

TEST_F(SchedulerTest, OverTheChannelAHangingInvocationTimesOutAtItsDeadline) {
  FakeScript hang = OverTheChannel();
  hang.action = FakeScript::Action::kHang;
  launcher_.SetScript(hang);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.timeout_s = 1; });
  Done d = Run(fn, "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kTimeout);
  EXPECT_GE(d.ms, 950);
  EXPECT_LT(d.ms, 2000);
  EXPECT_TRUE(launcher_.Killed(0));
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

// Shutdown fails the running request and the queued one while the running one's response is on
// its way; nothing finishes them a second time, not the response arriving after the loops
// stopped, nor the scheduler's destruction.
TEST_F(SchedulerTest, ShutdownFinishesRunningAndQueuedContextsExactlyOnce) {
  FakeScript slow;
  slow.delay = 300ms;
  launcher_.SetScript(slow);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Call running = Start(fn, "running"), queued = Start(fn, "queued");
  ASSERT_TRUE(WaitUntil([&] {
    Counts c = sched().CountsFor("echo");
    return c.busy == 1 && c.queued == 1;
  }));
  StopAll();
  for (Call* c : {&running, &queued}) {
    ASSERT_TRUE(c->Ready()) << c->request_id;
    Done d = c->Get();
    EXPECT_EQ(d.result.outcome, Outcome::kShutdown);
    EXPECT_EQ(d.obs.outcome, Outcome::kShutdown);
  }
  EXPECT_NE(running.ctx->observations().started_at, RequestContext::Clock::time_point{});
  EXPECT_EQ(queued.ctx->observations().started_at, RequestContext::Clock::time_point{});
  EXPECT_TRUE(launcher_.Ended(0));
  sched_.reset();
  loops_.reset();
  EXPECT_EQ(running.ctx->completions(), 1);
  EXPECT_EQ(queued.ctx->completions(), 1);
}

// Regression: Shutdown() left every live Instance in pools_, and Pool::instances and
// Instance::pool (both shared_ptr) point at each other, so destroying the Scheduler leaked each
// instance and its pool together with the instance's Runtime API listening socket, which kept
// accepting.
TEST_F(SchedulerTest, ShutdownReleasesEveryInstanceSoNoRuntimeApiPortStaysOpen) {
  ASSERT_EQ(Run(Fn(), "{}").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  std::string api = launcher_.runtime_api(0);
  ASSERT_TRUE(CanConnect(api));
  StopAll();
  EXPECT_TRUE(launcher_.Ended(0));
  sched_.reset();
  loops_.reset();  // drops whatever the stopped loops still held
  EXPECT_FALSE(CanConnect(api)) << "the Runtime API of a shut-down instance still accepts connections";
}

// ---- the /next state machine -------------------------------------------------------------------

// Regression: a GET /next sent to an idle instance's Runtime API by another connection pushed
// the instance onto its pool's idle list a second time; of the concurrent invokes that followed,
// the second dispatched to the same instance again, found its parked connection gone, and the
// daemon crashed (null `this` in http::Connection::Reply). The fake runtime here asks /next
// again when its parked one is answered with an error or closed, as a resilient runtime client
// does, so the instance stays alive through the whole exchange.
TEST_F(SchedulerTest, AForeignNextOnAnIdleInstanceThenConcurrentInvokesAnswersEveryInvokeWithoutACrash) {
  FakeScript resilient;
  resilient.retry_next = true;
  launcher_.SetScript(resilient);
  auto fn = Fn();
  ASSERT_EQ(Run(fn, "warm").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));

  RawClient foreign(launcher_.runtime_api(0));
  ASSERT_TRUE(foreign.connected());
  ASSERT_TRUE(foreign.Next());
  // The newer /next replaced the runtime's parked one; the runtime asked again and replaced
  // the foreign one in turn, which is told so.
  Answer replaced = foreign.Read();
  EXPECT_EQ(replaced.status, 403) << replaced.body;
  EXPECT_NE(replaced.body.find("InvalidStateTransition"), std::string::npos) << replaced.body;
  ASSERT_TRUE(WaitIdle(1));

  std::vector<Call> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(Start(fn, "concurrent " + std::to_string(i)));
  for (int i = 0; i < 4; ++i) {
    Done d = calls[i].Get();
    EXPECT_EQ(d.result.outcome, Outcome::kSuccess) << d.result.error_type << " " << d.result.body;
    EXPECT_EQ(d.result.body, "concurrent " + std::to_string(i));
  }
  auto stray = launcher_.stray_answers();
  ASSERT_GE(stray.size(), 1u);
  EXPECT_EQ(stray[0].process, 0u);
  EXPECT_EQ(stray[0].status, 403) << "the displaced /next should be answered, not dropped";
  EXPECT_FALSE(launcher_.Ended(0));
  EXPECT_EQ(Run(fn, "after").result.body, "after");
}

// A foreign /next that displaces a runtime which does not come back: the runtime's /next is
// answered 403 and it exits (as AWS's runtime clients do), the instance ends, the foreign
// connection is told so, and the next requests get a fresh instance.
TEST_F(SchedulerTest, AForeignNextThatDisplacesTheRuntimeEndsTheInstanceAndTheNextInvokesGetAFreshOne) {
  auto fn = Fn();
  ASSERT_EQ(Run(fn, "warm").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  RawClient foreign(launcher_.runtime_api(0));
  ASSERT_TRUE(foreign.Next());
  Answer stopped = foreign.Read();
  EXPECT_EQ(stopped.status, 410) << stopped.body;
  EXPECT_NE(stopped.body.find("InstanceStopped"), std::string::npos) << stopped.body;
  EXPECT_TRUE(launcher_.Ended(0));
  ASSERT_EQ(launcher_.stray_answers().size(), 1u);
  EXPECT_EQ(launcher_.stray_answers()[0].status, 403);

  std::vector<Call> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(Start(fn, std::to_string(i)));
  for (int i = 0; i < 4; ++i) {
    Done d = calls[i].Get();
    EXPECT_EQ(d.result.outcome, Outcome::kSuccess) << d.result.error_type << " " << d.result.body;
    EXPECT_EQ(d.result.body, std::to_string(i));
  }
  for (const auto& e : launcher_.events()) {
    if (e.body != "warm") {
      EXPECT_NE(e.process, 0u) << "no event may go to the ended instance";
    }
  }
}

TEST_F(SchedulerTest, ANextFromAnotherConnectionWhileAnInvocationRunsIsRefusedAndTheInvocationGoesOn) {
  FakeScript slow;
  slow.delay = 500ms;
  launcher_.SetScript(slow);
  auto fn = Fn();
  Call c = Start(fn, "running");
  ASSERT_TRUE(WaitUntil([&] { return launcher_.events().size() == 1; }));
  RawClient foreign(launcher_.runtime_api(0));
  ASSERT_TRUE(foreign.Next());
  Answer a = foreign.Read();
  EXPECT_EQ(a.status, 403) << a.body;
  EXPECT_NE(a.body.find("InvalidStateTransition"), std::string::npos) << a.body;
  // The refusal does not disclose the running request's id to whoever asked.
  EXPECT_EQ(a.body.find(c.request_id), std::string::npos) << a.body;
  Done d = c.Get();
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.body, "running");
}

// Regression companion: a parked /next connection that closes while the instance is idle took
// the next dispatch with it (the event was written to a dead socket and the request timed
// out). Now the instance leaves the idle list when its connection closes and serves again once
// its runtime asks /next anew; the request waiting meanwhile is not lost.
TEST_F(SchedulerTest, AnIdleInstanceWhoseParkedConnectionClosesGetsNoDispatchUntilItsRuntimeAsksAgain) {
  FakeScript flaky;
  flaky.next_timeout = 300ms;    // gives up each /next after 300 ms
  flaky.reconnect_after = 700ms;  // and asks again 700 ms later
  launcher_.SetScript(flaky);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  ASSERT_EQ(Run(fn, "first").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));
  ASSERT_TRUE(WaitUntil([&] {
    Counts c = sched().CountsFor("echo");
    return c.idle == 0 && c.starting == 1;
  })) << "the instance should leave the idle list when its parked connection closes";

  Done d = Run(fn, "second");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess) << d.result.error_type << " " << d.result.body;
  EXPECT_EQ(d.result.body, "second");
  EXPECT_LT(d.ms, 2500) << "the request should run when the runtime comes back, not time out";
  EXPECT_EQ(launcher_.launches(), 1u);
  ASSERT_EQ(launcher_.events().size(), 2u);
  EXPECT_EQ(launcher_.events()[1].process, 0u);
}

// ---- init timeout ------------------------------------------------------------------------------

TEST_F(SchedulerTest, AColdStartLogsWhereItsTimeWentAndAWarmRequestLogsNoInitLine) {
  FakeScript slow_init;
  slow_init.init_delay = 200ms;
  launcher_.SetScript(slow_init);
  auto fn = Fn();
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  ASSERT_EQ(Run(fn, "{}").result.outcome, Outcome::kSuccess);
  std::vector<LogLine> init;
  for (auto& l : logs_.Tail("echo", 100)) {
    if (l.text.rfind("INIT_REPORT", 0) == 0) init.push_back(l);
  }
  ASSERT_EQ(init.size(), 1u);
  const std::string& line = init[0].text;
  EXPECT_NE(line.find("\tPhase: init\tStatus: success\tQueue Wait: "), std::string::npos) << line;
  // The runtime's 200 ms start-up is runtime init, not spawn, and counts in Init Duration.
  auto field = [&](std::string_view name) {
    size_t at = line.find(name);
    return at == std::string::npos ? -1.0 : std::atof(line.c_str() + at + name.size());
  };
  EXPECT_GE(field("Runtime Init: "), 195.0) << line;
  EXPECT_LT(field("Spawn: "), 100.0) << line;
  EXPECT_GE(field("Queue Wait: "), 0.0) << line;
  EXPECT_LT(field("Queue Wait: "), 100.0) << line;  // the launch began as soon as it was asked for
  EXPECT_NEAR(field("Init Duration: "), field("Spawn: ") + field("Runtime Init: "), 0.02) << line;
}

TEST_F(SchedulerTest, AnInstanceThatNeverCallsNextIsStoppedAtTheInitTimeoutAndItsCallerGetsAnInitError) {
  options_.init_timeout = 500ms;
  FakeScript stuck;
  stuck.never_ready = true;
  stuck.init_stderr_lines = {"loading the model from /var/task/model.bin"};
  launcher_.SetScript(stuck);
  auto fn = Fn();  // timeout 3 s: the init timeout comes first
  Done d = Run(fn, "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kFunctionError);
  EXPECT_EQ(d.result.error_type, "Runtime.InitError");
  EXPECT_NE(d.result.body.find("did not call GET /2018-06-01/runtime/invocation/next within 0.5 s"),
            std::string::npos)
      << d.result.body;
  EXPECT_NE(d.result.body.find("loading the model from /var/task/model.bin"), std::string::npos) << d.result.body;
  EXPECT_GE(d.ms, 450);
  EXPECT_LT(d.ms, 2000);
  EXPECT_TRUE(launcher_.WaitEnded(0, 2s));
  EXPECT_TRUE(launcher_.Killed(0));
  EXPECT_TRUE(WaitUntil([&] { return sched().LiveInstances() == 0; }));
  EXPECT_TRUE(HasLine(logs_.Tail("echo", 100), "INIT_REPORT", "Status: timeout"));

  // The pool serves again: the next request starts a fresh instance.
  launcher_.SetScript(FakeScript{});
  Done next = Run(fn, "again");
  EXPECT_EQ(next.result.outcome, Outcome::kSuccess) << next.result.error_type << " " << next.result.body;
  EXPECT_EQ(next.result.body, "again");
  EXPECT_EQ(launcher_.launches(), 2u);
  EXPECT_EQ(launcher_.events().back().process, 1u);
}

// Regression: an instance that answered counted as capacity until its next /next; one that
// never asked again held the requests queued behind it for ever.
TEST_F(SchedulerTest, AnInstanceThatAnswersButNeverAsksAgainIsStoppedAndTheQueueMovesOn) {
  options_.init_timeout = 400ms;
  FakeScript silent;
  silent.silent_after_answer = true;
  launcher_.SetScript(silent);
  auto fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Done first = Run(fn, "one");
  EXPECT_EQ(first.result.outcome, Outcome::kSuccess);
  launcher_.SetScript(FakeScript{});
  Done second = Run(fn, "two");  // waits for the silent instance, then gets a fresh one
  EXPECT_EQ(second.result.outcome, Outcome::kSuccess) << second.result.error_type << " " << second.result.body;
  EXPECT_EQ(second.result.body, "two");
  EXPECT_GE(second.ms, 300);
  EXPECT_LT(second.ms, 2500);
  EXPECT_TRUE(launcher_.WaitEnded(0, 2s));
  EXPECT_TRUE(launcher_.Killed(0));
  EXPECT_EQ(launcher_.launches(), 2u);
}

// Regression: `nimbus rm` then a new deploy numbers versions from 1 again; the retired pool of
// the old version 1 was found under the same key and started instances on the deleted code.
TEST_F(SchedulerTest, AFunctionDeletedAndDeployedAgainRunsItsNewCodeUnderTheSameVersion) {
  FakeScript slow;
  slow.delay = 400ms;
  launcher_.SetScript(slow);
  auto old_fn = Fn("1", [](manifest::Manifest& m) { m.concurrency.max = 1; });
  Call busy = Start(old_fn, "old");  // the old instance is busy while the function is deleted
  ASSERT_TRUE(WaitUntil([&] { return launcher_.events().size() == 1; }));
  sched().RetireVersions("echo", {});
  auto fresh = std::make_shared<catalog::FunctionConfig>(*old_fn);
  fresh->code_dir = "/srv/code/new-sha";
  fresh->code_sha256 = "new-sha";
  launcher_.SetScript(FakeScript{});
  Done second = Run(fresh, "new");
  EXPECT_EQ(busy.Get().result.outcome, Outcome::kSuccess);
  EXPECT_EQ(second.result.outcome, Outcome::kSuccess) << second.result.error_type << " " << second.result.body;
  auto specs = launcher_.specs();
  ASSERT_EQ(specs.size(), 2u) << "the new code needs an instance of its own";
  EXPECT_EQ(specs.back().code_dir, "/srv/code/new-sha");
  EXPECT_EQ(launcher_.events().back().process, 1u) << "the new version ran on the old code's instance";
}

TEST_F(SchedulerTest, AfterAnInitTimeoutARedeployWithFixedCodeServesTheNewVersion) {
  options_.init_timeout = 300ms;
  FakeScript stuck;
  stuck.never_ready = true;
  launcher_.SetScript(stuck);
  auto v1 = Fn("1"), v2 = Fn("2");
  EXPECT_EQ(Run(v1, "{}").result.error_type, "Runtime.InitError");
  sched().RetireVersions("echo", {"2"});
  launcher_.SetScript(FakeScript{});
  Done d = Run(v2, "fixed");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess) << d.result.error_type << " " << d.result.body;
  EXPECT_EQ(d.result.version, "2");
  EXPECT_EQ(d.result.body, "fixed");
}

// ---- Runtime API peer checks -------------------------------------------------------------------

// Connections from a uid other than the instance's are closed before anything is read, so a
// local process cannot take (or steal) an instance's events; the instance keeps serving.
TEST_F(SchedulerTest, WithPeerChecksARuntimeApiConnectionFromAnotherUidIsClosedUnreadAndLoggedOnce) {
  if (geteuid() != 0) GTEST_SKIP() << "a socket owned by another uid needs root (setfsuid)";
  FakeScript checked;
  checked.check_peer_uid = true;
  checked.uid = static_cast<int>(geteuid());  // the fake runtime's sockets are ours
  launcher_.SetScript(checked);
  auto fn = Fn();
  ASSERT_EQ(Run(fn, "own").result.outcome, Outcome::kSuccess);
  ASSERT_TRUE(WaitIdle(1));

  for (int attempt = 0; attempt < 2; ++attempt) {
    RawClient foreign(launcher_.runtime_api(0), /*fsuid=*/65534);
    ASSERT_TRUE(foreign.connected());
    foreign.Next();
    Answer a = foreign.Read(3s);
    EXPECT_EQ(a.status, 0) << "the connection should be closed without an answer, got " << a.status << " " << a.body;
  }
  Done d = Run(fn, "still mine");
  EXPECT_EQ(d.result.outcome, Outcome::kSuccess);
  EXPECT_EQ(d.result.body, "still mine");
  EXPECT_EQ(launcher_.launches(), 1u);
  EXPECT_TRUE(launcher_.stray_answers().empty()) << "the runtime's parked /next should not be touched";
  auto all = logs_.Tail("echo", 1000);
  size_t refusals = std::count_if(all.begin(), all.end(), [](const LogLine& l) {
    return l.stream == LogStream::kPlatform && l.text.find("refused a Runtime API connection") != std::string::npos;
  });
  EXPECT_EQ(refusals, 1u);
  EXPECT_TRUE(HasLine(all, "nimbus: refused", "uid 65534"));
}

// The runtime's own connection is refused when its socket's owner is not the uid the launcher
// reported: the runtime sees its connection closed and exits, and the caller is told.
TEST_F(SchedulerTest, WithPeerChecksARuntimeWhoseSocketsAreNotTheInstancesUidIsRefusedAndTheCallerGetsAnError) {
  FakeScript mismatched;
  mismatched.check_peer_uid = true;
  mismatched.uid = static_cast<int>(geteuid()) + 4242;  // not who owns the fake's sockets
  launcher_.SetScript(mismatched);
  Done d = Run(Fn(), "{}");
  EXPECT_EQ(d.result.outcome, Outcome::kCrash);
  EXPECT_EQ(d.result.error_type, "Runtime.ExitError") << d.result.body;
  EXPECT_TRUE(launcher_.events().empty());
  EXPECT_TRUE(HasLine(logs_.Tail("echo", 100), "nimbus: refused",
                      "the instance runs as uid " + std::to_string(geteuid() + 4242)));
}

// ---- the HTTP core's handler boundary ----------------------------------------------------------

TEST(HttpCoreTest, AnExceptionFromARequestHandlerIsAnswered500AndTheLoopServesOn) {
  http::LoopGroup loops(1);
  http::Listener listener(
      [](const http::ConnectionPtr& conn, http::Request&& req) {
        if (req.target() == "/throw") throw std::runtime_error("handler bug");
        conn->Reply(http::MakeResponse(req, http::bhttp::status::ok, "fine", "text/plain"));
      },
      http::ServerOptions{});
  ASSERT_TRUE(listener.Listen(loops, {boost::asio::ip::make_address_v4("127.0.0.1"), 0}).ok());
  loops.Start();
  std::string addr = "127.0.0.1:" + std::to_string(listener.port());
  {
    RawClient c(addr);
    ASSERT_TRUE(c.Send("GET", "/throw"));
    Answer a = c.Read();
    EXPECT_EQ(a.status, 500);
    EXPECT_EQ(c.Read(1s).status, 0) << "the connection should close after the 500";
  }
  RawClient c(addr);
  ASSERT_TRUE(c.Send("GET", "/ok"));
  Answer a = c.Read();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "fine");
  listener.Close();
  loops.Stop();
}

TEST(HttpCoreTest, AnExceptionEscapingAPostedTaskDoesNotEndItsLoop) {
  http::LoopGroup loops(1);
  loops.Start();
  boost::asio::post(loops.loop(0), [] { throw std::runtime_error("task bug"); });
  std::promise<void> ran;
  boost::asio::post(loops.loop(0), [&ran] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
  loops.Stop();
}

TEST(HttpCoreTest, AnAcceptFilterThatSaysNoClosesTheConnectionBeforeAnythingIsRead) {
  http::LoopGroup loops(1);
  std::atomic<int> handled{0};
  http::ServerOptions options;
  options.accept_filter = [](int fd) { return false; };
  http::Listener listener(
      [&handled](const http::ConnectionPtr& conn, http::Request&& req) {
        handled++;
        conn->Reply(http::MakeResponse(req, http::bhttp::status::ok, "", ""));
      },
      options);
  ASSERT_TRUE(listener.Listen(loops.loop(0), {boost::asio::ip::make_address_v4("127.0.0.1"), 0}).ok());
  loops.Start();
  RawClient c("127.0.0.1:" + std::to_string(listener.port()));
  c.Send("GET", "/");
  EXPECT_EQ(c.Read().status, 0);
  EXPECT_EQ(handled.load(), 0);
  listener.Close();
  loops.Stop();
}

TEST(HttpCoreTest, AnAdoptedListeningSocketIsServed) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  http::LoopGroup loops(1);
  http::Listener listener(
      [](const http::ConnectionPtr& conn, http::Request&& req) {
        conn->Reply(http::MakeResponse(req, http::bhttp::status::ok, "adopted", "text/plain"));
      },
      http::ServerOptions{});
  ASSERT_TRUE(listener.Adopt(loops.loop(0), fd).ok());
  ASSERT_GT(listener.port(), 0);
  loops.Start();
  RawClient c("127.0.0.1:" + std::to_string(listener.port()));
  ASSERT_TRUE(c.Send("GET", "/"));
  EXPECT_EQ(c.Read().body, "adopted");
  listener.Close();
  loops.Stop();

  int not_listening = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  http::Listener other([](const http::ConnectionPtr&, http::Request&&) {}, http::ServerOptions{});
  EXPECT_EQ(other.Adopt(loops.loop(0), not_listening).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace nimbus::scheduler

namespace nimbus::scheduler {
namespace {

// Regression: one instance opened thousands of connections to its own Runtime API and spent the
// daemon's file descriptors, so no other function could start. A listener caps them.
TEST(HttpCoreTest, AListenerAtItsConnectionCapClosesNewConnectionsAndServesTheOpenOnes) {
  http::LoopGroup loops(1);
  http::ServerOptions options;
  options.max_connections = 2;
  http::Listener listener(
      [](const http::ConnectionPtr& conn, http::Request&& req) {
        conn->Reply(http::MakeResponse(req, http::bhttp::status::ok, "fine", "text/plain"));
      },
      options);
  ASSERT_TRUE(listener.Listen(loops.loop(0), {boost::asio::ip::make_address_v4("127.0.0.1"), 0}).ok());
  loops.Start();
  std::string addr = "127.0.0.1:" + std::to_string(listener.port());
  RawClient a(addr), b(addr);
  ASSERT_TRUE(a.Send("GET", "/1"));
  EXPECT_EQ(a.Read().status, 200);
  ASSERT_TRUE(b.Send("GET", "/2"));
  EXPECT_EQ(b.Read().status, 200);
  {
    RawClient third(addr);
    (void)third.Send("GET", "/3");
    EXPECT_EQ(third.Read(2s).status, 0) << "a third connection should be closed unanswered";
  }
  ASSERT_TRUE(a.Send("GET", "/again"));
  EXPECT_EQ(a.Read().status, 200);
  listener.Close();
  loops.Stop();
}

}  // namespace
}  // namespace nimbus::scheduler
