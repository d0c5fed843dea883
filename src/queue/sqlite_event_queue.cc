#include "queue/sqlite_event_queue.h"

#include <functional>

#include "common/mutex.h"
#include "sqlite/sqlite_db.h"

namespace nimbus::queue {
namespace {

using sqlite::SqliteDb;
using sqlite::Stmt;

const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // 0 -> 1: the first lease-based layout. No daemon ever wrote it; 1 -> 2 replaces it.
      R"sql(
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL);
        CREATE TABLE dead_letters (id INTEGER PRIMARY KEY);
      )sql",
      // 1 -> 2. AUTOINCREMENT so an id is never reused: a late completion of an event that was
      // already completed can never delete a newer one.
      R"sql(
        DROP TABLE events;
        DROP TABLE dead_letters;
        CREATE TABLE events (
          id            INTEGER PRIMARY KEY AUTOINCREMENT,
          request_id    TEXT NOT NULL,
          function      TEXT NOT NULL,
          qualifier     TEXT NOT NULL,
          payload       BLOB NOT NULL,
          source        TEXT NOT NULL,
          attempts      INTEGER NOT NULL DEFAULT 0,
          depth         INTEGER NOT NULL DEFAULT 0,
          enqueued_ms   INTEGER NOT NULL,
          visible_at_ms INTEGER NOT NULL DEFAULT 0,
          last_error    TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE dead_letters (
          id            INTEGER PRIMARY KEY,
          request_id    TEXT NOT NULL,
          function      TEXT NOT NULL,
          qualifier     TEXT NOT NULL,
          payload       BLOB NOT NULL,
          source        TEXT NOT NULL,
          attempts      INTEGER NOT NULL,
          depth         INTEGER NOT NULL,
          enqueued_ms   INTEGER NOT NULL,
          last_error    TEXT NOT NULL,
          dead_at_ms    INTEGER NOT NULL,
          condition     TEXT NOT NULL,
          record        BLOB NOT NULL
        );
        CREATE INDEX dead_letters_by_function ON dead_letters(function, id);
        CREATE TABLE idempotency_keys (
          function   TEXT NOT NULL,
          key        TEXT NOT NULL,
          request_id TEXT NOT NULL,
          at_ms      INTEGER NOT NULL,
          PRIMARY KEY (function, key)
        ) WITHOUT ROWID;
        CREATE INDEX idempotency_keys_by_age ON idempotency_keys(at_ms);
        CREATE TABLE schedules (
          function      TEXT PRIMARY KEY,
          expression    TEXT NOT NULL,
          timezone      TEXT NOT NULL,
          anchor_ms     INTEGER NOT NULL,
          last_fired_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
      )sql",
  };
  return kMigrations;
}

constexpr const char* kEventColumns =
    "id, request_id, function, qualifier, payload, source, attempts, depth, enqueued_ms, visible_at_ms, last_error";

Event ReadEvent(const Stmt& q) {
  Event e;
  e.id = q.Int(0);
  e.request_id = q.Text(1);
  e.function = q.Text(2);
  e.qualifier = q.Text(3);
  e.payload = q.Text(4);
  e.payload_size = static_cast<int64_t>(e.payload.size());
  e.source = q.Text(5);
  e.attempts = static_cast<int>(q.Int(6));
  e.depth = static_cast<int>(q.Int(7));
  e.enqueued_ms = q.Int(8);
  e.visible_at_ms = q.Int(9);
  e.last_error = q.Text(10);
  return e;
}

class SqliteEventQueue final : public EventQueue {
 public:
  SqliteEventQueue(std::unique_ptr<SqliteDb> db, std::unique_ptr<SqliteDb> reader)
      : db_(std::move(db)), reader_(std::move(reader)) {}

  Status Commit(std::vector<Op*>& batch) override {
    MutexLock lock(mu_);
    NIMBUS_RETURN_IF_ERROR(db_->Begin());
    Status st = Status::Ok();
    for (Op* op : batch) {
      // Results of an earlier, rolled-back try of the same op must not leak into this one.
      op->duplicate = false;
      op->affected = 0;
      op->replayed.clear();
      op->missing.clear();
      st = Apply(*op);
      if (!st.ok()) break;
    }
    if (st.ok()) st = db_->Commit();
    if (!st.ok()) db_->Rollback();
    return st;
  }

  Result<std::vector<Event>> LoadPending() override {
    MutexLock lock(mu_);
    // The payload column stays on disk: '' in its place, its length in column 11.
    auto q = db_->Prepare(
        "SELECT id, request_id, function, qualifier, '', source, attempts, depth, enqueued_ms, visible_at_ms, "
        "last_error, length(payload) FROM events ORDER BY id");
    if (!q.ok()) return q.status();
    std::vector<Event> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      Event e = ReadEvent(*q);
      e.payload_size = q->Int(11);
      out.push_back(std::move(e));
    }
    return out;
  }

  Result<std::string> LoadPayload(int64_t id) override {
    MutexLock lock(read_mu_);
    auto q = reader_->Prepare("SELECT payload FROM events WHERE id = ?1");
    if (!q.ok()) return q.status();
    q->Bind(1, id);
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::NotFound("event " + std::to_string(id) + " is no longer pending");
    return q->Text(0);
  }

  Result<std::vector<DeadLetter>> DeadLetters(const std::string& function, size_t limit) override {
    MutexLock lock(mu_);
    auto q = db_->Prepare(
        "SELECT id, request_id, function, qualifier, payload, source, attempts, depth, enqueued_ms, 0, "
        "last_error, dead_at_ms, condition, record FROM dead_letters WHERE function = ?1 ORDER BY id DESC LIMIT ?2");
    if (!q.ok()) return q.status();
    q->Bind(1, function).Bind(2, static_cast<int64_t>(limit));
    std::vector<DeadLetter> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      DeadLetter d;
      d.event = ReadEvent(*q);
      d.dead_at_ms = q->Int(11);
      d.condition = q->Text(12);
      d.record = q->Text(13);
      out.push_back(std::move(d));
    }
    return out;
  }

  Result<std::map<std::string, int64_t>> DeadLetterCounts() override {
    MutexLock lock(mu_);
    auto q = db_->Prepare("SELECT function, COUNT(*) FROM dead_letters GROUP BY function");
    if (!q.ok()) return q.status();
    std::map<std::string, int64_t> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out[q->Text(0)] = q->Int(1);
    }
    return out;
  }

  Result<std::vector<ScheduleState>> LoadSchedules() override {
    MutexLock lock(mu_);
    auto q = db_->Prepare("SELECT function, expression, timezone, anchor_ms, last_fired_ms FROM schedules");
    if (!q.ok()) return q.status();
    std::vector<ScheduleState> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({q->Text(0), q->Text(1), q->Text(2), q->Int(3), q->Int(4)});
    }
    return out;
  }

 private:
  // Prepared once per connection and reused: the enqueue path runs thousands of times a second.
  Result<Stmt*> Cached(const char* sql) NIMBUS_REQUIRES(mu_) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) {
      it->second->Reset();
      return it->second.get();
    }
    auto q = db_->Prepare(sql);
    if (!q.ok()) return q.status();
    auto owned = std::make_unique<Stmt>(std::move(q).value());
    Stmt* raw = owned.get();
    stmts_.emplace(sql, std::move(owned));
    return raw;
  }

  Status Run(const char* sql, const std::function<void(Stmt&)>& bind) NIMBUS_REQUIRES(mu_) {
    auto q = Cached(sql);
    if (!q.ok()) return q.status();
    bind(**q);
    Status st = (*q)->Run();
    (*q)->Reset();
    return st;
  }

  int64_t Changes() NIMBUS_REQUIRES(mu_) { return sqlite3_changes(db_->handle()); }

  Status InsertEvent(Event& e) NIMBUS_REQUIRES(mu_) {
    NIMBUS_RETURN_IF_ERROR(Run(
        "INSERT INTO events(request_id, function, qualifier, payload, source, attempts, depth, enqueued_ms, "
        "visible_at_ms, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [&](Stmt& q) {
          q.Bind(1, e.request_id).Bind(2, e.function).Bind(3, e.qualifier).BindBlob(4, e.payload);
          q.Bind(5, e.source).Bind(6, e.attempts).Bind(7, e.depth).Bind(8, e.enqueued_ms);
          q.Bind(9, e.visible_at_ms).Bind(10, e.last_error);
        }));
    e.id = sqlite3_last_insert_rowid(db_->handle());
    return Status::Ok();
  }

  Status Enqueue(Op& op) NIMBUS_REQUIRES(mu_) {
    if (!op.idempotency_key.empty()) {
      auto q = Cached("SELECT request_id FROM idempotency_keys WHERE function = ?1 AND key = ?2 AND at_ms >= ?3");
      if (!q.ok()) return q.status();
      (*q)->Bind(1, op.event.function).Bind(2, op.idempotency_key).Bind(3, op.before_ms);
      auto row = (*q)->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        op.duplicate = true;
        op.event.request_id = (*q)->Text(0);
        (*q)->Reset();
        return Status::Ok();
      }
      (*q)->Reset();
      NIMBUS_RETURN_IF_ERROR(Run(
          "INSERT OR REPLACE INTO idempotency_keys(function, key, request_id, at_ms) VALUES (?1, ?2, ?3, ?4)",
          [&](Stmt& s) {
            s.Bind(1, op.event.function).Bind(2, op.idempotency_key).Bind(3, op.event.request_id);
            s.Bind(4, op.event.enqueued_ms);
          }));
    }
    NIMBUS_RETURN_IF_ERROR(InsertEvent(op.event));
    if (op.schedule_fired_ms) {
      NIMBUS_RETURN_IF_ERROR(Run("UPDATE schedules SET last_fired_ms = ?2 WHERE function = ?1", [&](Stmt& q) {
        q.Bind(1, op.event.function).Bind(2, *op.schedule_fired_ms);
      }));
    }
    return Status::Ok();
  }

  Status Apply(Op& op) NIMBUS_REQUIRES(mu_) {
    switch (op.kind) {
      case Op::Kind::kEnqueue:
        return Enqueue(op);
      case Op::Kind::kComplete:
        NIMBUS_RETURN_IF_ERROR(Run("DELETE FROM events WHERE id = ?1", [&](Stmt& q) { q.Bind(1, op.id); }));
        op.affected = Changes();
        // A completion whose event is gone (purged meanwhile) still delivers its destination:
        // the function ran.
        return op.next_event ? InsertEvent(op.event) : Status::Ok();
      case Op::Kind::kRetry:
        NIMBUS_RETURN_IF_ERROR(Run(
            "UPDATE events SET attempts = ?2, visible_at_ms = ?3, last_error = ?4 WHERE id = ?1", [&](Stmt& q) {
              q.Bind(1, op.id).Bind(2, op.event.attempts).Bind(3, op.event.visible_at_ms).Bind(4, op.event.last_error);
            }));
        op.affected = Changes();
        return Status::Ok();
      case Op::Kind::kDeadLetter: {
        const DeadLetter& d = op.dead_letter;
        const Event& e = d.event;
        // The payload comes from the events row: the caller may not hold it in memory.
        NIMBUS_RETURN_IF_ERROR(Run(
            "INSERT OR REPLACE INTO dead_letters(id, request_id, function, qualifier, payload, source, attempts, "
            "depth, enqueued_ms, last_error, dead_at_ms, condition, record) "
            "SELECT id, request_id, function, qualifier, payload, source, ?2, depth, enqueued_ms, ?3, ?4, ?5, ?6 "
            "FROM events WHERE id = ?1",
            [&](Stmt& q) {
              q.Bind(1, e.id).Bind(2, e.attempts).Bind(3, e.last_error).Bind(4, d.dead_at_ms).Bind(5, d.condition);
              q.BindBlob(6, d.record);
            }));
        if (Changes() == 0) return Status::Ok();  // already gone (purged meanwhile): nothing to keep
        NIMBUS_RETURN_IF_ERROR(Run("DELETE FROM events WHERE id = ?1", [&](Stmt& q) { q.Bind(1, e.id); }));
        op.affected = Changes();
        return Status::Ok();
      }
      case Op::Kind::kDelete:
        for (int64_t id : op.ids) {
          NIMBUS_RETURN_IF_ERROR(Run("DELETE FROM events WHERE id = ?1", [&](Stmt& q) { q.Bind(1, id); }));
          op.affected += Changes();
        }
        return Status::Ok();
      case Op::Kind::kReplay:
        return Replay(op);
      case Op::Kind::kPurgeDead:
        NIMBUS_RETURN_IF_ERROR(
            Run("DELETE FROM dead_letters WHERE function = ?1", [&](Stmt& q) { q.Bind(1, op.function); }));
        op.affected = Changes();
        return Status::Ok();
      case Op::Kind::kSetSchedule:
        return Run(
            "INSERT OR REPLACE INTO schedules(function, expression, timezone, anchor_ms, last_fired_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?5)",
            [&](Stmt& q) {
              const ScheduleState& s = op.schedule;
              q.Bind(1, s.function).Bind(2, s.expression).Bind(3, s.timezone).Bind(4, s.anchor_ms);
              q.Bind(5, s.last_fired_ms);
            });
      case Op::Kind::kDropSchedule:
        return Run("DELETE FROM schedules WHERE function = ?1", [&](Stmt& q) { q.Bind(1, op.function); });
      case Op::Kind::kExpireKeys:
        NIMBUS_RETURN_IF_ERROR(
            Run("DELETE FROM idempotency_keys WHERE at_ms < ?1", [&](Stmt& q) { q.Bind(1, op.before_ms); }));
        op.affected = Changes();
        // Pages freed by completed and purged events go back to the file system, so a drained
        // backlog does not leave the file at its largest size.
        return Run("PRAGMA incremental_vacuum(16384)", [](Stmt&) {});
    }
    return Status::Internal("unknown queue operation");
  }

  Status Replay(Op& op) NIMBUS_REQUIRES(mu_) {
    std::vector<int64_t> ids = op.ids;
    if (ids.empty()) {
      auto q = Cached("SELECT id FROM dead_letters WHERE function = ?1 ORDER BY id");
      if (!q.ok()) return q.status();
      (*q)->Bind(1, op.function);
      for (;;) {
        auto row = (*q)->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        ids.push_back((*q)->Int(0));
      }
      (*q)->Reset();
    }
    for (int64_t id : ids) {
      auto q = Cached(
          "SELECT id, request_id, function, qualifier, payload, source, attempts, depth, enqueued_ms, 0, last_error "
          "FROM dead_letters WHERE id = ?1 AND function = ?2");
      if (!q.ok()) return q.status();
      (*q)->Bind(1, id).Bind(2, op.function);
      auto row = (*q)->Step();
      if (!row.ok()) return row.status();
      if (!*row) {
        (*q)->Reset();
        op.missing.push_back(id);
        continue;
      }
      Event e = ReadEvent(**q);
      (*q)->Reset();
      e.attempts = 0;
      e.depth = 0;
      e.visible_at_ms = 0;
      e.enqueued_ms = op.now_ms;
      e.source = "replay";
      NIMBUS_RETURN_IF_ERROR(Run("DELETE FROM dead_letters WHERE id = ?1", [&](Stmt& s) { s.Bind(1, id); }));
      NIMBUS_RETURN_IF_ERROR(InsertEvent(e));
      op.replayed.push_back(std::move(e));
    }
    op.affected = static_cast<int64_t>(op.replayed.size());
    return Status::Ok();
  }

  // The writer connection: every change, and the reads that must see the latest commit.
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ NIMBUS_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Stmt>> stmts_ NIMBUS_GUARDED_BY(mu_);  // keyed by SQL text
  // A second connection for payload reads, so a delivery loading a payload does not wait for a
  // commit (WAL lets it read beside the writer).
  Mutex read_mu_;
  std::unique_ptr<SqliteDb> reader_ NIMBUS_GUARDED_BY(read_mu_);
};

}  // namespace

Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::filesystem::path& db_file) {
  SqliteDb::Options options;
  options.application_id = kQueueApplicationId;
  options.what = "event queue";
  options.migrations = Migrations();
  options.synchronous_full = true;
  static_assert(kQueueSchemaVersion == 2, "update Migrations() with the schema version");
  auto db = SqliteDb::Open(db_file, options);
  if (!db.ok()) return db.status();
  // Free pages are given back by an incremental vacuum (see kExpireKeys), and the WAL is cut
  // back to 64 MiB after each checkpoint: a drained backlog shrinks the files again. A file made
  // without auto_vacuum is rebuilt once to switch it on.
  bool incremental = false;
  {
    auto mode = (*db)->Prepare("PRAGMA auto_vacuum");
    if (!mode.ok()) return mode.status();
    auto row = mode->Step();
    if (!row.ok()) return row.status();
    incremental = mode->Int(0) == 2;
  }  // finalized: VACUUM refuses to run beside a live statement
  if (!incremental) {
    NIMBUS_RETURN_IF_ERROR((*db)->Exec("PRAGMA auto_vacuum=INCREMENTAL"));
    NIMBUS_RETURN_IF_ERROR((*db)->Exec("VACUUM"));
  }
  NIMBUS_RETURN_IF_ERROR((*db)->Exec("PRAGMA journal_size_limit=67108864"));
  auto reader = SqliteDb::Open(db_file, options);
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<EventQueue>(new SqliteEventQueue(std::move(db).value(), std::move(reader).value()));
}

}  // namespace nimbus::queue
