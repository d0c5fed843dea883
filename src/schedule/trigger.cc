#include "schedule/trigger.h"

#include <algorithm>
#include <cstdio>

#include <boost/json.hpp>

#include "common/iso_time.h"
#include "common/request_id.h"

namespace nimbus::schedule {
namespace {

// How long a firing that could not be accepted (backlog full, disk trouble) waits to try again.
constexpr int64_t kRefireAfterMs = 1000;
// The thread wakes at least this often, so a clock set forward is noticed.
constexpr int64_t kMaxSleepMs = 30'000;

}  // namespace

std::string ScheduledEventJson(const std::string& function, int64_t scheduled_ms, const std::string& id) {
  boost::json::object o{
      {"version", "0"},
      {"id", id},
      {"detail-type", "Scheduled Event"},
      {"source", "aws.events"},
      {"account", "000000000000"},
      {"time", IsoTimeSeconds(scheduled_ms)},
      {"region", "local"},
      {"resources", boost::json::array{boost::json::value("arn:aws:events:local:000000000000:rule/" + function)}},
      {"detail", boost::json::object{}},
  };
  return boost::json::serialize(o);
}

Result<Schedule> ParseManifestSchedule(const manifest::Schedule& s) {
  auto zone = s.timezone.empty() || s.timezone == "UTC" ? Result<TimeZone>(TimeZone::Utc()) : TimeZone::Load(s.timezone);
  if (!zone.ok()) return zone.status();
  return Schedule::Parse(s.expression, std::move(zone).value());
}

Trigger::Trigger(queue::EventQueue& queue, queue::Journal& journal, queue::Delivery& delivery,
                 catalog::Catalog& catalog, queue::Clock& clock)
    : queue_(queue), journal_(journal), delivery_(delivery), catalog_(catalog), clock_(clock) {}

Trigger::~Trigger() { Stop(); }

Status Trigger::Start(bool thread) {
  auto stored = queue_.LoadSchedules();
  if (!stored.ok()) return stored.status();
  std::vector<std::unique_ptr<queue::Op>> ops;
  std::vector<std::pair<std::string, int64_t>> missed;
  int64_t now = 0;
  {
    MutexLock lock(mu_);
    for (queue::ScheduleState& s : *stored) stored_[s.function] = std::move(s);
    now = clock_.NowMs();
    SyncLocked(now, ops);
    // Firings missed while the daemon was down: entries whose next firing is already past.
    for (auto& [fn, e] : entries_) {
      if (!e.restored || !e.next_ms || *e.next_ms > now) continue;
      e.restored = false;
      const int64_t first_missed = *e.next_ms;
      e.next_ms = e.schedule->NextAfter(now, e.state.anchor_ms);
      if (e.spec.missed == manifest::Schedule::Missed::kOnce) {
        std::fprintf(stderr, "nimbus: schedule of '%s' missed firings while nimbus was down; firing once now (missed: once)\n",
                     fn.c_str());
        missed.emplace_back(fn, first_missed);
      } else {
        std::fprintf(stderr, "nimbus: schedule of '%s' missed firings while nimbus was down; skipped (missed: skip)\n",
                     fn.c_str());
      }
    }
    stored_.clear();
  }
  for (auto& op : ops) (void)journal_.Submit(std::move(op), [](Status, queue::Op&) {});
  for (auto& [fn, at] : missed) Fire(fn, at, now);
  if (thread) {
    MutexLock lock(mu_);
    stopping_ = false;
    thread_ = std::thread([this] { Run(); });
  }
  return Status::Ok();
}

void Trigger::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    wake_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Trigger::Sync() {
  std::vector<std::unique_ptr<queue::Op>> ops;
  {
    MutexLock lock(mu_);
    SyncLocked(clock_.NowMs(), ops);
    dirty_ = true;
    wake_.NotifyOne();
  }
  for (auto& op : ops) (void)journal_.Submit(std::move(op), [](Status, queue::Op&) {});
}

void Trigger::SyncLocked(int64_t now, std::vector<std::unique_ptr<queue::Op>>& ops) {
  catalog::SnapshotPtr snap = catalog_.Get();
  std::map<std::string, Entry> next;
  for (const auto& [fn, fe] : snap->functions) {
    const manifest::Manifest& m = fe.versions.at(fe.latest)->manifest;
    if (!m.schedule) continue;
    auto parsed = ParseManifestSchedule(*m.schedule);
    if (!parsed.ok()) {
      std::fprintf(stderr, "nimbus: schedule of '%s' is not active: %s\n", fn.c_str(), parsed.status().message().c_str());
      continue;
    }
    Entry e;
    e.spec = *m.schedule;
    e.schedule = std::move(parsed).value();
    auto same = [&](const std::string& expression, const std::string& timezone) {
      return expression == e.spec.expression && timezone == e.spec.timezone;
    };
    if (auto old = entries_.find(fn); old != entries_.end() && same(old->second.spec.expression, old->second.spec.timezone)) {
      e.state = old->second.state;
      e.next_ms = old->second.next_ms;
      e.firing = old->second.firing;
      e.spec = *m.schedule;  // `missed` may have changed
    } else if (auto st = stored_.find(fn); st != stored_.end() && same(st->second.expression, st->second.timezone)) {
      e.state = st->second;
      e.restored = true;
      int64_t after = e.state.last_fired_ms > 0 ? e.state.last_fired_ms : e.state.anchor_ms - 1;
      e.next_ms = e.schedule->NextAfter(after, e.state.anchor_ms);
    } else {
      e.state = queue::ScheduleState{fn, e.spec.expression, e.spec.timezone, now, 0};
      e.next_ms = e.schedule->NextAfter(now - 1, now);
      auto op = std::make_unique<queue::Op>();
      op->kind = queue::Op::Kind::kSetSchedule;
      op->schedule = e.state;
      ops.push_back(std::move(op));
    }
    next.emplace(fn, std::move(e));
  }
  auto drop = [&](const std::string& fn) {
    auto op = std::make_unique<queue::Op>();
    op->kind = queue::Op::Kind::kDropSchedule;
    op->function = fn;
    ops.push_back(std::move(op));
  };
  for (const auto& [fn, e] : entries_) {
    if (!next.count(fn)) drop(fn);
  }
  for (const auto& [fn, s] : stored_) {
    if (!next.count(fn)) drop(fn);
  }
  stored_.clear();
  entries_ = std::move(next);
}

std::optional<int64_t> Trigger::NextFiring(const std::string& function) const {
  MutexLock lock(mu_);
  auto it = entries_.find(function);
  if (it == entries_.end()) return std::nullopt;
  return it->second.next_ms;
}

void Trigger::Fire(const std::string& function, int64_t scheduled_ms, int64_t record_ms) {
  queue::Event e;
  e.function = function;
  e.request_id = NewRequestId();
  e.payload = ScheduledEventJson(function, scheduled_ms, NewRequestId());
  e.source = "schedule";
  delivery_.Accept(
      std::move(e), "",
      [this, function, scheduled_ms, record_ms](Result<queue::Accepted> r) {
        MutexLock lock(mu_);
        auto it = entries_.find(function);
        if (it == entries_.end()) return;
        Entry& entry = it->second;
        entry.firing = false;
        if (r.ok()) {
          entry.state.last_fired_ms = std::max(entry.state.last_fired_ms, record_ms);
          return;
        }
        // Not accepted: try the same firing again shortly rather than lose it.
        std::fprintf(stderr, "nimbus: schedule of '%s' could not fire (%s); trying again\n", function.c_str(),
                     r.status().message().c_str());
        entry.next_ms = scheduled_ms;
        entry.retry_at_ms = clock_.NowMs() + kRefireAfterMs;
        dirty_ = true;
        wake_.NotifyOne();
      },
      record_ms);
}

void Trigger::PumpOnce() {
  std::vector<std::pair<std::string, int64_t>> due;
  int64_t now = 0;
  {
    MutexLock lock(mu_);
    now = clock_.NowMs();
    for (auto& [fn, e] : entries_) {
      if (e.firing || !e.next_ms || *e.next_ms > now || e.retry_at_ms > now) continue;
      due.emplace_back(fn, *e.next_ms);
      e.firing = true;
      e.retry_at_ms = 0;
      // After a long pause (a suspended machine) the missed periods collapse into this one.
      e.next_ms = e.schedule->NextAfter(std::max(*e.next_ms, now), e.state.anchor_ms);
    }
  }
  for (auto& [fn, at] : due) Fire(fn, at, std::max(at, now));
}

void Trigger::Run() {
  MutexLock lock(mu_);
  while (!stopping_) {
    dirty_ = false;
    lock.Unlock();
    PumpOnce();
    lock.Lock();
    if (dirty_ || stopping_) continue;
    int64_t now = clock_.NowMs();
    int64_t wait = kMaxSleepMs;
    for (const auto& [fn, e] : entries_) {
      if (e.firing || !e.next_ms) continue;
      wait = std::min(wait, std::max(e.retry_at_ms, *e.next_ms) - now);
    }
    if (wait > 0) wake_.WaitFor(mu_, std::chrono::milliseconds(wait));
  }
}

}  // namespace nimbus::schedule
