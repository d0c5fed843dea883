// The in-memory view of what is deployed: every function's versions (parsed manifests and code
// directories), aliases, and the HTTP route table. The hot path reads an immutable Snapshot;
// deploys build a new Snapshot and swap it in, so readers never take a lock that a deploy holds.
//
// Threading: Catalog::Get() and Set() are thread-safe: any thread may call them. mu_ guards only
// the pointer to the current Snapshot (snap_), held for one shared_ptr copy and never while a
// snapshot is built or read. A Snapshot is immutable once published.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "catalog/route_table.h"
#include "common/mutex.h"
#include "common/status.h"
#include "manifest/manifest.h"

namespace nimbus::catalog {

struct FunctionConfig {
  std::string name;
  std::string version;  // "1", "2", ...
  std::string code_sha256;
  std::filesystem::path code_dir;  // extracted, read-only
  uint64_t code_size = 0;          // zipped bytes
  manifest::Manifest manifest;
  std::string arn;  // arn:aws:lambda:local:000000000000:function:NAME
  int64_t last_modified_ms = 0;
};
using ConfigPtr = std::shared_ptr<const FunctionConfig>;

struct FunctionEntry {
  std::string latest;                          // version $LATEST points at
  std::map<std::string, ConfigPtr> versions;   // by version number text
  std::map<std::string, std::string> aliases;  // alias -> version
};

struct Snapshot {
  std::map<std::string, FunctionEntry> functions;  // sorted by name
  // Built from each function's $LATEST; shared between snapshot copies until rebuilt.
  std::shared_ptr<const RouteTable> routes = std::make_shared<const RouteTable>();

  // "" or "$LATEST" -> latest; digits -> that version; else an alias. NotFound with a message
  // that says what exists.
  Result<ConfigPtr> Resolve(std::string_view name, std::string_view qualifier) const;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

// Rebuilds the route table of `snap` from its functions' $LATEST manifests. Fails when two
// functions claim the same route; `newcomer` (the function being deployed) is added last, so
// the message names the function that already owns the route.
Status RebuildRoutes(Snapshot& snap, std::string_view newcomer = {});

inline std::string FunctionArn(std::string_view name) {
  return "arn:aws:lambda:local:000000000000:function:" + std::string(name);
}

class Catalog {
 public:
  Catalog() : snap_(std::make_shared<const Snapshot>()) {}
  SnapshotPtr Get() const NIMBUS_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return snap_;
  }
  // The old snapshot goes out with `s`, after the lock is released: when no reader holds it any
  // more, it is destroyed outside the lock.
  void Set(SnapshotPtr s) NIMBUS_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    snap_.swap(s);
  }

 private:
  // A plain mutex held for one shared_ptr copy: uncontended it costs about as much as the
  // atomic<shared_ptr> that would replace it.
  mutable Mutex mu_;
  SnapshotPtr snap_ NIMBUS_GUARDED_BY(mu_);
};

}  // namespace nimbus::catalog
