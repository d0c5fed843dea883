// CodeStore: content-addressed, idempotent, read-only, and a refusal leaves no trace.
#include "package/code_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "package/sha256.h"
#include "package/test_zip.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;
using testing::File;
using testing::Link;
using testing::MakeZip;

class CodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-codestore-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    root_ = templ;
    zip_ = MakeZip({File("function.yaml", "name: f\n"), File("bootstrap", "#!/bin/sh\n", 0755),
                    File("lib/x.txt", "12345"), Link("lib/y", "x.txt")});
  }
  void TearDown() override { (void)RemoveTreeForce(root_); }

  static unsigned Mode(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  static size_t CountEntries(const fs::path& dir) {
    if (!fs::exists(dir)) return 0;
    size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      ++n;
    }
    return n;
  }

  fs::path root_;
  std::string zip_;
};

TEST_F(CodeStoreTest, PutStoresTheZipAndAReadOnlyExtractedTreeUnderItsSha) {
  CodeStore store(root_);
  auto e = store.Put(zip_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->sha256, Sha256Hex(zip_));
  EXPECT_EQ(e->dir, root_ / "code" / e->sha256);
  EXPECT_EQ(store.DirFor(e->sha256), e->dir);
  EXPECT_EQ(e->zipped_size, zip_.size());
  EXPECT_EQ(e->unzipped_size, 8u + 10u + 5u);
  std::ifstream in(root_ / "packages" / (e->sha256 + ".zip"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), zip_);
  EXPECT_EQ(Mode(e->dir), 0555u);
  EXPECT_EQ(Mode(e->dir / "lib"), 0555u);
  EXPECT_EQ(Mode(e->dir / "function.yaml"), 0444u);
  EXPECT_EQ(Mode(e->dir / "bootstrap"), 0555u);
  EXPECT_EQ(fs::read_symlink(e->dir / "lib/y"), "x.txt");
  EXPECT_TRUE(store.Contains(e->sha256));
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

TEST_F(CodeStoreTest, PutOfAPresentPackageReturnsItWithoutExtractingAgain) {
  CodeStore store(root_);
  auto first = store.Put(zip_);
  ASSERT_TRUE(first.ok());
  struct stat before;
  ASSERT_EQ(::stat(first->dir.c_str(), &before), 0);
  auto second = store.Put(zip_);
  ASSERT_TRUE(second.ok());
  struct stat after;
  ASSERT_EQ(::stat(second->dir.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the tree was replaced";
  EXPECT_EQ(second->sha256, first->sha256);
  EXPECT_EQ(second->unzipped_size, first->unzipped_size);
  EXPECT_EQ(second->zipped_size, first->zipped_size);
  auto got = store.Get(first->sha256);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->unzipped_size, first->unzipped_size);
  EXPECT_EQ(got->zipped_size, first->zipped_size);
}

TEST_F(CodeStoreTest, ARefusedPackageLeavesNothingBehind) {
  CodeStore store(root_);
  std::string bad = MakeZip({File("ok.txt", "fine"), File("../escape", "evil")});
  auto e = store.Put(bad);
  EXPECT_EQ(e.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(store.Contains(Sha256Hex(bad)));
  EXPECT_EQ(CountEntries(root_ / "code"), 0u);
  EXPECT_EQ(CountEntries(root_ / "packages"), 0u);
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  EXPECT_FALSE(fs::exists(root_.parent_path() / "escape"));
}

TEST_F(CodeStoreTest, ATooLargePackageIsRefusedAndLeavesNothingBehind) {
  CodeStore store(root_);
  Limits limits;
  limits.max_unzipped = 4;
  auto e = store.Put(zip_, limits);
  EXPECT_EQ(e.status().code(), Code::kTooLarge);
  EXPECT_EQ(CountEntries(root_ / "code") + CountEntries(root_ / "packages") +
                CountEntries(root_ / "tmp"),
            0u);
}

TEST_F(CodeStoreTest, RemoveDeletesTheZipAndTheReadOnlyTree) {
  CodeStore store(root_);
  auto e = store.Put(zip_);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(store.Remove(e->sha256).ok());
  EXPECT_FALSE(store.Contains(e->sha256));
  EXPECT_FALSE(fs::exists(e->dir));
  EXPECT_FALSE(fs::exists(root_ / "packages" / (e->sha256 + ".zip")));
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  EXPECT_EQ(store.Remove(e->sha256).code(), Code::kNotFound);
  EXPECT_EQ(store.Get(e->sha256).status().code(), Code::kNotFound);
}

TEST_F(CodeStoreTest, NamesThatAreNotAShaNeverReachTheFilesystem) {
  CodeStore store(root_);
  fs::create_directories(root_ / "victim");
  EXPECT_FALSE(store.Contains("../victim"));
  EXPECT_EQ(store.Remove("../victim").code(), Code::kInvalidArgument);
  EXPECT_TRUE(fs::exists(root_ / "victim"));
}

TEST_F(CodeStoreTest, OpeningRemovesLeftoversOfAnInterruptedPut) {
  fs::create_directories(root_ / "tmp/put-abc123/code/lib");
  fs::permissions(root_ / "tmp/put-abc123/code", static_cast<fs::perms>(0555));
  CodeStore store(root_);
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

TEST_F(CodeStoreTest, ConcurrentPutsOfTheSamePackageAllSucceed) {
  CodeStore store(root_);
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto e = store.Put(zip_);
      results[i] = e.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store.Contains(Sha256Hex(zip_)));
  EXPECT_EQ(CountEntries(root_ / "code"), 1u + CountEntries(root_ / "code" / Sha256Hex(zip_)));
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

}  // namespace
}  // namespace nimbus::package
