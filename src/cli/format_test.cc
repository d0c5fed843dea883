#include "cli/format.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nimbus::cli {
namespace {

TEST(FormatSize, ShowsBytesBelowOneKilobyte) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
}

TEST(FormatSize, ShowsOneDecimalInPowersOf1024) {
  EXPECT_EQ(FormatSize(1024), "1.0 KB");
  EXPECT_EQ(FormatSize(1234), "1.2 KB");
  EXPECT_EQ(FormatSize(5u << 20), "5.0 MB");
  EXPECT_EQ(FormatSize(3ull << 30), "3.0 GB");
}

TEST(FormatTimeMs, PrintsUtcIsoWithMilliseconds) {
  EXPECT_EQ(FormatTimeMs(1700000000123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
}

TEST(DecodeBase64, DecodesPaddedAndUnpaddedText) {
  EXPECT_EQ(DecodeBase64("U1RBUlQgUmVxdWVzdElkOiBhYmMK"), "START RequestId: abc\n");
  EXPECT_EQ(DecodeBase64("aGk="), "hi");
  EXPECT_EQ(DecodeBase64("aGk"), "hi");
  EXPECT_EQ(DecodeBase64(""), "");
}

TEST(DecodeBase64, RejectsTextThatIsNotBase64) {
  EXPECT_EQ(DecodeBase64("not base64!"), std::nullopt);
  EXPECT_EQ(DecodeBase64("a"), std::nullopt);
}

TEST(Table, AlignsColumnsAndLeavesNoTrailingBlanks) {
  Table t({"NAME", "RUNTIME", "ROUTES"});
  t.AddRow({"hello", "python3", "GET /hello"});
  t.AddRow({"a", "nodejs", "-"});
  std::ostringstream out;
  t.Render(out);
  EXPECT_EQ(out.str(),
            "NAME    RUNTIME   ROUTES\n"
            "hello   python3   GET /hello\n"
            "a       nodejs    -\n");
}

TEST(Table, PadsShortRowsWithEmptyCells) {
  Table t({"A", "B"});
  t.AddRow({"x"});
  std::ostringstream out;
  t.Render(out);
  EXPECT_EQ(out.str(), "A   B\nx\n");
}

}  // namespace
}  // namespace nimbus::cli
