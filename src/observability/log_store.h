// What every function's instances printed, plus the platform's START/END/REPORT lines, kept per
// function in a bounded in-memory ring so `nimbus logs` and the Invoke API's log tail can read
// it. Older lines fall off the ring once a function exceeds its budget.
//
// An invocation's START, END and REPORT lines are kept as their fields (request id, version,
// durations) and rendered as text only when read: the warm path formats nothing, and END and
// REPORT go in with one call.
//
// Everything stored is valid UTF-8: a function may print any bytes, but its lines are read back
// as JSON text (the admin API, `nimbus logs`), so each invalid UTF-8 sequence in a line is
// replaced by U+FFFD on the way in, as CloudWatch Logs does. Valid lines, the usual case, are
// checked (8 ASCII bytes at a time) and stored without a copy.
//
// Threading: thread-safe; one mutex, held only to move a record in or copy lines out.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"

namespace nimbus::observability {

enum class LogStream { kStdout, kStderr, kPlatform };
const char* LogStreamName(LogStream s);

struct LogLine {
  int64_t time_ms = 0;
  std::string request_id;  // empty for lines printed outside an invocation (init, shutdown)
  LogStream stream = LogStream::kStdout;
  std::string text;
};

// The figures of one invocation's REPORT line.
struct InvocationReport {
  double duration_ms = 0;
  int64_t billed_ms = 0;
  int memory_mb = 0;
  uint64_t max_memory_used_mb = 0;
  double init_ms = -1;  // Init Duration of a cold start; negative when warm
};

// The platform lines, as Lambda writes them.
std::string StartLine(std::string_view request_id, std::string_view version);
std::string EndLine(std::string_view request_id);
std::string ReportLine(std::string_view request_id, const InvocationReport& report);

// Replaces each invalid UTF-8 sequence in `text` with U+FFFD (EF BF BD), in place; returns
// whether it replaced any. An invalid sequence is a maximal subpart in Unicode's sense (the W3C
// and WHATWG decoders' rule): a stray continuation byte, a byte that never starts a sequence
// (C0, C1, F5..FF), or the longest start of a valid sequence that stops short (truncated, or
// followed by a byte that makes it an overlong form, a surrogate or a value past U+10FFFF). So
// "\xE2\x82" then "A" is one U+FFFD then "A", and an overlong "\xC0\xAF" is two.
bool ReplaceInvalidUtf8(std::string& text);

class LogStore {
 public:
  // A function's ring holds at most this many lines and this many bytes of text, whichever
  // comes first: a function printing long lines cannot grow the daemon without bound.
  explicit LogStore(size_t max_lines_per_function = 10000, size_t max_bytes_per_function = 8 << 20);
  void Append(const std::string& function, LogLine line);
  // An invocation's START line.
  void AppendStart(const std::string& function, int64_t time_ms, std::string request_id, std::string_view version);
  // An invocation's END and REPORT lines.
  void AppendEnd(const std::string& function, int64_t time_ms, std::string request_id, const InvocationReport& report);
  // The newest `limit` lines (oldest first), optionally only one request's.
  std::vector<LogLine> Tail(const std::string& function, size_t limit, std::string_view request_id = {}) const;
  void Drop(const std::string& function);

 private:
  struct Record {
    enum class Kind : uint8_t { kLine, kStart, kEndReport };
    Kind kind = Kind::kLine;
    LogStream stream = LogStream::kStdout;
    int64_t time_ms = 0;
    std::string request_id;
    std::string text;  // kLine: the line; kStart: the version
    InvocationReport report;  // kEndReport
    size_t lines() const { return kind == Kind::kEndReport ? 2 : 1; }
    size_t bytes() const;
  };
  struct Ring {
    std::deque<Record> records;
    size_t lines = 0;
    size_t bytes = 0;  // text and request ids of `records`
  };
  void Add(const std::string& function, Record&& record) NIMBUS_EXCLUDES(mu_);
  // Appends `r`'s lines to `out` newest first, at most `room` of them.
  static void Render(const Record& r, size_t room, std::vector<LogLine>& out);

  const size_t max_lines_;
  const size_t max_bytes_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Ring> rings_ NIMBUS_GUARDED_BY(mu_);
};

}  // namespace nimbus::observability
