// Request ids are random version 4 UUIDs in Lambda's lowercase 8-4-4-4-12 form.
#include "common/request_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace nimbus {
namespace {

TEST(NewRequestId, IsALowercaseVersion4UuidWithVariant1) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t at = 0; at < id.size(); ++at) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        ASSERT_EQ(id[at], '-') << id;
      } else {
        ASSERT_TRUE((id[at] >= '0' && id[at] <= '9') || (id[at] >= 'a' && id[at] <= 'f')) << id;
      }
    }
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  }
}

TEST(NewRequestId, RepeatsNothingOverManyIdsAndUsesEveryDigitEverywhere) {
  std::set<std::string> seen;
  std::set<char> digits_at[36];
  for (int i = 0; i < 20000; ++i) {
    std::string id = NewRequestId();
    for (size_t at = 0; at < id.size(); ++at) digits_at[at].insert(id[at]);
    EXPECT_TRUE(seen.insert(std::move(id)).second);
  }
  for (size_t at = 0; at < 36; ++at) {
    if (at == 8 || at == 13 || at == 18 || at == 23 || at == 14) continue;
    EXPECT_EQ(digits_at[at].size(), at == 19 ? 4u : 16u) << "position " << at;
  }
}

}  // namespace
}  // namespace nimbus
