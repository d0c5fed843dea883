#include "scheduler/pool_policy.h"

#include <algorithm>
#include <iterator>

namespace nimbus::scheduler {

PoolPolicy::Slot* PoolPolicy::Find(InstanceId id) {
  for (auto& s : instances_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

const PoolPolicy::Slot* PoolPolicy::Find(InstanceId id) const {
  for (const auto& s : instances_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

void PoolPolicy::Remove(InstanceId id) {
  std::erase_if(instances_, [id](const Slot& s) { return s.id == id; });
  std::erase_if(idle_, [id](const Parked& p) { return p.id == id; });
}

std::optional<InstanceState> PoolPolicy::StateOf(InstanceId id) const {
  const Slot* s = Find(id);
  if (!s) return std::nullopt;
  return s->state;
}

int PoolPolicy::Count(InstanceState state) const {
  int n = 0;
  for (const auto& s : instances_) n += s.state == state;
  return n;
}

void PoolPolicy::StartOne(TimePoint now, Decisions& d) {
  InstanceId id = ids_.Take();
  instances_.push_back(Slot{id, InstanceState::kStarting, 0, now + limits_.init_timeout});
  d.start.push_back(id);
}

void PoolPolicy::Refill(TimePoint now, Decisions& d) {
  if (!retired_) {
    while (instances_.size() < limits_.min_warm) StartOne(now, d);
  }
  // Instances that just answered are about to ask again: they count as capacity on the way.
  size_t coming = static_cast<size_t>(Count(InstanceState::kStarting) + Count(InstanceState::kFinishing));
  while (instances_.size() < limits_.max && coming < queue_.size()) {
    StartOne(now, d);
    ++coming;
  }
}

void PoolPolicy::FailOldest(InstanceId by, Decisions& d) {
  if (queue_.empty()) return;
  d.fail.push_back({queue_.front().request, by});
  queue_.pop_front();
}

void PoolPolicy::ExpireWaiting(TimePoint now, Decisions& d) {
  // The oldest `covered` requests each have a starting instance on its way: their wait ends
  // with its init, not at their deadline. The rest are ordered by deadline, so the expired ones
  // form a prefix of them.
  const size_t covered = std::min(queue_.size(), static_cast<size_t>(Count(InstanceState::kStarting)));
  auto first = queue_.begin() + static_cast<std::ptrdiff_t>(covered);
  auto last = first;
  while (last != queue_.end() && last->deadline <= now) {
    d.throttle.push_back({last->request, ThrottleReason::kWaitedTooLong});
    ++last;
  }
  queue_.erase(first, last);
}

TimePoint PoolPolicy::NextWake() const {
  TimePoint wake = TimePoint::max();
  size_t starting = 0;
  for (const auto& s : instances_) {
    wake = std::min(wake, s.due);
    starting += s.state == InstanceState::kStarting;
  }
  if (starting < queue_.size()) wake = std::min(wake, queue_[starting].deadline);
  return wake;
}

Decisions PoolPolicy::Submit(TimePoint now, RequestTicket request, Affinity prefer) {
  Decisions d;
  if (!idle_.empty()) {
    // The most recently parked instance with the caller's affinity (no cross-thread hop), else
    // the most recently parked one (its caches are the warmest).
    auto pick = idle_.end() - 1;
    if (prefer != 0 && pick->affinity != prefer) {
      for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (it->affinity == prefer) {
          pick = std::next(it).base();
          break;
        }
      }
    }
    const InstanceId id = pick->id;
    idle_.erase(pick);
    Slot* s = Find(id);
    s->state = InstanceState::kBusy;
    s->due = TimePoint::max();
    d.dispatch = Decisions::Dispatch{request, id};
    d.wake = NextWake();
    return d;
  }
  if (queue_.size() >= limits_.queue_bound) {
    d.throttle.push_back({request, ThrottleReason::kQueueFull});
    d.wake = NextWake();
    return d;
  }
  // Every request of a pool has the same timeout, so the queue stays ordered by deadline.
  queue_.push_back({request, now + limits_.queue_timeout});
  Refill(now, d);
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::KeepWarm(TimePoint now) {
  Decisions d;
  Refill(now, d);
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::Retire(TimePoint now) {
  Decisions d;
  retired_ = true;
  for (size_t i = 0; i < instances_.size();) {
    const Slot s = instances_[i];
    if (s.state == InstanceState::kIdle || s.state == InstanceState::kDetached) {
      Remove(s.id);
      d.stop.push_back({s.id, StopReason::kRetired});
      continue;
    }
    ++i;
  }
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::OnTimer(TimePoint now) {
  Decisions d;
  bool removed = false;
  for (size_t i = 0; i < instances_.size();) {
    Slot& s = instances_[i];
    if (s.due > now) {
      ++i;
      continue;
    }
    const InstanceId id = s.id;
    switch (s.state) {
      case InstanceState::kStarting:
        Remove(id);
        d.stop.push_back({id, StopReason::kInitTimeout});
        FailOldest(id, d);
        removed = true;
        continue;
      case InstanceState::kIdle:
      case InstanceState::kDetached:
        if (instances_.size() <= limits_.min_warm && !retired_) {
          s.due = now + limits_.keep_alive;  // min_warm keeps this one; look again later
          ++i;
          continue;
        }
        Remove(id);
        d.stop.push_back({id, StopReason::kKeepAlive});
        removed = true;
        continue;
      case InstanceState::kFinishing:
        Remove(id);
        d.stop.push_back({id, StopReason::kNoNextAfterResponse});
        removed = true;
        continue;
      case InstanceState::kBusy:
        ++i;
        continue;
    }
  }
  // Requests still waiting get fresh instances (and their own init), not a late 429.
  if (removed) Refill(now, d);
  ExpireWaiting(now, d);
  d.wake = NextWake();
  return d;
}

void PoolPolicy::SetAffinity(InstanceId id, Affinity where) {
  if (Slot* s = Find(id)) s->affinity = where;
}

bool PoolPolicy::OnLaunched(InstanceId id) {
  Slot* s = Find(id);
  if (!s) return false;
  // A retired pool with nothing waiting has no use for a new instance.
  if (s->state == InstanceState::kStarting && !(retired_ && queue_.empty())) return true;
  Remove(id);
  return false;
}

Decisions PoolPolicy::OnReady(TimePoint now, InstanceId id) {
  Decisions d;
  Slot* s = Find(id);
  if (s && (s->state == InstanceState::kStarting || s->state == InstanceState::kFinishing ||
            s->state == InstanceState::kDetached)) {
    if (!queue_.empty()) {
      d.dispatch = Decisions::Dispatch{queue_.front().request, id};
      queue_.pop_front();
      s->state = InstanceState::kBusy;
      s->due = TimePoint::max();
    } else if (retired_) {
      Remove(id);
      d.stop.push_back({id, StopReason::kRetired});
    } else {
      s->state = InstanceState::kIdle;
      s->due = now + limits_.keep_alive;
      idle_.push_back({id, s->affinity});
    }
  }
  d.wake = NextWake();
  return d;
}

void PoolPolicy::OnDetached(InstanceId id) {
  Slot* s = Find(id);
  if (!s || s->state != InstanceState::kIdle) return;
  std::erase_if(idle_, [id](const Parked& p) { return p.id == id; });
  s->state = InstanceState::kDetached;
}

Decisions PoolPolicy::OnResponded(TimePoint now, InstanceId id) {
  Decisions d;
  if (Slot* s = Find(id); s && s->state == InstanceState::kBusy) {
    // It counts as capacity until it asks again; a runtime that never does would hold waiting
    // requests forever, so it gets init_timeout to come back.
    s->state = InstanceState::kFinishing;
    s->due = now + limits_.init_timeout;
  }
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::OnStartFailed(TimePoint now, InstanceId id) {
  Decisions d;
  if (Find(id)) {
    Remove(id);
    FailOldest(id, d);
    // The rest get their own attempt (and their own failure), not a late 429.
    Refill(now, d);
  }
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::OnInitError(TimePoint now, InstanceId id) {
  Decisions d;
  if (const Slot* s = Find(id); s && s->state == InstanceState::kStarting) {
    Remove(id);
    FailOldest(id, d);
  }
  d.wake = NextWake();
  return d;
}

Decisions PoolPolicy::OnEnded(TimePoint now, InstanceId id) {
  Decisions d;
  if (const Slot* s = Find(id)) {
    const bool was_starting = s->state == InstanceState::kStarting;
    Remove(id);
    if (was_starting) FailOldest(id, d);
  }
  Refill(now, d);
  d.wake = NextWake();
  return d;
}

void PoolPolicy::Forget(InstanceId id) { Remove(id); }

std::vector<RequestTicket> PoolPolicy::TakeQueue() {
  std::vector<RequestTicket> out;
  out.reserve(queue_.size());
  for (const auto& w : queue_) out.push_back(w.request);
  queue_.clear();
  return out;
}

}  // namespace nimbus::scheduler
