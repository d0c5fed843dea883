#include "package/symlink_check.h"

#include <deque>

namespace nimbus::package {
namespace {

// The kernel gives up after 40 links in one lookup (ELOOP); do the same.
constexpr int kMaxLinkExpansions = 40;

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

}  // namespace

std::vector<std::string> SplitEntryPath(std::string_view path, bool* absolute, bool* climbs) {
  *absolute = !path.empty() && path.front() == '/';
  *climbs = false;
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      *climbs = true;
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    start = end + 1;
  }
  return parts;
}

LinkVerdict CheckLink(const std::map<std::string, std::string>& links, const std::string& path) {
  auto it = links.find(path);
  if (it == links.end()) return LinkVerdict::kInside;
  bool absolute = false, climbs = false;
  std::vector<std::string> stack = SplitEntryPath(path, &absolute, &climbs);
  if (!stack.empty()) stack.pop_back();  // resolve relative to the link's directory

  std::deque<std::string> pending;
  {
    const std::string& target = it->second;
    if (target.empty() || target.front() == '/') return LinkVerdict::kAbsolute;
    size_t start = 0;
    while (start <= target.size()) {
      size_t end = target.find('/', start);
      if (end == std::string::npos) end = target.size();
      pending.emplace_back(target.substr(start, end - start));
      start = end + 1;
    }
  }
  int expansions = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.front());
    pending.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (stack.empty()) return LinkVerdict::kEscapes;
      stack.pop_back();
      continue;
    }
    stack.push_back(std::move(part));
    auto link = links.find(Join(stack));
    if (link == links.end()) continue;
    // This component is itself a link: continue from its target, as the kernel would.
    if (++expansions > kMaxLinkExpansions) return LinkVerdict::kLoop;
    const std::string& target = link->second;
    if (target.empty() || target.front() == '/') return LinkVerdict::kAbsolute;
    stack.pop_back();
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= target.size()) {
      size_t end = target.find('/', start);
      if (end == std::string::npos) end = target.size();
      parts.emplace_back(target.substr(start, end - start));
      start = end + 1;
    }
    pending.insert(pending.begin(), parts.begin(), parts.end());
  }
  return LinkVerdict::kInside;
}

}  // namespace nimbus::package
