// A sandbox::Launcher for scheduler tests that starts no processes. Each "process" is a thread
// that reads AWS_LAMBDA_RUNTIME_API from the launch spec and speaks the Lambda Runtime API over
// loopback with a tiny blocking HTTP/1.1 client, behaving as a FakeScript says: echo the event,
// answer late, post an error, fail its init, crash mid-invocation, or hang. The launcher records
// every LaunchSpec, every event a fake received and every unexpected Runtime API answer, so tests
// can assert what the scheduler asked for and what it served.
//
// Threading: FakeLauncher is thread-safe (Launch() runs on scheduler loops, the accessors on the
// test thread). A FakeProcess follows sandbox::Process: owned and used by one loop; its thread
// shares only a mutex-guarded state object with it. Kill() makes the thread stop promptly (it
// shuts down the thread's socket and wakes its sleeps); the destructor kills and joins.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
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
  std::chrono::milliseconds init_delay{0};  // before the first /next, like a slow import
  std::chrono::milliseconds delay{0};       // between receiving an event and answering it
  bool init_error = false;                  // POST /init/error (init_error_type), then exit 1
  std::string init_error_type = "Runtime.ImportModuleError";
  bool wrong_id_first = false;              // POST a response for an unknown id before the real one
  std::vector<std::string> stdout_lines;    // printed during each invocation, before answering
  std::vector<std::string> stderr_lines;
  int exit_code = 1;                        // the exit status of kCrash and init_error
  bool oom = false;                         // kCrash ends as "signal 9 (Killed)" with OomKilled()
  bool pipes = true;                        // hand the scheduler stdout/stderr pipes (else -1)
  uint64_t peak_memory_bytes = 50ull << 20; // what PeakMemoryBytes() reports
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

// A Runtime API answer a fake got for a request it knew was wrong (wrong_id_first).
struct StrayAnswer {
  int status = 0;
  std::string body;
};

struct ProcState;  // shared by a FakeProcess, its thread and the launcher's records
struct Records;

class FakeLauncher : public sandbox::Launcher {
 public:
  FakeLauncher();
  ~FakeLauncher() override;  // kills every fake still running

  Result<std::unique_ptr<sandbox::Process>> Launch(const sandbox::LaunchSpec& spec) override;

  // Applies to launches from now on.
  void SetScript(FakeScript script);
  // Every Launch() fails with `st` until called again with Status::Ok().
  void FailLaunches(Status st);
  // Launch() blocks (on the scheduler loop that called it) until ReleaseLaunches(), so a test
  // can line requests up behind a launch in progress.
  void HoldLaunches();
  void ReleaseLaunches();
  size_t held_launches() const;  // Launch() calls blocked right now

  size_t launches() const;  // successful ones
  std::vector<sandbox::LaunchSpec> specs() const;
  std::vector<SeenEvent> events() const;
  std::vector<StrayAnswer> stray_answers() const;
  // Process `i` (launch order) has ended.
  bool Ended(size_t i) const;
  // The scheduler called Kill() on process `i` (whether or not it had already ended: a runtime
  // whose /next connection is closed ends by itself, as a real one would).
  bool Killed(size_t i) const;
  // Waits up to `limit` for process `i` to end; false if it is still running (or never existed).
  bool WaitEnded(size_t i, std::chrono::milliseconds limit) const;

 private:
  std::shared_ptr<Records> rec_;
};

// Looks up KEY in a "KEY=value" environment; empty when absent.
std::string EnvValue(const std::vector<std::string>& env, std::string_view key);

}  // namespace nimbus::scheduler::fake
