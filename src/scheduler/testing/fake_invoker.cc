#include "scheduler/testing/fake_invoker.h"

namespace nimbus::scheduler::testing {

void FakeInvoker::Invoke(ContextPtr ctx) {
  MutexLock lock(mu_);
  invokes_.push_back({ctx->fn, ctx->req, ctx->received_at});
  invoked_.NotifyAll();
  if (answers_.empty()) {
    held_.push_back(std::move(ctx));
    return;
  }
  InvokeResult r = std::move(answers_.front());
  answers_.pop_front();
  held_.emplace_back();  // answered: nothing held for this index
  lock.Unlock();
  ctx->Finish(std::move(r));
}

void FakeInvoker::KeepWarm(const catalog::ConfigPtr& fn) {
  MutexLock lock(mu_);
  keep_warm_.push_back(fn);
}

void FakeInvoker::RetireVersions(const std::string& function, const std::vector<std::string>& keep) {
  MutexLock lock(mu_);
  retires_.push_back({function, keep});
}

Counts FakeInvoker::CountsFor(const std::string& function) const {
  MutexLock lock(mu_);
  ++counts_for_calls_;
  auto it = counts_.find(function);
  return it == counts_.end() ? Counts{} : it->second;
}

std::unordered_map<std::string, Counts> FakeInvoker::AllCounts() const {
  MutexLock lock(mu_);
  ++all_counts_calls_;
  return counts_;
}

void FakeInvoker::AnswerNext(InvokeResult r) {
  MutexLock lock(mu_);
  answers_.push_back(std::move(r));
}

bool FakeInvoker::Complete(size_t i, InvokeResult r, std::string_view log_tail) {
  ContextPtr ctx;
  {
    MutexLock lock(mu_);
    if (i >= held_.size() || !held_[i]) return false;
    ctx = std::move(held_[i]);
  }
  // As the scheduler writes it: one line at a time.
  while (!log_tail.empty()) {
    const size_t nl = log_tail.find('\n');
    ctx->AppendLogTail(log_tail.substr(0, nl));
    log_tail.remove_prefix(nl == std::string_view::npos ? log_tail.size() : nl + 1);
  }
  return ctx->Finish(std::move(r));
}

bool FakeInvoker::WaitForInvokes(size_t n, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  MutexLock lock(mu_);
  while (invokes_.size() < n) {
    if (invoked_.WaitUntil(mu_, until) == std::cv_status::timeout) return invokes_.size() >= n;
  }
  return true;
}

void FakeInvoker::SetCounts(const std::string& function, Counts c) {
  MutexLock lock(mu_);
  counts_[function] = c;
}

std::vector<FakeInvoker::InvokeCall> FakeInvoker::invokes() const {
  MutexLock lock(mu_);
  return invokes_;
}

std::vector<catalog::ConfigPtr> FakeInvoker::keep_warm_calls() const {
  MutexLock lock(mu_);
  return keep_warm_;
}

std::vector<FakeInvoker::RetireCall> FakeInvoker::retire_calls() const {
  MutexLock lock(mu_);
  return retires_;
}

size_t FakeInvoker::counts_for_calls() const {
  MutexLock lock(mu_);
  return counts_for_calls_;
}

size_t FakeInvoker::all_counts_calls() const {
  MutexLock lock(mu_);
  return all_counts_calls_;
}

}  // namespace nimbus::scheduler::testing
