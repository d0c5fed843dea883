// The quoting of unquoted route paths inside flow mappings, and the column mapping back.
#include "manifest/flow_path_repair.h"

#include <gtest/gtest.h>

namespace nimbus::manifest {
namespace {

TEST(FlowPathRepair, QuotesAPathWithBracesInsideAFlowMapping) {
  auto r = QuoteFlowPaths("http:\n  - {method: GET, path: /hello/{name}}\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "http:\n  - {method: GET, path: '/hello/{name}'}\n");
}

TEST(FlowPathRepair, HandlesGreedyParametersAndLaterKeys) {
  auto r = QuoteFlowPaths("- {path: /hooks/{proxy+}, method: ANY}\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "- {path: '/hooks/{proxy+}', method: ANY}\n");
}

TEST(FlowPathRepair, LeavesBlockStylePathsAlone) {
  // In block context a plain scalar may hold braces, so nothing needs quoting.
  EXPECT_FALSE(QuoteFlowPaths("- method: GET\n  path: /hello/{name}\n").has_value());
}

TEST(FlowPathRepair, LeavesQuotedPathsAndPathsWithoutBracesAlone) {
  EXPECT_FALSE(QuoteFlowPaths("- {method: GET, path: '/a/{b}'}\n").has_value());
  EXPECT_FALSE(QuoteFlowPaths("- {method: GET, path: \"/a/{b}\"}\n").has_value());
  EXPECT_FALSE(QuoteFlowPaths("- {method: GET, path: /a/b}\n").has_value());
}

TEST(FlowPathRepair, IgnoresPathsInComments) {
  EXPECT_FALSE(QuoteFlowPaths("x: {a: 1} # {path: /a/{b}}\n").has_value());
}

TEST(FlowPathRepair, StopsBeforeATrailingComment) {
  auto r = QuoteFlowPaths("- {method: GET,\n   path: /a/{b} # note\n  }\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "- {method: GET,\n   path: '/a/{b}' # note\n  }\n");
}

TEST(FlowPathRepair, MapsColumnsBackToTheTextAsWritten) {
  // Written:  "- {path: /a/{x}, method: GET}"   GET at column 25 (0-based)
  // Repaired: "- {path: '/a/{x}', method: GET}" GET at column 27
  auto r = QuoteFlowPaths("- {path: /a/{x}, method: GET}\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text.find("GET"), 27u);
  EXPECT_EQ(r->OriginalColumn(0, 27), 25);
  EXPECT_EQ(r->OriginalColumn(0, 9), 9);  // the value itself starts where it was written
  EXPECT_EQ(r->OriginalColumn(1, 27), 27);  // other lines are untouched
}

}  // namespace
}  // namespace nimbus::manifest
