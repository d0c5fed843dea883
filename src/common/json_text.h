// Writing JSON text by hand on hot paths, where building a JSON tree would cost more than the
// request itself.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// Appends s to out as a JSON string literal, quotes included, escaping what JSON requires. A
// byte that is not part of well-formed UTF-8 becomes U+FFFD, so the result is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);
// The same, lower-casing ASCII letters on the way (HTTP header names).
void AppendJsonStringLower(std::string& out, std::string_view s);
// True when s is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace nimbus
