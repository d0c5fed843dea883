// RequestContext: the one object for one invocation, from the caller that receives it (the front
// door, the queue's delivery engine) through the scheduler and the instance that runs it, and
// back. It carries the request (id, payload, client context, identity, the ARN the caller
// used), the function's configuration, the timestamps (received, queued, started, finished),
// what the scheduler observed while running it (cold or warm, init duration, queue wait, run
// duration, the instance's peak memory, the outcome), the log tail the caller asked for, and the
// completion: each caller subclasses it and implements Complete(), so one allocation carries the
// request, its state in the scheduler and its way back, with no callback captured beside it.
//
// Error kinds: none here; the outcome of an invocation is InvokeResult::outcome.
//
// Threading: a context is shared (std::shared_ptr) between the caller, the scheduler's queues
// and the instance running it, but each part has one writer at a time:
// - The caller fills `fn`, `req` and the receive time before Invoker::Invoke() and does not
//   touch them afterwards, except in Complete(). The invoker reads them from any thread; it moves
//   `req.payload` out when it sends the event (on the instance's loop).
// - The observations and the log tail are written by the invoker while it runs the request:
//   queued_at by Invoke(), before the context is visible to another thread; the rest on the loop
//   of the instance that runs it. The scheduler finishes a request on that loop, or after the
//   loops have stopped (Scheduler::Shutdown), or, for one that never reached an instance, after
//   taking it out of its queue under the mutex it was queued under; so everything written is
//   visible in Complete(). Nobody reads them before Complete().
// - Finish() is thread-safe and completes the context exactly once: the first call runs
//   Complete() on its own thread (an instance's loop, a pool timer's loop, the caller's thread when
//   Invoke() answers at once, or the thread running Scheduler::Shutdown()); later calls do
//   nothing and return false. Complete() hops to the caller's own loop if it needs to
//   (Connection::Reply does).
// - The scheduler's own per-invocation state (whether the event was started, its deadline) is
//   private to it (the `Scheduler` and its `Instance`) and owned by the instance's loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "catalog/catalog.h"

namespace nimbus::scheduler {

// What the function is asked to run.
struct InvokeRequest {
  std::string request_id;
  std::string payload;
  std::string client_context;    // base64 JSON, Lambda-Runtime-Client-Context
  std::string cognito_identity;  // JSON, Lambda-Runtime-Cognito-Identity
  std::string invoked_arn;       // ARN with the qualifier the caller used; empty: the function's
  bool want_log_tail = false;    // collect this invocation's log lines (RequestContext::log_tail)
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
  std::string version;     // the version that ran
};

// The most of an invocation's log lines (START..REPORT) a log tail keeps: the last 4 KiB, as
// Lambda's X-Amz-Log-Result.
inline constexpr size_t kLogTailBytes = 4096;

class RequestContext {
 public:
  using Clock = std::chrono::steady_clock;

  // What the invoker observed while running the request; complete when Complete() runs. A time
  // point left at Clock::time_point{} did not happen (a request throttled in the queue never
  // started).
  struct Observations {
    Clock::time_point queued_at{};    // the scheduler took it (Invoke)
    Clock::time_point started_at{};   // its event was handed to an instance (START)
    Clock::time_point finished_at{};  // its result was known (Finish)
    bool cold = false;                // the first invocation of a new instance
    double init_ms = 0;               // when cold: from the instance's launch to its first /next
    double queue_wait_ms = 0;         // from queued_at to started_at (to finished_at if never started)
    // REPORT's Duration (from started_at to the answer, the deadline or the exit) and Max Memory
    // Used (the instance's peak so far); 0 for a request with no REPORT (never started, or cut
    // short by a shutdown).
    double duration_ms = 0;
    uint64_t max_memory_used_mb = 0;
    Outcome outcome = Outcome::kSuccess;
  };

  // `received_at`: when the request arrived (for the front door, when it was parsed).
  RequestContext(catalog::ConfigPtr fn, InvokeRequest req, Clock::time_point received_at = Clock::now())
      : fn(std::move(fn)), req(std::move(req)), received_at(received_at) {}
  virtual ~RequestContext() = default;
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  const catalog::ConfigPtr fn;  // the version to run
  InvokeRequest req;
  const Clock::time_point received_at;

  // Completes the request with `result` the first time it is called (Complete() runs on this
  // thread); false, doing nothing, on every later call. Stamps finished_at and the outcome.
  bool Finish(InvokeResult&& result) {
    if (completed_.exchange(true, std::memory_order_acq_rel)) return false;
    obs_.finished_at = Clock::now();
    obs_.outcome = result.outcome;
    if (obs_.started_at == Clock::time_point{} && obs_.queued_at != Clock::time_point{}) {
      obs_.queue_wait_ms = MsBetween(obs_.queued_at, obs_.finished_at);
    }
    Complete(std::move(result));
    return true;
  }
  bool finished() const { return completed_.load(std::memory_order_acquire); }

  const Observations& observations() const { return obs_; }

  // The invocation's log lines when req.want_log_tail (the last kLogTailBytes of them), else
  // empty. Valid until the context is destroyed.
  std::string_view log_tail() const {
    std::string_view all = log_;
    return all.size() > kLogTailBytes ? all.substr(all.size() - kLogTailBytes) : all;
  }
  // Adds one line to the log tail when req.want_log_tail; by the invoker, on the thread running
  // the request.
  void AppendLogTail(std::string_view line) {
    if (!req.want_log_tail) return;
    log_ += line;
    log_.push_back('\n');
    // Bounded: what a chatty function prints is cut now and then, not on every line.
    if (log_.size() > 4 * kLogTailBytes) log_.erase(0, log_.size() - kLogTailBytes);
  }

  static double MsBetween(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
  }

 protected:
  // Delivers the result to the caller. Called exactly once, by Finish(), on the thread that
  // finishes the request; the context stays alive for the call.
  virtual void Complete(InvokeResult&& result) = 0;

 private:
  friend class Scheduler;
  friend struct Instance;

  std::atomic<bool> completed_{false};
  Observations obs_;
  std::string log_;  // the log tail being collected (req.want_log_tail only)
  // The scheduler's, on the instance's loop:
  bool started_ = false;     // START logged, deadline armed
  int64_t deadline_ms_ = 0;  // epoch milliseconds, as the runtime is told
};

using ContextPtr = std::shared_ptr<RequestContext>;

// A result as a function call, for callers whose own seam takes one (the queue's delivery
// engine); the front door subclasses RequestContext instead.
using Completion = std::function<void(InvokeResult&&)>;

// A RequestContext whose completion calls `done`.
class CallbackContext final : public RequestContext {
 public:
  CallbackContext(catalog::ConfigPtr fn, InvokeRequest req, Completion done,
                  Clock::time_point received_at = Clock::now())
      : RequestContext(std::move(fn), std::move(req), received_at), done_(std::move(done)) {}

 private:
  void Complete(InvokeResult&& result) override {
    Completion done = std::move(done_);  // what it captured goes with this call
    done(std::move(result));
  }
  Completion done_;
};

}  // namespace nimbus::scheduler
