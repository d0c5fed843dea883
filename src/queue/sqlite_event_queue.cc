#include "queue/sqlite_event_queue.h"

#include <chrono>
#include <mutex>

#include "store/sqlite_db.h"

namespace nimbus::queue {
namespace {

using store::SqliteDb;

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // 0 -> 1. AUTOINCREMENT so an id is never reused: a late Ack for an event that was
      // already acked can never delete a newer one.
      R"sql(
        CREATE TABLE events (
          id            INTEGER PRIMARY KEY AUTOINCREMENT,
          function      TEXT NOT NULL,
          qualifier     TEXT NOT NULL,
          payload       BLOB NOT NULL,
          attempts      INTEGER NOT NULL DEFAULT 0,
          enqueued_ms   INTEGER NOT NULL,
          visible_at_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX events_by_visibility ON events(visible_at_ms, id);
        CREATE TABLE dead_letters (
          id             INTEGER PRIMARY KEY,
          function       TEXT NOT NULL,
          qualifier      TEXT NOT NULL,
          payload        BLOB NOT NULL,
          attempts       INTEGER NOT NULL,
          enqueued_ms    INTEGER NOT NULL,
          dead_at_ms     INTEGER NOT NULL,
          reason         TEXT NOT NULL
        );
      )sql",
  };
  return kMigrations;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status EventNotFound(int64_t id) {
  return Status::NotFound("event " + std::to_string(id) +
                          " is not in the queue (already acked or dead-lettered)");
}

class SqliteEventQueue final : public EventQueue {
 public:
  explicit SqliteEventQueue(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Result<int64_t> Enqueue(const std::string& function, const std::string& qualifier,
                          std::string payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto q = db_->Prepare(
        "INSERT INTO events(function, qualifier, payload, enqueued_ms) VALUES (?1, ?2, ?3, ?4)");
    if (!q.ok()) return q.status();
    q->Bind(1, function).Bind(2, qualifier).BindBlob(3, payload).Bind(4, NowMs());
    NIMBUS_RETURN_IF_ERROR(q->Run());
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_->handle()));
  }

  Result<std::vector<Event>> Lease(int64_t now_ms, int64_t lease_ms, size_t max) override {
    std::lock_guard<std::mutex> lock(mu_);
    NIMBUS_RETURN_IF_ERROR(db_->Begin());
    auto result = LeaseLocked(now_ms, lease_ms, max);
    Status st = result.ok() ? db_->Commit() : result.status();
    if (!st.ok()) {
      db_->Rollback();
      return st;
    }
    return result;
  }

  Status Ack(int64_t id) override {
    return Change(id, "DELETE FROM events WHERE id = ?1", [](store::Stmt&) {});
  }

  Status Retry(int64_t id, int64_t visible_at_ms) override {
    return Change(id, "UPDATE events SET visible_at_ms = ?2 WHERE id = ?1",
                  [&](store::Stmt& q) { q.Bind(2, visible_at_ms); });
  }

  Status DeadLetter(int64_t id, const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    NIMBUS_RETURN_IF_ERROR(db_->Begin());
    Status st = [&]() -> Status {
      auto move = db_->Prepare(
          "INSERT INTO dead_letters(id, function, qualifier, payload, attempts, enqueued_ms, "
          "dead_at_ms, reason) SELECT id, function, qualifier, payload, attempts, enqueued_ms, "
          "?2, ?3 FROM events WHERE id = ?1");
      if (!move.ok()) return move.status();
      move->Bind(1, id).Bind(2, NowMs()).Bind(3, reason);
      NIMBUS_RETURN_IF_ERROR(move->Run());
      if (sqlite3_changes(db_->handle()) == 0) return EventNotFound(id);
      auto del = db_->Prepare("DELETE FROM events WHERE id = ?1");
      if (!del.ok()) return del.status();
      del->Bind(1, id);
      return del->Run();
    }();
    if (st.ok()) st = db_->Commit();
    if (!st.ok()) db_->Rollback();
    return st;
  }

  Result<size_t> Depth() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto q = db_->Prepare("SELECT COUNT(*) FROM events");
    if (!q.ok()) return q.status();
    auto row = q->Step();
    if (!row.ok()) return row.status();
    return static_cast<size_t>(q->Int(0));
  }

 private:
  Result<std::vector<Event>> LeaseLocked(int64_t now_ms, int64_t lease_ms, size_t max) {
    std::vector<Event> out;
    {
      auto q = db_->Prepare(
          "SELECT id, function, qualifier, payload, attempts, enqueued_ms FROM events "
          "WHERE visible_at_ms <= ?1 ORDER BY id LIMIT ?2");
      if (!q.ok()) return q.status();
      q->Bind(1, now_ms).Bind(2, static_cast<int64_t>(max));
      for (;;) {
        auto row = q->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        Event e;
        e.id = q->Int(0);
        e.function = q->Text(1);
        e.qualifier = q->Text(2);
        e.payload = q->Text(3);
        e.attempts = static_cast<int>(q->Int(4)) + 1;
        e.enqueued_ms = q->Int(5);
        e.visible_at_ms = now_ms + lease_ms;
        out.push_back(std::move(e));
      }
    }
    auto up = db_->Prepare(
        "UPDATE events SET visible_at_ms = ?2, attempts = attempts + 1 WHERE id = ?1");
    if (!up.ok()) return up.status();
    for (const Event& e : out) {
      NIMBUS_RETURN_IF_ERROR(up->Bind(1, e.id).Bind(2, e.visible_at_ms).Run());
      up->Reset();
    }
    return out;
  }

  template <typename BindFn>
  Status Change(int64_t id, const char* sql, BindFn bind) {
    std::lock_guard<std::mutex> lock(mu_);
    auto q = db_->Prepare(sql);
    if (!q.ok()) return q.status();
    q->Bind(1, id);
    bind(*q);
    NIMBUS_RETURN_IF_ERROR(q->Run());
    if (sqlite3_changes(db_->handle()) == 0) return EventNotFound(id);
    return Status::Ok();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::filesystem::path& db_file) {
  SqliteDb::Options options;
  options.application_id = kQueueApplicationId;
  options.what = "event queue";
  options.migrations = Migrations();
  static_assert(kQueueSchemaVersion == 1, "update Migrations() with the schema version");
  auto db = SqliteDb::Open(db_file, options);
  if (!db.ok()) return db.status();
  return std::unique_ptr<EventQueue>(new SqliteEventQueue(std::move(db).value()));
}

}  // namespace nimbus::queue
