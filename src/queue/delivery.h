// Delivery: the engine behind every asynchronous invocation. It accepts events (durable through
// the Journal before the caller hears "accepted"), runs them on the scheduler within a share of
// each function's concurrency, retries failures with exponential backoff and jitter, delivers
// Lambda's destination record to `on_success` / `on_failure` functions, and dead-letters what
// cannot succeed. The live state of every pending event is here, in memory; the EventQueue holds
// the same state durably, so Recover() after a crash (or a restart) picks every accepted event
// up again: delivery is at-least-once. docs/async.md is the user-facing contract.
//
// What counts as a failure: a function error, a timeout, a crash, an out-of-memory kill, a
// throttle and an instance that could not start. Each failure uses one attempt of the function's
// `async.retries`; when they are used up, or the event is older than `async.max_event_age`, it
// goes to `on_failure` (a function) or to the dead-letter store. An event interrupted by a
// daemon stop or crash is run again without using an attempt.
//
// Threading:
// - Accept(), List(), Counts(), Replay(), Purge() and PurgeDead() are thread-safe and never
//   block on the disk; their callbacks run on the journal's thread (or at once on the caller's
//   thread when refused before reaching the journal).
// - All state is guarded by mu_, held for a few map operations; the scheduler and the journal
//   are called with it held only where order matters (Journal::Submit, which never blocks).
// - One delivery thread (Start/Stop) moves due retries back to the ready lists and hands ready
//   events to the scheduler. Invocation results come back on instance loops (OnResult).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "common/mutex.h"
#include "queue/event_queue.h"
#include "queue/journal.h"
#include "scheduler/invoker.h"

namespace nimbus::queue {

// Wall-clock milliseconds; a seam so tests can move time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() = 0;
};

// The real clock.
Clock& SystemClock();

struct DeliveryOptions {
  // Largest payload of an accepted invocation (Lambda's 256 KB by default).
  size_t max_payload = 256 * 1024;
  // The first retry waits about this long (80-120 %), each later one twice as long as the one
  // before, at most 15 minutes. Lambda waits 1 minute, then 2.
  int64_t retry_base_ms = 60'000;
  // A repeat of an idempotency key within this window gets the first event's request id and
  // is not queued again.
  int64_t idempotency_window_ms = 3'600'000;
  // Pending events (queued, retrying, in flight) and their payload bytes, across all functions;
  // past either bound new events are refused with TooManyRequests until the backlog drains. One
  // function may hold at most half of each, so a flooded function leaves room for the others.
  size_t max_pending_events = 1'000'000;
  size_t max_pending_bytes = size_t{4} << 30;
  // Payloads kept in memory, at most this many bytes; the others stay in the queue file and are
  // read back when their event runs. Every pending event costs about 300 bytes of memory besides.
  size_t memory_payload_budget = size_t{64} << 20;
  // Destination hops in one chain (A's on_success invokes B whose on_success invokes A ...);
  // the event that would go deeper is dead-lettered with RecursionLimit.
  int max_depth = 16;
};

using InvokeFn = std::function<void(const catalog::ConfigPtr&, scheduler::InvokeRequest, scheduler::Completion)>;
// Runs invocations on `invoker` (the daemon's Scheduler, or a scripted fake in tests): each is
// one scheduler::RequestContext, received now, whose completion is `done`.
inline InvokeFn InvokeThrough(scheduler::Invoker& invoker) {
  return [&invoker](const catalog::ConfigPtr& fn, scheduler::InvokeRequest req, scheduler::Completion done) {
    invoker.Invoke(std::make_shared<scheduler::CallbackContext>(fn, std::move(req), std::move(done)));
  };
}

struct Accepted {
  std::string request_id;
  int64_t id = 0;          // 0 for a duplicate
  bool duplicate = false;  // the idempotency key was seen within its window
};
using AcceptDone = std::function<void(Result<Accepted>)>;

struct FunctionCounts {
  int64_t queued = 0;     // ready to run
  int64_t retrying = 0;   // waiting for their next attempt
  int64_t in_flight = 0;  // running now
  int64_t dead = 0;       // in the dead-letter store
};

struct EventView {
  Event event;  // payload left empty
  enum class State { kQueued, kRetrying, kInFlight } state = State::kQueued;
};

// Totals since the daemon started (for /metrics).
struct DeliveryStats {
  uint64_t accepted = 0;       // events made durable (duplicates not counted)
  uint64_t duplicates = 0;     // repeats collapsed by an idempotency key
  uint64_t succeeded = 0;      // runs that returned
  uint64_t failed = 0;         // runs that failed (each attempt)
  uint64_t dead_lettered = 0;  // events moved to the dead-letter store
};

struct ReplayResult {
  int64_t replayed = 0;
  std::vector<int64_t> missing;
};

// How many of a function's `concurrency.max` instances async work may hold: all of 1, else
// all but a fifth (at least one), so synchronous callers always find room.
int AsyncConcurrency(int concurrency_max);

class Delivery {
 public:
  Delivery(EventQueue& queue, Journal& journal, catalog::Catalog& catalog, InvokeFn invoke, DeliveryOptions options,
           Clock& clock = SystemClock());
  ~Delivery();  // Stop()

  // Loads every pending event and the dead-letter counts. Once, before Start() and Accept().
  Status Recover();
  void Start();
  // Stops dispatching and joins the delivery thread. Results of invocations still running are
  // recorded when they come (a daemon shutdown leaves interrupted events pending).
  void Stop();

  // Takes `e` (function, qualifier, payload, source, request_id; the rest is set here). `done`
  // gets the request id once the event is durable, or why it was refused: TooLarge (payload
  // over max_payload, checked only for source invoke and http), TooManyRequests (backlog
  // full), or the journal's error. With `schedule_fired_ms`, the schedule's last firing is
  // recorded in the same transaction.
  void Accept(Event e, std::string idempotency_key, AcceptDone done,
              std::optional<int64_t> schedule_fired_ms = std::nullopt);

  FunctionCounts Counts(const std::string& function) const;
  std::map<std::string, FunctionCounts> AllCounts() const;
  DeliveryStats stats() const;
  // Pending events of `function` in id order (in flight, retrying and queued), at most `limit`.
  std::vector<EventView> List(const std::string& function, size_t limit) const;
  // Dead letters (all when `ids` is empty) back into the queue, attempts reset.
  void Replay(const std::string& function, std::vector<int64_t> ids, std::function<void(Result<ReplayResult>)> done);
  // Removes queued and retrying events (in-flight ones finish); done gets how many.
  void Purge(const std::string& function, std::function<void(Result<int64_t>)> done);
  void PurgeDead(const std::string& function, std::function<void(Result<int64_t>)> done);

  // One pass of what the delivery thread does on each wake-up: due retries become ready, and
  // ready events go to the scheduler within their function's async concurrency. For tests that
  // drive a fake clock without Start().
  void PumpOnce();

 private:
  struct Pending {
    Event event;
    EventView::State state = EventView::State::kQueued;
    bool in_memory = true;  // event.payload holds the payload; else it is read from the queue
  };
  struct FnState {
    std::deque<int64_t> ready;  // ids, oldest first
    int in_flight = 0;
    int64_t retrying = 0;
    int64_t dead = 0;
    int64_t events = 0;         // pending, in every state, plus reserved
    int64_t bytes = 0;          // their payload bytes, plus reserved
  };
  struct Dispatch {
    catalog::ConfigPtr cfg;
    scheduler::InvokeRequest req;
    int64_t id = 0;
    bool load = false;  // the payload is to be read from the queue first
  };

  void Run() NIMBUS_EXCLUDES(mu_);
  // Moves due retries to ready and collects what may run now.
  std::vector<Dispatch> CollectLocked(int64_t now) NIMBUS_REQUIRES(mu_);
  void OnResult(int64_t id, const catalog::ConfigPtr& cfg, scheduler::InvokeResult&& r) NIMBUS_EXCLUDES(mu_);
  // The event will not be attempted again: to `on_failure` or the dead letters. Removes it
  // from memory.
  void FailForGoodLocked(Pending& p, const std::string& condition, const scheduler::InvokeResult* r,
                         const catalog::ConfigPtr& cfg, int64_t now) NIMBUS_REQUIRES(mu_);
  // Removes the event from memory and records it done, delivering `next` with it.
  void CompleteLocked(int64_t id, std::optional<Event> next) NIMBUS_REQUIRES(mu_);
  void DeadLetterLocked(Pending& p, const std::string& condition, std::string record, int64_t now)
      NIMBUS_REQUIRES(mu_);
  // The destination record of `p` (its payload read back from the queue when not in memory).
  std::string RecordLocked(const Pending& p, const std::string& condition, const scheduler::InvokeResult* r,
                           const std::string& function_arn, int64_t now) NIMBUS_REQUIRES(mu_);
  // A destination event for `to` carrying `record`, or the condition that stops it.
  Result<Event> DestinationEventLocked(const Pending& p, const std::string& to, std::string record)
      NIMBUS_REQUIRES(mu_);
  // Room for one more event of `bytes` for `function`, reserved until Insert or Unreserve;
  // TooManyRequests naming the bound that is full.
  Status ReserveLocked(const std::string& function, size_t bytes) NIMBUS_REQUIRES(mu_);
  void UnreserveLocked(const std::string& function, size_t bytes) NIMBUS_REQUIRES(mu_);
  // Adds a durable event (its reservation becomes the event) as queued, or as retrying when
  // its visible_at_ms is later than now.
  void InsertLocked(Event e, int64_t now) NIMBUS_REQUIRES(mu_);
  void EraseLocked(int64_t id) NIMBUS_REQUIRES(mu_);
  // Hands the dispatches to the scheduler, reading payloads left on disk first.
  void RunDispatches(std::vector<Dispatch>& work) NIMBUS_EXCLUDES(mu_);
  void WakeLocked() NIMBUS_REQUIRES(mu_);

  EventQueue& queue_;
  Journal& journal_;
  catalog::Catalog& catalog_;
  InvokeFn invoke_;
  const DeliveryOptions options_;
  Clock& clock_;

  mutable Mutex mu_;
  CondVar wake_;
  std::map<int64_t, Pending> events_ NIMBUS_GUARDED_BY(mu_);             // every pending event by id
  std::unordered_map<std::string, FnState> fns_ NIMBUS_GUARDED_BY(mu_);
  std::set<std::string> runnable_ NIMBUS_GUARDED_BY(mu_);                // functions with ready events
  std::multimap<int64_t, int64_t> delayed_ NIMBUS_GUARDED_BY(mu_);       // visible_at_ms -> id
  size_t reserved_events_ NIMBUS_GUARDED_BY(mu_) = 0;                    // accepted, not yet durable
  size_t pending_bytes_ NIMBUS_GUARDED_BY(mu_) = 0;                      // payload bytes pending and reserved
  size_t memory_bytes_ NIMBUS_GUARDED_BY(mu_) = 0;                       // payload bytes held in memory
  bool dirty_ NIMBUS_GUARDED_BY(mu_) = false;                            // something to look at
  bool stopping_ NIMBUS_GUARDED_BY(mu_) = false;
  int64_t next_key_expiry_ms_ NIMBUS_GUARDED_BY(mu_) = 0;
  DeliveryStats stats_ NIMBUS_GUARDED_BY(mu_);
  int64_t log_second_ NIMBUS_GUARDED_BY(mu_) = 0;                        // dead-letter lines this second
  int logged_this_second_ NIMBUS_GUARDED_BY(mu_) = 0;
  int64_t unlogged_dead_ NIMBUS_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// Lambda's destination record for an event that ended with `condition` (Success,
// RetriesExhausted, EventAgeExceeded, ...). `r` is the last attempt's result, or null when the
// event never ran. Over `limit` bytes, responsePayload and then requestPayload are replaced by a
// note of their size.
std::string DestinationRecord(const Event& e, const std::string& condition, const scheduler::InvokeResult* r,
                              const std::string& function_arn, int64_t now_ms, size_t limit);

// The wait before the retry that follows failed attempt `attempt` (1, 2, ...), with `unit` in
// [0, 1) choosing the jitter.
int64_t RetryDelayMs(int64_t base_ms, int attempt, double unit);

}  // namespace nimbus::queue
