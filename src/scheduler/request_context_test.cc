// The request context's own contract, without a scheduler: a context is completed exactly once
// however many threads try, finishing stamps the outcome and the time, the log tail keeps only
// what was asked for and only its last 4 KiB, and a callback context lets go of its callback
// once it has run. What the scheduler fills in on the way is specified in scheduler_test.cc.
#include "scheduler/request_context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace nimbus::scheduler {
namespace {

catalog::ConfigPtr Fn() {
  auto fn = std::make_shared<catalog::FunctionConfig>();
  fn->name = "echo";
  fn->version = "1";
  return fn;
}

InvokeRequest Request(bool want_log_tail = false) {
  InvokeRequest req;
  req.request_id = "c0ffee00-1111-4222-8333-000000000001";
  req.payload = "{}";
  req.want_log_tail = want_log_tail;
  return req;
}

InvokeResult Result(Outcome outcome, std::string body) {
  InvokeResult r;
  r.outcome = outcome;
  r.body = std::move(body);
  return r;
}

// Records every Complete() call.
class CountingContext final : public RequestContext {
 public:
  explicit CountingContext(InvokeRequest req = Request()) : RequestContext(Fn(), std::move(req)) {}
  std::atomic<int> completions{0};
  std::string body;  // of the one that ran first

 private:
  void Complete(InvokeResult&& r) override {
    if (completions.fetch_add(1) == 0) body = std::move(r.body);
  }
};

TEST(RequestContextTest, TheFirstFinishCompletesTheContextAndLaterOnesDoNothing) {
  CountingContext ctx;
  EXPECT_FALSE(ctx.finished());
  EXPECT_TRUE(ctx.Finish(Result(Outcome::kSuccess, "first")));
  EXPECT_TRUE(ctx.finished());
  EXPECT_FALSE(ctx.Finish(Result(Outcome::kTimeout, "second")));
  EXPECT_EQ(ctx.completions.load(), 1);
  EXPECT_EQ(ctx.body, "first");
  EXPECT_EQ(ctx.observations().outcome, Outcome::kSuccess) << "a late answer changes nothing";
}

TEST(RequestContextTest, ThreadsFinishingAtOnceCompleteTheContextExactlyOnce) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 50; ++round) {
    CountingContext ctx;
    std::latch go(kThreads);
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();  // all start together
        if (ctx.Finish(Result(Outcome::kSuccess, std::to_string(i)))) won.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(ctx.completions.load(), 1) << "round " << round;
    ASSERT_EQ(won.load(), 1) << "round " << round;
  }
}

TEST(RequestContextTest, FinishingStampsTheOutcomeAndTheFinishTime) {
  const auto before = RequestContext::Clock::now();
  CountingContext ctx;
  EXPECT_GE(ctx.received_at, before);
  EXPECT_EQ(ctx.observations().finished_at, RequestContext::Clock::time_point{});
  ctx.Finish(Result(Outcome::kThrottled, "{}"));
  const auto& o = ctx.observations();
  EXPECT_EQ(o.outcome, Outcome::kThrottled);
  EXPECT_GE(o.finished_at, ctx.received_at);
  EXPECT_LE(o.finished_at, RequestContext::Clock::now());
  EXPECT_EQ(o.started_at, RequestContext::Clock::time_point{}) << "nothing started it";
  EXPECT_FALSE(o.cold);
}

TEST(RequestContextTest, TheLogTailCollectsLinesOnlyWhenTheRequestAskedForIt) {
  CountingContext quiet(Request(/*want_log_tail=*/false));
  quiet.AppendLogTail("START RequestId: x");
  EXPECT_EQ(quiet.log_tail(), "");

  CountingContext tail(Request(/*want_log_tail=*/true));
  tail.AppendLogTail("START RequestId: x");
  tail.AppendLogTail("hello");
  EXPECT_EQ(tail.log_tail(), "START RequestId: x\nhello\n");
}

TEST(RequestContextTest, TheLogTailKeepsTheLastFourKibibytes) {
  CountingContext ctx(Request(/*want_log_tail=*/true));
  std::string last;
  for (int i = 0; i < 2000; ++i) {
    last = "line " + std::to_string(i);
    ctx.AppendLogTail(last);
  }
  const std::string_view tail = ctx.log_tail();
  EXPECT_EQ(tail.size(), kLogTailBytes);
  EXPECT_EQ(tail.substr(tail.size() - last.size() - 1), last + "\n") << "the newest line is kept";
  EXPECT_EQ(tail.find("line 0\n"), std::string_view::npos) << "the oldest lines are dropped";
}

TEST(RequestContextTest, ACallbackContextCallsItsCallbackOnceAndThenLetsGoOfWhatItCaptured) {
  auto captured = std::make_shared<int>(7);
  int calls = 0;
  Outcome got = Outcome::kShutdown;
  auto ctx = std::make_shared<CallbackContext>(Fn(), Request(), [&calls, &got, captured](InvokeResult&& r) {
    ++calls;
    got = r.outcome;
  });
  EXPECT_EQ(captured.use_count(), 2);
  EXPECT_TRUE(ctx->Finish(Result(Outcome::kSuccess, "{}")));
  EXPECT_FALSE(ctx->Finish(Result(Outcome::kCrash, "{}")));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, Outcome::kSuccess);
  EXPECT_EQ(captured.use_count(), 1) << "the callback still holds what it captured";
}

}  // namespace
}  // namespace nimbus::scheduler
