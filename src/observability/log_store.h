// What every function's instances printed, plus the platform's START/END/REPORT lines, kept per
// function in a bounded in-memory ring so `nimbus logs` and the Invoke API's log tail can read
// it. Older lines fall off the ring once a function exceeds its budget.
//
// Threading: thread-safe; one mutex, held only to copy lines in or out.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nimbus::observability {

enum class LogStream { kStdout, kStderr, kPlatform };
const char* LogStreamName(LogStream s);

struct LogLine {
  int64_t time_ms = 0;
  std::string request_id;  // empty for lines printed outside an invocation (init, shutdown)
  LogStream stream = LogStream::kStdout;
  std::string text;
};

class LogStore {
 public:
  // A function's ring holds at most this many lines and this many bytes of text, whichever
  // comes first: a function printing long lines cannot grow the daemon without bound.
  explicit LogStore(size_t max_lines_per_function = 10000, size_t max_bytes_per_function = 8 << 20);
  void Append(const std::string& function, LogLine line);
  // The newest `limit` lines (oldest first), optionally only one request's.
  std::vector<LogLine> Tail(const std::string& function, size_t limit, std::string_view request_id = {}) const;
  void Drop(const std::string& function);

 private:
  struct Ring {
    std::deque<LogLine> lines;
    size_t bytes = 0;  // text and request ids of `lines`
  };
  const size_t max_lines_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Ring> rings_;  // guarded by mu_
};

}  // namespace nimbus::observability
