#include "common/percent.h"

namespace nimbus {

void AppendPercentDecoded(std::string& out, std::string_view s, bool plus_is_space) {
  size_t i = 0;
  while (i < s.size()) {
    // Copy the run without escapes in one go.
    size_t j = i;
    while (j < s.size() && s[j] != '%' && !(plus_is_space && s[j] == '+')) ++j;
    out.append(s.data() + i, j - i);
    if (j >= s.size()) break;
    if (s[j] == '+') {
      out.push_back(' ');
      i = j + 1;
      continue;
    }
    int hi = j + 2 < s.size() ? HexDigitValue(s[j + 1]) : -1;
    int lo = j + 2 < s.size() ? HexDigitValue(s[j + 2]) : -1;
    if (hi >= 0 && lo >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i = j + 3;
    } else {
      out.push_back('%');
      i = j + 1;
    }
  }
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  AppendPercentDecoded(out, s, plus_is_space);
  return out;
}

}  // namespace nimbus
