// Invoker: what the layers above the scheduler ask of it. The front door and the queue's
// delivery engine run invocations through it, the admin API keeps versions warm, retires old
// ones and reads instance counts. `Scheduler` is the implementation; tests of those callers use
// the scripted `testing::FakeInvoker` instead, so they run without instances or loops.
//
// Threading: every method is thread-safe. The context given to Invoke() is completed exactly
// once (RequestContext::Finish), on any thread (an instance's loop, a timer's loop, or the
// caller's own thread when the answer is immediate); its Complete() hops back to the caller's
// loop when it must (Connection::Reply does). request_context.h says which thread may touch
// which part of a context, and when.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "scheduler/request_context.h"

namespace nimbus::scheduler {

struct Counts {
  int busy = 0;      // running an invocation, or between its response and the next /next
  int idle = 0;      // parked in /next, ready for a request
  int starting = 0;  // launching or initialising, or waiting for its runtime to come back to /next
  size_t queued = 0;
};

class Invoker {
 public:
  virtual ~Invoker() = default;

  // Runs the request of `ctx` on an instance of `ctx->fn` and finishes `ctx` with the result;
  // fills in its observations on the way.
  virtual void Invoke(ContextPtr ctx) = 0;

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
