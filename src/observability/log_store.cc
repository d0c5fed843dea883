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

LogStore::LogStore(size_t max_lines_per_function) : max_lines_(max_lines_per_function) {}

void LogStore::Append(const std::string& function, LogLine line) {
  std::lock_guard lock(mu_);
  auto& q = lines_[function];
  q.push_back(std::move(line));
  while (q.size() > max_lines_) q.pop_front();
}

std::vector<LogLine> LogStore::Tail(const std::string& function, size_t limit, std::string_view request_id) const {
  std::vector<LogLine> out;
  std::lock_guard lock(mu_);
  auto it = lines_.find(function);
  if (it == lines_.end()) return out;
  for (auto r = it->second.rbegin(); r != it->second.rend() && out.size() < limit; ++r) {
    if (request_id.empty() || r->request_id == request_id) out.push_back(*r);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void LogStore::Drop(const std::string& function) {
  std::lock_guard lock(mu_);
  lines_.erase(function);
}

}  // namespace nimbus::observability
