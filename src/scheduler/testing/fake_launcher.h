// A sandbox::Launcher for scheduler tests that starts no processes. Each "process" is a thread
// that speaks the Lambda Runtime API over loopback with a tiny blocking HTTP/1.1 client,
// behaving as a FakeScript says: echo the event, answer late, post an error, fail its init,
// never become ready, crash mid-invocation, hang, or drop its /next connection and come back.
// Like the real launcher, it creates each instance's Runtime API socket (bound to 127.0.0.1,
// listening) and hands it over with TakeRuntimeApiListener() (and, for a FakeScript with
// `channel`, a runtime channel with TakeRuntimeChannel()), and it adds
// AWS_LAMBDA_RUNTIME_API, LAMBDA_TASK_ROOT and LAMBDA_RUNTIME_DIR to the environment its fake
// runtime reads. It records every LaunchSpec as the scheduler sent it, the environment each fake
// got, every event a fake received, every unexpected Runtime API answer, and which processes came
// back through Release(), so tests can assert what the scheduler asked for and what it served.
//
// Threading: as sandbox::Launcher says. The FakeLauncher runs one worker thread: launches
// (creating the socket, pipes and the fake's thread) and releases (kill and join) happen there,
// and `done` is called there. Launch(), Release(), Drain() and every accessor are thread-safe. A
// FakeProcess follows sandbox::Process: owned and used by one loop; its thread shares only a
// mutex-guarded state object with it. Kill() makes the thread stop promptly (it shuts down the
// thread's socket and wakes its sleeps).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "sandbox/launcher.h"

namespace nimbus::scheduler::fake {

// What a fake runtime does. "{id}" in a printed line is replaced by the request id.
struct FakeScript {
  enum class Action {
    kEcho,   // POST /response with the event as body
    kError,  // POST /error with {"errorMessage":"boom","errorType":"ValueError"}
    kCrash,  // close the socket and exit with exit_code mid-invocation
    kHang,   // ignore the event until killed
  };
  Action action = Action::kEcho;
  std::vector<std::string> init_stderr_lines;  // printed to stderr at start, before init_delay
  std::string init_stderr_unterminated;         // then this, with no newline after it
  std::chrono::milliseconds init_delay{0};     // before the first /next, like a slow import
  bool never_ready = false;                    // never calls /next: stuck in init until killed
  std::chrono::milliseconds delay{0};          // between receiving an event and answering it
  bool init_error = false;                     // POST /init/error (init_error_type), then exit 1
  bool exit_at_start = false;                  // exits with exit_code before asking /next
  std::string init_error_type = "Runtime.ImportModuleError";
  bool wrong_id_first = false;              // POST a response for an unknown id before the real one
  bool silent_after_answer = false;         // after its first answer, never asks /next again
  std::vector<std::string> stdout_lines;    // printed during each invocation, before answering
  std::vector<std::string> stderr_lines;
  int exit_code = 1;                        // the exit status of kCrash and init_error
  bool oom = false;                         // kCrash ends as "signal 9 (Killed)" with OomKilled()
  bool pipes = true;                        // hand the scheduler stdout/stderr pipes (else -1)
  uint64_t peak_memory_bytes = 50ull << 20; // what PeakMemoryBytes() reports
  // A /next that gets no answer within next_timeout is given up: the fake closes that
  // connection, waits reconnect_after, and asks /next again on a new one (0: waits for ever).
  std::chrono::milliseconds next_timeout{0};
  std::chrono::milliseconds reconnect_after{0};
  // A /next answered with an error, or whose connection closed, is asked again on a new
  // connection (a resilient runtime client); without it the runtime exits with status 1, as
  // AWS's runtime clients do. Either way the error answer is recorded as a StrayAnswer.
  bool retry_next = false;
  // What Process::uid() and check_peer_uid() report.
  int uid = -1;
  bool check_peer_uid = false;
  // Speaks the runtime channel (docs/runtime-channel.md) instead of HTTP: the launcher hands the
  // scheduler one end of a socketpair (TakeRuntimeChannel) and the fake writes its response and
  // next request as one frame pair. A refusal (X frame) is recorded as a StrayAnswer with its
  // status and message. next_timeout, reconnect_after and retry_next do not apply.
  bool channel = false;
};

// An event as a fake runtime received it from GET /runtime/invocation/next.
struct SeenEvent {
  size_t process = 0;  // launch index of the fake that received it
  std::string request_id;
  std::string body;
  std::string function_arn;
  std::string trace_id;
  int64_t deadline_ms = 0;
};

// A Runtime API answer a fake did not expect: the reply to its deliberate wrong id
// (wrong_id_first), any non-202 reply to a response or error, any non-200 reply to /next.
struct StrayAnswer {
  size_t process = 0;
  int status = 0;
  std::string body;
};

struct ProcState;  // shared by a FakeProcess, its thread and the launcher's records
struct Records;

class FakeLauncher : public sandbox::Launcher {
 public:
  FakeLauncher();
  ~FakeLauncher() override;  // stops the worker; kills every fake still running

  void Launch(sandbox::LaunchSpec spec, sandbox::LaunchDone done) override;
  void Release(std::unique_ptr<sandbox::Process> proc) override;
  void Drain() override;

  // Applies to launches from now on.
  void SetScript(FakeScript script);
  // Every launch fails with `st` until called again with Status::Ok().
  void FailLaunches(Status st);
  // Launches are not carried out (their `done` is not called) until ReleaseLaunches(), so a
  // test can line requests up behind a launch in progress.
  void HoldLaunches();
  void ReleaseLaunches();
  size_t held_launches() const;  // launches waiting right now

  size_t launches() const;  // successful ones
  std::vector<sandbox::LaunchSpec> specs() const;  // as the scheduler sent them, every call
  // The environment fake `i` (launch order) ran with: its spec's plus the launcher's additions.
  std::vector<std::string> env(size_t i) const;
  // "127.0.0.1:PORT" of fake `i`'s Runtime API socket.
  std::string runtime_api(size_t i) const;
  std::vector<SeenEvent> events() const;
  std::vector<StrayAnswer> stray_answers() const;
  // Process `i` has ended.
  bool Ended(size_t i) const;
  // The scheduler called Kill() on process `i` (whether or not it had already ended: a runtime
  // whose /next connection is closed ends by itself, as a real one would).
  bool Killed(size_t i) const;
  // Process `i` came back through Release().
  bool Released(size_t i) const;
  size_t released() const;
  // Processes destroyed without going back through Release() (a broken contract).
  size_t destroyed_unreleased() const;
  // Waits up to `limit` for process `i` to end; false if it is still running (or never existed).
  bool WaitEnded(size_t i, std::chrono::milliseconds limit) const;

 private:
  std::shared_ptr<Records> rec_;
  std::thread worker_;  // the launcher's thread
};

// Looks up KEY in a "KEY=value" environment; empty when absent.
std::string EnvValue(const std::vector<std::string>& env, std::string_view key);
// True when KEY is set in a "KEY=value" environment.
bool HasEnv(const std::vector<std::string>& env, std::string_view key);

}  // namespace nimbus::scheduler::fake
