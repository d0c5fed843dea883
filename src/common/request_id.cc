#include "common/request_id.h"

#include <chrono>
#include <cstdint>
#include <random>

namespace nimbus {

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  uint64_t a = rng(), b = rng();
  // Version 4, variant 1.
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  // By hand, not snprintf: this runs once per request, and formatting was most of its cost.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  auto put = [&id](size_t at, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v >>= 4) id[at + static_cast<size_t>(i)] = kHex[v & 0xf];
  };
  put(0, a >> 32, 8);
  put(9, (a >> 16) & 0xffff, 4);
  put(14, a & 0xffff, 4);
  put(19, b >> 48, 4);
  put(24, b & 0xffffffffffffULL, 12);
  return id;
}

}  // namespace nimbus
