// Invoker: what the layers above the scheduler ask of it. The front door and the queue's
// delivery engine run invocations through it, the admin API keeps versions warm, retires old
// ones and reads instance counts. `Scheduler` is the implementation; tests of those callers use
// the scripted `testing::FakeInvoker` instead, so they run without instances or loops.
//
// Threading: every method is thread-safe. A Completion is called exactly once, on any thread
// (an instance's loop, a timer's loop, or the caller's own thread when the answer is immediate);
// callers hop back to their own loop (Connection::Reply does).
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"

namespace nimbus::scheduler {

struct InvokeRequest {
  std::string request_id;
  std::string payload;
  std::string client_context;    // base64 JSON, Lambda-Runtime-Client-Context
  std::string cognito_identity;  // JSON, Lambda-Runtime-Cognito-Identity
  std::string invoked_arn;       // ARN with the qualifier the caller used
  bool want_log_tail = false;    // collect this invocation's log lines for X-Amz-Log-Result
};

enum class Outcome {
  kSuccess,        // body: the function's response
  kFunctionError,  // body: the runtime's error JSON (handler exception, init error)
  kTimeout,        // killed at its deadline
  kCrash,          // the runtime exited during the invocation (or before becoming ready)
  kOutOfMemory,    // the kernel killed it at its memory limit
  kThrottled,      // waited for a free instance until its timeout, or the queue was full
  kStartFailed,    // the instance process could not be started
  kShutdown,       // the daemon is stopping
};

struct InvokeResult {
  Outcome outcome = Outcome::kSuccess;
  std::string body;        // response payload, or Lambda error JSON {"errorMessage","errorType"}
  std::string error_type;  // e.g. "Sandbox.Timedout", "Runtime.ExitError"; empty on success
  std::string log_tail;    // when requested: START..REPORT of this invocation
  std::string version;     // the version that ran
};

using Completion = std::function<void(InvokeResult&&)>;

struct Counts {
  int busy = 0;      // running an invocation, or between its response and the next /next
  int idle = 0;      // parked in /next, ready for a request
  int starting = 0;  // launching or initialising, or waiting for its runtime to come back to /next
  size_t queued = 0;
};

class Invoker {
 public:
  virtual ~Invoker() = default;

  // Runs `req` on an instance of `fn`; `done` gets the result.
  virtual void Invoke(const catalog::ConfigPtr& fn, InvokeRequest req, Completion done) = 0;

  // Starts instances of `fn` until it has concurrency.min_warm of them (no-op when 0). Called
  // when a version becomes $LATEST or an alias target, and at start-up.
  virtual void KeepWarm(const catalog::ConfigPtr& fn) = 0;

  // Instances of this function whose version is not in `keep` stop as soon as they are idle
  // (at once if idle now); requests in flight or queued on them still finish.
  virtual void RetireVersions(const std::string& function, const std::vector<std::string>& keep) = 0;

  virtual Counts CountsFor(const std::string& function) const = 0;
  // Every function's counts in one pass (for listings and /metrics).
  virtual std::unordered_map<std::string, Counts> AllCounts() const = 0;
};

}  // namespace nimbus::scheduler
