#include "observability/log_store.h"

#include <algorithm>
#include <cstdio>

#include "common/json_text.h"

namespace nimbus::observability {

const char* LogStreamName(LogStream s) {
  switch (s) {
    case LogStream::kStdout: return "stdout";
    case LogStream::kStderr: return "stderr";
    case LogStream::kPlatform: return "platform";
  }
  return "stdout";
}

namespace {
std::string Fixed2(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}
}  // namespace

std::string StartLine(std::string_view request_id, std::string_view version) {
  std::string out = "START RequestId: ";
  out += request_id;
  out += " Version: ";
  out += version;
  return out;
}

std::string EndLine(std::string_view request_id) {
  std::string out = "END RequestId: ";
  out += request_id;
  return out;
}

std::string ReportLine(std::string_view request_id, const InvocationReport& r) {
  std::string out = "REPORT RequestId: ";
  out += request_id;
  out += "\tDuration: " + Fixed2(r.duration_ms) + " ms\tBilled Duration: " + std::to_string(r.billed_ms) +
         " ms\tMemory Size: " + std::to_string(r.memory_mb) +
         " MB\tMax Memory Used: " + std::to_string(r.max_memory_used_mb) + " MB";
  if (r.init_ms >= 0) out += "\tInit Duration: " + Fixed2(r.init_ms) + " ms";
  return out;
}

namespace {

// The number of bytes of the sequence that starts with lead byte `c` (2 to 4), with the range
// its second byte must be in (later ones are always 80..BF); 0 when `c` starts none.
struct Utf8Lead {
  size_t length = 0;
  unsigned char second_lo = 0x80, second_hi = 0xBF;
};

Utf8Lead LeadOf(unsigned char c) {
  if (c >= 0xC2 && c <= 0xDF) return {2};
  if (c == 0xE0) return {3, 0xA0, 0xBF};  // below A0: overlong
  if (c == 0xED) return {3, 0x80, 0x9F};  // above 9F: a surrogate, U+D800..U+DFFF
  if (c >= 0xE1 && c <= 0xEF) return {3};
  if (c == 0xF0) return {4, 0x90, 0xBF};  // below 90: overlong
  if (c == 0xF4) return {4, 0x80, 0x8F};  // above 8F: past U+10FFFF
  if (c >= 0xF1 && c <= 0xF3) return {4};
  return {};
}

}  // namespace

bool ReplaceInvalidUtf8(std::string& text) {
  if (IsValidUtf8(text)) return false;  // the fast path: no copy
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  std::string out;
  out.reserve(n + 16);
  size_t i = 0;
  size_t run = 0;  // start of the valid bytes not yet copied
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    Utf8Lead lead = LeadOf(p[i]);
    size_t good = lead.length == 0 ? 0 : 1;  // bytes of the sequence that fit so far
    while (good > 0 && good < lead.length && i + good < n) {
      unsigned char b = p[i + good];
      unsigned char lo = good == 1 ? lead.second_lo : 0x80;
      unsigned char hi = good == 1 ? lead.second_hi : 0xBF;
      if (b < lo || b > hi) break;
      ++good;
    }
    if (lead.length != 0 && good == lead.length) {
      i += good;
      continue;
    }
    out.append(text, run, i - run);
    out.append(kReplacement, 3);
    i += std::max<size_t>(good, 1);
    run = i;
  }
  out.append(text, run, n - run);
  text = std::move(out);
  return true;
}

size_t LogStore::Record::bytes() const {
  // A rendered REPORT line is about 150 bytes; START and END about 60 each.
  size_t text_bytes = kind == Kind::kLine ? text.size() : kind == Kind::kStart ? 60 : 210;
  return text_bytes + request_id.size() + sizeof(Record);
}

LogStore::LogStore(size_t max_lines_per_function, size_t max_bytes_per_function)
    : max_lines_(max_lines_per_function), max_bytes_(max_bytes_per_function) {}

void LogStore::Add(const std::string& function, Record&& record) {
  ReplaceInvalidUtf8(record.text);
  ReplaceInvalidUtf8(record.request_id);
  MutexLock lock(mu_);
  auto& ring = rings_[function];
  ring.bytes += record.bytes();
  ring.lines += record.lines();
  ring.records.push_back(std::move(record));
  while (ring.records.size() > 1 && (ring.lines > max_lines_ || ring.bytes > max_bytes_)) {
    ring.bytes -= ring.records.front().bytes();
    ring.lines -= ring.records.front().lines();
    ring.records.pop_front();
  }
}

void LogStore::Append(const std::string& function, LogLine line) {
  Record r;
  r.stream = line.stream;
  r.time_ms = line.time_ms;
  r.request_id = std::move(line.request_id);
  r.text = std::move(line.text);
  Add(function, std::move(r));
}

void LogStore::AppendStart(const std::string& function, int64_t time_ms, std::string request_id,
                           std::string_view version) {
  Record r;
  r.kind = Record::Kind::kStart;
  r.stream = LogStream::kPlatform;
  r.time_ms = time_ms;
  r.request_id = std::move(request_id);
  r.text = version;
  Add(function, std::move(r));
}

void LogStore::AppendEnd(const std::string& function, int64_t time_ms, std::string request_id,
                         const InvocationReport& report) {
  Record r;
  r.kind = Record::Kind::kEndReport;
  r.stream = LogStream::kPlatform;
  r.time_ms = time_ms;
  r.request_id = std::move(request_id);
  r.report = report;
  Add(function, std::move(r));
}

void LogStore::Render(const Record& r, size_t room, std::vector<LogLine>& out) {
  switch (r.kind) {
    case Record::Kind::kLine:
      out.push_back({r.time_ms, r.request_id, r.stream, r.text});
      return;
    case Record::Kind::kStart:
      out.push_back({r.time_ms, r.request_id, r.stream, StartLine(r.request_id, r.text)});
      return;
    case Record::Kind::kEndReport:
      out.push_back({r.time_ms, r.request_id, r.stream, ReportLine(r.request_id, r.report)});
      if (room > 1) out.push_back({r.time_ms, r.request_id, r.stream, EndLine(r.request_id)});
      return;
  }
}

std::vector<LogLine> LogStore::Tail(const std::string& function, size_t limit, std::string_view request_id) const {
  std::vector<LogLine> out;
  MutexLock lock(mu_);
  auto it = rings_.find(function);
  if (it == rings_.end()) return out;
  const auto& records = it->second.records;
  for (auto r = records.rbegin(); r != records.rend() && out.size() < limit; ++r) {
    if (request_id.empty() || r->request_id == request_id) Render(*r, limit - out.size(), out);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void LogStore::Drop(const std::string& function) {
  MutexLock lock(mu_);
  rings_.erase(function);
}

}  // namespace nimbus::observability
