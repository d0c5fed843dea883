// The rule for X-Nimbus-Idempotency-Key values, shared by the daemon (which refuses others with
// 400) and the CLI (which refuses them before sending). docs/async.md states it.
//
// Threading: free functions without shared state.
#pragma once

#include <cstddef>
#include <string_view>

namespace nimbus {

inline constexpr std::string_view kIdempotencyKeyHeader = "X-Nimbus-Idempotency-Key";
inline constexpr size_t kMaxIdempotencyKey = 256;

// 1 to 256 visible ASCII characters (0x21-0x7E): a key travels in an HTTP header, so no spaces,
// no control characters (a line break would end the header) and no bytes outside ASCII.
inline bool IsValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKey) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

}  // namespace nimbus
