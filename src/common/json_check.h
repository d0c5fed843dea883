// Checking that text is JSON without building it: the Invoke API refuses payloads that are not
// JSON (as Lambda does) but passes the text on untouched, so a tree would be built only to be
// thrown away.
//
// Threading: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

namespace nimbus {

// True when `text` is one JSON value (surrounding whitespace allowed, nesting at most 32 deep,
// as boost::json::parse accepts by default); else false with the parser's reason in *error.
bool IsJson(std::string_view text, std::string* error);

}  // namespace nimbus
