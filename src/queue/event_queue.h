// The EventQueue seam: a durable, at-least-once queue of async invocations (Invoke with
// X-Amz-Invocation-Type: Event). Embedded SQLite by default (sqlite_event_queue.h), NATS
// JetStream later for clusters. A consumer leases events, invokes, then acks, retries or
// dead-letters each one; a lease that runs out (the consumer crashed) makes the event visible
// again, so nothing accepted is lost, and an event may be delivered more than once.
//
// Threading: implementations are thread-safe and blocking; never call from an event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::queue {

struct Event {
  int64_t id = 0;  // unique, increasing, never reused
  std::string function;
  std::string qualifier;
  std::string payload;
  int attempts = 0;          // leases so far, this one included
  int64_t enqueued_ms = 0;   // wall clock at Enqueue
  int64_t visible_at_ms = 0; // 0 = visible at once
};

class EventQueue {
 public:
  virtual ~EventQueue() = default;
  // Durable once it returns (the caller may answer 202). The event is visible at once.
  virtual Result<int64_t> Enqueue(const std::string& function, const std::string& qualifier,
                                  std::string payload) = 0;
  // Leases up to `max` events visible at now_ms, oldest id first, hiding them until
  // now_ms + lease_ms; increments attempts. The returned events carry the new visible_at_ms.
  virtual Result<std::vector<Event>> Lease(int64_t now_ms, int64_t lease_ms, size_t max) = 0;
  // Done: the event is deleted. NotFound if there is no such event (already acked).
  virtual Status Ack(int64_t id) = 0;
  // Makes a leased event visible again at visible_at_ms (backoff). NotFound if absent.
  virtual Status Retry(int64_t id, int64_t visible_at_ms) = 0;
  // Moves the event to the dead-letter table with the reason. NotFound if absent.
  virtual Status DeadLetter(int64_t id, const std::string& reason) = 0;
  // Events not yet acked or dead-lettered, leased or not.
  virtual Result<size_t> Depth() = 0;
};

// Opens (creating or migrating) the queue at `db_file` (<data>/queue.db by default; a file of
// its own, so queue traffic never contends with the registry's write lock).
Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::filesystem::path& db_file);

}  // namespace nimbus::queue
