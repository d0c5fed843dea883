// A scheduler::Invoker for tests of the layers above the scheduler (front door, admin API,
// delivery): it starts nothing, records every call, and answers invocations from a script. A
// result queued with AnswerNext() answers the next Invoke at once, on the caller's thread; with
// none queued the invocation is held until the test completes it with Complete(), from the
// test's thread, as an instance's loop would. Counts are whatever the test sets.
//
// Threading: every method is thread-safe (one mutex guards the records); completions are called
// with no lock held.
#pragma once

#include <chrono>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "scheduler/invoker.h"

namespace nimbus::scheduler::testing {

class FakeInvoker final : public Invoker {
 public:
  // One Invoke as the fake received it.
  struct InvokeCall {
    catalog::ConfigPtr fn;
    InvokeRequest req;
  };
  struct RetireCall {
    std::string function;
    std::vector<std::string> keep;
  };

  // Invoker.
  void Invoke(const catalog::ConfigPtr& fn, InvokeRequest req, Completion done) override;
  void KeepWarm(const catalog::ConfigPtr& fn) override;
  void RetireVersions(const std::string& function, const std::vector<std::string>& keep) override;
  Counts CountsFor(const std::string& function) const override;
  std::unordered_map<std::string, Counts> AllCounts() const override;

  // The next Invoke is answered at once with `r` (results queue in order).
  void AnswerNext(InvokeResult r) NIMBUS_EXCLUDES(mu_);
  // Answers held invocation `i` (0 = the first Invoke received) with `r`. False when there is no
  // such invocation or it was answered already.
  bool Complete(size_t i, InvokeResult r) NIMBUS_EXCLUDES(mu_);
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
  std::vector<Completion> held_ NIMBUS_GUARDED_BY(mu_);  // by invocation index; empty once answered
  std::deque<InvokeResult> answers_ NIMBUS_GUARDED_BY(mu_);
  std::vector<catalog::ConfigPtr> keep_warm_ NIMBUS_GUARDED_BY(mu_);
  std::vector<RetireCall> retires_ NIMBUS_GUARDED_BY(mu_);
  std::unordered_map<std::string, Counts> counts_ NIMBUS_GUARDED_BY(mu_);
  mutable size_t counts_for_calls_ NIMBUS_GUARDED_BY(mu_) = 0;
  mutable size_t all_counts_calls_ NIMBUS_GUARDED_BY(mu_) = 0;
};

}  // namespace nimbus::scheduler::testing
