#include "store/sqlite_store.h"

#include <chrono>
#include <mutex>

#include "common/iso_time.h"
#include "sqlite/sqlite_db.h"

namespace nimbus::store {
namespace {

using sqlite::SqliteDb;

// migrations[i] takes the schema from user_version i to i+1. Never edit a released entry:
// append a new one. API keys come as a later migration.
const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // 0 -> 1: the function registry.
      R"sql(
        CREATE TABLE functions (
          name           TEXT PRIMARY KEY,
          latest_version INTEGER NOT NULL,
          created_ms     INTEGER NOT NULL,
          updated_ms     INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE versions (
          function      TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
          version       INTEGER NOT NULL,
          code_sha256   TEXT NOT NULL,
          manifest_yaml TEXT NOT NULL,
          created_ms    INTEGER NOT NULL,
          PRIMARY KEY (function, version)
        ) WITHOUT ROWID;
        CREATE INDEX versions_by_code ON versions(code_sha256);
        CREATE TABLE aliases (
          function TEXT NOT NULL,
          name     TEXT NOT NULL,
          version  INTEGER NOT NULL,
          PRIMARY KEY (function, name),
          FOREIGN KEY (function, version) REFERENCES versions(function, version) ON DELETE CASCADE
        ) WITHOUT ROWID;
      )sql",
  };
  return kMigrations;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Result<FunctionVersion> Publish(const std::string& name, const std::string& code_sha256,
                                  const std::string& manifest_yaml, bool* created) override {
    NIMBUS_RETURN_IF_ERROR(ValidateFunctionName(name));
    if (code_sha256.empty()) {
      return Status::InvalidArgument("publishing '" + name + "' needs the code's sha256");
    }
    std::lock_guard<std::mutex> lock(mu_);
    NIMBUS_RETURN_IF_ERROR(db_->Begin());
    auto result = PublishLocked(name, code_sha256, manifest_yaml, created);
    if (!result.ok()) {
      db_->Rollback();
      return result;
    }
    Status st = db_->Commit();
    if (!st.ok()) {
      db_->Rollback();
      return st;
    }
    return result;
  }

  Result<FunctionRecord> GetFunction(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    return GetFunctionLocked(name);
  }

  Result<std::vector<FunctionRecord>> ListFunctions() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto q = db_->Prepare(
        "SELECT name, latest_version, created_ms, updated_ms FROM functions ORDER BY name");
    if (!q.ok()) return q.status();
    std::vector<FunctionRecord> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({q->Text(0), std::to_string(q->Int(1)), q->Int(2), q->Int(3)});
    }
    return out;
  }

  Result<FunctionVersion> GetVersion(const std::string& name, const std::string& version) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    std::string v = (version == "$LATEST" || version.empty()) ? fn->latest_version : version;
    if (!IsVersionNumber(v)) return VersionNotFound(name, version, fn->latest_version);
    return GetVersionLocked(name, v, fn->latest_version);
  }

  Result<std::vector<FunctionVersion>> ListVersions(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    auto q = db_->Prepare(
        "SELECT version, code_sha256, manifest_yaml, created_ms FROM versions "
        "WHERE function = ?1 ORDER BY version");
    if (!q.ok()) return q.status();
    q->Bind(1, name);
    std::vector<FunctionVersion> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({name, std::to_string(q->Int(0)), q->Text(1), q->Text(2), q->Int(3)});
    }
    return out;
  }

  Result<std::string> ResolveQualifier(const std::string& name,
                                       const std::string& qualifier) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    if (qualifier.empty() || qualifier == "$LATEST") return fn->latest_version;
    if (IsVersionNumber(qualifier)) {
      auto v = GetVersionLocked(name, qualifier, fn->latest_version);
      if (!v.ok()) return v.status();
      return qualifier;
    }
    auto q = db_->Prepare("SELECT version FROM aliases WHERE function = ?1 AND name = ?2");
    if (!q.ok()) return q.status();
    q->Bind(1, name).Bind(2, qualifier);
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) return AliasNotFound(name, qualifier);
    return std::to_string(q->Int(0));
  }

  Status DeleteFunction(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    NIMBUS_RETURN_IF_ERROR(db_->Begin());
    Status st = DeleteFunctionLocked(name);
    if (st.ok()) st = db_->Commit();
    if (!st.ok()) db_->Rollback();
    return st;
  }

  Status PutAlias(const std::string& name, const std::string& alias,
                  const std::string& version) override {
    NIMBUS_RETURN_IF_ERROR(ValidateAliasName(alias));
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    if (!IsVersionNumber(version)) {
      return Status::InvalidArgument("alias '" + alias + "' must point at a version number (1 to " +
                                     fn->latest_version + "), not '" + version + "'");
    }
    auto v = GetVersionLocked(name, version, fn->latest_version);
    if (!v.ok()) return v.status();
    auto q = db_->Prepare(
        "INSERT INTO aliases(function, name, version) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(function, name) DO UPDATE SET version = excluded.version");
    if (!q.ok()) return q.status();
    q->Bind(1, name).Bind(2, alias).Bind(3, static_cast<int64_t>(std::stoll(version)));
    return q->Run();
  }

  Status DeleteAlias(const std::string& name, const std::string& alias) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    auto q = db_->Prepare("DELETE FROM aliases WHERE function = ?1 AND name = ?2");
    if (!q.ok()) return q.status();
    q->Bind(1, name).Bind(2, alias);
    NIMBUS_RETURN_IF_ERROR(q->Run());
    if (sqlite3_changes(db_->handle()) == 0) return AliasNotFound(name, alias);
    return Status::Ok();
  }

  Result<std::vector<Alias>> ListAliases(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    auto q = db_->Prepare("SELECT name, version FROM aliases WHERE function = ?1 ORDER BY name");
    if (!q.ok()) return q.status();
    q->Bind(1, name);
    std::vector<Alias> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({name, q->Text(0), std::to_string(q->Int(1))});
    }
    return out;
  }

  Result<std::vector<std::string>> ReferencedCode() override {
    std::lock_guard<std::mutex> lock(mu_);
    auto q = db_->Prepare("SELECT DISTINCT code_sha256 FROM versions ORDER BY code_sha256");
    if (!q.ok()) return q.status();
    std::vector<std::string> out;
    for (;;) {
      auto row = q->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back(q->Text(0));
    }
    return out;
  }

 private:
  Result<FunctionRecord> GetFunctionLocked(const std::string& name) {
    auto q = db_->Prepare(
        "SELECT latest_version, created_ms, updated_ms FROM functions WHERE name = ?1");
    if (!q.ok()) return q.status();
    q->Bind(1, name);
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) return FunctionNotFound(name);
    return FunctionRecord{name, std::to_string(q->Int(0)), q->Int(1), q->Int(2)};
  }

  Result<FunctionVersion> GetVersionLocked(const std::string& name, const std::string& version,
                                           const std::string& latest) {
    auto q = db_->Prepare(
        "SELECT code_sha256, manifest_yaml, created_ms FROM versions "
        "WHERE function = ?1 AND version = ?2");
    if (!q.ok()) return q.status();
    q->Bind(1, name).Bind(2, static_cast<int64_t>(std::stoll(version)));
    auto row = q->Step();
    if (!row.ok()) return row.status();
    if (!*row) return VersionNotFound(name, version, latest);
    return FunctionVersion{name, version, q->Text(0), q->Text(1), q->Int(2)};
  }

  Result<FunctionVersion> PublishLocked(const std::string& name, const std::string& code_sha256,
                                        const std::string& manifest_yaml, bool* created) {
    const int64_t now = EpochMs();
    auto fn = GetFunctionLocked(name);
    int64_t next = 1;
    if (fn.ok()) {
      auto latest = GetVersionLocked(name, fn->latest_version, fn->latest_version);
      if (!latest.ok()) return latest.status();
      if (latest->code_sha256 == code_sha256 && latest->manifest_yaml == manifest_yaml) {
        if (created) *created = false;
        return latest;
      }
      next = std::stoll(fn->latest_version) + 1;
      auto up = db_->Prepare(
          "UPDATE functions SET latest_version = ?2, updated_ms = ?3 WHERE name = ?1");
      if (!up.ok()) return up.status();
      up->Bind(1, name).Bind(2, next).Bind(3, now);
      NIMBUS_RETURN_IF_ERROR(up->Run());
    } else if (fn.status().code() == Code::kNotFound) {
      auto ins = db_->Prepare(
          "INSERT INTO functions(name, latest_version, created_ms, updated_ms) "
          "VALUES (?1, 1, ?2, ?2)");
      if (!ins.ok()) return ins.status();
      ins->Bind(1, name).Bind(2, now);
      NIMBUS_RETURN_IF_ERROR(ins->Run());
    } else {
      return fn.status();
    }
    auto ins = db_->Prepare(
        "INSERT INTO versions(function, version, code_sha256, manifest_yaml, created_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, name).Bind(2, next).Bind(3, code_sha256).Bind(4, manifest_yaml).Bind(5, now);
    NIMBUS_RETURN_IF_ERROR(ins->Run());
    if (created) *created = true;
    return FunctionVersion{name, std::to_string(next), code_sha256, manifest_yaml, now};
  }

  Status DeleteFunctionLocked(const std::string& name) {
    auto fn = GetFunctionLocked(name);
    if (!fn.ok()) return fn.status();
    // Explicit deletes, children first, rather than relying on foreign-key cascades alone.
    for (const char* sql : {"DELETE FROM aliases WHERE function = ?1",
                            "DELETE FROM versions WHERE function = ?1",
                            "DELETE FROM functions WHERE name = ?1"}) {
      auto q = db_->Prepare(sql);
      if (!q.ok()) return q.status();
      q->Bind(1, name);
      NIMBUS_RETURN_IF_ERROR(q->Run());
    }
    return Status::Ok();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_file) {
  SqliteDb::Options options;
  options.application_id = kStoreApplicationId;
  options.what = "store";
  options.migrations = Migrations();
  static_assert(kStoreSchemaVersion == 1, "update Migrations() with the schema version");
  auto db = SqliteDb::Open(db_file, options);
  if (!db.ok()) return db.status();
  return std::unique_ptr<Store>(new SqliteStore(std::move(db).value()));
}

}  // namespace nimbus::store
