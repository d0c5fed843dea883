// The journal's group commit: changes submitted while a transaction is being written go
// together into the next one, callbacks run once their change is durable, in order, and one
// change that cannot be applied fails alone.
#include "queue/journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace nimbus::queue {
namespace {

// Records each Commit's batch; the first Commit can be held until the test lets it go.
class RecordingQueue : public EventQueue {
 public:
  Status Commit(std::vector<Op*>& batch) override {
    std::unique_lock<std::mutex> lock(mu_);
    entered_++;
    entered_cv_.notify_all();
    release_cv_.wait(lock, [&] { return released_; });
    for (Op* op : batch) {
      if (op->id == kPoison) return Status::Io("disk says no");
    }
    sizes_.push_back(batch.size());
    for (Op* op : batch) ids_.push_back(op->id);
    return Status::Ok();
  }
  Result<std::vector<Event>> LoadPending() override { return std::vector<Event>{}; }
  Result<std::string> LoadPayload(int64_t) override { return Status::NotFound("none"); }
  Result<std::vector<DeadLetter>> DeadLetters(const std::string&, size_t) override {
    return std::vector<DeadLetter>{};
  }
  Result<std::map<std::string, int64_t>> DeadLetterCounts() override { return std::map<std::string, int64_t>{}; }
  Result<std::vector<ScheduleState>> LoadSchedules() override { return std::vector<ScheduleState>{}; }

  void Hold() { released_ = false; }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    release_cv_.notify_all();
  }
  std::vector<size_t> sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return sizes_;
  }
  std::vector<int64_t> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

  static constexpr int64_t kPoison = -1;

 private:
  std::mutex mu_;
  std::condition_variable entered_cv_, release_cv_;
  int entered_ = 0;
  bool released_ = true;
  std::vector<size_t> sizes_;
  std::vector<int64_t> ids_;
};

std::unique_ptr<Op> OpWithId(int64_t id) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kComplete;
  op->id = id;
  return op;
}

TEST(JournalTest, ChangesSubmittedDuringACommitGoTogetherIntoTheNextTransaction) {
  RecordingQueue q;
  q.Hold();
  Journal journal(q);
  std::vector<int64_t> done_order;
  std::mutex done_mu;
  auto record = [&](Status st, Op& op) {
    EXPECT_TRUE(st.ok());
    std::lock_guard<std::mutex> lock(done_mu);
    done_order.push_back(op.id);
  };
  ASSERT_TRUE(journal.Submit(OpWithId(0), record));
  q.WaitEntered(1);  // the first transaction is being written
  for (int64_t i = 1; i <= 100; ++i) ASSERT_TRUE(journal.Submit(OpWithId(i), record));
  q.Release();
  journal.Flush();
  EXPECT_EQ(q.sizes(), (std::vector<size_t>{1, 100}));
  std::vector<int64_t> expected;
  for (int64_t i = 0; i <= 100; ++i) expected.push_back(i);
  EXPECT_EQ(done_order, expected);
  EXPECT_EQ(journal.stats().transactions, 2u);
  EXPECT_EQ(journal.stats().ops, 101u);
}

TEST(JournalTest, ACallbackRunsOnlyAfterItsTransactionCommitted) {
  RecordingQueue q;
  q.Hold();
  Journal journal(q);
  std::atomic<bool> called{false};
  ASSERT_TRUE(journal.Submit(OpWithId(7), [&](Status, Op&) { called = true; }));
  q.WaitEntered(1);
  EXPECT_FALSE(called.load());
  q.Release();
  journal.Flush();
  EXPECT_TRUE(called.load());
  EXPECT_EQ(q.ids(), (std::vector<int64_t>{7}));
}

TEST(JournalTest, AChangeThatCannotBeWrittenFailsAloneAndTheRestOfItsGroupCommits) {
  RecordingQueue q;
  q.Hold();
  Journal journal(q);
  ASSERT_TRUE(journal.Submit(OpWithId(0), [](Status, Op&) {}));
  q.WaitEntered(1);
  std::map<int64_t, bool> ok;
  std::mutex mu;
  for (int64_t id : {1, static_cast<int>(RecordingQueue::kPoison), 2}) {
    ASSERT_TRUE(journal.Submit(OpWithId(id), [&](Status st, Op& op) {
      std::lock_guard<std::mutex> lock(mu);
      ok[op.id] = st.ok();
    }));
  }
  q.Release();
  journal.Flush();
  EXPECT_TRUE(ok[1]);
  EXPECT_TRUE(ok[2]);
  EXPECT_FALSE(ok[RecordingQueue::kPoison]);
  EXPECT_EQ(q.ids(), (std::vector<int64_t>{0, 1, 2}));
}

TEST(JournalTest, StopWritesWhatIsQueuedAndThenRefusesNewChanges) {
  RecordingQueue q;
  q.Hold();
  Journal journal(q);
  int done = 0;
  ASSERT_TRUE(journal.Submit(OpWithId(1), [&](Status st, Op&) { done += st.ok(); }));
  q.WaitEntered(1);
  ASSERT_TRUE(journal.Submit(OpWithId(2), [&](Status st, Op&) { done += st.ok(); }));
  auto stopped = std::async(std::launch::async, [&] { journal.Stop(); });
  q.Release();
  stopped.get();
  EXPECT_EQ(done, 2);
  EXPECT_FALSE(journal.Submit(OpWithId(3), [&](Status, Op&) { ADD_FAILURE() << "called after Stop"; }));
}

}  // namespace
}  // namespace nimbus::queue
