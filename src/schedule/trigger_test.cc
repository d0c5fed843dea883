// The schedule trigger against a fake clock, over the real journal and delivery engine: a rate
// schedule fires at deploy and every period, a firing is recorded with its event, missed
// firings follow the `missed` policy after a restart, and redeploys keep or reset the timing.
#include "schedule/trigger.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <set>

#include <boost/json.hpp>

namespace nimbus::schedule {
namespace {

namespace fs = std::filesystem;

class FakeClock : public queue::Clock {
 public:
  int64_t NowMs() override { return now.load(); }
  std::atomic<int64_t> now{1'798'761'600'000};  // 2027-01-01T00:00:00Z
};

constexpr int64_t kMinute = 60'000;

class TriggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-trigger-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open() {
    auto q = queue::OpenSqliteEventQueue(dir_ / "queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    journal_ = std::make_unique<queue::Journal>(*queue_);
    delivery_ = std::make_unique<queue::Delivery>(
        *queue_, *journal_, catalog_,
        [this](const catalog::ConfigPtr& cfg, scheduler::InvokeRequest req, scheduler::Completion) {
          fired_.push_back({cfg->name, req.payload});
        },
        queue::DeliveryOptions{}, clock_);
    ASSERT_TRUE(delivery_->Recover().ok());
    trigger_ = std::make_unique<Trigger>(*queue_, *journal_, *delivery_, catalog_, clock_);
    ASSERT_TRUE(trigger_->Start(/*thread=*/false).ok());
    Settle();
  }
  void Close() {
    if (journal_) journal_->Flush();
    trigger_.reset();
    delivery_.reset();
    journal_.reset();
    queue_.reset();
    fired_.clear();
  }
  void Deploy(const std::string& name, const std::string& expression, const std::string& tz = "UTC",
              manifest::Schedule::Missed missed = manifest::Schedule::Missed::kOnce) {
    auto cfg = std::make_shared<catalog::FunctionConfig>();
    cfg->name = name;
    cfg->version = "1";
    cfg->arn = catalog::FunctionArn(name);
    cfg->manifest.name = name;
    if (!expression.empty()) cfg->manifest.schedule = manifest::Schedule{expression, tz, missed};
    auto snap = std::make_shared<catalog::Snapshot>(*catalog_.Get());
    snap->functions[name].latest = "1";
    snap->functions[name].versions["1"] = cfg;
    catalog_.Set(snap);
    if (trigger_) trigger_->Sync();
  }
  // Lets accepted firings become durable and reach the (fake) scheduler.
  void Settle() {
    journal_->Flush();
    delivery_->PumpOnce();
  }
  void Tick(int64_t ms) {
    clock_.now += ms;
    trigger_->PumpOnce();
    Settle();
  }
  std::string TimeOf(size_t i) {
    return std::string(boost::json::parse(fired_.at(i).second).as_object().at("time").as_string());
  }

  fs::path dir_;
  FakeClock clock_;
  catalog::Catalog catalog_;
  std::unique_ptr<queue::EventQueue> queue_;
  std::unique_ptr<queue::Journal> journal_;
  std::unique_ptr<queue::Delivery> delivery_;
  std::unique_ptr<Trigger> trigger_;
  std::vector<std::pair<std::string, std::string>> fired_;
};

TEST_F(TriggerTest, ARateScheduleFiresAtDeployThenEveryPeriodWithEventBridgesEvent) {
  Open();
  Deploy("tick", "rate(1 minute)");
  trigger_->PumpOnce();
  Settle();
  ASSERT_EQ(fired_.size(), 1u);
  auto ev = boost::json::parse(fired_[0].second).as_object();
  EXPECT_EQ(ev.at("detail-type"), "Scheduled Event");
  EXPECT_EQ(ev.at("source"), "aws.events");
  EXPECT_EQ(ev.at("version"), "0");
  EXPECT_EQ(ev.at("time"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(ev.at("resources").as_array().at(0), "arn:aws:events:local:000000000000:rule/tick");
  EXPECT_TRUE(ev.at("detail").as_object().empty());
  EXPECT_EQ(trigger_->NextFiring("tick"), clock_.now + kMinute);
  Tick(kMinute - 1);
  EXPECT_EQ(fired_.size(), 1u);
  Tick(1);
  ASSERT_EQ(fired_.size(), 2u);
  EXPECT_EQ(TimeOf(1), "2027-01-01T00:01:00Z");
}

TEST_F(TriggerTest, ACronScheduleFiresAtItsWallClockTimeInItsZone) {
  Open();
  Deploy("morning", "cron(0 9 * * ? *)", "Europe/Copenhagen");
  // 09:00 in Copenhagen in winter is 08:00Z.
  EXPECT_EQ(trigger_->NextFiring("morning"), clock_.now + 8 * 60 * kMinute);
  Tick(8 * 60 * kMinute);
  ASSERT_EQ(fired_.size(), 1u);
  EXPECT_EQ(TimeOf(0), "2027-01-01T08:00:00Z");
}

TEST_F(TriggerTest, AFiringIsRecordedWithItsEventSoARestartNeitherLosesNorRepeatsIt) {
  Open();
  Deploy("tick", "rate(5 minutes)");
  trigger_->PumpOnce();
  Settle();
  ASSERT_EQ(fired_.size(), 1u);
  Close();
  clock_.now += kMinute;  // back before the next firing
  Open();
  EXPECT_EQ(fired_.size(), 1u) << "the pending event runs again (at-least-once), nothing fires";
  auto states = queue_->LoadSchedules();
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].last_fired_ms, clock_.now - kMinute);
  EXPECT_EQ(trigger_->NextFiring("tick"), clock_.now + 4 * kMinute);
}

TEST_F(TriggerTest, FiringsMissedWhileDownFireOnceAtStartUp) {
  Open();
  Deploy("tick", "rate(1 minute)");
  trigger_->PumpOnce();
  Settle();
  delivery_->PumpOnce();
  Close();
  const int64_t t0 = clock_.now;
  clock_.now += 10 * kMinute + 30'000;
  Open();
  // One catch-up firing for the ten missed ones, carrying the first missed time; the pending
  // event from before the stop runs again too.
  int schedule_events = 0;
  for (auto& [fn, payload] : fired_) {
    if (boost::json::parse(payload).as_object().at("time") == "2027-01-01T00:01:00Z") schedule_events++;
  }
  EXPECT_EQ(schedule_events, 1);
  EXPECT_EQ(fired_.size(), 2u);
  EXPECT_EQ(trigger_->NextFiring("tick"), t0 + 11 * kMinute);
  Close();
  clock_.now += 10'000;
  Open();
  // Only the two pending events run again: the catch-up is recorded, not repeated.
  std::set<std::string> times;
  for (size_t i = 0; i < fired_.size(); ++i) times.insert(TimeOf(i));
  EXPECT_EQ(fired_.size(), 2u);
  EXPECT_EQ(times, (std::set<std::string>{"2027-01-01T00:00:00Z", "2027-01-01T00:01:00Z"}));
}

TEST_F(TriggerTest, MissedSkipFiresNothingAtStartUp) {
  Deploy("tick", "rate(1 minute)", "UTC", manifest::Schedule::Missed::kSkip);
  Open();
  trigger_->PumpOnce();
  Settle();
  ASSERT_EQ(fired_.size(), 1u);
  Close();
  journal_.reset();
  // Drain the pending event so only schedule firings are counted after the restart.
  {
    auto q = queue::OpenSqliteEventQueue(dir_ / "queue.db");
    ASSERT_TRUE(q.ok());
    auto pending = (*q)->LoadPending();
    ASSERT_TRUE(pending.ok());
    queue::Op del;
    del.kind = queue::Op::Kind::kDelete;
    for (auto& e : *pending) del.ids.push_back(e.id);
    std::vector<queue::Op*> batch{&del};
    ASSERT_TRUE((*q)->Commit(batch).ok());
  }
  clock_.now += 10 * kMinute + 30'000;
  Open();
  EXPECT_TRUE(fired_.empty());
}

TEST_F(TriggerTest, ARedeployKeepsTheTimingUnlessTheScheduleChangesAndADeleteDropsIt) {
  Open();
  Deploy("tick", "rate(5 minutes)");
  const int64_t first = *trigger_->NextFiring("tick");
  EXPECT_EQ(first, clock_.now);
  trigger_->PumpOnce();
  clock_.now += kMinute;
  Deploy("tick", "rate(5 minutes)");
  EXPECT_EQ(trigger_->NextFiring("tick"), first + 5 * kMinute);
  Deploy("tick", "rate(10 minutes)");
  EXPECT_EQ(trigger_->NextFiring("tick"), clock_.now) << "a new rate starts at its deploy";
  Deploy("tick", "");
  EXPECT_EQ(trigger_->NextFiring("tick"), std::nullopt);
  journal_->Flush();
  EXPECT_TRUE(queue_->LoadSchedules()->empty());
}

TEST_F(TriggerTest, AnUnknownTimeZoneIsRefusedWithItsName) {
  auto r = ParseManifestSchedule(manifest::Schedule{"cron(0 9 * * ? *)", "Europe/Atlantis"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Europe/Atlantis"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::schedule
