// Delivery against a fake clock and a fake scheduler, over the real SQLite journal: what is
// accepted is durable first, failures are retried with backoff, then dead-lettered with
// Lambda's destination record or sent to a destination function; replays, idempotency keys,
// the event age limit, the async share of concurrency, and recovery after a crash.
#include "queue/delivery.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <future>

#include <boost/json.hpp>

namespace nimbus::queue {
namespace {

namespace fs = std::filesystem;
using scheduler::InvokeResult;
using scheduler::Outcome;

class FakeClock : public Clock {
 public:
  int64_t NowMs() override { return now.load(); }
  std::atomic<int64_t> now{1'700'000'000'000};
};

// Every invocation the delivery engine starts, held until the test completes it.
struct Call {
  catalog::ConfigPtr cfg;
  scheduler::InvokeRequest req;
  scheduler::Completion done;
};

constexpr int64_t kBase = 1000;  // retry_base_ms in these tests

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-delivery-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    AddFunction("work");
    AddFunction("audit");
    Open();
  }
  void TearDown() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open() {
    auto q = OpenSqliteEventQueue(dir_ / "queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    journal_ = std::make_unique<Journal>(*queue_);
    DeliveryOptions opt;
    opt.retry_base_ms = kBase;
    opt.idempotency_window_ms = 60'000;
    opt.max_pending_events = max_pending_;
    opt.memory_payload_budget = memory_budget_;
    delivery_ = std::make_unique<Delivery>(
        *queue_, *journal_, catalog_,
        [this](const catalog::ConfigPtr& cfg, scheduler::InvokeRequest req, scheduler::Completion done) {
          calls_.push_back({cfg, std::move(req), std::move(done)});
        },
        opt, clock_);
    ASSERT_TRUE(delivery_->Recover().ok());
  }
  // A crash: nothing is flushed or completed; what the journal committed is what remains.
  void Close() {
    if (journal_) journal_->Flush();
    delivery_.reset();
    journal_.reset();
    queue_.reset();
    calls_.clear();
  }
  void AddFunction(const std::string& name, std::function<void(manifest::Manifest&)> edit = {}) {
    auto cfg = std::make_shared<catalog::FunctionConfig>();
    cfg->name = name;
    cfg->version = "1";
    cfg->arn = catalog::FunctionArn(name);
    cfg->manifest.name = name;
    cfg->manifest.concurrency.max = 10;
    if (edit) edit(cfg->manifest);
    auto snap = std::make_shared<catalog::Snapshot>(*catalog_.Get());
    snap->functions[name].latest = "1";
    snap->functions[name].versions["1"] = cfg;
    catalog_.Set(snap);
  }
  void RemoveFunction(const std::string& name) {
    auto snap = std::make_shared<catalog::Snapshot>(*catalog_.Get());
    snap->functions.erase(name);
    catalog_.Set(snap);
  }
  Result<Accepted> Accept(const std::string& fn, const std::string& payload, const std::string& key = "",
                          const std::string& source = "invoke") {
    Event e;
    e.function = fn;
    e.payload = payload;
    e.source = source;
    e.request_id = "req-" + std::to_string(++seq_);
    std::promise<Result<Accepted>> p;
    delivery_->Accept(e, key, [&](Result<Accepted> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  // Completes call i with `outcome`, then lets the journal write what followed.
  void Finish(size_t i, Outcome outcome, std::string body = "") {
    ASSERT_LT(i, calls_.size());
    InvokeResult r;
    r.outcome = outcome;
    r.version = "1";
    if (outcome == Outcome::kSuccess) {
      r.body = body.empty() ? "{\"ok\":true}" : body;
    } else {
      r.error_type = outcome == Outcome::kTimeout ? "Sandbox.Timedout" : "Unhandled";
      r.body = body.empty() ? R"({"errorMessage":"boom","errorType":"Error"})" : body;
    }
    auto done = std::move(calls_[i].done);
    done(std::move(r));
    journal_->Flush();
  }
  std::vector<DeadLetter> DeadLetters(const std::string& fn) {
    journal_->Flush();
    auto d = queue_->DeadLetters(fn, 100);
    EXPECT_TRUE(d.ok());
    return d.ok() ? *d : std::vector<DeadLetter>{};
  }
  std::vector<Event> Pending() {
    journal_->Flush();
    auto p = queue_->LoadPending();
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : std::vector<Event>{};
  }

  fs::path dir_;
  FakeClock clock_;
  catalog::Catalog catalog_;
  std::unique_ptr<EventQueue> queue_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Delivery> delivery_;
  std::vector<Call> calls_;
  size_t max_pending_ = 1'000'000;
  size_t memory_budget_ = size_t{64} << 20;
  int seq_ = 0;
};

TEST_F(DeliveryTest, AnEventIsDurableBeforeItsAcceptanceIsAnswered) {
  std::vector<Event> seen_at_answer;
  Event e;
  e.function = "work";
  e.payload = "{\"n\":1}";
  e.source = "invoke";
  e.request_id = "r1";
  std::promise<void> answered;
  auto other = OpenSqliteEventQueue(dir_ / "queue.db");  // a second connection sees only commits
  ASSERT_TRUE(other.ok());
  delivery_->Accept(e, "", [&](Result<Accepted> r) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->request_id, "r1");
    seen_at_answer = *(*other)->LoadPending();
    answered.set_value();
  });
  answered.get_future().get();
  ASSERT_EQ(seen_at_answer.size(), 1u);
  EXPECT_EQ(seen_at_answer[0].payload_size, 7);
}

TEST_F(DeliveryTest, RunsAcceptedEventsWithTheirRequestIdAndForgetsThemOnSuccess) {
  ASSERT_TRUE(Accept("work", "{\"n\":1}").ok());
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].req.request_id, "req-1");
  EXPECT_EQ(calls_[0].req.payload, "{\"n\":1}");
  EXPECT_EQ(delivery_->Counts("work").in_flight, 1);
  Finish(0, Outcome::kSuccess);
  EXPECT_TRUE(Pending().empty());
  EXPECT_EQ(delivery_->Counts("work").in_flight, 0);
  EXPECT_EQ(delivery_->stats().accepted, 1u);
  EXPECT_EQ(delivery_->stats().succeeded, 1u);
}

TEST_F(DeliveryTest, AsyncWorkLeavesAFifthOfTheConcurrencyToSynchronousCallers) {
  EXPECT_EQ(AsyncConcurrency(1), 1);
  EXPECT_EQ(AsyncConcurrency(2), 1);
  EXPECT_EQ(AsyncConcurrency(5), 4);
  EXPECT_EQ(AsyncConcurrency(10), 8);
  EXPECT_EQ(AsyncConcurrency(100), 80);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 8u);
  EXPECT_EQ(delivery_->Counts("work").queued, 4);
  Finish(0, Outcome::kSuccess);
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 9u);
}

TEST_F(DeliveryTest, FailuresAreRetriedWithExponentialBackoffAndJitter) {
  EXPECT_EQ(RetryDelayMs(1000, 1, 0.0), 800);
  EXPECT_EQ(RetryDelayMs(1000, 1, 0.999999), 1199);
  EXPECT_EQ(RetryDelayMs(1000, 2, 0.5), 2000);
  EXPECT_EQ(RetryDelayMs(60'000, 10, 0.5), 15 * 60 * 1000);  // capped

  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  const int64_t t0 = clock_.now;
  Finish(0, Outcome::kFunctionError);
  auto listed = delivery_->List("work", 10);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state, EventView::State::kRetrying);
  EXPECT_EQ(listed[0].event.attempts, 1);
  EXPECT_EQ(listed[0].event.last_error, "Unhandled: boom");
  const int64_t first = listed[0].event.visible_at_ms - t0;
  EXPECT_GE(first, 800);
  EXPECT_LT(first, 1200);

  clock_.now += first - 1;
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 1u) << "retried before its backoff ran out";
  clock_.now += 1;
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].req.request_id, "req-1");

  const int64_t t1 = clock_.now;
  Finish(1, Outcome::kTimeout, R"({"errorMessage":"Task timed out after 3.00 seconds"})");
  listed = delivery_->List("work", 10);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].event.attempts, 2);
  EXPECT_EQ(listed[0].event.last_error, "Sandbox.Timedout: Task timed out after 3.00 seconds");
  const int64_t second = listed[0].event.visible_at_ms - t1;
  EXPECT_GE(second, 1600);
  EXPECT_LT(second, 2400);
  // The attempt count and the next attempt time are durable.
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].attempts, 2);
  EXPECT_EQ(pending[0].visible_at_ms, listed[0].event.visible_at_ms);
}

TEST_F(DeliveryTest, AfterTheLastRetryTheEventIsDeadLetteredWithItsDestinationRecord) {
  ASSERT_TRUE(Accept("work", "{\"order\":42}").ok());
  for (size_t i = 0; i < 3; ++i) {
    clock_.now += 10 * kBase;
    delivery_->PumpOnce();
    ASSERT_EQ(calls_.size(), i + 1);
    Finish(i, i == 2 ? Outcome::kOutOfMemory : Outcome::kCrash,
           R"({"errorMessage":"attempt )" + std::to_string(i + 1) + "\"}");
  }
  clock_.now += 10 * kBase;
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 3u) << "Lambda's default is two retries: three attempts";
  EXPECT_TRUE(Pending().empty());
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "RetriesExhausted");
  EXPECT_EQ(dead[0].event.attempts, 3);
  EXPECT_EQ(dead[0].event.payload, "{\"order\":42}");
  auto record = boost::json::parse(dead[0].record).as_object();
  EXPECT_EQ(record.at("version"), "1.0");
  auto& rc = record.at("requestContext").as_object();
  EXPECT_EQ(rc.at("requestId"), "req-1");
  EXPECT_EQ(rc.at("condition"), "RetriesExhausted");
  EXPECT_EQ(rc.at("approximateInvokeCount"), 3);
  EXPECT_EQ(rc.at("functionArn"), "arn:aws:lambda:local:000000000000:function:work:$LATEST");
  EXPECT_EQ(record.at("requestPayload").as_object().at("order"), 42);
  EXPECT_EQ(record.at("responseContext").as_object().at("functionError"), "Unhandled");
  EXPECT_EQ(record.at("responsePayload").as_object().at("errorMessage"), "attempt 3");
  EXPECT_EQ(delivery_->Counts("work").dead, 1);
  EXPECT_EQ(delivery_->stats().failed, 3u);
  EXPECT_EQ(delivery_->stats().dead_lettered, 1u);
}

TEST_F(DeliveryTest, ThrottlesAndFailedStartsCountAsFailures) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.retries = 1; });
  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kThrottled);
  clock_.now += 10 * kBase;
  delivery_->PumpOnce();
  Finish(1, Outcome::kStartFailed);
  EXPECT_EQ(DeadLetters("work").size(), 1u);
}

TEST_F(DeliveryTest, ADaemonShutdownInterruptsWithoutUsingAnAttempt) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.retries = 0; });
  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kShutdown);
  EXPECT_TRUE(DeadLetters("work").empty());
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].attempts, 0);
}

TEST_F(DeliveryTest, OnSuccessDeliversTheRecordToAnotherFunction) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.on_success = "audit"; });
  ASSERT_TRUE(Accept("work", "{\"n\":7}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kSuccess, "{\"total\":99}");
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].cfg->name, "audit");
  EXPECT_NE(calls_[1].req.request_id, "req-1");
  auto record = boost::json::parse(calls_[1].req.payload).as_object();
  EXPECT_EQ(record.at("requestContext").as_object().at("condition"), "Success");
  EXPECT_EQ(record.at("requestContext").as_object().at("requestId"), "req-1");
  EXPECT_EQ(record.at("requestContext").as_object().at("approximateInvokeCount"), 1);
  EXPECT_EQ(record.at("requestPayload").as_object().at("n"), 7);
  EXPECT_EQ(record.at("responsePayload").as_object().at("total"), 99);
  EXPECT_EQ(record.at("responseContext").as_object().at("executedVersion"), "1");
  EXPECT_FALSE(record.at("responseContext").as_object().contains("functionError"));
}

TEST_F(DeliveryTest, OnFailureToAFunctionReplacesTheDeadLetter) {
  AddFunction("work", [](manifest::Manifest& m) {
    m.async.retries = 0;
    m.async.on_failure = "audit";
  });
  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kFunctionError);
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].cfg->name, "audit");
  auto record = boost::json::parse(calls_[1].req.payload).as_object();
  EXPECT_EQ(record.at("requestContext").as_object().at("condition"), "RetriesExhausted");
  EXPECT_TRUE(DeadLetters("work").empty());
}

TEST_F(DeliveryTest, AMissingDestinationDeadLettersTheEventInstead) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.on_success = "nobody"; });
  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kSuccess);
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "DestinationNotFound");
  EXPECT_NE(dead[0].event.last_error.find("'nobody' does not exist"), std::string::npos);
}

TEST_F(DeliveryTest, ADestinationLoopStopsAtTheDepthLimit) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.on_success = "work"; });
  ASSERT_TRUE(Accept("work", "{}").ok());
  for (size_t i = 0; i <= 16; ++i) {
    delivery_->PumpOnce();
    ASSERT_EQ(calls_.size(), i + 1);
    Finish(i, Outcome::kSuccess);
  }
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 17u);
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "RecursionLimit");
  EXPECT_EQ(dead[0].event.depth, 16);
}

TEST_F(DeliveryTest, ReplayPutsDeadLettersBackWithFreshAttempts) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.retries = 0; });
  ASSERT_TRUE(Accept("work", "{\"n\":1}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kFunctionError);
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  std::promise<Result<ReplayResult>> p;
  delivery_->Replay("work", {dead[0].event.id, 999}, [&](Result<ReplayResult> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->replayed, 1);
  EXPECT_EQ(r->missing, std::vector<int64_t>{999});
  EXPECT_EQ(delivery_->Counts("work").dead, 0);
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].req.request_id, "req-1");
  EXPECT_EQ(calls_[1].req.payload, "{\"n\":1}");
  Finish(1, Outcome::kSuccess);
  EXPECT_TRUE(Pending().empty());
  EXPECT_TRUE(DeadLetters("work").empty());
}

TEST_F(DeliveryTest, AnIdempotencyKeyCollapsesRepeatsWithinTheWindow) {
  auto a = Accept("work", "{}", "order-42");
  auto b = Accept("work", "{}", "order-42");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->duplicate);
  EXPECT_TRUE(b->duplicate);
  EXPECT_EQ(b->request_id, a->request_id);
  EXPECT_EQ(delivery_->stats().duplicates, 1u);
  delivery_->PumpOnce();
  EXPECT_EQ(calls_.size(), 1u);
  clock_.now += 61'000;
  auto c = Accept("work", "{}", "order-42");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->duplicate);
  EXPECT_NE(c->request_id, a->request_id);
}

TEST_F(DeliveryTest, EventsOlderThanMaxEventAgeAreDeadLetteredWithoutRunning) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.max_event_age_s = 60; });
  ASSERT_TRUE(Accept("work", "{}").ok());
  clock_.now += 60'001;
  delivery_->PumpOnce();
  EXPECT_TRUE(calls_.empty());
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "EventAgeExceeded");
  auto record = boost::json::parse(dead[0].record).as_object();
  EXPECT_FALSE(record.contains("responsePayload"));
}

TEST_F(DeliveryTest, EventsOfADeletedFunctionAreDeadLettered) {
  ASSERT_TRUE(Accept("work", "{}").ok());
  RemoveFunction("work");
  delivery_->PumpOnce();
  EXPECT_TRUE(calls_.empty());
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "FunctionNotFound");
}

TEST_F(DeliveryTest, RefusesOversizedPayloadsAndAFullBacklog) {
  auto big = Accept("work", std::string(256 * 1024 + 1, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  Close();
  max_pending_ = 4;
  Open();
  ASSERT_TRUE(Accept("work", "{}").ok());
  ASSERT_TRUE(Accept("work", "{}").ok());
  auto half = Accept("work", "{}");
  ASSERT_FALSE(half.ok()) << "one function may hold half of the backlog";
  EXPECT_EQ(half.status().code(), Code::kTooManyRequests);
  EXPECT_NE(half.status().message().find("'work' holds 2 pending events"), std::string::npos);
  ASSERT_TRUE(Accept("audit", "{}").ok()) << "a flooded function leaves room for the others";
  ASSERT_TRUE(Accept("audit", "{}").ok());
  AddFunction("third");
  auto full = Accept("third", "{}");
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("4 pending asynchronous events, its limit"), std::string::npos);
  EXPECT_EQ(Pending().size(), 4u);
  delivery_->PumpOnce();
  for (size_t i = 0; i < calls_.size(); ++i) Finish(i, Outcome::kSuccess);
  EXPECT_TRUE(Accept("third", "{}").ok()) << "room again once the backlog drains";
}

TEST_F(DeliveryTest, PayloadsBeyondTheMemoryBudgetStayOnDiskAndAreReadBackToRun) {
  Close();
  memory_budget_ = 10;  // bytes: only the first payload fits
  Open();
  AddFunction("work", [](manifest::Manifest& m) {
    m.async.retries = 0;
    m.async.on_failure = "audit";
  });
  ASSERT_TRUE(Accept("work", "{\"n\":1}").ok());
  ASSERT_TRUE(Accept("work", "{\"n\":\"two\"}").ok());
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[0].req.payload, "{\"n\":1}");
  EXPECT_EQ(calls_[1].req.payload, "{\"n\":\"two\"}");
  Finish(1, Outcome::kFunctionError);
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 3u);
  auto record = boost::json::parse(calls_[2].req.payload).as_object();
  EXPECT_EQ(record.at("requestPayload").as_object().at("n"), "two");
}

TEST_F(DeliveryTest, ARetryOfAPayloadLeftOnDiskRunsWithThatPayloadAgain) {
  Close();
  memory_budget_ = 0;  // every payload stays on disk
  Open();
  ASSERT_TRUE(Accept("work", "{\"n\":3}").ok());
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 1u);
  Finish(0, Outcome::kFunctionError);  // back to waiting: the payload is let go again
  clock_.now += 10 * kBase;
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].req.payload, "{\"n\":3}");
}

TEST_F(DeliveryTest, AnOversizedDestinationRecordLeavesThePayloadsOut) {
  AddFunction("work", [](manifest::Manifest& m) { m.async.on_success = "audit"; });
  std::string big(200 * 1024, 'x');
  ASSERT_TRUE(Accept("work", "\"" + big + "\"").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kSuccess, "\"" + big + "\"");
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_LE(calls_[1].req.payload.size(), 256u * 1024);
  auto record = boost::json::parse(calls_[1].req.payload).as_object();
  EXPECT_EQ(record.at("requestPayload").as_string(), big) << "the request still fits";
  EXPECT_NE(std::string(record.at("responsePayload").as_string()).find("bytes left out"), std::string::npos);
}

TEST_F(DeliveryTest, AMissingFailureDestinationIsNamedAsSuch) {
  AddFunction("work", [](manifest::Manifest& m) {
    m.async.retries = 0;
    m.async.on_failure = "ghost";
  });
  ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  Finish(0, Outcome::kFunctionError);
  auto dead = DeadLetters("work");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].condition, "DestinationNotFound");
  EXPECT_EQ(dead[0].event.payload, "{}");
}

TEST_F(DeliveryTest, PurgeRemovesQueuedAndRetryingEventsButNotRunningOnes) {
  AddFunction("work", [](manifest::Manifest& m) { m.concurrency.max = 2; });  // one async slot
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Accept("work", "{}").ok());
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 1u);
  std::promise<Result<int64_t>> p;
  delivery_->Purge("work", [&](Result<int64_t> r) { p.set_value(std::move(r)); });
  auto n = p.get_future().get();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(Pending().size(), 1u);
  Finish(0, Outcome::kSuccess);
  EXPECT_TRUE(Pending().empty());
}

TEST_F(DeliveryTest, AfterACrashEveryAcceptedEventIsPendingAgain) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Accept("work", "{\"i\":" + std::to_string(i) + "}").ok());
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 3u);
  Finish(0, Outcome::kSuccess);
  Finish(1, Outcome::kFunctionError);  // retrying
  // event 2 is running when the daemon dies
  Close();
  Open();
  auto counts = delivery_->Counts("work");
  EXPECT_EQ(counts.queued, 1);
  EXPECT_EQ(counts.retrying, 1);
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].req.payload, "{\"i\":2}");
  clock_.now += 10 * kBase;
  delivery_->PumpOnce();
  ASSERT_EQ(calls_.size(), 2u);
  EXPECT_EQ(calls_[1].req.payload, "{\"i\":1}");
  auto listed = delivery_->List("work", 10);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].event.attempts, 1);  // the failure before the crash still counts
}

TEST_F(DeliveryTest, TheDeliveryThreadRunsEventsAsSoonAsTheyAreDurable) {
  std::promise<std::string> ran;
  Close();
  auto q = OpenSqliteEventQueue(dir_ / "queue.db");
  ASSERT_TRUE(q.ok());
  queue_ = std::move(q).value();
  journal_ = std::make_unique<Journal>(*queue_);
  delivery_ = std::make_unique<Delivery>(
      *queue_, *journal_, catalog_,
      [&](const catalog::ConfigPtr&, scheduler::InvokeRequest req, scheduler::Completion done) {
        ran.set_value(req.request_id);
        InvokeResult r;
        done(std::move(r));
      },
      DeliveryOptions{}, SystemClock());
  ASSERT_TRUE(delivery_->Recover().ok());
  delivery_->Start();
  auto a = Accept("work", "{}");
  ASSERT_TRUE(a.ok());
  auto f = ran.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get(), a->request_id);
  delivery_->Stop();
}

}  // namespace
}  // namespace nimbus::queue
