// The EventQueue seam: the durable record of asynchronous invocations (Invoke with
// X-Amz-Invocation-Type: Event, async HTTP routes, schedules, destinations). It is a journal,
// not a dispatcher: the Delivery engine (delivery.h) keeps the live state of every pending event
// in memory and writes each change here, through the Journal (journal.h), which groups many
// changes into one transaction so that durability costs one fsync per group, not per event.
// After a crash, LoadPending() gives back every event that was accepted and neither completed
// nor dead-lettered; that is what makes delivery at-least-once.
//
// Embedded SQLite by default (sqlite_event_queue.h); NATS JetStream later for clusters.
// Record format: docs/store.md, "Queue".
//
// Threading: implementations are thread-safe and blocking; never call from an event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::queue {

struct Event {
  int64_t id = 0;            // unique, increasing, never reused; set by the queue
  std::string request_id;    // the id the caller got with its 202; the function's aws_request_id
  std::string function;
  std::string qualifier;     // "" = $LATEST at the time it runs
  std::string payload;       // may be left on disk (LoadPending, Delivery's memory budget)
  int64_t payload_size = 0;  // bytes, whether or not `payload` holds them
  std::string source;        // invoke | http | schedule | destination | replay
  int attempts = 0;          // failed attempts recorded so far
  int depth = 0;             // destination hops that led to this event (loop guard)
  int64_t enqueued_ms = 0;   // wall clock when accepted (or replayed)
  int64_t visible_at_ms = 0; // earliest next attempt; 0 = at once
  std::string last_error;    // "ErrorType: message" of the last failed attempt
};

// An event that will not be attempted again, with why and its destination record.
struct DeadLetter {
  Event event;               // as it was at its last attempt
  int64_t dead_at_ms = 0;
  std::string condition;     // RetriesExhausted, EventAgeExceeded, FunctionNotFound, ...
  std::string record;        // Lambda's destination record (JSON)
};

// A schedule's durable state: when it was set up (the rate anchor) and when it last fired.
struct ScheduleState {
  std::string function;
  std::string expression;
  std::string timezone;
  int64_t anchor_ms = 0;
  int64_t last_fired_ms = 0;  // 0 = never
};

// One change to the journal. A Batch of them commits atomically, in order.
struct Op {
  enum class Kind {
    kEnqueue,      // event (id assigned); idempotency_key collapses a repeat within its window;
                   // schedule_fired_ms, when set, records the firing in the same transaction
    kComplete,     // id done (deleted); `event`, when next_event is set, is enqueued with it
    kRetry,        // id: attempts, visible_at_ms, last_error updated
    kDeadLetter,   // id moved to the dead letters with dead_letter's condition and record
    kDelete,       // ids removed (purge of queued events)
    kReplay,       // function's dead letters (ids, or all when ids is empty) back into the queue
    kPurgeDead,    // function's dead letters deleted
    kSetSchedule,  // schedule upserted
    kDropSchedule, // function's schedule removed
    kExpireKeys,   // idempotency keys older than before_ms forgotten, and free pages of the
                   // file given back to the file system (incremental vacuum)
  };
  Kind kind = Kind::kEnqueue;
  int64_t id = 0;
  std::vector<int64_t> ids;
  Event event;
  bool next_event = false;
  std::string idempotency_key;
  std::optional<int64_t> schedule_fired_ms;
  DeadLetter dead_letter;
  std::string function;
  ScheduleState schedule;
  int64_t now_ms = 0;     // replay: the events' new enqueued_ms
  int64_t before_ms = 0;  // expire keys

  // Results, filled in by Commit.
  bool duplicate = false;             // kEnqueue: the key was seen; event.request_id is the first one's
  int64_t affected = 0;               // rows changed (deletes, purges, replays)
  std::vector<Event> replayed;        // kReplay: the events now queued again
  std::vector<int64_t> missing;       // kReplay: requested ids that are not dead letters
};

class EventQueue {
 public:
  virtual ~EventQueue() = default;
  // Applies every op in order in one transaction and fills in their results. On error nothing
  // is applied (the transaction is rolled back) and every op of the batch failed.
  virtual Status Commit(std::vector<Op*>& batch) = 0;

  // Every pending event (not completed, not dead-lettered), oldest id first, with payload_size
  // set and `payload` left empty: LoadPayload reads it when it is needed.
  virtual Result<std::vector<Event>> LoadPending() = 0;
  // The payload of a pending event. NotFound when the event is gone (completed, purged).
  // Served by a connection of its own, so it does not wait for the journal's commits.
  virtual Result<std::string> LoadPayload(int64_t id) = 0;
  // A function's dead letters, newest first, at most `limit`.
  virtual Result<std::vector<DeadLetter>> DeadLetters(const std::string& function, size_t limit) = 0;
  // Dead letters per function.
  virtual Result<std::map<std::string, int64_t>> DeadLetterCounts() = 0;
  virtual Result<std::vector<ScheduleState>> LoadSchedules() = 0;
};

// Opens (creating or migrating) the queue at `db_file` (<data>/queue.db by default; a file of
// its own, so queue traffic never contends with the registry's write lock). Commits are
// synchronous=FULL: an event is on disk when Commit returns.
Result<std::unique_ptr<EventQueue>> OpenSqliteEventQueue(const std::filesystem::path& db_file);

}  // namespace nimbus::queue
