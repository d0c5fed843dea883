// Lets route paths with parameters stand unquoted inside flow mappings, as the product brief
// writes them:
//
//   http:
//     - {method: GET, path: /hello/{name}}
//
// Strict YAML forbids '{' and '}' in a plain scalar inside a flow mapping, so every YAML
// parser (yaml-cpp included) rejects that line. The manifest parser tries the text as written
// first; only when that fails does it ask this repair to quote such `path:` values and try
// again, mapping positions in messages back to the text as written.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus::manifest {

struct RepairedText {
  std::string text;
  // Where a character was inserted: 0-based line and 0-based column in `text`.
  struct Insertion {
    int line;
    int column;
  };
  std::vector<Insertion> insertions;

  // The 0-based column in the original text of `column` on `line` of `text`.
  int OriginalColumn(int line, int column) const;
};

// The text with every unquoted `path:` value that starts with '/', contains a '{' and sits
// inside a flow mapping wrapped in single quotes; nullopt when there is no such value.
std::optional<RepairedText> QuoteFlowPaths(std::string_view text);

}  // namespace nimbus::manifest
