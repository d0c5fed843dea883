#include "http/query.h"

#include "common/percent.h"

namespace nimbus::http {

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    out.emplace_back(PercentDecode(part.substr(0, eq), true), PercentDecode(v, true));
  }
  return out;
}

std::string QueryParam(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  for (auto& [k, v] : ParseQuery(target.substr(q + 1))) {
    if (k == key) return v;
  }
  return {};
}

}  // namespace nimbus::http
