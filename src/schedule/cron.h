// Evaluates Amazon EventBridge schedule expressions: when does "rate(5 minutes)" or
// "cron(0 9 ? * MON-FRI *)" fire next? The manifest validator (manifest/schedule.h) decides which
// expressions are valid; Parse accepts exactly those and NextAfter computes firings with
// EventBridge's semantics, in UTC or in a named time zone.
//
// rate(VALUE UNIT): fixed periods (1 day is 86400 s even across a daylight-saving change, as
// EventBridge Scheduler does), counted from an anchor the caller passes (when the schedule was
// created): the firings are anchor, anchor + period, anchor + 2 * period, ...
//
// cron(minutes hours day-of-month month day-of-week year), evaluated in the zone's wall time:
//  - minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or
//    SUN-SAT (1 = Sunday), year 1970-2199; names in any case.
//  - in any field: '*' (every value), 'a,b' (list), 'a-b' (range), 'a/n' (a, a+n, ... up to the
//    field's highest value), 'a-b/n', '*/n' (from the field's lowest value).
//  - exactly one of day-of-month and day-of-week is '?'; the other one picks the days.
//  - day-of-month 'L': the month's last day. 'LW': its last weekday (Monday-Friday). 'NW': the
//    weekday nearest day N in the same month: a Saturday moves to the Friday before (to Monday
//    the 3rd for Saturday the 1st), a Sunday to the Monday after (to Friday for a Sunday that
//    is the month's last day). A day N the month does not have (31 in April, 'NW' included)
//    does not fire that month.
//  - day-of-week 'L': Saturday (day 7, as Quartz reads it). 'NL': the month's last weekday N
//    (6L: last Friday). 'N#k': the k-th weekday N of the month (3#2: second Tuesday); a month
//    without a k-th one does not fire.
//  - seconds are always 0, so for zones whose offsets are whole minutes (all of today's) every
//    firing is a whole UTC minute.
//  - daylight saving (EventBridge Scheduler's rule): a wall time skipped when clocks spring
//    forward does not fire that day; a wall time repeated when clocks fall back fires once, at
//    its first (earlier) occurrence.
//  - firings are searched up to the end of year 2199 (the year field's limit); none after it.
// Cost: NextAfter jumps by year, month, day and hour, so sparse expressions (cron(0 0 29 2 ? *),
// a distant year) take microseconds, not a minute-by-minute walk.
//
// Threading: a Schedule is immutable after Parse; any number of threads may call its const
// methods at the same time.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "schedule/time_zone.h"

namespace nimbus::schedule {

class Schedule {
 public:
  // InvalidArgument (the manifest validator's message, which says how to fix it) unless expr is
  // a valid rate(...) or cron(...) expression.
  static Result<Schedule> Parse(std::string_view expr, TimeZone zone = TimeZone::Utc());

  // The first firing strictly after after_ms (UTC epoch milliseconds), or nullopt when there is
  // none: a cron whose years are all past, one that can never fire (cron(0 0 30 2 ? *)), or one
  // whose next firing would be after 2199. anchor_ms is used by rate(...) only.
  std::optional<int64_t> NextAfter(int64_t after_ms, int64_t anchor_ms = 0) const;

  bool is_rate() const { return rate_period_ms_ != 0; }
  int64_t rate_period_ms() const { return rate_period_ms_; }  // 0 for cron
  const std::string& expression() const { return expression_; }
  const TimeZone& zone() const { return zone_; }

  // The parsed cron fields, one bit per value (bit v set when v is allowed).
  struct Cron {
    uint64_t minutes = 0;      // bits 0-59
    uint32_t hours = 0;        // bits 0-23
    uint16_t months = 0;       // bits 1-12
    std::bitset<230> years;    // bit y - 1970
    bool by_day_of_month = false;  // day-of-week is '?'
    // day-of-month
    uint64_t days = 0;         // plain days, bits 1-31
    bool last_day = false;     // L
    bool last_weekday = false; // LW
    uint64_t nearest_weekday = 0;  // NW, bits 1-31
    // day-of-week, bits 1-7 (1 = Sunday)
    uint8_t weekdays = 0;      // plain weekdays ('L' alone is 7)
    uint8_t last_of_month = 0; // NL
    uint8_t nth[6] = {};       // N#k sets bit N of nth[k]

    // The days of (year, month) that match, bits 1-31.
    uint64_t DaysIn(int64_t year, int month) const;
    // The first matching local minute at or after local_seconds (a whole minute), or nullopt.
    std::optional<int64_t> NextLocal(int64_t local_seconds) const;
  };

 private:
  Schedule(std::string expression, TimeZone zone)
      : expression_(std::move(expression)), zone_(std::move(zone)) {}
  std::optional<int64_t> NextCron(int64_t after_ms) const;

  std::string expression_;
  TimeZone zone_;
  int64_t rate_period_ms_ = 0;
  Cron cron_;
};

}  // namespace nimbus::schedule
