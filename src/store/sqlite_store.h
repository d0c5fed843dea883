// The Store in an embedded SQLite database (<data>/nimbus.db by default). Schema and on-disk
// format: docs/store.md.
//
// Threading: thread-safe; one connection guarded by a mutex, so calls are serialised within a
// process (SQLite allows one writer at a time anyway). Other processes on the same file are
// coordinated by SQLite's locks and the busy timeout. Blocking: never call from an event loop.
#pragma once

#include <filesystem>
#include <memory>

#include "common/status.h"
#include "store/store.h"

namespace nimbus::store {

// The schema version this build writes (PRAGMA user_version).
inline constexpr int kStoreSchemaVersion = 1;
// PRAGMA application_id of a store file: "NMST".
inline constexpr uint32_t kStoreApplicationId = 0x4E4D5354;

// Declared in store.h; defined in sqlite_store.cc.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& db_file);

}  // namespace nimbus::store
