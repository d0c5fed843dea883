#include "schedule/cron.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <vector>

#include "common/split.h"
#include "manifest/schedule.h"

namespace nimbus::schedule {
namespace {

constexpr int kFirstYear = 1970;
constexpr int kLastYear = 2199;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct Field {
  int lo, hi;
  const char* const* names;  // names[k] stands for lo + k
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};
constexpr Field kMinutes{0, 59, nullptr}, kHours{0, 23, nullptr}, kDayOfMonth{1, 31, nullptr},
    kMonth{1, 12, kMonthNames}, kDayOfWeek{1, 7, kDayNames}, kYear{kFirstYear, kLastYear, nullptr};

// The validator has accepted the expression, so every value here is well formed and in range;
// -1 only guards against the two drifting apart.
int Value(const Field& f, std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && ptr == s.data() + s.size()) return v >= f.lo && v <= f.hi ? v : -1;
  if (f.names != nullptr) {
    for (int k = 0; f.names[k] != nullptr; ++k) {
      std::string_view n = f.names[k];
      if (s.size() == n.size() &&
          std::equal(s.begin(), s.end(), n.begin(), [](char a, char b) {
            return std::toupper(static_cast<unsigned char>(a)) == b;
          })) {
        return f.lo + k;
      }
    }
  }
  return -1;
}

// Calls set(v) for every value of a plain item: v, a-b, */n, a/n, a-b/n.
template <typename Set>
bool ForEachValue(const Field& f, std::string_view item, Set set) {
  int step = 1;
  std::string_view range = item;
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    std::string_view s = item.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
    if (ec != std::errc() || ptr != s.data() + s.size() || step < 1) return false;
  }
  int from = f.lo, to = f.hi;
  if (range != "*") {
    size_t dash = range.find('-');
    from = Value(f, range.substr(0, dash));
    if (dash != std::string_view::npos) {
      to = Value(f, range.substr(dash + 1));
    } else if (step == 1 && item.find('/') == std::string_view::npos) {
      to = from;
    }
    if (from < 0 || to < 0) return false;
  }
  for (int v = from; v <= to; v += step) set(v);
  return true;
}

bool ParseDayOfMonth(std::string_view item, Schedule::Cron& c) {
  if (item == "L") {
    c.last_day = true;
  } else if (item == "LW") {
    c.last_weekday = true;
  } else if (item.size() > 1 && item.back() == 'W') {
    int n = Value(kDayOfMonth, item.substr(0, item.size() - 1));
    if (n < 0) return false;
    c.nearest_weekday |= uint64_t{1} << n;
  } else {
    return ForEachValue(kDayOfMonth, item, [&](int v) { c.days |= uint64_t{1} << v; });
  }
  return true;
}

bool ParseDayOfWeek(std::string_view item, Schedule::Cron& c) {
  if (item == "L") {
    c.weekdays |= 1 << 7;  // Saturday, the week's last day
  } else if (item.size() > 1 && item.back() == 'L') {
    int n = Value(kDayOfWeek, item.substr(0, item.size() - 1));
    if (n < 0) return false;
    c.last_of_month |= static_cast<uint8_t>(1 << n);
  } else if (size_t hash = item.find('#'); hash != std::string_view::npos) {
    int n = Value(kDayOfWeek, item.substr(0, hash));
    int k = Value(Field{1, 5, nullptr}, item.substr(hash + 1));
    if (n < 0 || k < 0) return false;
    c.nth[k] |= static_cast<uint8_t>(1 << n);
  } else {
    return ForEachValue(kDayOfWeek, item,
                        [&](int v) { c.weekdays |= static_cast<uint8_t>(1 << v); });
  }
  return true;
}

bool ParseCron(std::string_view inner, Schedule::Cron& c) {
  std::vector<std::string_view> fields = SplitSpaces(inner);
  if (fields.size() != 6) return false;
  bool ok = true;
  for (std::string_view item : Split(fields[0], ',')) {
    ok = ok && ForEachValue(kMinutes, item, [&](int v) { c.minutes |= uint64_t{1} << v; });
  }
  for (std::string_view item : Split(fields[1], ',')) {
    ok = ok && ForEachValue(kHours, item, [&](int v) { c.hours |= uint32_t{1} << v; });
  }
  for (std::string_view item : Split(fields[3], ',')) {
    ok = ok && ForEachValue(kMonth, item,
                            [&](int v) { c.months |= static_cast<uint16_t>(1 << v); });
  }
  for (std::string_view item : Split(fields[5], ',')) {
    ok = ok && ForEachValue(kYear, item,
                            [&](int v) { c.years.set(static_cast<size_t>(v - kFirstYear)); });
  }
  c.by_day_of_month = fields[4] == "?";
  if (c.by_day_of_month) {
    for (std::string_view item : Split(fields[2], ',')) ok = ok && ParseDayOfMonth(item, c);
  } else {
    for (std::string_view item : Split(fields[4], ',')) ok = ok && ParseDayOfWeek(item, c);
  }
  return ok;
}

std::optional<int64_t> ParseRatePeriodMs(std::string_view inner) {
  std::vector<std::string_view> parts = SplitSpaces(inner);
  if (parts.size() != 2) return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), value);
  if (ec != std::errc() || value < 1) return std::nullopt;
  std::string_view unit = parts[1];
  if (unit.back() == 's') unit.remove_suffix(1);
  const int64_t unit_ms = unit == "minute" ? 60'000
                          : unit == "hour" ? 3'600'000
                          : unit == "day"  ? 86'400'000
                                            : 0;
  if (unit_ms == 0) return std::nullopt;
  return value * unit_ms;  // the validator caps value at 9 digits, so this cannot overflow
}

}  // namespace

uint64_t Schedule::Cron::DaysIn(int64_t year, int month) const {
  const int dim = DaysInMonth(year, month);
  const int first_weekday = WeekdayFromDays(DaysFromCivil(year, month, 1));  // 0 = Sunday
  auto weekday = [&](int day) { return (first_weekday + day - 1) % 7; };
  uint64_t mask = 0;
  if (by_day_of_month) {
    const uint64_t in_month = ((uint64_t{1} << (dim + 1)) - 1) & ~uint64_t{1};
    mask = days & in_month;
    if (last_day) mask |= uint64_t{1} << dim;
    if (last_weekday) {
      int w = weekday(dim);
      mask |= uint64_t{1} << (w == 6 ? dim - 1 : w == 0 ? dim - 2 : dim);
    }
    for (uint64_t nw = nearest_weekday & in_month; nw != 0; nw &= nw - 1) {
      int n = std::countr_zero(nw);
      int w = weekday(n), d = n;
      if (w == 6) d = n == 1 ? 3 : n - 1;      // Saturday
      if (w == 0) d = n == dim ? n - 2 : n + 1;  // Sunday
      mask |= uint64_t{1} << d;
    }
  } else {
    for (int d = 1; d <= dim; ++d) {
      const int dow = weekday(d) + 1;  // 1 = Sunday
      const uint8_t bit = static_cast<uint8_t>(1 << dow);
      if ((weekdays & bit) || (nth[(d - 1) / 7 + 1] & bit) ||
          ((last_of_month & bit) && d + 7 > dim)) {
        mask |= uint64_t{1} << d;
      }
    }
  }
  return mask;
}

std::optional<int64_t> Schedule::Cron::NextLocal(int64_t local_seconds) const {
  const int64_t day0 = FloorDiv(local_seconds, 86400);
  const int64_t secs = local_seconds - day0 * 86400;
  CivilDate date = CivilFromDays(day0);
  int64_t y = date.year;
  int m = date.month, d = date.day;
  int h = static_cast<int>(secs / 3600), mi = static_cast<int>(secs % 3600 / 60);
  if (y < kFirstYear) y = kFirstYear, m = 1, d = 1, h = 0, mi = 0;
  // Each pass either returns or moves (y, m, d, h, mi) forward to the start of the next
  // candidate year, month, day or hour; at most ~230 * 12 * 31 * 24 passes in the worst case,
  // but every field is skipped to its next allowed value, so real expressions take a handful.
  while (true) {
    if (m > 12) ++y, m = 1, d = 1, h = 0, mi = 0;
    if (y > kLastYear) return std::nullopt;
    if (!years.test(static_cast<size_t>(y - kFirstYear))) {
      int64_t next = y + 1;
      while (next <= kLastYear && !years.test(static_cast<size_t>(next - kFirstYear))) ++next;
      if (next > kLastYear) return std::nullopt;
      y = next, m = 1, d = 1, h = 0, mi = 0;
    }
    uint32_t month_bits = months & static_cast<uint32_t>(~0u << m);
    if (month_bits == 0) {
      m = 13;
      continue;
    }
    if (int nm = std::countr_zero(month_bits); nm != m) m = nm, d = 1, h = 0, mi = 0;
    uint64_t day_bits = DaysIn(y, m) & (~uint64_t{0} << d);
    if (day_bits == 0) {
      ++m, d = 1, h = 0, mi = 0;
      continue;
    }
    if (int nd = std::countr_zero(day_bits); nd != d) d = nd, h = 0, mi = 0;
    uint64_t hour_bits = hours & (~uint64_t{0} << h);
    if (hour_bits == 0) {
      ++d, h = 0, mi = 0;
      continue;
    }
    if (int nh = std::countr_zero(hour_bits); nh != h) h = nh, mi = 0;
    uint64_t minute_bits = minutes & (~uint64_t{0} << mi);
    if (minute_bits == 0) {
      if (++h == 24) ++d, h = 0;
      mi = 0;
      continue;
    }
    mi = std::countr_zero(minute_bits);
    return DaysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60;
  }
}

Result<Schedule> Schedule::Parse(std::string_view expr, TimeZone zone) {
  NIMBUS_RETURN_IF_ERROR(manifest::CheckScheduleExpression(expr));
  Schedule s(std::string(expr), std::move(zone));
  auto internal = [&] {
    return Status::Internal("schedule expression '" + std::string(expr) +
                            "' passed validation but could not be evaluated");
  };
  if (expr.substr(0, 5) == "rate(") {
    std::optional<int64_t> period = ParseRatePeriodMs(expr.substr(5, expr.size() - 6));
    if (!period) return internal();
    s.rate_period_ms_ = *period;
  } else if (!ParseCron(expr.substr(5, expr.size() - 6), s.cron_)) {
    return internal();
  }
  return s;
}

std::optional<int64_t> Schedule::NextAfter(int64_t after_ms, int64_t anchor_ms) const {
  if (!is_rate()) return NextCron(after_ms);
  if (after_ms < anchor_ms) return anchor_ms;
  const int64_t k = (after_ms - anchor_ms) / rate_period_ms_ + 1;
  int64_t offset = 0, next = 0;
  if (__builtin_mul_overflow(k, rate_period_ms_, &offset) ||
      __builtin_add_overflow(anchor_ms, offset, &next)) {
    return std::nullopt;
  }
  return next;
}

std::optional<int64_t> Schedule::NextCron(int64_t after_ms) const {
  // Walk UTC time in stretches of constant offset. Within a stretch [u, end) with offset o, the
  // wall times shown are [u + o, end + o): the first matching wall time L there fires at L - o,
  // unless L was already shown earlier (clocks fell back), in which case it fired (or was due)
  // at its first occurrence and is skipped. Wall times skipped by a spring-forward belong to no
  // stretch, so they never fire.
  const int64_t search_end =
      DaysFromCivil(kLastYear + 1, 1, 1) * 86400 + TimeZone::kMaxOffsetSeconds;
  if (after_ms >= search_end * 1000) return std::nullopt;
  int64_t u = (FloorDiv(after_ms, 60'000) + 1) * 60;  // first whole minute strictly after
  while (u < search_end) {
    const int offset = zone_.OffsetAt(u);
    const std::optional<int64_t> end = zone_.NextTransitionAfter(u);
    int64_t local = FloorDiv(u + offset + 59, 60) * 60;
    while (true) {
      std::optional<int64_t> match = cron_.NextLocal(local);
      if (!match) return std::nullopt;
      if (end && *match >= *end + offset) {
        // No match in this stretch. Any later firing shows a wall time >= *match, so it lies
        // after *match - kMaxOffsetSeconds: skip the stretches before that.
        u = std::max(*end, *match - TimeZone::kMaxOffsetSeconds);
        break;
      }
      const int64_t at = *match - offset;
      if (zone_.FromLocal(*match).front() == at) return at * 1000;
      local = *match + 60;
    }
  }
  return std::nullopt;
}

}  // namespace nimbus::schedule
