// "Did you mean ...?" for misspelt keys and values in a manifest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nimbus::manifest {

// Edit distance (insertions, deletions, substitutions and swaps of neighbours each cost 1),
// ignoring case and treating '-' like '_', so "Memroy" is 1 away from "memory".
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, or "" when none is near enough to be a likely typo
// (distance at most a third of the longer word, and at least 1 allowed).
std::string NearestWord(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace nimbus::manifest
