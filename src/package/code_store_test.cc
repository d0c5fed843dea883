// CodeStore: content-addressed, idempotent, read-only, repaired by a redeploy, and a refusal
// or a full disk leaves no trace.
#include "package/code_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "package/sha256.h"
#include "package/test_small_disk.h"
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
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // path -> "type mode owner content-or-target" for every entry under `root`, root included.
  static std::map<std::string, std::string> Snapshot(const fs::path& root) {
    std::map<std::string, std::string> out;
    auto describe = [&](const fs::path& p) {
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) return std::string("missing");
      std::ostringstream d;
      d << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid << " ";
      if (S_ISLNK(st.st_mode)) d << "-> " << fs::read_symlink(p).string();
      if (S_ISREG(st.st_mode)) d << Read(p);
      return d.str();
    };
    out["."] = describe(root);
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
      out[it->path().lexically_relative(root).string()] = describe(it->path());
    }
    return out;
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

TEST_F(CodeStoreTest, PutOfAnIntactPresentPackageKeepsItsTree) {
  CodeStore store(root_);
  auto first = store.Put(zip_);
  ASSERT_TRUE(first.ok());
  const fs::path stored = root_ / "packages" / (first->sha256 + ".zip");
  struct stat before, zip_before;
  ASSERT_EQ(::stat(first->dir.c_str(), &before), 0);
  ASSERT_EQ(::stat(stored.c_str(), &zip_before), 0);
  auto second = store.Put(zip_);
  ASSERT_TRUE(second.ok());
  struct stat after, zip_after;
  ASSERT_EQ(::stat(second->dir.c_str(), &after), 0);
  ASSERT_EQ(::stat(stored.c_str(), &zip_after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the tree was replaced";
  EXPECT_EQ(zip_before.st_ino, zip_after.st_ino) << "the stored zip was rewritten";
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  EXPECT_EQ(second->sha256, first->sha256);
  EXPECT_EQ(second->unzipped_size, first->unzipped_size);
  EXPECT_EQ(second->zipped_size, first->zipped_size);
  auto got = store.Get(first->sha256);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->unzipped_size, first->unzipped_size);
  EXPECT_EQ(got->zipped_size, first->zipped_size);
}

// ---- a redeploy repairs a code directory that was changed on disk ----

// Deploys zip_, changes its code directory with `tamper`, deploys zip_ again, and expects the
// directory to be exactly what the first deploy made.
void ExpectRepairedAfter(const fs::path& root, const std::string& zip,
                         const std::function<void(const fs::path&)>& tamper,
                         const std::function<std::map<std::string, std::string>(const fs::path&)>&
                             snapshot) {
  CodeStore store(root);
  auto first = store.Put(zip);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto want = snapshot(first->dir);
  tamper(first->dir);
  ASSERT_NE(snapshot(first->dir), want) << "the tampering changed nothing";
  auto again = store.Put(zip);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->dir, first->dir);
  EXPECT_EQ(snapshot(again->dir), want);
  EXPECT_EQ(again->unzipped_size, first->unzipped_size);
  EXPECT_TRUE(fs::is_empty(root / "tmp")) << "the old tree was not removed";
}

TEST_F(CodeStoreTest, RedeployRestoresAModifiedFile) {
  ExpectRepairedAfter(root_, zip_, [](const fs::path& dir) {
    fs::permissions(dir / "lib/x.txt", fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(dir / "lib/x.txt", std::ios::trunc) << "changed by a process";
  }, Snapshot);
}

TEST_F(CodeStoreTest, RedeployRemovesAnAddedFile) {
  ExpectRepairedAfter(root_, zip_, [](const fs::path& dir) {
    fs::permissions(dir / "lib", fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(dir / "lib/added.py") << "import os\n";
  }, Snapshot);
}

TEST_F(CodeStoreTest, RedeployRestoresARemovedFile) {
  ExpectRepairedAfter(root_, zip_, [](const fs::path& dir) {
    fs::permissions(dir, fs::perms::owner_write, fs::perm_options::add);
    fs::remove(dir / "function.yaml");
    fs::permissions(dir, fs::perms::owner_write, fs::perm_options::remove);
  }, Snapshot);
}

TEST_F(CodeStoreTest, RedeployRestoresModesOwnersAndLinks) {
  ExpectRepairedAfter(root_, zip_, [](const fs::path& dir) {
    fs::permissions(dir / "function.yaml", static_cast<fs::perms>(0666));
    if (::geteuid() == 0) {
      ASSERT_EQ(::lchown((dir / "bootstrap").c_str(), 65534, 65534), 0);
    }
    fs::permissions(dir / "lib", fs::perms::owner_write, fs::perm_options::add);
    fs::remove(dir / "lib/y");
    fs::create_symlink("../function.yaml", dir / "lib/y");
  }, Snapshot);
}

TEST_F(CodeStoreTest, RedeployReplacesACodeDirectoryThatBecameASymlink) {
  fs::path elsewhere = root_ / "elsewhere";
  ExpectRepairedAfter(root_, zip_, [&](const fs::path& dir) {
    fs::create_directories(elsewhere);
    std::ofstream(elsewhere / "bootstrap") << "#!/bin/sh\necho evil\n";
    ASSERT_TRUE(RemoveTreeForce(dir).ok());
    fs::create_directory_symlink(elsewhere, dir);
  }, Snapshot);
  EXPECT_FALSE(fs::is_symlink(root_ / "code" / Sha256Hex(zip_)));
  EXPECT_TRUE(fs::exists(elsewhere / "bootstrap")) << "the link's target is not the store's";
}

TEST_F(CodeStoreTest, ARunningInstanceKeepsReadingAFileItHasOpenWhileTheTreeIsReplaced) {
  CodeStore store(root_);
  auto e = store.Put(zip_);
  ASSERT_TRUE(e.ok());
  fs::permissions(e->dir / "lib/x.txt", fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(e->dir / "lib/x.txt", std::ios::trunc) << "changed";
  int fd = ::open((e->dir / "lib/x.txt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(store.Put(zip_).ok());
  char buf[16] = {};
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 7);
  EXPECT_STREQ(buf, "changed");
  ::close(fd);
  EXPECT_EQ(Read(e->dir / "lib/x.txt"), "12345");
}

TEST_F(CodeStoreTest, RedeployRestoresAChangedStoredZip) {
  CodeStore store(root_);
  auto e = store.Put(zip_);
  ASSERT_TRUE(e.ok());
  const fs::path stored = root_ / "packages" / (e->sha256 + ".zip");
  fs::permissions(stored, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(stored, std::ios::trunc) << "not the package";
  ASSERT_TRUE(store.Put(zip_).ok());
  EXPECT_EQ(Read(stored), zip_);
  EXPECT_EQ(Mode(stored), 0444u);
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

// ---- a full disk is reported as such, naming the data directory, and leaves nothing ----

class CodeStoreFullDiskTest : public CodeStoreTest {
 protected:
  void SetUp() override {
    CodeStoreTest::SetUp();
    std::string why = disk_.Mount(root_ / "small", 1 << 20);
    if (!why.empty()) GTEST_SKIP() << why;
    data_ = disk_.dir();
  }
  void TearDown() override {
    disk_.Unmount();  // before the directory under it is removed
    CodeStoreTest::TearDown();
  }
  void ExpectNoTrace() {
    EXPECT_EQ(CountEntries(data_ / "code") + CountEntries(data_ / "packages") +
                  CountEntries(data_ / "tmp"),
              0u);
    EXPECT_EQ(disk_.UsedBytes(), 0u) << "something written is still on the disk";
  }
  // Bytes that do not compress, so the zip is as large as its contents.
  static std::string Incompressible(size_t n) {
    std::mt19937 gen(42);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(gen());
    return s;
  }

  testing::SmallDisk disk_;
  fs::path data_;
};

TEST_F(CodeStoreFullDiskTest, APackageThatDoesNotFitWhenExtractedIsResourceExhausted) {
  std::string zip = testing::MakeArchive({File("function.yaml", "name: f\n")},
                                         ARCHIVE_FORMAT_ZIP, 2 << 20);
  CodeStore store(data_);
  auto e = store.Put(zip);
  EXPECT_EQ(e.status().code(), Code::kResourceExhausted) << e.status().ToString();
  EXPECT_EQ(e.status().message(),
            "no space left on the disk holding " + data_.string() +
                " (ENOSPC) while extracting the package (at entry 'zeros'); free space on that "
                "disk and try again");
  ExpectNoTrace();
}

TEST_F(CodeStoreFullDiskTest, APackageThatDoesNotFitWhenSavedIsResourceExhausted) {
  // About 600 KiB extracted fits on the 1 MiB disk; the zip of the same size does not fit next
  // to it.
  std::string zip = MakeZip({File("function.yaml", "name: f\n"),
                             File("model.bin", Incompressible(600 << 10))});
  ASSERT_GT(zip.size(), 600u << 10);
  CodeStore store(data_);
  auto e = store.Put(zip);
  EXPECT_EQ(e.status().code(), Code::kResourceExhausted) << e.status().ToString();
  EXPECT_EQ(e.status().message().rfind("no space left on the disk holding " + data_.string() +
                                           " (ENOSPC) while saving the package; free space",
                                       0),
            0u)
      << e.status().message();
  ExpectNoTrace();
}

TEST_F(CodeStoreFullDiskTest, APackageThatFitsIsStored) {
  CodeStore store(data_);
  auto e = store.Put(zip_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(store.Contains(e->sha256));
}

}  // namespace
}  // namespace nimbus::package
