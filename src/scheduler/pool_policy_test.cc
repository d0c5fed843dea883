// The pool's rules in virtual time: each test moves a fake `now` forward by hand and checks the
// decisions the policy hands the executor (dispatch, start, throttle, stop, fail, when to wake).
// No clock is read, nothing sleeps, no thread runs: a 60 s keep-alive takes no time at all.
#include "scheduler/pool_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace nimbus::scheduler {
namespace {

using namespace std::chrono_literals;
using Stop = Decisions::Stop;

constexpr TimePoint kT0 = TimePoint{} + std::chrono::hours(1000);  // any epoch will do

TimePoint At(std::chrono::milliseconds since_t0) { return kT0 + since_t0; }

std::vector<RequestTicket> Throttled(const Decisions& d, ThrottleReason why) {
  std::vector<RequestTicket> out;
  for (const auto& t : d.throttle) {
    if (t.why == why) out.push_back(t.request);
  }
  return out;
}

std::vector<InstanceId> Stopped(const Decisions& d, StopReason why) {
  std::vector<InstanceId> out;
  for (const auto& s : d.stop) {
    if (s.why == why) out.push_back(s.instance);
  }
  return out;
}

bool Dispatched(const Decisions& d, RequestTicket request, InstanceId instance) {
  return d.dispatch && d.dispatch->request == request && d.dispatch->instance == instance;
}

bool Failed(const Decisions& d, RequestTicket request, InstanceId by) {
  return std::any_of(d.fail.begin(), d.fail.end(),
                     [&](const Decisions::Fail& f) { return f.request == request && f.instance == by; });
}

bool Nothing(const Decisions& d) {
  return !d.dispatch && d.start.empty() && d.throttle.empty() && d.stop.empty() && d.fail.empty();
}

class PoolPolicyTest : public ::testing::Test {
 protected:
  PoolPolicy& policy() {
    if (!policy_) policy_ = std::make_unique<PoolPolicy>(limits_, ids_);
    return *policy_;
  }
  // A request submitted at `t` that finds an idle or new instance ready at `t`, runs and
  // answers at `t`, leaving the instance idle. Returns the instance.
  InstanceId RunOnce(RequestTicket r, TimePoint t) {
    Decisions d = policy().Submit(t, r);
    InstanceId id = 0;
    if (d.dispatch) {
      id = d.dispatch->instance;
    } else {
      EXPECT_EQ(d.start.size(), 1u);
      if (d.start.empty()) return 0;
      id = d.start[0];
      EXPECT_TRUE(Dispatched(policy().OnReady(t, id), r, id));
    }
    policy().OnResponded(t, id);
    policy().OnReady(t, id);
    EXPECT_EQ(policy().StateOf(id), InstanceState::kIdle);
    return id;
  }

  PoolLimits limits_{/*max=*/2, /*min_warm=*/0, /*queue_bound=*/200, /*queue_timeout=*/3s, /*keep_alive=*/60s,
                     /*init_timeout=*/10s};
  InstanceIds ids_;
  std::unique_ptr<PoolPolicy> policy_;
};

// ---- starting and reusing instances --------------------------------------------------------------

TEST_F(PoolPolicyTest, AFirstRequestStartsOneInstanceWhichTakesItWhenReady) {
  Decisions d = policy().Submit(kT0, 1);
  EXPECT_FALSE(d.dispatch);
  ASSERT_EQ(d.start.size(), 1u);
  const InstanceId id = d.start[0];
  EXPECT_EQ(policy().StateOf(id), InstanceState::kStarting);
  EXPECT_EQ(policy().queued(), 1u);
  // The request is covered by the starting instance: the next look is the init deadline.
  EXPECT_EQ(d.wake, At(10s));

  d = policy().OnReady(At(300ms), id);
  EXPECT_TRUE(Dispatched(d, 1, id));
  EXPECT_EQ(policy().StateOf(id), InstanceState::kBusy);
  EXPECT_EQ(policy().queued(), 0u);
  EXPECT_EQ(d.wake, TimePoint::max()) << "a busy instance and an empty queue need no timer";
}

TEST_F(PoolPolicyTest, AWarmInstanceIsReusedWithoutStartingAnother) {
  const InstanceId id = RunOnce(1, kT0);
  Decisions d = policy().Submit(At(1s), 2);
  EXPECT_TRUE(Dispatched(d, 2, id));
  EXPECT_TRUE(d.start.empty());
  EXPECT_EQ(policy().instances(), 1u);
}

TEST_F(PoolPolicyTest, AnInstanceThatJustAnsweredCountsAsCapacityOnItsWay) {
  Decisions d = policy().Submit(kT0, 1);
  const InstanceId id = d.start.at(0);
  policy().OnReady(kT0, id);
  policy().OnResponded(At(10ms), id);
  d = policy().Submit(At(11ms), 2);
  EXPECT_TRUE(d.start.empty()) << "a request right after a response waits for that instance";
  EXPECT_TRUE(Dispatched(policy().OnReady(At(12ms), id), 2, id));
}

TEST_F(PoolPolicyTest, TheCallersAffinityPicksItsOwnIdleInstanceElseTheMostRecentlyParked) {
  Decisions a = policy().Submit(kT0, 1), b = policy().Submit(kT0, 2);
  const InstanceId ia = a.start.at(0), ib = b.start.at(0);
  policy().SetAffinity(ia, 100);
  policy().SetAffinity(ib, 200);
  policy().OnReady(kT0, ia);  // takes 1
  policy().OnReady(kT0, ib);  // takes 2
  for (InstanceId id : {ia, ib}) policy().OnResponded(At(1ms), id);
  policy().OnReady(At(2ms), ia);
  policy().OnReady(At(3ms), ib);  // parked last

  EXPECT_TRUE(Dispatched(policy().Submit(At(4ms), 3, /*prefer=*/100), 3, ia));
  policy().OnResponded(At(5ms), ia);
  policy().OnReady(At(6ms), ia);  // now ia is the most recently parked
  EXPECT_TRUE(Dispatched(policy().Submit(At(7ms), 4, /*prefer=*/0), 4, ia));
  EXPECT_TRUE(Dispatched(policy().Submit(At(8ms), 5, /*prefer=*/100), 5, ib)) << "none with affinity 100 is idle";
}

// ---- concurrency and queueing --------------------------------------------------------------------

TEST_F(PoolPolicyTest, RequestsScaleOutUpToMaxAndTheRestWait) {
  EXPECT_EQ(policy().Submit(kT0, 1).start.size(), 1u);
  EXPECT_EQ(policy().Submit(kT0, 2).start.size(), 1u);
  EXPECT_TRUE(policy().Submit(kT0, 3).start.empty()) << "concurrency.max is 2";
  EXPECT_EQ(policy().Count(InstanceState::kStarting), 2);
  EXPECT_EQ(policy().queued(), 3u);
}

TEST_F(PoolPolicyTest, AQueuedRequestThatFindsNoFreeInstanceByItsDeadlineIsThrottled) {
  limits_.max = 1;
  const InstanceId id = RunOnce(1, kT0);
  ASSERT_TRUE(Dispatched(policy().Submit(At(1s), 2), 2, id));  // busy from now on
  Decisions d = policy().Submit(At(2s), 3);
  EXPECT_TRUE(d.start.empty());
  EXPECT_EQ(d.wake, At(5s)) << "its deadline: queue_timeout after it arrived";

  EXPECT_TRUE(Nothing(policy().OnTimer(At(4999ms))));
  d = policy().OnTimer(At(5s));
  EXPECT_EQ(Throttled(d, ThrottleReason::kWaitedTooLong), std::vector<RequestTicket>{3});
  EXPECT_EQ(policy().queued(), 0u);
  EXPECT_EQ(d.wake, TimePoint::max());
}

TEST_F(PoolPolicyTest, AFreedInstanceTakesTheOldestWaitingRequest) {
  limits_.max = 1;
  const InstanceId id = RunOnce(1, kT0);
  policy().Submit(At(1s), 2);  // runs
  policy().Submit(At(1s), 3);
  policy().Submit(At(1100ms), 4);
  policy().OnResponded(At(1500ms), id);
  EXPECT_TRUE(Dispatched(policy().OnReady(At(1500ms), id), 3, id));
  policy().OnResponded(At(1600ms), id);
  EXPECT_TRUE(Dispatched(policy().OnReady(At(1600ms), id), 4, id));
}

TEST_F(PoolPolicyTest, AFullQueueThrottlesAtOnce) {
  limits_.max = 1;
  limits_.queue_bound = 2;
  policy().Submit(kT0, 1);
  policy().Submit(kT0, 2);
  Decisions d = policy().Submit(kT0, 3);
  EXPECT_EQ(Throttled(d, ThrottleReason::kQueueFull), std::vector<RequestTicket>{3});
  EXPECT_TRUE(d.start.empty());
  EXPECT_EQ(policy().queued(), 2u);
}

// ---- waiting for a starting instance ---------------------------------------------------------------

// Regression: the pool's timer first saw only a request covered by its starting instance and
// planned a late look; the request queued after it got its 429 only at that look, not at its
// own deadline.
TEST_F(PoolPolicyTest, ARequestQueuedBehindOneWhoseInstanceIsStartingIsThrottledAtItsOwnDeadline) {
  limits_.max = 1;
  limits_.queue_timeout = 1s;
  Decisions d = policy().Submit(kT0, 1);
  const InstanceId id = d.start.at(0);
  EXPECT_EQ(d.wake, At(10s)) << "request 1 is covered: only the init deadline matters";
  d = policy().Submit(At(100ms), 2);
  EXPECT_TRUE(d.start.empty());
  EXPECT_EQ(d.wake, At(1100ms)) << "request 2 is not covered: its own deadline";

  EXPECT_TRUE(Dispatched(policy().OnReady(At(500ms), id), 1, id));
  EXPECT_TRUE(Nothing(policy().OnTimer(At(1099ms))));
  d = policy().OnTimer(At(1100ms));
  EXPECT_EQ(Throttled(d, ThrottleReason::kWaitedTooLong), std::vector<RequestTicket>{2});
  EXPECT_TRUE(d.start.empty());
}

TEST_F(PoolPolicyTest, ARequestWaitingForAStartingInstanceIsNotThrottledAtItsDeadlineButEndsWithTheInit) {
  limits_.max = 1;
  limits_.queue_timeout = 1s;
  const InstanceId id = policy().Submit(kT0, 1).start.at(0);
  Decisions d = policy().OnTimer(At(1s));
  EXPECT_TRUE(Nothing(d)) << "covered by its starting instance";
  EXPECT_EQ(d.wake, At(10s));

  d = policy().OnTimer(At(10s));
  EXPECT_EQ(Stopped(d, StopReason::kInitTimeout), std::vector<InstanceId>{id});
  EXPECT_TRUE(Failed(d, 1, id)) << "the request fails with the instance's init";
  EXPECT_TRUE(d.throttle.empty());
  EXPECT_TRUE(d.start.empty()) << "nothing else waits";
  EXPECT_EQ(policy().instances(), 0u);
  EXPECT_TRUE(policy().Unused());
}

TEST_F(PoolPolicyTest, AColdStartSlowerThanTheTimeoutStillServesItsRequest) {
  limits_.max = 1;
  limits_.queue_timeout = 1s;
  const InstanceId id = policy().Submit(kT0, 1).start.at(0);
  EXPECT_TRUE(Nothing(policy().OnTimer(At(1s))));
  EXPECT_TRUE(Dispatched(policy().OnReady(At(5s), id), 1, id));
}

TEST_F(PoolPolicyTest, AnInitTimeoutFailsOneRequestPerInstanceAndStartsFreshOnesForTheRest) {
  limits_.queue_timeout = 30s;
  const InstanceId a = policy().Submit(kT0, 1).start.at(0);
  const InstanceId b = policy().Submit(kT0, 2).start.at(0);
  policy().Submit(At(1s), 3);
  Decisions d = policy().OnTimer(At(10s));
  EXPECT_EQ(Stopped(d, StopReason::kInitTimeout), (std::vector<InstanceId>{a, b}));
  EXPECT_TRUE(Failed(d, 1, a));
  EXPECT_TRUE(Failed(d, 2, b));
  ASSERT_EQ(d.start.size(), 1u) << "request 3 gets its own instance and its own init";
  EXPECT_TRUE(d.throttle.empty());
  EXPECT_EQ(d.wake, At(20s));
  EXPECT_TRUE(Dispatched(policy().OnReady(At(12s), d.start[0]), 3, d.start[0]));
}

TEST_F(PoolPolicyTest, AStartFailureFailsTheOldestRequestAndEachOtherGetsItsOwnAttempt) {
  limits_.max = 1;
  const InstanceId a = policy().Submit(kT0, 1).start.at(0);
  policy().Submit(kT0, 2);
  Decisions d = policy().OnStartFailed(At(10ms), a);
  EXPECT_TRUE(Failed(d, 1, a));
  ASSERT_EQ(d.start.size(), 1u);
  const InstanceId b = d.start[0];
  d = policy().OnStartFailed(At(20ms), b);
  EXPECT_TRUE(Failed(d, 2, b));
  EXPECT_TRUE(d.start.empty()) << "no retry loop once nothing waits";
  EXPECT_TRUE(policy().Unused());
}

TEST_F(PoolPolicyTest, AnInitErrorFailsTheOldestRequestAndTheRestStartWhenItsProcessHasEnded) {
  limits_.max = 1;
  const InstanceId a = policy().Submit(kT0, 1).start.at(0);
  policy().Submit(kT0, 2);
  Decisions d = policy().OnInitError(At(10ms), a);
  EXPECT_TRUE(Failed(d, 1, a));
  EXPECT_TRUE(d.start.empty()) << "not while its process may still run";
  d = policy().OnEnded(At(20ms), a);
  EXPECT_TRUE(d.fail.empty());
  ASSERT_EQ(d.start.size(), 1u);
  EXPECT_TRUE(Failed(policy().OnInitError(At(30ms), d.start[0]), 2, d.start[0]));
}

TEST_F(PoolPolicyTest, AnInstanceThatEndsBeforeItIsReadyFailsTheOldestRequest) {
  const InstanceId a = policy().Submit(kT0, 1).start.at(0);
  Decisions d = policy().OnEnded(At(10ms), a);
  EXPECT_TRUE(Failed(d, 1, a));
  EXPECT_TRUE(d.start.empty());
}

// ---- crashes and deadlines of busy instances -------------------------------------------------------

TEST_F(PoolPolicyTest, ACrashedBusyInstanceFreesItsSlotAndAnInstanceStartsForTheQueue) {
  limits_.max = 1;
  const InstanceId a = RunOnce(1, kT0);
  ASSERT_TRUE(Dispatched(policy().Submit(At(1s), 2), 2, a));
  EXPECT_TRUE(policy().Submit(At(1s), 3).start.empty());
  Decisions d = policy().OnEnded(At(2s), a);
  EXPECT_TRUE(d.fail.empty()) << "the running request is the executor's to fail";
  ASSERT_EQ(d.start.size(), 1u);
  EXPECT_TRUE(Dispatched(policy().OnReady(At(2500ms), d.start[0]), 3, d.start[0]));
}

TEST_F(PoolPolicyTest, AnInstanceKilledAtItsDeadlineIsReplacedOnlyOnceItsProcessHasEnded) {
  limits_.max = 1;
  limits_.queue_timeout = 30s;
  const InstanceId a = RunOnce(1, kT0);
  policy().Submit(At(1s), 2);  // runs on a
  policy().Submit(At(1s), 3);
  policy().Forget(a);
  EXPECT_EQ(policy().StateOf(a), std::nullopt);
  EXPECT_EQ(policy().queued(), 1u);
  Decisions d = policy().OnEnded(At(5s), a);
  EXPECT_EQ(d.start.size(), 1u);
}

TEST_F(PoolPolicyTest, AnInstanceThatAnswersButNeverAsksAgainIsStoppedAndTheQueueMovesOn) {
  limits_.max = 1;
  limits_.queue_timeout = 30s;
  const InstanceId a = RunOnce(1, kT0);
  policy().Submit(At(1s), 2);
  policy().Submit(At(1s), 3);
  Decisions d = policy().OnResponded(At(2s), a);
  EXPECT_EQ(d.wake, At(12s));
  d = policy().OnTimer(At(12s));
  EXPECT_EQ(Stopped(d, StopReason::kNoNextAfterResponse), std::vector<InstanceId>{a});
  ASSERT_EQ(d.start.size(), 1u);
  EXPECT_TRUE(Dispatched(policy().OnReady(At(13s), d.start[0]), 3, d.start[0]));
}

// ---- keep-alive, min_warm and retirement -----------------------------------------------------------

TEST_F(PoolPolicyTest, AnIdleInstanceStopsKeepAliveAfterItsLastUse) {
  const InstanceId a = RunOnce(1, kT0);
  EXPECT_EQ(policy().Submit(At(30s), 2).dispatch->instance, a);
  policy().OnResponded(At(31s), a);
  Decisions d = policy().OnReady(At(31s), a);
  EXPECT_EQ(d.wake, At(91s)) << "keep-alive counts from the last park";
  EXPECT_TRUE(Nothing(policy().OnTimer(At(60s))));
  d = policy().OnTimer(At(91s));
  EXPECT_EQ(Stopped(d, StopReason::kKeepAlive), std::vector<InstanceId>{a});
  EXPECT_TRUE(d.start.empty());
  EXPECT_TRUE(policy().Unused());
}

TEST_F(PoolPolicyTest, ADetachedInstanceKeepsItsKeepAliveAndIsNotDispatched) {
  const InstanceId a = RunOnce(1, kT0);
  policy().OnDetached(a);
  EXPECT_EQ(policy().StateOf(a), InstanceState::kDetached);
  Decisions d = policy().Submit(At(1s), 2);
  EXPECT_FALSE(d.dispatch);
  EXPECT_EQ(d.start.size(), 1u);
  EXPECT_EQ(Stopped(policy().OnTimer(At(60s)), StopReason::kKeepAlive), std::vector<InstanceId>{a});
}

TEST_F(PoolPolicyTest, MinWarmStartsInstancesKeepsThemPastKeepAliveAndReplacesOneThatDies) {
  limits_.min_warm = 1;
  Decisions d = policy().KeepWarm(kT0);
  ASSERT_EQ(d.start.size(), 1u);
  const InstanceId a = d.start[0];
  policy().OnReady(At(1s), a);
  d = policy().OnTimer(At(61s));
  EXPECT_TRUE(Nothing(d));
  EXPECT_EQ(d.wake, At(121s)) << "another keep-alive period";
  EXPECT_EQ(policy().StateOf(a), InstanceState::kIdle);
  EXPECT_FALSE(policy().Unused());

  d = policy().OnEnded(At(100s), a);
  EXPECT_EQ(d.start.size(), 1u) << "min_warm is kept";
  EXPECT_TRUE(policy().KeepWarm(At(101s)).start.empty()) << "already warm";
}

TEST_F(PoolPolicyTest, ARetiredPoolStopsItsIdleInstanceAtOnceAndItsBusyOneWhenItFinishes) {
  limits_.min_warm = 1;
  const InstanceId a = RunOnce(1, kT0);
  policy().Submit(At(1s), 2);  // a is busy
  const InstanceId b = RunOnce(3, At(1s));  // a second, idle, instance
  ASSERT_NE(a, b);
  Decisions d = policy().Retire(At(2s));
  EXPECT_EQ(Stopped(d, StopReason::kRetired), std::vector<InstanceId>{b});
  EXPECT_TRUE(d.start.empty()) << "a retired pool keeps no min_warm";
  EXPECT_EQ(policy().StateOf(a), InstanceState::kBusy);

  policy().OnResponded(At(3s), a);
  d = policy().OnReady(At(3s), a);
  EXPECT_EQ(Stopped(d, StopReason::kRetired), std::vector<InstanceId>{a});
  EXPECT_TRUE(policy().Unused());
  EXPECT_TRUE(policy().OnEnded(At(4s), a).start.empty());
}

TEST_F(PoolPolicyTest, ARetiredPoolStillServesWhatWasQueuedOnIt) {
  limits_.max = 1;
  const InstanceId a = RunOnce(1, kT0);
  policy().Submit(At(1s), 2);
  policy().Submit(At(1s), 3);
  policy().Retire(At(2s));
  policy().OnResponded(At(2s), a);
  EXPECT_TRUE(Dispatched(policy().OnReady(At(2s), a), 3, a));
}

TEST_F(PoolPolicyTest, ALaunchThatArrivesForARetiredPoolWithNothingWaitingIsNotWanted) {
  limits_.min_warm = 1;
  const InstanceId a = policy().KeepWarm(kT0).start.at(0);
  policy().Retire(At(1s));
  EXPECT_FALSE(policy().OnLaunched(a));
  EXPECT_EQ(policy().StateOf(a), std::nullopt);

  PoolPolicy fresh(limits_, ids_);
  const InstanceId b = fresh.Submit(kT0, 1).start.at(0);
  EXPECT_TRUE(fresh.OnLaunched(b));
  EXPECT_NE(a, b) << "ids are unique across pools";
}

}  // namespace
}  // namespace nimbus::scheduler
