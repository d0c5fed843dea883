// Query strings of request targets: "a=1&b=x%20y" split into decoded pairs.
//
// Threading: free functions without shared state.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nimbus::http {

// Splits "a=1&b=x%20y" into decoded pairs, in order.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
// The first value of `key` in the request target's query string, decoded; empty if absent.
std::string QueryParam(std::string_view target, std::string_view key);

}  // namespace nimbus::http
