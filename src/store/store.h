// The Store: the function registry (functions, their immutable versions, aliases). Later it
// also holds API keys (schedules live in the event queue). Embedded SQLite by default
// (sqlite_store.h), in memory for tests (testing/memory_store.h), etcd later for clusters; all
// of them pass the same contract test (store_contract_test.cc). docs/store.md describes the SQLite schema.
//
// Threading: every implementation is thread-safe and blocking (SQLite does file I/O and may
// wait on a lock): never call it from an event-loop thread; post the work to a blocking pool.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::store {

struct FunctionVersion {
  std::string function;
  std::string version;  // "1", "2", ...
  std::string code_sha256;
  std::string manifest_yaml;  // function.yaml as deployed: the source of truth for config
  int64_t created_ms = 0;
};

struct FunctionRecord {
  std::string name;
  std::string latest_version;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct Alias {
  std::string function;
  std::string name;
  std::string version;
};

class Store {
 public:
  virtual ~Store() = default;

  // Publishes a new immutable version and points $LATEST at it. If code_sha256 and
  // manifest_yaml equal $LATEST's, returns the existing latest with *created=false and changes
  // nothing. Creates the function record when new. Version numbers start at 1 and grow by one;
  // after DeleteFunction a new deploy starts at 1 again, as in Lambda.
  virtual Result<FunctionVersion> Publish(const std::string& name, const std::string& code_sha256,
                                          const std::string& manifest_yaml, bool* created) = 0;
  virtual Result<FunctionRecord> GetFunction(const std::string& name) = 0;
  virtual Result<std::vector<FunctionRecord>> ListFunctions() = 0;  // sorted by name
  // "$LATEST" resolves to the latest version.
  virtual Result<FunctionVersion> GetVersion(const std::string& name,
                                             const std::string& version) = 0;
  virtual Result<std::vector<FunctionVersion>> ListVersions(const std::string& name) = 0;  // ascending
  // "" or "$LATEST" -> the latest number; digits -> that version, which must exist; anything
  // else -> the version an alias of that name points at.
  virtual Result<std::string> ResolveQualifier(const std::string& name,
                                               const std::string& qualifier) = 0;
  // Deletes the function with its versions and aliases; NotFound if absent.
  virtual Status DeleteFunction(const std::string& name) = 0;
  // Creates or moves an alias. Names match [a-zA-Z0-9-_]{1,128}, are not all digits and not
  // "$LATEST"; the version must be a published version number.
  virtual Status PutAlias(const std::string& name, const std::string& alias,
                          const std::string& version) = 0;
  virtual Status DeleteAlias(const std::string& name, const std::string& alias) = 0;
  virtual Result<std::vector<Alias>> ListAliases(const std::string& name) = 0;  // sorted by name
  // Every code_sha256 some version still refers to, sorted and distinct (for garbage collection).
  virtual Result<std::vector<std::string>> ReferencedCode() = 0;
};

// Opens (creating or migrating) the SQLite store at `db_file`: WAL, synchronous=NORMAL, a busy
// timeout, schema versioned with PRAGMA user_version.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_file);

// Validation and messages shared by every implementation, so they answer alike.
Status ValidateFunctionName(const std::string& name);
Status ValidateAliasName(const std::string& alias);
bool IsVersionNumber(const std::string& s);  // digits only, no leading zero, fits an int64
Status FunctionNotFound(const std::string& name);
Status VersionNotFound(const std::string& name, const std::string& version,
                       const std::string& latest);
Status AliasNotFound(const std::string& name, const std::string& alias);

}  // namespace nimbus::store
