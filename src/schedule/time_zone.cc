#include "schedule/time_zone.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <system_error>

namespace nimbus::schedule {

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, era-based).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                      // [0, 399]
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;     // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;             // [0, 146096]
  return era * 146097 + doe - 719468;
}

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return CivilDate{yoe + era * 400 + (m <= 2), m, d};
}

int WeekdayFromDays(int64_t days) {
  return static_cast<int>(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6);
}

bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// One date rule of a POSIX TZ string: Jn (1-365, February 29 never counted), n (0-365,
// counted), or Mm.w.d (weekday d of week w of month m, week 5 meaning the last).
struct DateRule {
  enum Kind { kJulian1, kJulian0, kMonthWeekDay } kind = kMonthWeekDay;
  int day = 0, week = 0, month = 0;
  int64_t time = 2 * 3600;  // local seconds after midnight, may be negative or past 24 h

  // Local seconds at which the rule fires in `year`.
  int64_t LocalSeconds(int64_t year) const {
    int64_t days = 0;
    switch (kind) {
      case kJulian1:
        days = DaysFromCivil(year, 1, 1) + day - 1 + (IsLeapYear(year) && day >= 60 ? 1 : 0);
        break;
      case kJulian0:
        days = DaysFromCivil(year, 1, 1) + day;
        break;
      case kMonthWeekDay: {
        const int64_t first = DaysFromCivil(year, month, 1);
        int64_t d = first + (day - WeekdayFromDays(first) + 7) % 7 + (week - 1) * 7;
        while (d >= first + DaysInMonth(year, month)) d -= 7;
        days = d;
        break;
      }
    }
    return days * 86400 + time;
  }
};

// The footer of a TZif file: the POSIX TZ rule for instants after the last transition.
struct PosixRule {
  int std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  int dst_offset = 0;
  DateRule start, end;  // start of daylight time (in standard time) and its end (in daylight time)
};

struct Change {
  int64_t at;  // UTC seconds
  int offset;  // in effect from `at` on
};

}  // namespace

struct TimeZone::Data {
  std::string name;
  int initial_offset = 0;            // before the first transition (time type 0)
  std::vector<int64_t> times;        // transition instants, ascending
  std::vector<int> offsets;          // offsets[i] is in effect from times[i]
  std::optional<PosixRule> footer;   // after times.back(), or always when times is empty

  // The rule's changes in years y-2 .. y+1 in time order; 8 changes, or none without DST.
  std::array<Change, 8> FooterChanges(int64_t utc_seconds) const {
    const PosixRule& r = *footer;
    const int64_t y = CivilFromDays(FloorDiv(utc_seconds, 86400)).year;
    std::array<Change, 8> out{};
    size_t n = 0;
    for (int64_t year = y - 2; year <= y + 1; ++year) {
      Change on{r.start.LocalSeconds(year) - r.std_offset, r.dst_offset};
      Change off{r.end.LocalSeconds(year) - r.dst_offset, r.std_offset};
      // Within a year the earlier change comes first; ties keep year order (permanent DST
      // written as "start Jan 1, end Dec 31 25:00" ends one year exactly when the next starts).
      if (off.at < on.at) std::swap(on, off);
      out[n++] = on;
      out[n++] = off;
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Change& a, const Change& b) { return a.at < b.at; });
    return out;
  }

  int FooterOffsetAt(int64_t t) const {
    if (!footer->has_dst) return footer->std_offset;
    int offset = footer->std_offset;
    for (const Change& c : FooterChanges(t)) {
      if (c.at <= t) offset = c.offset;
    }
    return offset;
  }

  int OffsetAt(int64_t t) const {
    if (times.empty()) return footer ? FooterOffsetAt(t) : initial_offset;
    if (t < times.front()) return initial_offset;
    if (t >= times.back() && footer) return FooterOffsetAt(t);
    auto it = std::upper_bound(times.begin(), times.end(), t);
    return offsets[static_cast<size_t>(it - times.begin()) - 1];
  }

  std::optional<int64_t> NextTransitionAfter(int64_t t) const {
    if (!times.empty() && t < times.back()) {
      return *std::upper_bound(times.begin(), times.end(), t);
    }
    if (!footer || !footer->has_dst) return std::nullopt;
    // Years y-2 .. y+1 around a year later: the first change after t is within a year of it.
    for (const Change& c : FooterChanges(t + 366 * 86400)) {
      if (c.at > t) return c.at;
    }
    return std::nullopt;
  }
};

namespace {

// Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" or "<+1030>-10:30<+11>-11,
// M10.1.0,M4.1.0" (RFC 8536 section 3.3, with its extension of hours to 167 in rule times).
class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  std::optional<PosixRule> Parse() {
    PosixRule r;
    if (!Name()) return std::nullopt;
    std::optional<int64_t> std_off = Offset(24);
    if (!std_off) return std::nullopt;
    r.std_offset = static_cast<int>(-*std_off);  // POSIX offsets count hours west
    if (i_ == s_.size()) return r;
    if (!Name()) return std::nullopt;
    r.has_dst = true;
    r.dst_offset = r.std_offset + 3600;
    if (i_ < s_.size() && s_[i_] != ',') {
      std::optional<int64_t> dst_off = Offset(24);
      if (!dst_off) return std::nullopt;
      r.dst_offset = static_cast<int>(-*dst_off);
    }
    if (i_ == s_.size()) {
      // No rule given: the United States' rule, as POSIX implementations assume.
      r.start = DateRule{DateRule::kMonthWeekDay, 0, 2, 3};
      r.end = DateRule{DateRule::kMonthWeekDay, 0, 1, 11};
      return r;
    }
    if (!Eat(',')) return std::nullopt;
    std::optional<DateRule> start = Rule();
    if (!start || !Eat(',')) return std::nullopt;
    std::optional<DateRule> end = Rule();
    if (!end || i_ != s_.size()) return std::nullopt;
    r.start = *start;
    r.end = *end;
    return r;
  }

 private:
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool Name() {
    if (Eat('<')) {
      size_t close = s_.find('>', i_);
      if (close == std::string_view::npos || close == i_) return false;
      i_ = close + 1;
      return true;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ - start >= 3;
  }

  std::optional<int64_t> Number(int max) {
    size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && i_ - start < 3) {
      v = v * 10 + (s_[i_++] - '0');
    }
    if (i_ == start || v > max) return std::nullopt;
    return v;
  }

  // [+|-]hh[:mm[:ss]] in seconds.
  std::optional<int64_t> Offset(int max_hours) {
    int64_t sign = 1;
    if (Eat('-')) {
      sign = -1;
    } else {
      Eat('+');
    }
    std::optional<int64_t> h = Number(max_hours);
    if (!h) return std::nullopt;
    int64_t seconds = *h * 3600;
    if (Eat(':')) {
      std::optional<int64_t> m = Number(59);
      if (!m) return std::nullopt;
      seconds += *m * 60;
      if (Eat(':')) {
        std::optional<int64_t> sec = Number(59);
        if (!sec) return std::nullopt;
        seconds += *sec;
      }
    }
    return sign * seconds;
  }

  std::optional<DateRule> Rule() {
    DateRule r;
    if (Eat('J')) {
      std::optional<int64_t> n = Number(365);
      if (!n || *n < 1) return std::nullopt;
      r.kind = DateRule::kJulian1;
      r.day = static_cast<int>(*n);
    } else if (Eat('M')) {
      std::optional<int64_t> m = Number(12), w, d;
      if (!m || *m < 1 || !Eat('.') || !(w = Number(5)) || *w < 1 || !Eat('.') ||
          !(d = Number(6))) {
        return std::nullopt;
      }
      r.kind = DateRule::kMonthWeekDay;
      r.month = static_cast<int>(*m);
      r.week = static_cast<int>(*w);
      r.day = static_cast<int>(*d);
    } else {
      std::optional<int64_t> n = Number(365);
      if (!n) return std::nullopt;
      r.kind = DateRule::kJulian0;
      r.day = static_cast<int>(*n);
    }
    if (Eat('/')) {
      std::optional<int64_t> t = Offset(167);
      if (!t) return std::nullopt;
      r.time = *t;
    }
    return r;
  }

  std::string_view s_;
  size_t i_ = 0;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  size_t pos() const { return pos_; }
  void Skip(size_t n) { pos_ += n; }
  uint8_t U8() { return static_cast<uint8_t>(data_[pos_++]); }
  int64_t Int(int bytes) {  // big-endian two's complement
    uint64_t v = 0;
    for (int k = 0; k < bytes; ++k) v = (v << 8) | U8();
    if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct Counts {
  int64_t isut, isstd, leap, time, type, chars;
};

std::optional<std::pair<char, Counts>> Header(Reader& r) {
  if (!r.Has(44) || r.Rest().substr(0, 4) != "TZif") return std::nullopt;
  r.Skip(4);
  char version = static_cast<char>(r.U8());
  r.Skip(15);
  Counts c{r.Int(4), r.Int(4), r.Int(4), r.Int(4), r.Int(4), r.Int(4)};
  if (c.isut < 0 || c.isstd < 0 || c.leap < 0 || c.time < 0 || c.type < 1 || c.chars < 0 ||
      c.time > 100000 || c.type > 256 || c.leap > 100000 || c.chars > 100000 || c.isut > 256 ||
      c.isstd > 256) {
    return std::nullopt;
  }
  return std::make_pair(version, c);
}

size_t BlockSize(const Counts& c, int time_bytes) {
  return static_cast<size_t>(c.time * (time_bytes + 1) + c.type * 6 + c.chars +
                             c.leap * (time_bytes + 4) + c.isstd + c.isut);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' ||
      name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '+' || ch == '-' ||
           ch == '/';
  });
}

}  // namespace

TimeZone TimeZone::Utc() {
  static const std::shared_ptr<const Data> kUtc = [] {
    auto d = std::make_shared<Data>();
    d->name = "UTC";
    return std::shared_ptr<const Data>(std::move(d));
  }();
  return TimeZone(kUtc);
}

Result<TimeZone> TimeZone::Load(std::string_view name, const std::filesystem::path& zoneinfo_dir) {
  const std::string quoted = "'" + std::string(name) + "'";
  const std::string example = "use an IANA zone name such as 'Europe/Copenhagen' or 'UTC'";
  if (!ValidName(name)) {
    return Status::InvalidArgument("time zone " + quoted + " is not a zone name; " + example);
  }
  const std::filesystem::path path = zoneinfo_dir / std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("no time zone named " + quoted + " is installed in " +
                            zoneinfo_dir.string() + "; " + example);
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  constexpr size_t kMaxFile = 1 << 20;  // real zone files are a few KiB
  if (in) {
    bytes.resize(kMaxFile + 1);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<size_t>(in.gcount()));
  }
  if (!in.eof() || bytes.size() > kMaxFile) {
    return Status::Io("cannot read time zone file " + path.string());
  }
  const auto not_tzif = [&] {
    return Status::InvalidArgument(path.string() + " is not a time zone (TZif) file; " + example);
  };

  Reader r(bytes);
  std::optional<std::pair<char, Counts>> h = Header(r);
  if (!h) return not_tzif();
  int time_bytes = 4;
  if (h->first >= '2') {
    // Skip the 32-bit data; the 64-bit data and the footer follow.
    size_t v1 = BlockSize(h->second, 4);
    if (!r.Has(v1)) return not_tzif();
    r.Skip(v1);
    h = Header(r);
    if (!h) return not_tzif();
    time_bytes = 8;
  }
  const Counts c = h->second;
  if (!r.Has(BlockSize(c, time_bytes))) return not_tzif();
  if (c.leap > 0) {
    return Status::InvalidArgument("time zone " + quoted +
                                   " counts leap seconds, which schedules do not; use the zone "
                                   "without the 'right/' prefix");
  }

  auto data = std::make_shared<Data>();
  data->name = std::string(name);
  data->times.resize(static_cast<size_t>(c.time));
  for (int64_t& t : data->times) t = r.Int(time_bytes);
  std::vector<uint8_t> type_of(static_cast<size_t>(c.time));
  for (uint8_t& k : type_of) k = r.U8();
  std::vector<int> type_offset(static_cast<size_t>(c.type));
  for (int& off : type_offset) {
    int64_t utoff = r.Int(4);
    r.Skip(2);  // isdst, abbreviation index
    if (utoff < -kMaxOffsetSeconds || utoff > kMaxOffsetSeconds) return not_tzif();
    off = static_cast<int>(utoff);
  }
  r.Skip(static_cast<size_t>(c.chars + c.isstd + c.isut));
  for (size_t k = 0; k < type_of.size(); ++k) {
    if (type_of[k] >= type_offset.size()) return not_tzif();
    if (k > 0 && data->times[k] <= data->times[k - 1]) return not_tzif();
    data->offsets.push_back(type_offset[type_of[k]]);
  }
  data->initial_offset = type_offset[0];

  if (time_bytes == 8) {
    std::string_view rest = r.Rest();
    size_t nl = rest.size() > 1 && rest[0] == '\n' ? rest.find('\n', 1) : std::string_view::npos;
    if (nl == std::string_view::npos) return not_tzif();
    std::string_view tz = rest.substr(1, nl - 1);
    if (!tz.empty()) {
      data->footer = PosixParser(tz).Parse();
      if (!data->footer) {
        return Status::InvalidArgument("time zone " + quoted + " ends with a rule '" +
                                       std::string(tz) + "' that cannot be read; " + example);
      }
      if (std::abs(data->footer->std_offset) > kMaxOffsetSeconds ||
          std::abs(data->footer->dst_offset) > kMaxOffsetSeconds) {
        return not_tzif();
      }
    }
  }
  return TimeZone(std::move(data));
}

const std::string& TimeZone::name() const { return data_->name; }

int TimeZone::OffsetAt(int64_t utc_seconds) const { return data_->OffsetAt(utc_seconds); }

std::optional<int64_t> TimeZone::NextTransitionAfter(int64_t utc_seconds) const {
  return data_->NextTransitionAfter(utc_seconds);
}

std::vector<int64_t> TimeZone::FromLocal(int64_t local_seconds) const {
  // An instant u shows local_seconds when u + OffsetAt(u) == local_seconds. Offsets are bounded,
  // so u lies within kMaxOffsetSeconds of local_seconds: try every offset in effect there.
  const int64_t lo = local_seconds - kMaxOffsetSeconds - 1;
  const int64_t hi = local_seconds + kMaxOffsetSeconds + 1;
  std::vector<int> offsets{data_->OffsetAt(lo)};
  for (std::optional<int64_t> t = data_->NextTransitionAfter(lo); t && *t <= hi;
       t = data_->NextTransitionAfter(*t)) {
    offsets.push_back(data_->OffsetAt(*t));
  }
  std::vector<int64_t> out;
  for (int off : offsets) {
    int64_t u = local_seconds - off;
    if (data_->OffsetAt(u) == off) out.push_back(u);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace nimbus::schedule
