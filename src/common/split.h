// Splitting text into fields, as the schedule expressions need it.
//
// Threading: free functions without shared state.
#pragma once

#include <string_view>
#include <vector>

namespace nimbus {

// The runs of characters between spaces and tabs ("  a b\tc " -> a, b, c).
std::vector<std::string_view> SplitSpaces(std::string_view s);
// The pieces between `sep`s, empty ones included ("a,,b" -> a, "", b).
std::vector<std::string_view> Split(std::string_view s, char sep);

}  // namespace nimbus
