// The EventQueue in an embedded SQLite database. Record format: docs/store.md, "Queue".
//
// Threading: thread-safe; one connection guarded by a mutex. Blocking.
#pragma once

#include <cstdint>

#include "queue/event_queue.h"

namespace nimbus::queue {

inline constexpr int kQueueSchemaVersion = 2;
// PRAGMA application_id of a queue file: "NMQU".
inline constexpr uint32_t kQueueApplicationId = 0x4E4D5155;

// Declared in event_queue.h; defined in sqlite_event_queue.cc.
Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::filesystem::path& db_file);

}  // namespace nimbus::queue
