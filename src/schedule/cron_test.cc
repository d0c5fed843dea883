// Schedule expressions as EventBridge evaluates them. Each row gives an expression, a zone, an
// instant and the firings that follow it, worked out by hand from the calendar (weekdays of 2026
// checked against `date`, daylight-saving instants against `zdump -v`); "none" means NextAfter
// has no further firing.
#include "schedule/cron.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace nimbus::schedule {
namespace {

// "2026-03-29T01:00Z" or "2026-03-29T01:00:30Z" as UTC epoch milliseconds (libc's timegm).
int64_t Ms(const std::string& iso) {
  std::tm tm{};
  int sec = 0;
  int n = std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &sec);
  EXPECT_GE(n, 5) << iso;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = n == 6 ? sec : 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

std::string Iso(std::optional<int64_t> ms) {
  if (!ms) return "none";
  std::time_t t = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  if (tm.tm_sec == 0 && *ms % 1000 == 0) {
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%MZ", &tm);
  } else {
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  return buf;
}

TimeZone Zone(const std::string& name) {
  if (name == "UTC") return TimeZone::Utc();
  Result<TimeZone> tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

struct Case {
  const char* expr;
  const char* zone;
  const char* after;
  std::vector<std::string> next;  // consecutive firings; "none" = no further firing
};

void Check(const Case& c, int64_t anchor_ms = 0) {
  SCOPED_TRACE(std::string(c.expr) + " in " + c.zone + " after " + c.after);
  Result<Schedule> s = Schedule::Parse(c.expr, Zone(c.zone));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<std::string> got;
  int64_t after = Ms(c.after);
  for (size_t k = 0; k < c.next.size(); ++k) {
    std::optional<int64_t> next = s->NextAfter(after, anchor_ms);
    got.push_back(Iso(next));
    if (!next) break;
    EXPECT_GT(*next, after);
    after = *next;
  }
  EXPECT_EQ(got, c.next);
}

TEST(CronTest, MinutesHoursListsRangesAndSteps) {
  const Case cases[] = {
      {"cron(* * * * ? *)", "UTC", "2026-01-01T00:00Z", {"2026-01-01T00:01Z", "2026-01-01T00:02Z"}},
      // Strictly after, and always on a whole minute.
      {"cron(* * * * ? *)", "UTC", "2026-01-01T00:00:30Z", {"2026-01-01T00:01Z"}},
      {"cron(* * * * ? *)", "UTC", "2026-12-31T23:59Z", {"2027-01-01T00:00Z"}},
      {"cron(*/15 * * * ? *)", "UTC", "2026-05-05T10:07Z",
       {"2026-05-05T10:15Z", "2026-05-05T10:30Z", "2026-05-05T10:45Z", "2026-05-05T11:00Z"}},
      {"cron(5/20 * * * ? *)", "UTC", "2026-05-05T10:46Z",
       {"2026-05-05T11:05Z", "2026-05-05T11:25Z", "2026-05-05T11:45Z", "2026-05-05T12:05Z"}},
      {"cron(0 */6 * * ? *)", "UTC", "2026-05-05T13:00Z", {"2026-05-05T18:00Z", "2026-05-06T00:00Z"}},
      {"cron(0,30 9-10 * * ? *)", "UTC", "2026-05-05T10:45Z",
       {"2026-05-06T09:00Z", "2026-05-06T09:30Z", "2026-05-06T10:00Z", "2026-05-06T10:30Z"}},
      {"cron(10-20/5 8 * * ? *)", "UTC", "2026-05-05T08:10Z",
       {"2026-05-05T08:15Z", "2026-05-05T08:20Z", "2026-05-06T08:10Z"}},
      {"cron(5,35 14 * * ? *)", "UTC", "2026-05-05T14:35Z", {"2026-05-06T14:05Z"}},
      {"cron(0 12 * * ? *)", "UTC", "2026-05-05T12:00Z", {"2026-05-06T12:00Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, MonthAndDayNamesInAnyCase) {
  const Case cases[] = {
      {"cron(0 12 1 JAN,jul ? *)", "UTC", "2026-02-01T00:00Z", {"2026-07-01T12:00Z", "2027-01-01T12:00Z"}},
      {"cron(0 0 1 MAR-MAY/2 ? *)", "UTC", "2026-01-01T00:00Z",
       {"2026-03-01T00:00Z", "2026-05-01T00:00Z", "2027-03-01T00:00Z"}},
      // Friday 2026-05-08 09:00: the next weekday 08:00 is Monday the 11th.
      {"cron(0 8 ? * MON-FRI *)", "UTC", "2026-05-08T09:00Z", {"2026-05-11T08:00Z", "2026-05-12T08:00Z"}},
      {"cron(0 8 ? * mon-fri *)", "UTC", "2026-05-08T09:00Z", {"2026-05-11T08:00Z"}},
      // 1 = Sunday, 7 = Saturday.
      {"cron(0 8 ? * 1,7 *)", "UTC", "2026-05-05T00:00Z",
       {"2026-05-09T08:00Z", "2026-05-10T08:00Z", "2026-05-16T08:00Z"}},
      // Sundays of January and July; July 2026 starts on a Wednesday.
      {"cron(0 12 ? JAN,jul SUN *)", "UTC", "2026-01-31T00:00Z", {"2026-07-05T12:00Z", "2026-07-12T12:00Z"}},
      {"cron(0/5 8-17 ? * MON-FRI *)", "UTC", "2026-05-08T17:55Z", {"2026-05-11T08:00Z", "2026-05-11T08:05Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, LeapDaysAndMonthEnds) {
  const Case cases[] = {
      {"cron(0 0 29 2 ? *)", "UTC", "2026-01-01T00:00Z", {"2028-02-29T00:00Z", "2032-02-29T00:00Z"}},
      // 2100 is not a leap year (divisible by 100, not by 400).
      {"cron(0 0 29 2 ? *)", "UTC", "2096-03-01T00:00Z", {"2104-02-29T00:00Z"}},
      {"cron(0 0 L * ? *)", "UTC", "2026-01-15T00:00Z",
       {"2026-01-31T00:00Z", "2026-02-28T00:00Z", "2026-03-31T00:00Z", "2026-04-30T00:00Z"}},
      {"cron(0 0 L 2 ? *)", "UTC", "2027-03-01T00:00Z", {"2028-02-29T00:00Z", "2029-02-28T00:00Z"}},
      {"cron(0 0 L 2 ? *)", "UTC", "2099-03-01T00:00Z", {"2100-02-28T00:00Z"}},
      {"cron(0 0 L,15 * ? *)", "UTC", "2026-02-01T00:00Z",
       {"2026-02-15T00:00Z", "2026-02-28T00:00Z", "2026-03-15T00:00Z"}},
      // Day 31 fires only in months that have one.
      {"cron(0 0 31 * ? *)", "UTC", "2026-03-31T00:00Z", {"2026-05-31T00:00Z", "2026-07-31T00:00Z"}},
      // Last weekday: Jan 31 2026 is a Saturday, Feb 28 a Saturday, May 31 a Sunday.
      {"cron(0 10 LW * ? *)", "UTC", "2026-01-01T00:00Z",
       {"2026-01-30T10:00Z", "2026-02-27T10:00Z", "2026-03-31T10:00Z", "2026-04-30T10:00Z",
        "2026-05-29T10:00Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, NearestWeekdayStaysInTheMonth) {
  const Case cases[] = {
      // Feb 15 and Mar 15 2026 are Sundays -> Monday the 16th; Apr 15 is a Wednesday.
      {"cron(0 10 15W * ? *)", "UTC", "2026-01-16T00:00Z",
       {"2026-02-16T10:00Z", "2026-03-16T10:00Z", "2026-04-15T10:00Z"}},
      // Aug 15 2026 is a Saturday -> Friday the 14th.
      {"cron(0 10 15W * ? *)", "UTC", "2026-07-16T00:00Z", {"2026-08-14T10:00Z", "2026-09-15T10:00Z"}},
      // Aug 1 2026 is a Saturday: Friday would be in July, so Monday the 3rd.
      {"cron(0 10 1W * ? *)", "UTC", "2026-07-02T00:00Z", {"2026-08-03T10:00Z", "2026-09-01T10:00Z"}},
      // May 31 2026 is a Sunday: Monday would be in June, so Friday the 29th. April has no 31st.
      {"cron(0 10 31W * ? *)", "UTC", "2026-04-01T00:00Z",
       {"2026-05-29T10:00Z", "2026-07-31T10:00Z", "2026-08-31T10:00Z"}},
      // Jan 31 2026 is a Saturday -> Friday the 30th.
      {"cron(0 10 31W * ? *)", "UTC", "2026-01-01T00:00Z", {"2026-01-30T10:00Z", "2026-03-31T10:00Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, LastAndNthWeekdayOfTheMonth) {
  const Case cases[] = {
      // Last Friday: Jan 30, Feb 27, Mar 27 2026.
      {"cron(0 10 ? * 6L *)", "UTC", "2026-01-01T00:00Z",
       {"2026-01-30T10:00Z", "2026-02-27T10:00Z", "2026-03-27T10:00Z"}},
      {"cron(0 10 ? * FRIL *)", "UTC", "2026-01-01T00:00Z", {"2026-01-30T10:00Z"}},
      {"cron(15 10 ? * 6L 2019-2022)", "UTC", "2022-12-01T00:00Z", {"2022-12-30T10:15Z", "none"}},
      // First Monday: Jan 5, Feb 2, Mar 2 2026; June 1 2026 is itself a Monday.
      {"cron(0 9 ? * 2#1 *)", "UTC", "2026-01-01T00:00Z",
       {"2026-01-05T09:00Z", "2026-02-02T09:00Z", "2026-03-02T09:00Z"}},
      {"cron(0 9 ? * 2#1 *)", "UTC", "2026-05-05T00:00Z", {"2026-06-01T09:00Z"}},
      {"cron(0 9 ? * TUE#2 *)", "UTC", "2026-01-01T00:00Z", {"2026-01-13T09:00Z"}},
      // A fifth Friday exists in Jan, May and Jul 2026 only (of Jan-Jul).
      {"cron(0 10 ? * 6#5 *)", "UTC", "2026-01-01T00:00Z",
       {"2026-01-30T10:00Z", "2026-05-29T10:00Z", "2026-07-31T10:00Z"}},
      // 'L' alone in day-of-week is Saturday.
      {"cron(0 10 ? * L *)", "UTC", "2026-05-08T00:00Z", {"2026-05-09T10:00Z", "2026-05-16T10:00Z"}},
      {"cron(0 0 ? * L *)", "UTC", "2026-05-09T00:00Z", {"2026-05-16T00:00Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, YearFieldBoundsAndNeverFiring) {
  const Case cases[] = {
      {"cron(0 12 1 1 ? 2030-2031)", "UTC", "2026-05-05T00:00Z",
       {"2030-01-01T12:00Z", "2031-01-01T12:00Z", "none"}},
      {"cron(0 12 1 1 ? 2020)", "UTC", "2026-01-01T00:00Z", {"none"}},
      {"cron(0 12 * * ? 2199)", "UTC", "2199-12-31T11:00Z", {"2199-12-31T12:00Z", "none"}},
      {"cron(0 0 1 1 ? 2030/50)", "UTC", "2026-01-01T00:00Z",
       {"2030-01-01T00:00Z", "2080-01-01T00:00Z", "2130-01-01T00:00Z", "2180-01-01T00:00Z", "none"}},
      {"cron(0 0 1 1 ? *)", "UTC", "1960-06-01T00:00Z", {"1970-01-01T00:00Z"}},
      {"cron(0 0 30 2 ? *)", "UTC", "2026-01-01T00:00Z", {"none"}},
      {"cron(0 0 31 4,6,9,11 ? *)", "UTC", "1970-01-01T00:00Z", {"none"}},
      {"cron(0 0 30 2 ? *)", "Europe/Copenhagen", "1970-01-01T00:00Z", {"none"}},
      {"cron(0 0 ? 2 2#5 2026-2027)", "America/New_York", "2026-01-01T00:00Z", {"none"}},
      {"cron(* * * * ? *)", "UTC", "2200-01-01T00:00Z", {"none"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, CopenhagenSkipsTheWallTimeThatSpringForwardRemoves) {
  // 2026-03-29 02:00 CET becomes 03:00 CEST (01:00Z): there is no 02:30 that day.
  const Case cases[] = {
      {"cron(30 2 * * ? *)", "Europe/Copenhagen", "2026-03-28T00:00Z",
       {"2026-03-28T01:30Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"}},
      // Times either side of the gap are kept; the clock just runs on.
      {"cron(*/15 * * * ? *)", "Europe/Copenhagen", "2026-03-29T00:40Z",
       {"2026-03-29T00:45Z", "2026-03-29T01:00Z", "2026-03-29T01:15Z"}},
      // The same rule from the zone file's footer, long after its listed transitions.
      {"cron(30 2 * * ? *)", "Europe/Copenhagen", "2150-03-28T02:00Z", {"2150-03-30T00:30Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, CopenhagenFiresARepeatedWallTimeOnceAtItsFirstOccurrence) {
  // 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z): 02:30 happens at 00:30Z and 01:30Z.
  const Case cases[] = {
      {"cron(30 2 * * ? *)", "Europe/Copenhagen", "2026-10-24T12:00Z",
       {"2026-10-25T00:30Z", "2026-10-26T01:30Z"}},
      // Already past the first 02:30: the second one does not fire.
      {"cron(30 2 * * ? *)", "Europe/Copenhagen", "2026-10-25T00:45Z", {"2026-10-26T01:30Z"}},
      // Every wall time of the repeated hour fired the first time round, so a frequent
      // schedule pauses for the second pass of 02:00-02:59.
      {"cron(*/15 * * * ? *)", "Europe/Copenhagen", "2026-10-25T00:40Z",
       {"2026-10-25T00:45Z", "2026-10-25T02:00Z", "2026-10-25T02:15Z"}},
      {"cron(30 2 * * ? *)", "Europe/Copenhagen", "2150-10-24T12:00Z",
       {"2150-10-25T00:30Z", "2150-10-26T01:30Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, WallTimeFollowsTheZonesOffsetThroughTheYear) {
  const Case cases[] = {
      {"cron(0 9 * * ? *)", "Europe/Copenhagen", "2026-01-15T00:00Z", {"2026-01-15T08:00Z"}},
      {"cron(0 9 * * ? *)", "Europe/Copenhagen", "2026-07-15T00:00Z", {"2026-07-15T07:00Z"}},
      {"cron(0 9 * * ? *)", "Europe/Copenhagen", "2150-07-01T00:00Z", {"2150-07-01T07:00Z"}},
      {"cron(0 9 * * ? *)", "Europe/Copenhagen", "2150-12-01T00:00Z", {"2150-12-01T08:00Z"}},
      // Midnight local on the 1st is still the previous day in UTC.
      {"cron(0 0 1 * ? *)", "Europe/Copenhagen", "2026-06-15T00:00Z", {"2026-06-30T22:00Z", "2026-07-31T22:00Z"}},
      {"cron(0 12 ? * MON-FRI *)", "America/New_York", "2026-07-01T00:00Z", {"2026-07-01T16:00Z"}},
      {"cron(0 12 ? * MON-FRI *)", "America/New_York", "2026-12-01T00:00Z", {"2026-12-01T17:00Z"}},
      {"cron(0 9 * * ? *)", "Asia/Kolkata", "2026-05-05T00:00Z", {"2026-05-05T03:30Z"}},
      {"cron(0 0 * * ? *)", "Asia/Kolkata", "2026-05-05T00:00Z", {"2026-05-05T18:30Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, NewYorkDaylightSavingChanges) {
  const Case cases[] = {
      // 2026-03-08 02:00 EST becomes 03:00 EDT: no 02:30 that day.
      {"cron(30 2 * * ? *)", "America/New_York", "2026-03-07T08:00Z", {"2026-03-09T06:30Z"}},
      // 2026-11-01 02:00 EDT becomes 01:00 EST: 01:30 fires once, in EDT.
      {"cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00Z",
       {"2026-11-01T05:30Z", "2026-11-02T06:30Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(CronTest, LordHoweHalfHourDaylightSaving) {
  const Case cases[] = {
      // 2026-10-04 02:00 (+10:30) becomes 02:30 (+11): 02:15 is skipped that day.
      {"cron(15 2 * * ? *)", "Australia/Lord_Howe", "2026-10-02T00:00Z",
       {"2026-10-02T15:45Z", "2026-10-04T15:15Z"}},
      // 2026-04-05 02:00 (+11) becomes 01:30 (+10:30): 01:45 fires once, at +11.
      {"cron(45 1 * * ? *)", "Australia/Lord_Howe", "2026-04-03T00:00Z",
       {"2026-04-03T14:45Z", "2026-04-04T14:45Z", "2026-04-05T15:15Z"}},
  };
  for (const Case& c : cases) Check(c);
}

TEST(RateTest, FiresEveryPeriodFromTheAnchor) {
  const int64_t anchor = Ms("2026-05-05T10:00Z");
  Check({"rate(1 minute)", "UTC", "2026-05-05T10:00:30Z", {"2026-05-05T10:01Z", "2026-05-05T10:02Z"}}, anchor);
  Check({"rate(1 minute)", "UTC", "2026-05-05T10:00Z", {"2026-05-05T10:01Z"}}, anchor);
  // Before the anchor, the first firing is the anchor itself (the schedule starts at once).
  Check({"rate(5 minutes)", "UTC", "2026-05-05T09:00Z", {"2026-05-05T10:00Z", "2026-05-05T10:05Z"}}, anchor);
  // Firings keep the anchor's phase, seconds included.
  Check({"rate(5 minutes)", "UTC", "2026-05-05T10:20Z", {"2026-05-05T10:22:17Z", "2026-05-05T10:27:17Z"}},
        Ms("2026-05-05T10:02:17Z"));
  Check({"rate(2 hours)", "UTC", "2026-05-05T11:59Z", {"2026-05-05T12:00Z", "2026-05-05T14:00Z"}}, anchor);
  // A day is 24 hours even across Copenhagen's spring-forward night; the zone does not matter.
  Check({"rate(1 day)", "Europe/Copenhagen", "2026-03-28T12:00Z", {"2026-03-29T09:00Z", "2026-03-30T09:00Z"}},
        Ms("2026-03-28T09:00Z"));
  Check({"rate(7 days)", "UTC", "2026-05-05T10:00Z", {"2026-05-12T10:00Z"}}, anchor);
}

TEST(RateTest, ReportsItsPeriod) {
  Result<Schedule> s = Schedule::Parse("rate(2 hours)");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_rate());
  EXPECT_EQ(s->rate_period_ms(), 2 * 3600 * 1000);
  EXPECT_EQ(s->expression(), "rate(2 hours)");
  EXPECT_EQ(Schedule::Parse("rate(1 day)")->rate_period_ms(), 86400 * 1000);
  EXPECT_EQ(Schedule::Parse("rate(100 minutes)")->rate_period_ms(), 100 * 60 * 1000);
  Result<Schedule> c = Schedule::Parse("cron(0 12 * * ? *)", Zone("Europe/Copenhagen"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->is_rate());
  EXPECT_EQ(c->rate_period_ms(), 0);
  EXPECT_EQ(c->zone().name(), "Europe/Copenhagen");
}

TEST(RateTest, AnswersNoneInsteadOfOverflowing) {
  Result<Schedule> s = Schedule::Parse("rate(999999999 days)");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->NextAfter(INT64_MAX - 1, 0), std::nullopt);
}

TEST(ParseTest, RefusesWhatTheManifestValidatorRefusesWithItsMessage) {
  for (const char* bad : {"cron(0 12 * * *)", "cron(0 12 * * * *)", "cron(0 12 ? * ? *)",
                          "cron(60 12 * * ? *)", "cron(0 12 * * ? 2200)", "rate(0 minutes)",
                          "rate(1 minutes)", "rate(30 seconds)", "every 5 minutes", ""}) {
    Result<Schedule> s = Schedule::Parse(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_FALSE(s.status().message().empty());
  }
  EXPECT_NE(Schedule::Parse("cron(0 12 * * *)").status().message().find("6 fields"), std::string::npos);
}

TEST(ParseTest, EvaluatesEveryFormTheValidatorAccepts) {
  for (const char* good :
       {"cron(0 0 ? * L *)", "cron(0 12 ? JAN,jul SUN *)", "cron(0 10 15W * ? *)", "cron(0 10 L * ? *)",
        "cron(0 10 LW * ? *)", "cron(0 9 ? * 2#1 *)", "cron(0/10 * ? * MON-FRI *)", "cron(0/15 * * * ? *)",
        "cron(0/5 8-17 ? * MON-FRI *)", "cron(5,35 14 * * ? *)", "cron(0 0 L,LW,15W,1 * ? *)",
        "cron(0 0 ? * L,MON,3#2,6L *)", "cron( 0  12 * * ? * )", "cron(0 0 ? * 1/2 *)",
        "cron(0 0 1 * ? 1970-2199/3)", "rate(5 minutes)", "rate(1 hour)", "rate(7 days)"}) {
    Result<Schedule> s = Schedule::Parse(good);
    ASSERT_TRUE(s.ok()) << good << ": " << s.status().ToString();
    EXPECT_TRUE(s->NextAfter(Ms("2026-01-01T00:00Z")).has_value()) << good;
  }
}

TEST(ParseTest, MixedDayOfMonthListsUnionTheirDays) {
  // L, LW, 15W and 1 together in Jan 2026: the 1st, 15th (a Thursday), 30th (LW) and 31st (L).
  Check({"cron(0 0 L,LW,15W,1 * ? *)", "UTC", "2025-12-31T12:00Z",
         {"2026-01-01T00:00Z", "2026-01-15T00:00Z", "2026-01-30T00:00Z", "2026-01-31T00:00Z",
          "2026-02-01T00:00Z"}});
  // Saturdays, Mondays, the second Tuesday and the last Friday of May 2026.
  Check({"cron(0 0 ? * L,MON,3#2,6L *)", "UTC", "2026-05-01T12:00Z",
         {"2026-05-02T00:00Z", "2026-05-04T00:00Z", "2026-05-09T00:00Z", "2026-05-11T00:00Z",
          "2026-05-12T00:00Z", "2026-05-16T00:00Z"}});
}

}  // namespace
}  // namespace nimbus::schedule
