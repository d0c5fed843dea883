#include "observability/log_store.h"

#include <gtest/gtest.h>

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
