// IANA time zones read from the system's compiled zoneinfo files (TZif, RFC 8536), so a
// schedule can be evaluated in local wall time ("every day at 09:00 in Europe/Copenhagen").
// A zone answers two questions: which UTC offset is in effect at an instant (OffsetAt), and
// which instants show a given local wall time (FromLocal: none inside a spring-forward gap, two
// inside a fall-back overlap). Also the proleptic Gregorian calendar arithmetic both this file
// and the cron evaluator use.
//
// Times are whole seconds since the Unix epoch. A "local seconds" value is a wall-clock reading
// written as if it were a UTC instant: 2026-03-29 02:30 local is DaysFromCivil(2026, 3, 29) *
// 86400 + 2.5 * 3600 whatever the zone.
//
// Errors: Load returns InvalidArgument for a name that is not a zone name ("..", a leading
// '/', characters outside A-Z a-z 0-9 _ + - /), for a file that is not TZif, and for zones that
// count leap seconds ("right/..."); NotFound when no such zone is installed; Io when
// the file cannot be read.
//
// Threading: a TimeZone is immutable after Load and cheap to copy (it shares its tables), so
// any number of threads may use one, or copies of one, at the same time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::schedule {

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31); negative before.
int64_t DaysFromCivil(int64_t year, int month, int day);

struct CivilDate {
  int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};
CivilDate CivilFromDays(int64_t days);

// 0 = Sunday ... 6 = Saturday, for days since 1970-01-01 (a Thursday).
int WeekdayFromDays(int64_t days);
bool IsLeapYear(int64_t year);
int DaysInMonth(int64_t year, int month);

class TimeZone {
 public:
  // The zone "UTC": offset 0 at every instant, no file needed.
  static TimeZone Utc();

  // Loads zoneinfo_dir/NAME, e.g. "Europe/Copenhagen", "America/New_York", "UTC". Reads the
  // 64-bit data of TZif version 2 and later (the 32-bit data of version 1 files) and applies the
  // footer's POSIX TZ rule to instants after the last listed transition, so far-future offsets
  // follow the zone's current daylight-saving rule.
  static Result<TimeZone> Load(std::string_view name,
                               const std::filesystem::path& zoneinfo_dir = "/usr/share/zoneinfo");

  const std::string& name() const;

  // Seconds east of UTC in effect at utc_seconds (3600 for CET, 7200 for CEST, -18000 for EST).
  int OffsetAt(int64_t utc_seconds) const;

  // The UTC instants whose local wall time is local_seconds, earliest first: none when the wall
  // time is skipped (spring forward), two when it is repeated (fall back), one otherwise.
  std::vector<int64_t> FromLocal(int64_t local_seconds) const;

  // The first instant after utc_seconds at which the zone's offset may change, or none when it
  // never changes again. Instants with the same offset may be reported (a change of name only).
  std::optional<int64_t> NextTransitionAfter(int64_t utc_seconds) const;

  // Largest magnitude of any UTC offset Load accepts (RFC 8536 allows just under 26 hours).
  static constexpr int64_t kMaxOffsetSeconds = 26 * 3600;

  struct Data;  // the parsed tables; defined in time_zone.cc

 private:
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

}  // namespace nimbus::schedule
