// A scheduler::Invoker for tests of the layers above the scheduler (front door, admin API,
// delivery): it starts nothing, records every call, and answers invocations from a script. A
// result queued with AnswerNext() finishes the next Invoke's context at once, on the caller's
// thread; with none queued the context is held until the test finishes it with Complete(), from
// the test's thread, as an instance's loop would. It lets go of a context once it is finished
// (what the caller's context holds, a connection for one, goes with it). Counts are whatever the
// test sets.
//
// Threading: every method is thread-safe (one mutex guards the records); contexts are finished
// with no lock held.
#pragma once

#include <chrono>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "scheduler/invoker.h"

namespace nimbus::scheduler::testing {

class FakeInvoker final : public Invoker {
 public:
  // One Invoke as the fake received it: a copy of its context's request, made before anything
  // ran.
  struct InvokeCall {
    catalog::ConfigPtr fn;
    InvokeRequest req;
    RequestContext::Clock::time_point received_at;
  };
  struct RetireCall {
    std::string function;
    std::vector<std::string> keep;
  };

  // Invoker.
  void Invoke(ContextPtr ctx) override;
  void KeepWarm(const catalog::ConfigPtr& fn) override;
  void RetireVersions(const std::string& function, const std::vector<std::string>& keep) override;
  Counts CountsFor(const std::string& function) const override;
  std::unordered_map<std::string, Counts> AllCounts() const override;

  // The next Invoke is answered at once with `r` (results queue in order).
  void AnswerNext(InvokeResult r) NIMBUS_EXCLUDES(mu_);
  // Finishes held invocation `i` (0 = the first Invoke received) with `r`, its log tail holding
  // `log_tail` (when its request asked for one). False when there is no such invocation or it was
  // answered already.
  bool Complete(size_t i, InvokeResult r, std::string_view log_tail = {}) NIMBUS_EXCLUDES(mu_);
  // Waits until `n` invocations were received, at most `limit`.
  bool WaitForInvokes(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) NIMBUS_EXCLUDES(mu_);
  void SetCounts(const std::string& function, Counts c) NIMBUS_EXCLUDES(mu_);

  std::vector<InvokeCall> invokes() const NIMBUS_EXCLUDES(mu_);
  std::vector<catalog::ConfigPtr> keep_warm_calls() const NIMBUS_EXCLUDES(mu_);
  std::vector<RetireCall> retire_calls() const NIMBUS_EXCLUDES(mu_);
  // CountsFor and AllCounts calls so far (a listing should use one AllCounts, not one CountsFor
  // per function).
  size_t counts_for_calls() const NIMBUS_EXCLUDES(mu_);
  size_t all_counts_calls() const NIMBUS_EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  CondVar invoked_;
  std::vector<InvokeCall> invokes_ NIMBUS_GUARDED_BY(mu_);
  std::vector<ContextPtr> held_ NIMBUS_GUARDED_BY(mu_);  // by invocation index; null once answered
  std::deque<InvokeResult> answers_ NIMBUS_GUARDED_BY(mu_);
  std::vector<catalog::ConfigPtr> keep_warm_ NIMBUS_GUARDED_BY(mu_);
  std::vector<RetireCall> retires_ NIMBUS_GUARDED_BY(mu_);
  std::unordered_map<std::string, Counts> counts_ NIMBUS_GUARDED_BY(mu_);
  mutable size_t counts_for_calls_ NIMBUS_GUARDED_BY(mu_) = 0;
  mutable size_t all_counts_calls_ NIMBUS_GUARDED_BY(mu_) = 0;
};

}  // namespace nimbus::scheduler::testing
