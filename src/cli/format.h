// Human-readable output helpers for the CLI: sizes, times, aligned tables, and the base64
// decoding the Invoke API's log tail needs. Pure functions, no I/O beyond the stream given.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus::cli {

// 512 -> "512 B", 1234 -> "1.2 KB", 5 << 20 -> "5.0 MB" (powers of 1024, one decimal).
std::string FormatSize(uint64_t bytes);

// Milliseconds since the epoch -> "2023-11-14T22:13:20.123Z" (UTC).
std::string FormatTimeMs(int64_t ms_since_epoch);

// Standard base64 (padding optional); nullopt when the text is not base64.
std::optional<std::string> DecodeBase64(std::string_view text);

// Columns separated by three spaces, each as wide as its widest cell; the last column is not
// padded, so lines carry no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  void Render(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

}  // namespace nimbus::cli
