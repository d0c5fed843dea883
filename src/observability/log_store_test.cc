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
