// The function-name rule every part of nimbus checks names with.
#include "common/function_name.h"

#include <gtest/gtest.h>

#include <string>

namespace nimbus {
namespace {

TEST(IsValidFunctionName, AcceptsOneTo64LettersDigitsDashesAndUnderscores) {
  for (std::string name : {std::string("a"), std::string("Hello-World_2"), std::string("0"),
                           std::string("-"), std::string("_x_"), std::string(64, 'x')}) {
    EXPECT_TRUE(IsValidFunctionName(name)) << name;
  }
}

TEST(IsValidFunctionName, RefusesEmptyLongAndOtherCharacters) {
  for (std::string name : {std::string(""), std::string(65, 'x'), std::string("a/b"),
                           std::string("a.b"), std::string("a b"), std::string("a:1"),
                           std::string("bad name!"), std::string("caf\xc3\xa9"),
                           std::string("a\0b", 3), std::string("$LATEST")}) {
    EXPECT_FALSE(IsValidFunctionName(name)) << name;
  }
}

TEST(CheckFunctionName, SaysWhatToWriteInstead) {
  EXPECT_TRUE(CheckFunctionName("hello").ok());
  Status st = CheckFunctionName("a.b");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(st.message(), "function name 'a.b' is not valid; use 1 to 64 letters, digits, '-' or '_'");
}

}  // namespace
}  // namespace nimbus
