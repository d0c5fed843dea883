#include "queue/journal.h"

#include <cstdio>

namespace nimbus::queue {

Journal::Journal(EventQueue& queue) : queue_(queue), thread_([this] { Run(); }) {}

Journal::~Journal() { Stop(); }

bool Journal::Submit(std::unique_ptr<Op> op, Done done) {
  MutexLock lock(mu_);
  if (stopping_) return false;
  pending_.push_back({std::move(op), std::move(done)});
  ++submitted_;
  work_.NotifyOne();
  return true;
}

void Journal::Flush() {
  MutexLock lock(mu_);
  const uint64_t target = submitted_;
  while (finished_ < target) committed_.Wait(mu_);
}

void Journal::Stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    work_.NotifyOne();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

Journal::Stats Journal::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void Journal::Run() {
  MutexLock lock(mu_);
  for (;;) {
    while (!stopping_ && pending_.empty()) work_.Wait(mu_);
    if (pending_.empty()) return;  // stopping, and everything is written
    std::deque<Item> group;
    group.swap(pending_);
    lock.Unlock();
    CommitGroup(group);
    lock.Lock();
    finished_ += group.size();
    stats_.transactions += 1;
    stats_.ops += group.size();
    committed_.NotifyAll();
  }
}

void Journal::CommitGroup(std::deque<Item>& items) {
  std::vector<Op*> batch;
  batch.reserve(items.size());
  for (Item& it : items) batch.push_back(it.op.get());
  Status st = queue_.Commit(batch);
  if (st.ok() || items.size() == 1) {
    if (!st.ok()) std::fprintf(stderr, "nimbus: event queue write failed: %s\n", st.message().c_str());
    for (Item& it : items) it.done(st, *it.op);
    return;
  }
  for (Item& it : items) {
    std::vector<Op*> one{it.op.get()};
    Status alone = queue_.Commit(one);
    if (!alone.ok()) std::fprintf(stderr, "nimbus: event queue write failed: %s\n", alone.message().c_str());
    it.done(alone, *it.op);
  }
}

}  // namespace nimbus::queue
