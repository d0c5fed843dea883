// The SQLite event queue: at-least-once delivery with leases, retries, dead letters, and
// nothing lost across a restart.
#include "queue/sqlite_event_queue.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <set>
#include <thread>

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
  std::vector<Event> Lease(int64_t now, int64_t lease = 1000, size_t max = 10) {
    auto r = queue_->Lease(now, lease, max);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Event>{};
  }

  fs::path dir_;
  std::unique_ptr<EventQueue> queue_;
};

TEST_F(SqliteEventQueueTest, EnqueuedEventsAreLeasedOldestFirstWithTheirPayload) {
  auto a = queue_->Enqueue("hello", "", "{\"n\":1}");
  auto b = queue_->Enqueue("hello", "live", std::string("bin\0ary", 7));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(*a, *b);
  EXPECT_EQ(*queue_->Depth(), 2u);
  auto events = Lease(100);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, *a);
  EXPECT_EQ(events[0].function, "hello");
  EXPECT_EQ(events[0].payload, "{\"n\":1}");
  EXPECT_EQ(events[0].attempts, 1);
  EXPECT_GT(events[0].enqueued_ms, 0);
  EXPECT_EQ(events[0].visible_at_ms, 1100);
  EXPECT_EQ(events[1].qualifier, "live");
  EXPECT_EQ(events[1].payload, std::string("bin\0ary", 7));
}

TEST_F(SqliteEventQueueTest, ALeasedEventIsHiddenUntilItsLeaseRunsOut) {
  ASSERT_TRUE(queue_->Enqueue("f", "", "x").ok());
  ASSERT_EQ(Lease(1000, 500).size(), 1u);
  EXPECT_TRUE(Lease(1499).empty());
  auto again = Lease(1500, 500);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 2);
  EXPECT_EQ(*queue_->Depth(), 1u);
}

TEST_F(SqliteEventQueueTest, LeaseTakesAtMostMax) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue_->Enqueue("f", "", std::to_string(i)).ok());
  auto first = Lease(0, 1000, 3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].payload, "0");
  auto rest = Lease(0, 1000, 3);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].payload, "3");
}

TEST_F(SqliteEventQueueTest, AckRemovesAnEventForGood) {
  auto id = queue_->Enqueue("f", "", "x");
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(Lease(0).size(), 1u);
  ASSERT_TRUE(queue_->Ack(*id).ok());
  EXPECT_EQ(*queue_->Depth(), 0u);
  EXPECT_TRUE(Lease(1'000'000).empty());
  EXPECT_EQ(queue_->Ack(*id).code(), Code::kNotFound);
}

TEST_F(SqliteEventQueueTest, RetryMakesAnEventVisibleAtTheGivenTime) {
  auto id = queue_->Enqueue("f", "", "x");
  ASSERT_EQ(Lease(0, 60'000).size(), 1u);
  ASSERT_TRUE(queue_->Retry(*id, 200).ok());
  EXPECT_TRUE(Lease(199).empty());
  auto again = Lease(200);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 2);
  EXPECT_EQ(queue_->Retry(9999, 0).code(), Code::kNotFound);
}

TEST_F(SqliteEventQueueTest, DeadLetteredEventsLeaveTheQueue) {
  auto id = queue_->Enqueue("f", "", "x");
  ASSERT_TRUE(queue_->Enqueue("f", "", "y").ok());
  ASSERT_TRUE(queue_->DeadLetter(*id, "function error after 3 attempts").ok());
  EXPECT_EQ(*queue_->Depth(), 1u);
  auto events = Lease(0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "y");
  EXPECT_EQ(queue_->DeadLetter(*id, "again").code(), Code::kNotFound);
}

TEST_F(SqliteEventQueueTest, NothingIsLostAcrossAReopen) {
  auto leased = queue_->Enqueue("f", "", "leased");
  ASSERT_TRUE(queue_->Enqueue("f", "", "waiting").ok());
  ASSERT_EQ(Lease(0, 1000, 1).size(), 1u);  // the consumer "crashes" holding this lease
  Open();
  EXPECT_EQ(*queue_->Depth(), 2u);
  auto now = Lease(500);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].payload, "waiting");
  auto later = Lease(1000);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].id, *leased);
  EXPECT_EQ(later[0].attempts, 2);
  // Ids keep growing after a restart, even past acked ones.
  ASSERT_TRUE(queue_->Ack(now[0].id).ok());
  ASSERT_TRUE(queue_->Ack(later[0].id).ok());
  Open();
  auto next = queue_->Enqueue("f", "", "new");
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, later[0].id);
}

TEST_F(SqliteEventQueueTest, ConcurrentConsumersNeverLeaseTheSameEventTwice) {
  constexpr int kEvents = 200;
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(queue_->Enqueue("f", "", std::to_string(i)).ok());
  std::mutex mu;
  std::multiset<int64_t> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        auto batch = queue_->Lease(0, 1'000'000, 7);
        ASSERT_TRUE(batch.ok());
        if (batch->empty()) return;
        for (const Event& e : *batch) {
          EXPECT_TRUE(queue_->Ack(e.id).ok());
          std::lock_guard<std::mutex> lock(mu);
          seen.insert(e.id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(*queue_->Depth(), 0u);
}

TEST_F(SqliteEventQueueTest, RefusesToOpenTheStoresFile) {
  queue_.reset();
  // A store file carries another application_id; the queue must not adopt it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "nimbus.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA application_id=1313690452; CREATE TABLE functions(x)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto q = OpenSqliteEventQueue(dir_ / "nimbus.db");
  EXPECT_EQ(q.status().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace nimbus::queue
