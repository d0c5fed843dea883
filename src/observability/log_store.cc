#include "observability/log_store.h"

#include <algorithm>

namespace nimbus::observability {

const char* LogStreamName(LogStream s) {
  switch (s) {
    case LogStream::kStdout: return "stdout";
    case LogStream::kStderr: return "stderr";
    case LogStream::kPlatform: return "platform";
  }
  return "stdout";
}

LogStore::LogStore(size_t max_lines_per_function, size_t max_bytes_per_function)
    : max_lines_(max_lines_per_function), max_bytes_(max_bytes_per_function) {}

namespace {
size_t SizeOf(const LogLine& l) { return l.text.size() + l.request_id.size() + sizeof(LogLine); }
}  // namespace

void LogStore::Append(const std::string& function, LogLine line) {
  std::lock_guard lock(mu_);
  auto& ring = rings_[function];
  ring.bytes += SizeOf(line);
  ring.lines.push_back(std::move(line));
  while (ring.lines.size() > 1 && (ring.lines.size() > max_lines_ || ring.bytes > max_bytes_)) {
    ring.bytes -= SizeOf(ring.lines.front());
    ring.lines.pop_front();
  }
}

std::vector<LogLine> LogStore::Tail(const std::string& function, size_t limit, std::string_view request_id) const {
  std::vector<LogLine> out;
  std::lock_guard lock(mu_);
  auto it = rings_.find(function);
  if (it == rings_.end()) return out;
  for (auto r = it->second.lines.rbegin(); r != it->second.lines.rend() && out.size() < limit; ++r) {
    if (request_id.empty() || r->request_id == request_id) out.push_back(*r);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void LogStore::Drop(const std::string& function) {
  std::lock_guard lock(mu_);
  rings_.erase(function);
}

}  // namespace nimbus::observability
