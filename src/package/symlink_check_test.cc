#include "package/symlink_check.h"

#include <gtest/gtest.h>

namespace nimbus::package {
namespace {

TEST(SplitEntryPathTest, DropsEmptyAndDotComponentsAndFlagsTheRest) {
  bool abs = false, climbs = false;
  EXPECT_EQ(SplitEntryPath("./a//b/./c/", &abs, &climbs),
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(abs);
  EXPECT_FALSE(climbs);
  SplitEntryPath("/etc/x", &abs, &climbs);
  EXPECT_TRUE(abs);
  SplitEntryPath("a/../b", &abs, &climbs);
  EXPECT_TRUE(climbs);
}

TEST(CheckLinkTest, AcceptsLinksThatResolveInsideThePackage) {
  std::map<std::string, std::string> links{{"a/b/l", "../c"}, {"top", "a/b/l"}};
  EXPECT_EQ(CheckLink(links, "a/b/l"), LinkVerdict::kInside);
  EXPECT_EQ(CheckLink(links, "top"), LinkVerdict::kInside);
}

TEST(CheckLinkTest, CatchesAbsoluteAndClimbingTargets) {
  std::map<std::string, std::string> links{{"abs", "/etc/passwd"}, {"up", "../x"},
                                           {"a/up2", "../../x"}};
  EXPECT_EQ(CheckLink(links, "abs"), LinkVerdict::kAbsolute);
  EXPECT_EQ(CheckLink(links, "up"), LinkVerdict::kEscapes);
  EXPECT_EQ(CheckLink(links, "a/up2"), LinkVerdict::kEscapes);
}

TEST(CheckLinkTest, FollowsOtherLinksBeforeApplyingDotDot) {
  // x/y/d points at the root; d/.. is then the root's parent, though the text looks inside.
  std::map<std::string, std::string> links{{"x/y/d", "../.."}, {"e", "x/y/d/.."}};
  EXPECT_EQ(CheckLink(links, "x/y/d"), LinkVerdict::kInside);
  EXPECT_EQ(CheckLink(links, "e"), LinkVerdict::kEscapes);
}

TEST(CheckLinkTest, ReportsLoops) {
  std::map<std::string, std::string> links{{"a", "b"}, {"b", "a"}};
  EXPECT_EQ(CheckLink(links, "a"), LinkVerdict::kLoop);
}

}  // namespace
}  // namespace nimbus::package
