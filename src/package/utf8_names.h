// Entry names in packages are UTF-8, in the zip (with the zip's UTF-8 flag, general purpose bit
// 11) and on disk, whatever locale the daemon or the CLI runs in.
//
// libarchive converts entry names between the zip's charset and the calling thread's locale
// charset. The daemon runs in the C locale, where a non-ASCII name cannot be converted: the
// reader then reports no name at all and the writer stores the name without the UTF-8 flag.
// ScopedUtf8Names switches only the calling thread's character type to UTF-8 for the duration
// of a read or write, so names pass through as their UTF-8 bytes; the process locale and other
// threads are untouched.
//
// Threading: ScopedUtf8Names affects the calling thread only; the functions are pure.
#pragma once

#include <locale.h>

#include <string>
#include <string_view>

namespace nimbus::package {

class ScopedUtf8Names {
 public:
  ScopedUtf8Names();
  ~ScopedUtf8Names();
  ScopedUtf8Names(const ScopedUtf8Names&) = delete;
  ScopedUtf8Names& operator=(const ScopedUtf8Names&) = delete;

  // False when the system has no UTF-8 locale (C.UTF-8 is built into glibc since 2.35); names
  // then go through the thread's own locale and non-ASCII names are refused.
  bool active() const { return previous_ != nullptr; }

 private:
  locale_t previous_ = nullptr;
};

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsUtf8(std::string_view s);

// `s` with every byte that is not part of valid UTF-8 written as \xNN, for messages.
std::string EscapeNonUtf8(std::string_view s);

}  // namespace nimbus::package
