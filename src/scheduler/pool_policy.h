// PoolPolicy: the rules of one instance pool (one function version), apart from the mechanism
// that carries them out. It holds the instances' states, the queue of waiting requests with
// their deadlines, the concurrency bounds, keep-alive expiries and init deadlines, and decides;
// the Scheduler (the executor) launches, dispatches, kills and answers as told. It does no I/O,
// takes no lock, starts no thread and reads no clock: every call takes the current time, and
// every answer says when the policy wants to be asked again (Decisions::wake, via OnTimer), so
// pool_policy_test.cc runs it in virtual time.
//
// The rules:
// - A request goes to the most recently parked idle instance (preferring one with the caller's
//   affinity, the executor's loop); else it queues, up to `queue_bound` waiting requests, and
//   past that is throttled at once.
// - Instances start while the pool has fewer than `max` and fewer starting (or just-answered,
//   about to ask again) instances than waiting requests; `min_warm` are kept started whether or
//   not anything waits, unless the pool is retired.
// - A waiting request gives up (throttled) at its deadline, `queue_timeout` after it arrived,
//   unless a starting instance is on its way for it: the oldest N waiting requests, N the number
//   of starting instances, are each covered by one, and end with that instance's init (taken on
//   ready, or failed with it), which `init_timeout` bounds. The queue is ordered by deadline.
// - An instance that is not ready within `init_timeout` of its start is stopped and fails the
//   oldest waiting request; the rest get fresh instances. One that answered and does not ask
//   for its next event within `init_timeout` is stopped, and the queue moves on.
// - An idle (or detached) instance stops `keep_alive` after it parked, unless that would leave
//   fewer than `min_warm` in an unretired pool (then it gets another keep_alive).
// - A retired pool stops its idle and detached instances at once, and each other instance when
//   it is next ready with nothing waiting.
//
// Instance ids come from an InstanceIds shared by every pool of a scheduler, so they are unique
// across pools. Request tickets are the caller's (unique within the pool).
//
// Cost: Submit to an idle instance allocates nothing; each call's `wake` is computed in
// O(instances).
//
// Threading: none of its own; the Scheduler calls it with its mutex held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace nimbus::scheduler {

using TimePoint = std::chrono::steady_clock::time_point;
using InstanceId = uint64_t;
using RequestTicket = uint64_t;
// Where an instance runs, as the executor names it (its loop); 0 is none.
using Affinity = uintptr_t;

enum class InstanceState {
  kStarting,   // launched or launching; its runtime has not asked for an event yet
  kIdle,       // parked, waiting for a request
  kDetached,   // ready between requests, but its parked connection closed: not dispatchable
  kBusy,       // running a request
  kFinishing,  // answered; its runtime's next ask is on the way
};

enum class StopReason {
  kKeepAlive,            // idle for keep_alive
  kRetired,              // its pool was retired
  kInitTimeout,          // not ready within init_timeout of its start
  kNoNextAfterResponse,  // answered, then did not ask again within init_timeout
};

enum class ThrottleReason {
  kQueueFull,      // queue_bound requests were waiting already
  kWaitedTooLong,  // no instance became free before its deadline
};

struct PoolLimits {
  size_t max = 1;
  size_t min_warm = 0;
  size_t queue_bound = 100;
  std::chrono::milliseconds queue_timeout{3000};
  std::chrono::milliseconds keep_alive{60'000};
  std::chrono::milliseconds init_timeout{10'000};
};

// What the executor must do after a call. A stopped instance and a finished request are out of
// the policy already.
struct Decisions {
  struct Dispatch {
    RequestTicket request;
    InstanceId instance;
  };
  struct Throttle {
    RequestTicket request;
    ThrottleReason why;
  };
  struct Stop {
    InstanceId instance;
    StopReason why;
  };
  // A waiting request ends with the failed start or init of `instance` (the executor knows why:
  // the call it made, or the instance's kInitTimeout stop in the same Decisions).
  struct Fail {
    RequestTicket request;
    InstanceId instance;
  };

  std::optional<Dispatch> dispatch;  // give the request to the instance
  std::vector<InstanceId> start;     // launch these new instances (already kStarting)
  std::vector<Throttle> throttle;
  std::vector<Stop> stop;
  std::vector<Fail> fail;
  // When to call OnTimer next; TimePoint::max() when nothing is due.
  TimePoint wake = TimePoint::max();
};

// Instance ids shared by all pools of one scheduler.
struct InstanceIds {
  InstanceId next = 1;
  InstanceId Take() { return next++; }
};

class PoolPolicy {
 public:
  PoolPolicy(PoolLimits limits, InstanceIds& ids) : limits_(limits), ids_(ids) {}

  // A request arrives: dispatched to an idle instance, queued (maybe with instances to start)
  // or throttled (queue full).
  Decisions Submit(TimePoint now, RequestTicket request, Affinity prefer = 0);
  // Starts instances up to min_warm (and for whatever waits).
  Decisions KeepWarm(TimePoint now);
  // Retires the pool: idle and detached instances stop now, the others when next ready.
  Decisions Retire(TimePoint now);
  // Deadlines: init timeouts, keep-alive expiries, instances that did not come back, waiting
  // requests past their deadline. Harmless when nothing is due.
  Decisions OnTimer(TimePoint now);

  // The executor placed a started instance (its loop).
  void SetAffinity(InstanceId id, Affinity where);
  // The instance's process arrived: false when the instance is no longer wanted (it ended
  // meanwhile, or its pool was retired with nothing waiting); it is then out of the pool.
  bool OnLaunched(InstanceId id);
  // A starting, finishing or detached instance asks for an event: it takes the oldest waiting
  // request, or stops (retired pool), or parks (idle, keep-alive runs from now).
  Decisions OnReady(TimePoint now, InstanceId id);
  // An idle instance's parked connection closed: not dispatchable until OnReady again; its
  // keep-alive goes on.
  void OnDetached(InstanceId id);
  // A busy instance answered its request: it has init_timeout to ask again.
  Decisions OnResponded(TimePoint now, InstanceId id);
  // The instance could not be started: it fails the oldest waiting request; the rest get
  // instances of their own.
  Decisions OnStartFailed(TimePoint now, InstanceId id);
  // A starting instance reported an init error: it fails the oldest waiting request. Instances
  // for the rest start when its process has ended (OnEnded).
  Decisions OnInitError(TimePoint now, InstanceId id);
  // The instance's process ended (crash, kill, exit). If it was still listed it leaves the pool,
  // failing the oldest waiting request when it was starting; then instances start for whatever
  // waits (also when `id` had left already).
  Decisions OnEnded(TimePoint now, InstanceId id);
  // The instance leaves the pool now (killed at its deadline; OnEnded follows with its exit).
  void Forget(InstanceId id);
  // Empties the queue, oldest first (shutdown).
  std::vector<RequestTicket> TakeQueue();

  std::optional<InstanceState> StateOf(InstanceId id) const;
  int Count(InstanceState s) const;
  size_t instances() const { return instances_.size(); }
  size_t queued() const { return queue_.size(); }
  bool retired() const { return retired_; }
  // Nothing left to run or keep: no instance, nothing waiting, and no min_warm to keep.
  bool Unused() const { return instances_.empty() && queue_.empty() && (retired_ || limits_.min_warm == 0); }
  const PoolLimits& limits() const { return limits_; }

 private:
  struct Slot {
    InstanceId id;
    InstanceState state;
    Affinity affinity = 0;
    // kStarting: init deadline; kIdle, kDetached: keep-alive expiry; kFinishing: deadline to ask
    // again; kBusy: none.
    TimePoint due = TimePoint::max();
  };
  struct Parked {
    InstanceId id;
    Affinity affinity;
  };
  struct Waiting {
    RequestTicket request;
    TimePoint deadline;
  };

  Slot* Find(InstanceId id);
  const Slot* Find(InstanceId id) const;
  void Remove(InstanceId id);
  void StartOne(TimePoint now, Decisions& d);
  // Instances for min_warm and for waiting requests without one on its way.
  void Refill(TimePoint now, Decisions& d);
  void FailOldest(InstanceId by, Decisions& d);
  void ExpireWaiting(TimePoint now, Decisions& d);
  TimePoint NextWake() const;

  const PoolLimits limits_;
  InstanceIds& ids_;
  std::vector<Slot> instances_;
  std::vector<Parked> idle_;  // kIdle instances, most recently parked last
  std::deque<Waiting> queue_;
  bool retired_ = false;
};

}  // namespace nimbus::scheduler
