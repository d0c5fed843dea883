// Time zones from the system's zoneinfo: offsets around daylight-saving changes, wall times
// that are skipped or repeated, far-future instants ruled by the file's footer, and the names
// and files Load refuses. Expected instants are written out by hand and agree with
// `zdump -v ZONE`.
#include "schedule/time_zone.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <ctime>
#include <fstream>

namespace nimbus::schedule {
namespace {

namespace fs = std::filesystem;

// "2026-03-29T01:00Z" or "2026-03-29T00:59:59Z" as UTC epoch seconds (libc's timegm).
int64_t At(const char* iso) {
  std::tm tm{};
  int sec = 0;
  int n = std::sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &sec);
  EXPECT_GE(n, 5) << iso;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = n == 6 ? sec : 0;
  return static_cast<int64_t>(::timegm(&tm));
}

// A wall-clock reading "2026-03-29 02:30" as local seconds (the same arithmetic as UTC).
int64_t Wall(const char* iso) { return At(iso); }

TimeZone MustLoad(const char* name) {
  Result<TimeZone> tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << name << ": " << tz.status().ToString();
  return tz.ok() ? *tz : TimeZone::Utc();
}

TEST(CivilTest, CountsDaysFromTheEpochBothWays) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DaysFromCivil(2028, 2, 29) * 86400, At("2028-02-29T00:00Z"));
  for (int64_t d = -800000; d <= 800000; d += 997) {
    CivilDate c = CivilFromDays(d);
    ASSERT_EQ(DaysFromCivil(c.year, c.month, c.day), d);
  }
  EXPECT_EQ(WeekdayFromDays(0), 4);   // 1970-01-01 was a Thursday
  EXPECT_EQ(WeekdayFromDays(-1), 3);  // 1969-12-31 a Wednesday
  EXPECT_EQ(WeekdayFromDays(DaysFromCivil(2026, 5, 31)), 0);  // a Sunday
  EXPECT_EQ(DaysInMonth(2028, 2), 29);
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2000, 2), 29);
  EXPECT_EQ(DaysInMonth(2026, 4), 30);
}

TEST(TimeZoneTest, UtcHasOffsetZeroAndOneInstantPerWallTime) {
  TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.OffsetAt(At("2026-03-29T01:00Z")), 0);
  EXPECT_EQ(utc.FromLocal(Wall("2026-03-29T02:30")), std::vector<int64_t>{At("2026-03-29T02:30Z")});
  EXPECT_EQ(utc.NextTransitionAfter(0), std::nullopt);
}

TEST(TimeZoneTest, CopenhagenMovesToSummerTimeAt0100UtcOnMarch29_2026) {
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_EQ(cph.name(), "Europe/Copenhagen");
  EXPECT_EQ(cph.OffsetAt(At("2026-03-29T00:59:59Z")), 3600);
  EXPECT_EQ(cph.OffsetAt(At("2026-03-29T01:00:00Z")), 7200);
  EXPECT_EQ(cph.NextTransitionAfter(At("2026-01-01T00:00Z")), At("2026-03-29T01:00Z"));
}

TEST(TimeZoneTest, CopenhagenReturnsToWinterTimeAt0100UtcOnOctober25_2026) {
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_EQ(cph.OffsetAt(At("2026-10-25T00:59:59Z")), 7200);
  EXPECT_EQ(cph.OffsetAt(At("2026-10-25T01:00:00Z")), 3600);
  EXPECT_EQ(cph.NextTransitionAfter(At("2026-03-29T01:00Z")), At("2026-10-25T01:00Z"));
}

TEST(TimeZoneTest, WallTimeInTheSpringForwardGapHasNoInstant) {
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_TRUE(cph.FromLocal(Wall("2026-03-29T02:00")).empty());
  EXPECT_TRUE(cph.FromLocal(Wall("2026-03-29T02:30")).empty());
  EXPECT_TRUE(cph.FromLocal(Wall("2026-03-29T02:59:59")).empty());
  EXPECT_EQ(cph.FromLocal(Wall("2026-03-29T01:59:59")),
            std::vector<int64_t>{At("2026-03-29T00:59:59Z")});
  EXPECT_EQ(cph.FromLocal(Wall("2026-03-29T03:00")), std::vector<int64_t>{At("2026-03-29T01:00Z")});
}

TEST(TimeZoneTest, WallTimeInTheFallBackOverlapHasTwoInstantsEarlierFirst) {
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_EQ(cph.FromLocal(Wall("2026-10-25T02:30")),
            (std::vector<int64_t>{At("2026-10-25T00:30Z"), At("2026-10-25T01:30Z")}));
  EXPECT_EQ(cph.FromLocal(Wall("2026-10-25T02:00")),
            (std::vector<int64_t>{At("2026-10-25T00:00Z"), At("2026-10-25T01:00Z")}));
  EXPECT_EQ(cph.FromLocal(Wall("2026-10-25T03:00")), std::vector<int64_t>{At("2026-10-25T02:00Z")});
  EXPECT_EQ(cph.FromLocal(Wall("2026-06-01T12:00")), std::vector<int64_t>{At("2026-06-01T10:00Z")});
}

TEST(TimeZoneTest, NewYorkChangesAtTwoInTheMorningLocal) {
  TimeZone ny = MustLoad("America/New_York");
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T06:59:59Z")), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T07:00Z")), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T05:59:59Z")), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T06:00Z")), -5 * 3600);
  EXPECT_TRUE(ny.FromLocal(Wall("2026-03-08T02:30")).empty());
  EXPECT_EQ(ny.FromLocal(Wall("2026-11-01T01:30")),
            (std::vector<int64_t>{At("2026-11-01T05:30Z"), At("2026-11-01T06:30Z")}));
}

TEST(TimeZoneTest, NonHourOffsetsAreKept) {
  TimeZone kolkata = MustLoad("Asia/Kolkata");
  EXPECT_EQ(kolkata.OffsetAt(At("2026-05-05T00:00Z")), 5 * 3600 + 1800);
  EXPECT_EQ(kolkata.NextTransitionAfter(At("2026-01-01T00:00Z")), std::nullopt);
  // Lord Howe Island moves its clocks by half an hour: +10:30 in winter, +11 in summer.
  TimeZone lhi = MustLoad("Australia/Lord_Howe");
  EXPECT_EQ(lhi.OffsetAt(At("2026-10-03T15:29:59Z")), 10 * 3600 + 1800);
  EXPECT_EQ(lhi.OffsetAt(At("2026-10-03T15:30Z")), 11 * 3600);
  EXPECT_TRUE(lhi.FromLocal(Wall("2026-10-04T02:15")).empty());
  EXPECT_EQ(lhi.FromLocal(Wall("2026-04-05T01:45")),
            (std::vector<int64_t>{At("2026-04-04T14:45Z"), At("2026-04-04T15:15Z")}));
}

TEST(TimeZoneTest, FarFutureFollowsTheFooterRuleAfterTheLastListedTransition) {
  // The zone files list transitions up to 2037; later years come from the POSIX TZ footer.
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_EQ(cph.OffsetAt(At("2150-03-29T00:59:59Z")), 3600);
  EXPECT_EQ(cph.OffsetAt(At("2150-03-29T01:00Z")), 7200);
  EXPECT_EQ(cph.OffsetAt(At("2150-10-25T00:59:59Z")), 7200);
  EXPECT_EQ(cph.OffsetAt(At("2150-10-25T01:00Z")), 3600);
  EXPECT_EQ(cph.NextTransitionAfter(At("2150-04-01T00:00Z")), At("2150-10-25T01:00Z"));
  EXPECT_TRUE(cph.FromLocal(Wall("2150-03-29T02:30")).empty());
  EXPECT_EQ(cph.FromLocal(Wall("2150-10-25T02:30")),
            (std::vector<int64_t>{At("2150-10-25T00:30Z"), At("2150-10-25T01:30Z")}));
  // Southern hemisphere: summer time spans the new year (AEST-10AEDT,M10.1.0,M4.1.0/3).
  TimeZone sydney = MustLoad("Australia/Sydney");
  EXPECT_EQ(sydney.OffsetAt(At("2150-01-15T00:00Z")), 11 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At("2150-04-04T15:59:59Z")), 11 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At("2150-04-04T16:00Z")), 10 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At("2150-10-03T15:59:59Z")), 10 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At("2150-10-03T16:00Z")), 11 * 3600);
  EXPECT_EQ(sydney.OffsetAt(At("2150-12-31T23:00Z")), 11 * 3600);
  TimeZone lhi = MustLoad("Australia/Lord_Howe");
  EXPECT_EQ(lhi.OffsetAt(At("2150-04-04T14:59:59Z")), 11 * 3600);
  EXPECT_EQ(lhi.OffsetAt(At("2150-04-04T15:00Z")), 10 * 3600 + 1800);
  EXPECT_EQ(lhi.OffsetAt(At("2150-10-03T15:30Z")), 11 * 3600);
}

TEST(TimeZoneTest, BeforeTheFirstTransitionTheZonesFirstOffsetApplies) {
  // Copenhagen kept local mean time, +0:50:20, until the end of 1893.
  TimeZone cph = MustLoad("Europe/Copenhagen");
  EXPECT_EQ(cph.OffsetAt(At("1850-01-01T00:00Z")), 50 * 60 + 20);
  EXPECT_EQ(cph.OffsetAt(At("1893-12-31T23:09:40Z")), 3600);
}

TEST(TimeZoneTest, AZoneWithoutTransitionsUsesItsFooter) {
  TimeZone plus3 = MustLoad("Etc/GMT-3");  // POSIX sign: GMT-3 is three hours east
  EXPECT_EQ(plus3.OffsetAt(At("2026-05-05T00:00Z")), 3 * 3600);
  EXPECT_EQ(MustLoad("UTC").OffsetAt(At("2026-05-05T00:00Z")), 0);
}

TEST(TimeZoneTest, RefusesNamesThatAreNotZoneNames) {
  for (const char* name : {"", "../etc/passwd", "Europe/../../etc/passwd", "/etc/localtime",
                           "Europe/Copen hagen", "Europe/K\xc3\xb6ln", "UTC;rm", "Europe\\Paris",
                           "zone.tab"}) {
    Result<TimeZone> tz = TimeZone::Load(name);
    ASSERT_FALSE(tz.ok()) << name;
    EXPECT_EQ(tz.status().code(), Code::kInvalidArgument) << name;
    EXPECT_NE(tz.status().message().find("Europe/Copenhagen"), std::string::npos) << name;
  }
}

TEST(TimeZoneTest, MissingZoneIsNotFoundAndNamesIt) {
  Result<TimeZone> tz = TimeZone::Load("Europe/Atlantis");
  ASSERT_FALSE(tz.ok());
  EXPECT_EQ(tz.status().code(), Code::kNotFound);
  EXPECT_NE(tz.status().message().find("'Europe/Atlantis'"), std::string::npos);
  EXPECT_NE(tz.status().message().find("Europe/Copenhagen"), std::string::npos);
  EXPECT_NE(tz.status().message().find("UTC"), std::string::npos);
  // A directory of zones is not a zone.
  EXPECT_EQ(TimeZone::Load("Europe").status().code(), Code::kNotFound);
}

TEST(TimeZoneTest, RefusesZonesThatCountLeapSeconds) {
  if (!fs::exists("/usr/share/zoneinfo/right/Europe/Paris")) GTEST_SKIP() << "no right/ zones";
  Result<TimeZone> tz = TimeZone::Load("right/Europe/Paris");
  ASSERT_FALSE(tz.ok());
  EXPECT_EQ(tz.status().code(), Code::kInvalidArgument);
  EXPECT_NE(tz.status().message().find("leap seconds"), std::string::npos);
}

class ZoneDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-zoneinfo-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  fs::path dir_;
};

std::string Be32(int64_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
          static_cast<char>(u)};
}

TEST_F(ZoneDirTest, RefusesAFileThatIsNotTzif) {
  Write("Bogus/Zone", "this is not a zone file\n");
  Result<TimeZone> tz = TimeZone::Load("Bogus/Zone", dir_);
  ASSERT_FALSE(tz.ok());
  EXPECT_EQ(tz.status().code(), Code::kInvalidArgument);
  // Truncated after a valid header.
  Write("Bogus/Short", "TZif2" + std::string(15, '\0') + Be32(0) + Be32(0) + Be32(0) + Be32(5) +
                           Be32(1) + Be32(4));
  EXPECT_EQ(TimeZone::Load("Bogus/Short", dir_).status().code(), Code::kInvalidArgument);
}

TEST_F(ZoneDirTest, ReadsAVersion1FileWithoutFooter) {
  // One transition at 10^9 s from +00:00 ("A") to +02:00 ("B"); version 1 has no footer, so the
  // last offset stays in effect for ever.
  std::string f = "TZif" + std::string(1, '\0') + std::string(15, '\0');
  f += Be32(0) + Be32(0) + Be32(0) + Be32(1) + Be32(2) + Be32(4);  // isut isstd leap time type char
  f += Be32(1000000000) + std::string(1, '\1');
  f += Be32(0) + std::string{'\0', '\0'} + Be32(7200) + std::string{'\1', '\2'};
  f += std::string("A\0B\0", 4);
  Write("Test/V1", f);
  Result<TimeZone> tz = TimeZone::Load("Test/V1", dir_);
  ASSERT_TRUE(tz.ok()) << tz.status().ToString();
  EXPECT_EQ(tz->OffsetAt(999999999), 0);
  EXPECT_EQ(tz->OffsetAt(1000000000), 7200);
  EXPECT_EQ(tz->OffsetAt(At("2150-01-01T00:00Z")), 7200);
  EXPECT_EQ(tz->NextTransitionAfter(0), 1000000000);
  EXPECT_EQ(tz->NextTransitionAfter(1000000000), std::nullopt);
}

}  // namespace
}  // namespace nimbus::schedule
