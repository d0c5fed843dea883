// The journal: group commit in front of an EventQueue. Callers on any thread submit changes;
// one thread writes whatever has accumulated as a single transaction, so while one group is
// being made durable (one fsync) the next one gathers. Under load a transaction holds thousands
// of changes; when idle a change commits alone, at once.
//
// Threading: Submit(), Flush() and Stop() are thread-safe. Every `done` runs on the journal's
// own thread, in submission order, after the transaction holding its op has committed or
// failed; keep it short and never block in it (post elsewhere for anything slow).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "common/mutex.h"
#include "queue/event_queue.h"

namespace nimbus::queue {

class Journal {
 public:
  // Ok once the op is durable (its results filled in), or why it was not applied.
  using Done = std::function<void(Status, Op&)>;

  explicit Journal(EventQueue& queue);
  ~Journal();  // Stop()

  // Queues `op` and returns true. After Stop() it returns false and drops `op` without
  // calling `done` (so a caller may submit while holding its own lock).
  [[nodiscard]] bool Submit(std::unique_ptr<Op> op, Done done);
  // Blocks until every op submitted before the call has committed and its `done` has run.
  // Not from inside a `done`.
  void Flush();
  // Commits what is queued, runs its `done`s, then ends the thread.
  void Stop();

  struct Stats {
    uint64_t transactions = 0;
    uint64_t ops = 0;
  };
  Stats stats() const;

 private:
  struct Item {
    std::unique_ptr<Op> op;
    Done done;
  };
  void Run() NIMBUS_EXCLUDES(mu_);
  // Commits `items` as one transaction; when that fails, each op alone, so one op that cannot
  // be applied fails by itself instead of failing its whole group.
  void CommitGroup(std::deque<Item>& items) NIMBUS_EXCLUDES(mu_);

  EventQueue& queue_;
  mutable Mutex mu_;
  CondVar work_;
  CondVar committed_;
  std::deque<Item> pending_ NIMBUS_GUARDED_BY(mu_);
  uint64_t submitted_ NIMBUS_GUARDED_BY(mu_) = 0;
  uint64_t finished_ NIMBUS_GUARDED_BY(mu_) = 0;
  bool stopping_ NIMBUS_GUARDED_BY(mu_) = false;
  Stats stats_ NIMBUS_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace nimbus::queue
