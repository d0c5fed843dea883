#include "observability/log_store.h"

#include <gtest/gtest.h>

#include "common/json_text.h"

namespace nimbus::observability {

TEST(LogStore, TailReturnsTheNewestLinesOldestFirst) {
  LogStore store(100);
  for (int i = 0; i < 5; ++i) store.Append("f", {i, "r", LogStream::kStdout, "line " + std::to_string(i)});
  auto tail = store.Tail("f", 2);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].text, "line 3");
  EXPECT_EQ(tail[1].text, "line 4");
}

TEST(LogStore, OldLinesFallOffOnceAFunctionExceedsItsBudget) {
  LogStore store(3);
  for (int i = 0; i < 10; ++i) store.Append("f", {i, "", LogStream::kStdout, std::to_string(i)});
  auto tail = store.Tail("f", 100);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail.front().text, "7");
}

TEST(LogStore, FiltersByRequestIdAndKeepsFunctionsApart) {
  LogStore store;
  store.Append("a", {1, "r1", LogStream::kStdout, "a1"});
  store.Append("a", {2, "r2", LogStream::kStderr, "a2"});
  store.Append("b", {3, "r1", LogStream::kStdout, "b1"});
  auto only = store.Tail("a", 10, "r2");
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].text, "a2");
  EXPECT_EQ(store.Tail("b", 10).size(), 1u);
  store.Drop("a");
  EXPECT_TRUE(store.Tail("a", 10).empty());
}


// Regression: the ring was bounded by lines only (10,000 of up to 64 KiB), so one function
// printing long lines grew the daemon by hundreds of megabytes.
TEST(LogStoreTest, AFunctionsRingIsBoundedInBytesAsWellAsLines) {
  LogStore store(10000, 1 << 20);
  for (int i = 0; i < 100; ++i) store.Append("loud", {i, "", LogStream::kStdout, std::string(64 * 1024, 'x')});
  auto tail = store.Tail("loud", 100000);
  EXPECT_LE(tail.size(), 16u);
  EXPECT_GE(tail.size(), 14u);
  EXPECT_EQ(tail.back().time_ms, 99);  // the newest lines are kept
  store.Append("quiet", {1, "", LogStream::kStdout, "one line"});
  EXPECT_EQ(store.Tail("quiet", 10).size(), 1u);
}

}  // namespace nimbus::observability

namespace nimbus::observability {

TEST(LogStoreTest, AnInvocationsPlatformLinesAreRenderedAsLambdaWritesThem) {
  LogStore store;
  store.AppendStart("f", 10, "req-1", "3");
  store.Append("f", {11, "req-1", LogStream::kStdout, "hello"});
  InvocationReport r;
  r.duration_ms = 1.234;
  r.billed_ms = 2;
  r.memory_mb = 128;
  r.max_memory_used_mb = 17;
  store.AppendEnd("f", 12, "req-1", r);
  r.init_ms = 35.5;
  store.AppendEnd("f", 13, "req-2", r);
  auto tail = store.Tail("f", 100);
  ASSERT_EQ(tail.size(), 6u);
  EXPECT_EQ(tail[0].text, "START RequestId: req-1 Version: 3");
  EXPECT_EQ(tail[0].stream, LogStream::kPlatform);
  EXPECT_EQ(tail[0].request_id, "req-1");
  EXPECT_EQ(tail[1].text, "hello");
  EXPECT_EQ(tail[2].text, "END RequestId: req-1");
  EXPECT_EQ(tail[2].time_ms, 12);
  EXPECT_EQ(tail[3].text,
            "REPORT RequestId: req-1\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 17 MB");
  EXPECT_EQ(tail[5].text,
            "REPORT RequestId: req-2\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 17 MB\tInit Duration: 35.50 ms");
  // A limit that falls inside an END/REPORT pair keeps the newest line of it.
  auto last = store.Tail("f", 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].text.rfind("REPORT RequestId: req-2", 0), 0u);
  auto one = store.Tail("f", 100, "req-1");
  ASSERT_EQ(one.size(), 4u);
  EXPECT_EQ(one[3].text.rfind("REPORT RequestId: req-1", 0), 0u);
}

TEST(LogStoreTest, EndAndReportCountAsTwoLinesOfTheBudget) {
  LogStore store(5);
  for (int i = 0; i < 10; ++i) store.AppendEnd("f", i, "r" + std::to_string(i), InvocationReport{});
  auto tail = store.Tail("f", 100);
  ASSERT_EQ(tail.size(), 4u);  // two END/REPORT pairs; a third would make 6 lines
  EXPECT_EQ(tail[0].text, "END RequestId: r8");
  EXPECT_EQ(tail[2].text, "END RequestId: r9");
}

}  // namespace nimbus::observability

namespace nimbus::observability {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER

std::string Replaced(std::string text) {
  ReplaceInvalidUtf8(text);
  return text;
}

TEST(ReplaceInvalidUtf8, LeavesAsciiAndValidMultibyteTextAloneAndSaysSo) {
  for (std::string text : {std::string(), std::string("plain ASCII, longer than eight bytes\t{\"k\": 1}"),
                           std::string("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E \xE6\x97\xA5\xE6\x9C\xAC"),
                           std::string("\xF4\x8F\xBF\xBF \xEF\xBF\xBF \xED\x9F\xBF \xEE\x80\x80")}) {
    std::string copy = text;
    EXPECT_FALSE(ReplaceInvalidUtf8(copy)) << text;
    EXPECT_EQ(copy, text);
  }
}

TEST(ReplaceInvalidUtf8, ReplacesAByteThatNeverStartsASequence) {
  std::string text = "ok \xFF then \xC3\xA9";
  EXPECT_TRUE(ReplaceInvalidUtf8(text));
  EXPECT_EQ(text, "ok " + kFffd + " then \xC3\xA9");
  EXPECT_EQ(Replaced("\xC1\xF5\xFE"), kFffd + kFffd + kFffd);
}

TEST(ReplaceInvalidUtf8, ReplacesEachStrayContinuationByte) {
  EXPECT_EQ(Replaced("a\x80\xBF" "b"), "a" + kFffd + kFffd + "b");
}

TEST(ReplaceInvalidUtf8, ReplacesATruncatedSequenceWithOneCharacter) {
  EXPECT_EQ(Replaced("abc\xE2\x82"), "abc" + kFffd);              // cut at the end of the line
  EXPECT_EQ(Replaced("\xE2\x82" "A"), kFffd + "A");                // cut by an ASCII byte
  EXPECT_EQ(Replaced("\xF0\x9F\x98!"), kFffd + "!");               // a 4-byte emoji missing its last
  EXPECT_EQ(Replaced("\xE2\x82\xE2\x82\xAC"), kFffd + "\xE2\x82\xAC");  // cut by the next character
  EXPECT_EQ(Replaced("\xC3"), kFffd);
}

TEST(ReplaceInvalidUtf8, ReplacesEachByteOfAnOverlongForm) {
  EXPECT_EQ(Replaced("\xC0\xAF"), kFffd + kFffd);                    // '/' in two bytes
  EXPECT_EQ(Replaced("\xE0\x80\xAF"), kFffd + kFffd + kFffd);        // '/' in three
  EXPECT_EQ(Replaced("\xF0\x80\x80\xAF"), kFffd + kFffd + kFffd + kFffd);
}

TEST(ReplaceInvalidUtf8, ReplacesEachByteOfAnEncodedSurrogate) {
  EXPECT_EQ(Replaced("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // U+D800
  EXPECT_EQ(Replaced("x\xED\xBF\xBFy"), "x" + kFffd + kFffd + kFffd + "y");  // U+DFFF
}

TEST(ReplaceInvalidUtf8, ReplacesEachByteOfAValuePastTheLastCodePoint) {
  EXPECT_EQ(Replaced("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // U+110000
}

TEST(ReplaceInvalidUtf8, FindsABadByteAfterALongAsciiRun) {
  std::string text = std::string(1000, 'a') + "\xFF" + std::string(7, 'b');
  EXPECT_EQ(Replaced(text), std::string(1000, 'a') + kFffd + std::string(7, 'b'));
}

TEST(ReplaceInvalidUtf8, AlwaysLeavesValidUtf8AndKeepsWhatWasValid) {
  // Every pair of bytes, and every lead byte with each second byte and a short or full tail,
  // between ASCII neighbours: the result is valid, and valid input is untouched.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (std::string tail : {"", "\x80", "\x80\x80", "z"}) {
        std::string in = std::string("<") + char(a) + char(b) + tail + ">";
        std::string out = Replaced(in);
        ASSERT_TRUE(IsValidUtf8(out)) << a << " " << b << " " << tail.size();
        if (IsValidUtf8(in)) ASSERT_EQ(out, in);
        ASSERT_EQ(out.front(), '<');
        ASSERT_EQ(out.back(), '>');
      }
    }
  }
}

TEST(LogStore, StoresAFunctionsInvalidUtf8AsValidTextSoItsLogsStayReadableAsJson) {
  LogStore store;
  store.Append("f", {1, "req-\xFF", LogStream::kStdout, "caf\xC3\xA9 \xE9t\xE9 \xE2\x82"});
  store.Append("f", {2, "req-2", LogStream::kStderr, "fine \xE2\x9C\x93"});
  auto tail = store.Tail("f", 10);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].text, "caf\xC3\xA9 " + kFffd + "t" + kFffd + " " + kFffd);
  EXPECT_EQ(tail[0].request_id, "req-" + kFffd);
  EXPECT_EQ(tail[1].text, "fine \xE2\x9C\x93");
  EXPECT_EQ(store.Tail("f", 10, "req-2").size(), 1u);
}

}  // namespace
}  // namespace nimbus::observability
