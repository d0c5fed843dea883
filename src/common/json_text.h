// Writing JSON text by hand on hot paths, where building a JSON tree would cost more than the
// request itself.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// Appends s to out as a JSON string literal, quotes included, escaping what JSON requires.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace nimbus
