// "Did you mean" suggestions for misspelt keys.
#include "manifest/suggest.h"

#include <gtest/gtest.h>

namespace nimbus::manifest {
namespace {

TEST(EditDistance, CountsASwapOfNeighboursAsOneEdit) {
  EXPECT_EQ(EditDistance("memroy", "memory"), 1u);
}

TEST(EditDistance, IgnoresCaseAndTreatsDashLikeUnderscore) {
  EXPECT_EQ(EditDistance("Keep-Alive", "keep_alive"), 0u);
}

TEST(EditDistance, CountsInsertionsAndDeletions) {
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("timeout_s", "timeout"), 2u);
}

TEST(NearestWord, PicksTheClosestCandidate) {
  EXPECT_EQ(NearestWord("handle", {"name", "handler", "runtime"}), "handler");
}

TEST(NearestWord, SuggestsNothingForAFarWord) {
  EXPECT_EQ(NearestWord("colour", {"name", "handler", "runtime"}), "");
}

}  // namespace
}  // namespace nimbus::manifest
