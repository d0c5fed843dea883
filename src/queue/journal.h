// The journal: group commit in front of an EventQueue. Callers on any thread submit changes;
// one thread writes whatever has accumulated as a single transaction, so while one group is
// being made durable (one fsync) the next one gathers. Under load a transaction holds thousands
// of changes; when idle a change commits alone, at once.
//
// Threading: Submit(), Flush() and Stop() are thread-safe. Every `done` runs on the journal's
// own thread, in submission order, after the transaction holding its op has committed or
// failed; keep it short and never block in it (post elsewhere for anything slow).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

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
  void Run();
  // Commits `items` as one transaction; when that fails, each op alone, so one op that cannot
  // be applied fails by itself instead of failing its whole group.
  void CommitGroup(std::deque<Item>& items);

  EventQueue& queue_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable committed_;
  std::deque<Item> pending_;     // guarded by mu_
  uint64_t submitted_ = 0;       // guarded by mu_
  uint64_t finished_ = 0;        // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  Stats stats_;                  // guarded by mu_
  std::thread thread_;
};

}  // namespace nimbus::queue
