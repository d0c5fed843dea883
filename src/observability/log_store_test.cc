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

}  // namespace nimbus::observability
