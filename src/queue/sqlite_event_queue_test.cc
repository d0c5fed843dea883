// The SQLite journal of asynchronous invocations: what one Commit writes survives a reopen,
// a batch is all or nothing, and every kind of change does what Delivery relies on.
#include "queue/sqlite_event_queue.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace nimbus::queue {
namespace {

namespace fs = std::filesystem;

class SqliteEventQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-queue-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    Open();
  }
  void TearDown() override {
    queue_.reset();
    fs::remove_all(dir_);
  }
  void Open() {
    queue_.reset();
    auto q = OpenSqliteEventQueue(dir_ / "queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
  }
  Status Commit(std::vector<Op>& ops) {
    std::vector<Op*> batch;
    for (Op& op : ops) batch.push_back(&op);
    return queue_->Commit(batch);
  }
  Status Commit(Op& op) {
    std::vector<Op*> batch{&op};
    return queue_->Commit(batch);
  }
  static Op Enqueue(const std::string& fn, const std::string& payload, const std::string& key = "",
                    int64_t at_ms = 1000) {
    Op op;
    op.kind = Op::Kind::kEnqueue;
    op.event.function = fn;
    op.event.request_id = "req-" + payload;
    op.event.payload = payload;
    op.event.source = "invoke";
    op.event.enqueued_ms = at_ms;
    op.idempotency_key = key;
    op.before_ms = at_ms - 100;
    return op;
  }
  std::vector<Event> Pending() {
    auto r = queue_->LoadPending();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Event>{};
  }
  int64_t DeadCount(const std::string& fn) {
    auto c = queue_->DeadLetterCounts();
    EXPECT_TRUE(c.ok());
    auto it = c->find(fn);
    return it == c->end() ? 0 : it->second;
  }

  fs::path dir_;
  std::unique_ptr<EventQueue> queue_;
};

TEST_F(SqliteEventQueueTest, EnqueuedEventsSurviveAReopenWithEveryField) {
  std::vector<Op> ops{Enqueue("hello", "{\"n\":1}"), Enqueue("hello", std::string("bin\0ary", 7))};
  ops[1].event.qualifier = "live";
  ops[1].event.depth = 3;
  ASSERT_TRUE(Commit(ops).ok());
  EXPECT_GT(ops[0].event.id, 0);
  EXPECT_LT(ops[0].event.id, ops[1].event.id);
  Open();
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 2u);
  // Payloads stay on disk until they are needed.
  EXPECT_TRUE(pending[0].payload.empty());
  EXPECT_EQ(pending[0].payload_size, 7);
  EXPECT_EQ(*queue_->LoadPayload(pending[0].id), "{\"n\":1}");
  EXPECT_EQ(pending[0].request_id, "req-{\"n\":1}");
  EXPECT_EQ(pending[0].source, "invoke");
  EXPECT_EQ(*queue_->LoadPayload(pending[1].id), std::string("bin\0ary", 7));
  EXPECT_EQ(pending[1].qualifier, "live");
  EXPECT_EQ(pending[1].depth, 3);
  EXPECT_EQ(pending[1].enqueued_ms, 1000);
}

TEST_F(SqliteEventQueueTest, ABatchWithAnOpThatCannotApplyWritesNothing) {
  std::vector<Op> ops{Enqueue("hello", "a"), Op{}};
  ops[1].kind = static_cast<Op::Kind>(99);
  EXPECT_FALSE(Commit(ops).ok());
  EXPECT_TRUE(Pending().empty());
}

TEST_F(SqliteEventQueueTest, CompleteDeletesAndEnqueuesTheNextEventInTheSameTransaction) {
  Op a = Enqueue("hello", "a");
  ASSERT_TRUE(Commit(a).ok());
  Op done;
  done.kind = Op::Kind::kComplete;
  done.id = a.event.id;
  done.next_event = true;
  done.event.function = "audit";
  done.event.request_id = "dest";
  done.event.payload = "{\"record\":1}";
  done.event.source = "destination";
  done.event.depth = 1;
  ASSERT_TRUE(Commit(done).ok());
  EXPECT_EQ(done.affected, 1);
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].function, "audit");
  EXPECT_EQ(pending[0].depth, 1);
  EXPECT_GT(pending[0].id, a.event.id);
}

TEST_F(SqliteEventQueueTest, RetryRecordsAttemptsTheNextAttemptTimeAndTheError) {
  Op a = Enqueue("hello", "a");
  ASSERT_TRUE(Commit(a).ok());
  Op retry;
  retry.kind = Op::Kind::kRetry;
  retry.id = a.event.id;
  retry.event.attempts = 2;
  retry.event.visible_at_ms = 99'000;
  retry.event.last_error = "Unhandled: boom";
  ASSERT_TRUE(Commit(retry).ok());
  EXPECT_EQ(retry.affected, 1);
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].attempts, 2);
  EXPECT_EQ(pending[0].visible_at_ms, 99'000);
  EXPECT_EQ(pending[0].last_error, "Unhandled: boom");
}

TEST_F(SqliteEventQueueTest, DeadLettersKeepTheEventTheConditionAndTheRecordAndReplayBringsThemBack) {
  std::vector<Op> ops{Enqueue("hello", "a"), Enqueue("hello", "b"), Enqueue("other", "c")};
  ASSERT_TRUE(Commit(ops).ok());
  for (Op& e : ops) {
    Op dead;
    dead.kind = Op::Kind::kDeadLetter;
    dead.dead_letter.event = e.event;
    dead.dead_letter.event.attempts = 3;
    dead.dead_letter.event.last_error = "Unhandled: boom";
    dead.dead_letter.dead_at_ms = 5000;
    dead.dead_letter.condition = "RetriesExhausted";
    dead.dead_letter.record = "{\"version\":\"1.0\"}";
    ASSERT_TRUE(Commit(dead).ok());
  }
  EXPECT_TRUE(Pending().empty());
  EXPECT_EQ(DeadCount("hello"), 2);
  EXPECT_EQ(DeadCount("other"), 1);
  auto dl = queue_->DeadLetters("hello", 10);
  ASSERT_TRUE(dl.ok());
  ASSERT_EQ(dl->size(), 2u);
  EXPECT_EQ((*dl)[0].event.payload, "b");  // newest first
  EXPECT_EQ((*dl)[1].condition, "RetriesExhausted");
  EXPECT_EQ((*dl)[1].record, "{\"version\":\"1.0\"}");
  EXPECT_EQ((*dl)[1].event.attempts, 3);
  EXPECT_EQ((*dl)[1].dead_at_ms, 5000);

  Op replay;
  replay.kind = Op::Kind::kReplay;
  replay.function = "hello";
  replay.ids = {ops[0].event.id, ops[2].event.id, 12345};  // c belongs to another function
  replay.now_ms = 7000;
  ASSERT_TRUE(Commit(replay).ok());
  ASSERT_EQ(replay.replayed.size(), 1u);
  EXPECT_EQ(replay.missing, (std::vector<int64_t>{ops[2].event.id, 12345}));
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(*queue_->LoadPayload(pending[0].id), "a");
  EXPECT_EQ(pending[0].request_id, "req-a");
  EXPECT_EQ(pending[0].attempts, 0);
  EXPECT_EQ(pending[0].enqueued_ms, 7000);
  EXPECT_EQ(pending[0].source, "replay");
  EXPECT_EQ(DeadCount("hello"), 1);

  Op all;
  all.kind = Op::Kind::kReplay;
  all.function = "other";
  ASSERT_TRUE(Commit(all).ok());
  EXPECT_EQ(all.replayed.size(), 1u);
  EXPECT_EQ(DeadCount("other"), 0);

  Op purge;
  purge.kind = Op::Kind::kPurgeDead;
  purge.function = "hello";
  ASSERT_TRUE(Commit(purge).ok());
  EXPECT_EQ(purge.affected, 1);
  EXPECT_EQ(DeadCount("hello"), 0);
}

TEST_F(SqliteEventQueueTest, AnIdempotencyKeyCollapsesRepeatsWithinItsWindowOnly) {
  Op first = Enqueue("hello", "a", "key-1", 1000);
  ASSERT_TRUE(Commit(first).ok());
  Op again = Enqueue("hello", "b", "key-1", 1050);  // window starts at 950
  Op other_fn = Enqueue("other", "c", "key-1", 1050);
  std::vector<Op> ops{again, other_fn};
  ASSERT_TRUE(Commit(ops).ok());
  EXPECT_TRUE(ops[0].duplicate);
  EXPECT_EQ(ops[0].event.request_id, "req-a");
  EXPECT_FALSE(ops[1].duplicate);
  EXPECT_EQ(Pending().size(), 2u);

  Op late = Enqueue("hello", "d", "key-1", 5000);  // window starts at 4900: the key is stale
  ASSERT_TRUE(Commit(late).ok());
  EXPECT_FALSE(late.duplicate);
  EXPECT_EQ(Pending().size(), 3u);

  Op expire;
  expire.kind = Op::Kind::kExpireKeys;
  expire.before_ms = 4000;
  ASSERT_TRUE(Commit(expire).ok());
  EXPECT_EQ(expire.affected, 1);  // other's key from 1050; hello's was renewed at 5000
}

TEST_F(SqliteEventQueueTest, SchedulesAreStoredAndAFiringIsRecordedWithItsEvent) {
  Op set;
  set.kind = Op::Kind::kSetSchedule;
  set.schedule = {"tick", "rate(1 minute)", "UTC", 1000, 0};
  ASSERT_TRUE(Commit(set).ok());
  Op fire = Enqueue("tick", "{}");
  fire.schedule_fired_ms = 61'000;
  ASSERT_TRUE(Commit(fire).ok());
  Open();
  auto s = queue_->LoadSchedules();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].expression, "rate(1 minute)");
  EXPECT_EQ((*s)[0].anchor_ms, 1000);
  EXPECT_EQ((*s)[0].last_fired_ms, 61'000);
  EXPECT_EQ(Pending().size(), 1u);

  Op drop;
  drop.kind = Op::Kind::kDropSchedule;
  drop.function = "tick";
  ASSERT_TRUE(Commit(drop).ok());
  EXPECT_TRUE(queue_->LoadSchedules()->empty());
}

TEST_F(SqliteEventQueueTest, ADeadLetterKeepsThePayloadItsCallerNoLongerHolds) {
  Op a = Enqueue("hello", "{\"big\":true}");
  ASSERT_TRUE(Commit(a).ok());
  Op dead;
  dead.kind = Op::Kind::kDeadLetter;
  dead.dead_letter.event = a.event;
  dead.dead_letter.event.payload.clear();  // left on disk by the caller
  dead.dead_letter.condition = "RetriesExhausted";
  ASSERT_TRUE(Commit(dead).ok());
  auto dl = queue_->DeadLetters("hello", 10);
  ASSERT_TRUE(dl.ok());
  ASSERT_EQ(dl->size(), 1u);
  EXPECT_EQ((*dl)[0].event.payload, "{\"big\":true}");
  EXPECT_EQ(queue_->LoadPayload(a.event.id).status().code(), Code::kNotFound);
}

TEST_F(SqliteEventQueueTest, FreedPagesAreGivenBackToTheFileSystem) {
  std::vector<Op> ops;
  for (int i = 0; i < 200; ++i) ops.push_back(Enqueue("hello", std::string(64 * 1024, 'x')));
  ASSERT_TRUE(Commit(ops).ok());
  Op del;
  del.kind = Op::Kind::kDelete;
  for (Op& op : ops) del.ids.push_back(op.event.id);
  ASSERT_TRUE(Commit(del).ok());
  Op expire;
  expire.kind = Op::Kind::kExpireKeys;
  ASSERT_TRUE(Commit(expire).ok());
  queue_.reset();  // the last connection checkpoints the WAL into the file
  EXPECT_LT(fs::file_size(dir_ / "queue.db"), 2u << 20) << "12 MiB of payloads were deleted";
  Open();
}

TEST_F(SqliteEventQueueTest, RefusesAFileThatIsNotAQueue) {
  queue_.reset();
  {
    std::FILE* f = std::fopen((dir_ / "other.db").c_str(), "w");
    std::fputs("not a database at all, just text that is long enough to look like a header....", f);
    std::fclose(f);
  }
  auto q = OpenSqliteEventQueue(dir_ / "other.db");
  EXPECT_FALSE(q.ok());
}

}  // namespace
}  // namespace nimbus::queue
