// JSON string escaping for hand-written JSON on hot paths: plain ASCII is copied 8 bytes at a
// time; valid UTF-8 is copied as is; a byte outside a well-formed UTF-8 sequence becomes U+FFFD,
// so the output is always valid JSON.
#include "common/json_text.h"

#include <cstdint>
#include <cstring>

namespace nimbus {
namespace {

// Length of the well-formed UTF-8 sequence at p (n bytes available), or 0 if there is none
// (stray continuation byte, overlong form, surrogate, beyond U+10FFFF, truncated).
size_t Utf8SequenceLength(const unsigned char* p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  auto cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
  if (c < 0xE0) return n >= 2 && cont(p[1]) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3) return 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF;  // 0xED A0..BF would be a surrogate
    return p[1] >= lo && p[1] <= hi && cont(p[2]) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (n < 4) return 0;
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return p[1] >= lo && p[1] <= hi && cont(p[2]) && cont(p[3]) ? 4 : 0;
  }
  return 0;
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

uint64_t Load8(const unsigned char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// True when none of the 8 bytes in w needs attention in a JSON string: no byte >= 0x80,
// < 0x20, '"' or '\\' (the usual "has zero byte" bit trick, applied to each condition).
bool PlainAscii8(uint64_t w) {
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHighBits; };
  uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHighBits;
  return ((w & kHighBits) | below_space | has_zero(w ^ ('"' * kOnes)) |
          has_zero(w ^ ('\\' * kOnes))) == 0;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    if (i + 8 <= n && (Load8(p + i) & kHighBits) == 0) {
      i += 8;
      continue;
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = Utf8SequenceLength(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// lower: ASCII-lower-case on the way (header names).
template <bool lower>
void AppendJsonStringImpl(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0, run = 0;
  auto flush = [&](size_t end) {
    if constexpr (lower) {
      for (size_t k = run; k < end; ++k) out.push_back(LowerAscii(s[k]));
    } else {
      out.append(s.data() + run, end - run);
    }
  };
  while (i < n) {
    if (i + 8 <= n && PlainAscii8(Load8(p + i))) {
      i += 8;
      continue;
    }
    unsigned char c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(p + i, n - i);
      if (len != 0) {
        i += len;  // stays in the run: valid UTF-8 is copied as is
        continue;
      }
    }
    flush(i);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof esc);
        } else {
          out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
        }
    }
    ++i;
    run = i;
  }
  flush(n);
  out.push_back('"');
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) { AppendJsonStringImpl<false>(out, s); }
void AppendJsonStringLower(std::string& out, std::string_view s) { AppendJsonStringImpl<true>(out, s); }

}  // namespace nimbus
