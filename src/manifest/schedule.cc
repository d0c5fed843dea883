#include "manifest/schedule.h"

#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "common/split.h"

namespace nimbus::manifest {
namespace {

Status Bad(std::string m) { return Status::InvalidArgument(std::move(m)); }

// A whole number made of digits only (no sign, no spaces), or nullopt.
std::optional<long> Number(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s[0] == '-' || s[0] == '+') {
    return std::nullopt;
  }
  return v;
}

Status CheckRate(std::string_view inner) {
  const std::string example = "e.g. rate(5 minutes) or rate(1 hour)";
  std::vector<std::string_view> parts = SplitSpaces(inner);
  if (parts.size() != 2) {
    return Bad("a rate needs a value and a unit, " + example);
  }
  std::optional<long> value = Number(parts[0]);
  if (!value || *value < 1) {
    return Bad("the rate value '" + std::string(parts[0]) + "' must be a whole number of at least 1, " +
               example);
  }
  std::string_view unit = parts[1];
  std::string singular;
  for (std::string_view u : {"minute", "hour", "day"}) {
    if (unit == u || unit == std::string(u) + "s") singular = u;
  }
  if (singular.empty()) {
    return Bad("the rate unit '" + std::string(unit) +
               "' is not supported; use minute(s), hour(s) or day(s), " + example);
  }
  bool plural = unit.size() != singular.size();
  if (*value == 1 && plural) {
    return Bad("use the singular unit for 1: rate(1 " + singular + ")");
  }
  if (*value != 1 && !plural) {
    return Bad("use the plural unit for " + std::to_string(*value) + ": rate(" +
               std::to_string(*value) + " " + singular + "s)");
  }
  return Status::Ok();
}

struct CronField {
  const char* name;
  int lo, hi;
  const char* const* names;  // names[k] stands for lo + k, or nullptr
  bool day_of_month;         // allows ? L W
  bool day_of_week;          // allows ? L #
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};

constexpr CronField kCronFields[] = {
    {"minutes", 0, 59, nullptr, false, false},
    {"hours", 0, 23, nullptr, false, false},
    {"day-of-month", 1, 31, nullptr, true, false},
    {"month", 1, 12, kMonthNames, false, false},
    {"day-of-week", 1, 7, kDayNames, false, true},
    {"year", 1970, 2199, nullptr, false, false},
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string RangeText(const CronField& f) {
  std::string r = std::to_string(f.lo) + "-" + std::to_string(f.hi);
  if (f.names == kMonthNames) r += " or JAN-DEC";
  if (f.names == kDayNames) r += " or SUN-SAT";
  return r;
}

// One value of a field: a number in range or one of the field's names.
std::optional<int> CronValue(const CronField& f, std::string_view s) {
  if (std::optional<long> n = Number(s)) {
    if (*n >= f.lo && *n <= f.hi) return static_cast<int>(*n);
    return std::nullopt;
  }
  if (f.names != nullptr) {
    std::string up = Upper(s);
    for (int k = 0; f.names[k] != nullptr; ++k) {
      if (up == f.names[k]) return f.lo + k;
    }
  }
  return std::nullopt;
}

Status CheckCronItem(const CronField& f, std::string_view item) {
  auto bad_value = [&](std::string_view v) {
    return Bad(std::string(f.name) + " value '" + std::string(v) + "' is out of range; use " +
               RangeText(f));
  };
  if (item.empty()) {
    return Bad(std::string(f.name) + " has an empty list item; remove the extra ','");
  }
  if (item == "?") {
    return Bad(std::string("'?' must stand alone in ") + f.name);
  }
  if (f.day_of_month && (item == "L" || item == "LW")) return Status::Ok();
  if (f.day_of_month && item.size() > 1 && item[0] == 'L') {
    return Bad("day-of-month '" + std::string(item) +
               "' is not supported; use L (the last day), LW (the last weekday) or 15W (the weekday nearest the 15th)");
  }
  if (f.day_of_month && item.size() > 1 && item.back() == 'W') {
    return CronValue(f, item.substr(0, item.size() - 1)) ? Status::Ok()
                                                         : bad_value(item.substr(0, item.size() - 1));
  }
  if (f.day_of_week && item == "L") return Status::Ok();
  if (f.day_of_week && item.size() > 1 && item.back() == 'L') {
    return CronValue(f, item.substr(0, item.size() - 1)) ? Status::Ok()
                                                         : bad_value(item.substr(0, item.size() - 1));
  }
  if (f.day_of_week && item.find('#') != std::string_view::npos) {
    size_t hash = item.find('#');
    if (!CronValue(f, item.substr(0, hash))) return bad_value(item.substr(0, hash));
    std::optional<long> nth = Number(item.substr(hash + 1));
    if (!nth || *nth < 1 || *nth > 5) {
      return Bad("day-of-week '" + std::string(item) +
                 "' needs a week number 1-5 after '#', e.g. '3#2' for the second Tuesday");
    }
    return Status::Ok();
  }
  std::string_view range = item;
  size_t slash = item.find('/');
  if (slash != std::string_view::npos) {
    range = item.substr(0, slash);
    std::optional<long> step = Number(item.substr(slash + 1));
    if (!step || *step < 1 || *step > f.hi - f.lo) {
      return Bad(std::string(f.name) + " step in '" + std::string(item) +
                 "' must be a whole number between 1 and " + std::to_string(f.hi - f.lo));
    }
  }
  if (range == "*") return Status::Ok();
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) {
    return CronValue(f, range) ? Status::Ok() : bad_value(range);
  }
  std::optional<int> from = CronValue(f, range.substr(0, dash));
  if (!from) return bad_value(range.substr(0, dash));
  std::optional<int> to = CronValue(f, range.substr(dash + 1));
  if (!to) return bad_value(range.substr(dash + 1));
  if (*from > *to) {
    return Bad(std::string(f.name) + " range '" + std::string(range) +
               "' runs backwards; write it low-high, or list two ranges separated by ','");
  }
  return Status::Ok();
}

Status CheckCron(std::string_view inner) {
  const std::string example = "e.g. cron(0 12 * * ? *) for every day at 12:00 UTC";
  std::vector<std::string_view> fields = SplitSpaces(inner);
  if (fields.size() != 6) {
    std::string m = "a cron expression needs 6 fields (minutes hours day-of-month month "
                    "day-of-week year), got " + std::to_string(fields.size()) + "; " + example;
    if (fields.size() == 5) {
      m += " (a 5-field Unix crontab needs a year field, e.g. '*', and '?' in day-of-month or "
           "day-of-week)";
    }
    return Bad(m);
  }
  for (size_t i = 0; i < 6; ++i) {
    const CronField& f = kCronFields[i];
    if (fields[i] == "?") {
      if (f.day_of_month || f.day_of_week) continue;
      return Bad(std::string("'?' is only allowed in day-of-month and day-of-week, not in ") +
                 f.name + "; use '*' there");
    }
    for (std::string_view item : Split(fields[i], ',')) {
      NIMBUS_RETURN_IF_ERROR(CheckCronItem(f, item));
    }
  }
  bool dom_any = fields[2] == "?", dow_any = fields[4] == "?";
  if (!dom_any && !dow_any) {
    return Bad("day-of-month and day-of-week cannot both be set; put '?' in one of them, " +
               example);
  }
  if (dom_any && dow_any) {
    return Bad("day-of-month and day-of-week cannot both be '?'; set one of them, e.g. '*' in "
               "day-of-month for every day");
  }
  return Status::Ok();
}

}  // namespace

Status CheckScheduleExpression(std::string_view expr) {
  auto inside = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (expr.size() > prefix.size() && expr.substr(0, prefix.size()) == prefix &&
        expr.back() == ')') {
      return expr.substr(prefix.size(), expr.size() - prefix.size() - 1);
    }
    return std::nullopt;
  };
  if (std::optional<std::string_view> inner = inside("rate(")) return CheckRate(*inner);
  if (std::optional<std::string_view> inner = inside("cron(")) return CheckCron(*inner);
  return Bad("must be rate(VALUE UNIT) or cron(6 FIELDS), e.g. rate(5 minutes) or "
             "cron(0 12 * * ? *)");
}

}  // namespace nimbus::manifest
