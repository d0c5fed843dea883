// UTF-8 entry names: what counts as UTF-8, how the rest is shown, and that the locale switch
// stays on the calling thread and ends with its scope.
#include "package/utf8_names.h"

#include <gtest/gtest.h>
#include <langinfo.h>

#include <string>
#include <thread>

namespace nimbus::package {
namespace {

TEST(IsUtf8Test, AcceptsAsciiAndWellFormedMultiByteCharacters) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("app.py"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9.json"));          // é
  EXPECT_TRUE(IsUtf8("\xe2\x82\xac"));              // €
  EXPECT_TRUE(IsUtf8("\xf0\x9f\x98\x80.txt"));      // U+1F600
  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));          // U+10FFFF, the last code point
}

TEST(IsUtf8Test, RefusesLegacyCodePagesAndMalformedSequences) {
  EXPECT_FALSE(IsUtf8("caf\x82.txt"));       // é in CP437
  EXPECT_FALSE(IsUtf8("caf\xe9.txt"));       // é in Latin-1, a lead byte without continuation
  EXPECT_FALSE(IsUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));      // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate, U+D800
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsUtf8("\xbf"));              // a lone continuation byte
}

TEST(EscapeNonUtf8Test, KeepsValidCharactersAndWritesOtherBytesAsHex) {
  EXPECT_EQ(EscapeNonUtf8("caf\x82.txt"), "caf\\x82.txt");
  EXPECT_EQ(EscapeNonUtf8("\xc3\xa9\xff"), "\xc3\xa9\\xff");
  EXPECT_EQ(EscapeNonUtf8("plain"), "plain");
}

TEST(ScopedUtf8NamesTest, MakesTheThreadUtf8OnlyForItsScope) {
  const std::string before = ::nl_langinfo(CODESET);
  {
    ScopedUtf8Names utf8;
    if (!utf8.active()) GTEST_SKIP() << "this system has no UTF-8 locale (C.UTF-8)";
    EXPECT_STREQ(::nl_langinfo(CODESET), "UTF-8");
    std::string other;
    std::thread([&] { other = ::nl_langinfo(CODESET); }).join();
    EXPECT_EQ(other, before) << "another thread's locale changed";
  }
  EXPECT_EQ(::nl_langinfo(CODESET), before);
}

}  // namespace
}  // namespace nimbus::package
