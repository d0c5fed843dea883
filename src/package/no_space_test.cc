// A full disk or quota becomes ResourceExhausted naming the disk; other OS errors stay Io.
#include "package/no_space.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nimbus::package {
namespace {

TEST(NoSpaceTest, AFullDiskNamesTheDiskWhatWasInterruptedAndWhatToDo) {
  Status st = OsError("/var/lib/nimbus", "saving the package", "could not write x", ENOSPC);
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_EQ(st.message(),
            "no space left on the disk holding /var/lib/nimbus (ENOSPC) while saving the "
            "package; free space on that disk and try again");
}

TEST(NoSpaceTest, AFullQuotaSaysSoAndOffersRaisingIt) {
  Status st = OsError("/var/lib/nimbus", "saving the package", "could not write x", EDQUOT);
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_EQ(st.message(),
            "disk quota exceeded on the disk holding /var/lib/nimbus (EDQUOT) while saving the "
            "package; free space on that disk or raise the quota and try again");
}

TEST(NoSpaceTest, OtherErrorsStayIoErrorsWithTheirOwnText) {
  Status st = OsError("/var/lib/nimbus", "saving the package", "could not write x", EACCES);
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_EQ(st.message(), "could not write x: Permission denied");
}

TEST(NoSpaceTest, ResourceExhaustedHasItsOwnName) {
  EXPECT_STREQ(CodeName(Code::kResourceExhausted), "ResourceExhausted");
}

}  // namespace
}  // namespace nimbus::package
