#include "sqlite/sqlite_db.h"

#include <system_error>

namespace nimbus::sqlite {

Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg + "; another process holds the database, try again");
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Io(msg);
    default:
      return Status::Internal(msg);
  }
}

Stmt& Stmt::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view bytes) {
  sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "sqlite statement failed");
}

Status Stmt::Run() {
  for (;;) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return Status::Ok();
  }
}

std::string Stmt::Text(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

Status SqliteDb::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return SqliteError(nullptr, rc, "sqlite: " + msg);
}

Result<Stmt> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "could not prepare '" + std::string(sql) + "'");
  return Stmt(db_, stmt);
}

Status SqliteDb::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status SqliteDb::Commit() { return Exec("COMMIT"); }
void SqliteDb::Rollback() { (void)Exec("ROLLBACK"); }

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::filesystem::path& file,
                                                 const Options& options) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  if (rc != SQLITE_OK) {
    return SqliteError(raw, rc, "could not open the " + options.what + " database " + file.string());
  }
  sqlite3_busy_timeout(raw, 5000);
  sqlite3_extended_result_codes(raw, 1);

  // Reading the header also tells a non-database file apart ("file is not a database").
  int64_t app_id = 0;
  {
    auto id = db->Prepare("PRAGMA application_id");
    if (!id.ok()) return id.status();
    auto row = id->Step();
    if (!row.ok()) {
      return Status::FailedPrecondition(file.string() + " is not a nimbus " + options.what +
                                        " database (" + row.status().message() +
                                        "); move it away or pass another data directory");
    }
    app_id = id->Int(0);
  }  // finalized: a live statement would hold a read transaction open
  if (app_id != 0 && app_id != options.application_id) {
    return Status::FailedPrecondition(file.string() + " is not a nimbus " + options.what +
                                      " database (it belongs to something else); pass the "
                                      "right file or another data directory");
  }

  {
    auto mode = db->Prepare("PRAGMA journal_mode=WAL");
    if (!mode.ok()) return mode.status();
    auto r = mode->Step();
    if (!r.ok()) return r.status();
    if (mode->Text(0) != "wal") {
      return Status::Io("could not switch " + file.string() + " to WAL mode (got '" +
                        mode->Text(0) + "'); put the data directory on a local filesystem");
    }
  }
  NIMBUS_RETURN_IF_ERROR(db->Exec(std::string("PRAGMA synchronous=") + (options.synchronous_full ? "FULL" : "NORMAL") +
                                  "; PRAGMA foreign_keys=ON"));

  // Migrations run in one write transaction, so two processes opening a fresh file at once
  // cannot both create the schema.
  NIMBUS_RETURN_IF_ERROR(db->Begin());
  auto fail = [&](Status st) {
    db->Rollback();
    return st;
  };
  int64_t version = 0;
  {
    auto uv = db->Prepare("PRAGMA user_version");
    if (!uv.ok()) return fail(uv.status());
    auto uv_row = uv->Step();
    if (!uv_row.ok()) return fail(uv_row.status());
    version = uv->Int(0);
  }  // finalized before the schema changes
  if (version > static_cast<int64_t>(options.migrations.size())) {
    return fail(Status::FailedPrecondition(
        file.string() + " has " + options.what + " schema version " + std::to_string(version) +
        ", newer than this nimbus understands (" + std::to_string(options.migrations.size()) +
        "); upgrade nimbus or pass another data directory"));
  }
  for (size_t v = static_cast<size_t>(version); v < options.migrations.size(); ++v) {
    Status st = db->Exec(options.migrations[v]);
    if (!st.ok()) return fail(st);
  }
  if (static_cast<size_t>(version) != options.migrations.size() || app_id == 0) {
    Status st = db->Exec("PRAGMA user_version=" + std::to_string(options.migrations.size()) +
                         "; PRAGMA application_id=" + std::to_string(options.application_id));
    if (!st.ok()) return fail(st);
  }
  NIMBUS_RETURN_IF_ERROR(db->Commit());
  return db;
}

}  // namespace nimbus::sqlite
