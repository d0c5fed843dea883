// The schedule trigger: fires every deployed function's `schedule` (the $LATEST manifest's) by
// accepting an EventBridge "Scheduled Event" into the Delivery engine, so a firing is as durable
// as any asynchronous invocation and wakes a function from zero like one. Each firing records
// its time in the same transaction as its event, so after a crash a firing is neither lost nor
// doubled; firings missed while the daemon was down follow the schedule's `missed` policy:
// `once` (default) fires one event at start-up, carrying the first missed time; `skip` does not.
//
// A rate schedule is anchored when it is first deployed (its first firing is then, as EventBridge
// Scheduler starts a rate schedule at once); a redeploy with the same expression and time zone
// keeps its anchor and last firing, a changed one starts afresh.
//
// Threading: Start(), Stop(), Sync(), NextFiring() and PumpOnce() are thread-safe. State is
// guarded by mu_; the trigger's thread sleeps until the next firing or a Sync(). Delivery and
// Journal are called without mu_ held where their callbacks take it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "common/mutex.h"
#include "queue/delivery.h"
#include "queue/event_queue.h"
#include "queue/journal.h"
#include "schedule/cron.h"

namespace nimbus::schedule {

// EventBridge's Scheduled Event for a firing of `function` scheduled at `scheduled_ms`.
std::string ScheduledEventJson(const std::string& function, int64_t scheduled_ms, const std::string& id);

// The expression of `s` evaluated in its zone, or why it cannot be (an unknown time zone).
Result<Schedule> ParseManifestSchedule(const manifest::Schedule& s);

class Trigger {
 public:
  Trigger(queue::EventQueue& queue, queue::Journal& journal, queue::Delivery& delivery, catalog::Catalog& catalog,
          queue::Clock& clock = queue::SystemClock());
  ~Trigger();  // Stop()

  // Loads the schedules' durable state, matches it with the catalog, applies the missed-firing
  // policy, and (with `thread`) starts the thread that fires them. Once, after the catalog is
  // loaded and Delivery is recovered.
  Status Start(bool thread = true);
  void Stop();
  // Picks up schedules added, changed or removed in the catalog (after a deploy or a delete).
  void Sync();
  // When `function`'s schedule fires next (epoch ms), or nullopt (no schedule, or none to come).
  std::optional<int64_t> NextFiring(const std::string& function) const;
  // Fires what is due at the clock's now. What the thread does on each wake-up; for tests.
  void PumpOnce() NIMBUS_EXCLUDES(mu_);

 private:
  struct Entry {
    manifest::Schedule spec;
    std::optional<Schedule> schedule;
    queue::ScheduleState state;
    std::optional<int64_t> next_ms;  // the next firing time
    bool firing = false;             // an event is being accepted
    int64_t retry_at_ms = 0;         // a firing that was refused waits until then
    bool restored = false;           // state read back at Start: its past firings may be missed
  };
  void SyncLocked(int64_t now, std::vector<std::unique_ptr<queue::Op>>& ops) NIMBUS_REQUIRES(mu_);
  // Accepts the event of the firing scheduled at `scheduled_ms` and records `record_ms` (at
  // least scheduled_ms: every firing up to it is handled) as the schedule's last firing.
  void Fire(const std::string& function, int64_t scheduled_ms, int64_t record_ms) NIMBUS_EXCLUDES(mu_);
  void Run() NIMBUS_EXCLUDES(mu_);

  queue::EventQueue& queue_;
  queue::Journal& journal_;
  queue::Delivery& delivery_;
  catalog::Catalog& catalog_;
  queue::Clock& clock_;

  mutable Mutex mu_;
  CondVar wake_;
  std::map<std::string, Entry> entries_ NIMBUS_GUARDED_BY(mu_);
  std::map<std::string, queue::ScheduleState> stored_ NIMBUS_GUARDED_BY(mu_);  // loaded at Start
  bool stopping_ NIMBUS_GUARDED_BY(mu_) = false;
  bool dirty_ NIMBUS_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace nimbus::schedule
