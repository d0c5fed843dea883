#include "queue/journal.h"

#include <cstdio>

namespace nimbus::queue {

Journal::Journal(EventQueue& queue) : queue_(queue), thread_([this] { Run(); }) {}

Journal::~Journal() { Stop(); }

bool Journal::Submit(std::unique_ptr<Op> op, Done done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  pending_.push_back({std::move(op), std::move(done)});
  ++submitted_;
  work_.notify_one();
  return true;
}

void Journal::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = submitted_;
  committed_.wait(lock, [&] { return finished_ >= target; });
}

void Journal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    work_.notify_one();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

Journal::Stats Journal::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Journal::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, and everything is written
    std::deque<Item> group;
    group.swap(pending_);
    lock.unlock();
    CommitGroup(group);
    lock.lock();
    finished_ += group.size();
    stats_.transactions += 1;
    stats_.ops += group.size();
    committed_.notify_all();
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
