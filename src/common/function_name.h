// The function-name rule, in one place: the manifest's `name` and destinations, the admin
// API's /v1/functions/NAME and `nimbus init` check names with it. A name is written unescaped
// into URLs (/fn/NAME), ARNs, metrics labels and the starter templates' JSON, so the rule
// stays this narrow: 1 to 64 ASCII letters, digits, '-' or '_' (Lambda's rule for a plain
// function name).
//
// Threading: free functions without shared state.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"

namespace nimbus {

inline constexpr size_t kMaxFunctionNameLength = 64;

// What a user should write instead, for messages: "... is not valid; " + kFunctionNameRule.
inline constexpr std::string_view kFunctionNameRule = "use 1 to 64 letters, digits, '-' or '_'";

// True when `name` follows the rule above.
bool IsValidFunctionName(std::string_view name);

// Ok, or InvalidArgument "function name 'NAME' is not valid; use 1 to 64 letters, digits, '-'
// or '_'".
Status CheckFunctionName(std::string_view name);

}  // namespace nimbus
