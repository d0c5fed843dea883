// Percent-decoding for URL paths and query strings, shared by the router, the HTTP trigger and
// the admin API so every part of nimbus decodes a URL the same way.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// 0-15 for a hex digit, -1 otherwise.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes s ("%20" -> ' '). A '%' not followed by two hex digits is kept as is.
// plus_is_space: decode '+' as ' ' (query strings), not in paths.
std::string PercentDecode(std::string_view s, bool plus_is_space = false);
// Appends the decoded s to out; same rules as PercentDecode.
void AppendPercentDecoded(std::string& out, std::string_view s, bool plus_is_space = false);

}  // namespace nimbus
