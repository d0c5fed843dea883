// A thin layer over one SQLite connection, shared by the SQLite store and the SQLite event
// queue: opening with the settings both need (WAL, synchronous=NORMAL or FULL, busy timeout), a file
// tag (PRAGMA application_id) so the store never opens the queue's file or the other way round,
// schema migrations keyed on PRAGMA user_version, prepared statements and transactions.
//
// Threading: a SqliteDb is NOT thread-safe by itself; its owner serialises use with a mutex
// (one connection, one statement or transaction at a time). Blocking.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::sqlite {

// One prepared statement; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  // Parameters are numbered from 1, as in SQLite.
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::string_view text);
  Stmt& BindBlob(int index, std::string_view bytes);

  // Ok(true) when a row is ready, Ok(false) when done.
  Result<bool> Step();
  // Runs to completion, for statements that return no rows.
  Status Run();

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const;  // also reads blobs
  // Resets the statement so it can run again with new bindings.
  void Reset() { sqlite3_reset(stmt_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  struct Options {
    uint32_t application_id = 0;  // tags the file; a file tagged otherwise is refused
    std::string what;             // "store", "event queue": used in messages
    // migrations[i] brings the schema from user_version i to i+1.
    std::vector<std::string> migrations;
    // synchronous=FULL (every commit reaches the disk before it returns) instead of NORMAL
    // (a commit survives a crash of the process, not of the machine).
    bool synchronous_full = false;
  };

  static Result<std::unique_ptr<SqliteDb>> Open(const std::filesystem::path& file,
                                                const Options& options);
  ~SqliteDb();

  Status Exec(const std::string& sql);
  Result<Stmt> Prepare(std::string_view sql);
  // BEGIN IMMEDIATE (takes the write lock up front, so two writers never deadlock on upgrade).
  Status Begin();
  Status Commit();
  void Rollback();

  sqlite3* handle() { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Maps an SQLite result code to a Status: busy/locked -> Unavailable, disk trouble -> Io.
Status SqliteError(sqlite3* db, int rc, const std::string& what);

}  // namespace nimbus::sqlite
