// The EventQueue in an embedded SQLite database. Record format: docs/store.md, "Queue".
//
// Threading: thread-safe; blocking (every call waits for SQLite, Commit also for an fsync). Two
// connections, each behind its own mutex: the writer (Commit and every listing) and a reader for
// LoadPayload, so loading a payload does not wait behind a commit. The class and its mutexes are
// private to sqlite_event_queue.cc, where clang's -Wthread-safety (the `thread_safety` test)
// checks that each connection is used only with its mutex held.
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
