// ZipDirectory: a directory zipped and extracted again comes back the same, byte-identical
// zips for identical trees, and the same refusals as the extractor.
#include "package/zip_write.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "package/sha256.h"
#include "package/test_zip.h"
#include "package/zip_extract.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;

class ZipDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-zipdir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    base_ = templ;
    src_ = base_ / "fn";
    fs::create_directories(src_ / "lib/deep");
    Write("function.yaml", "name: hello\nruntime: provided\n");
    Write("bootstrap", "#!/bin/sh\necho hi\n");
    fs::permissions(src_ / "bootstrap", static_cast<fs::perms>(0755));
    Write("lib/deep/data.bin", std::string("\0\1\2binary", 9));
    fs::create_symlink("deep/data.bin", src_ / "lib/data");
    fs::create_directories(src_ / "empty");
  }
  void TearDown() override { fs::remove_all(base_); }

  void Write(const std::string& rel, const std::string& data) {
    std::ofstream(src_ / rel, std::ios::binary) << data;
  }

  // path -> "type mode content-or-target", for comparing trees.
  static std::map<std::string, std::string> Describe(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
      struct stat st;
      ::lstat(it->path().c_str(), &st);
      std::string rel = it->path().lexically_relative(root).string();
      std::ostringstream d;
      if (S_ISLNK(st.st_mode)) {
        d << "link " << fs::read_symlink(it->path()).string();
      } else if (S_ISDIR(st.st_mode)) {
        d << "dir";
      } else {
        std::ifstream in(it->path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        d << "file " << ((st.st_mode & 0100) ? "x " : "- ") << ss.str();
      }
      out[rel] = d.str();
    }
    return out;
  }

  fs::path base_;
  fs::path src_;
};

TEST_F(ZipDirectoryTest, RoundTripsThroughExtractZip) {
  auto zip = ZipDirectory(src_);
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  ASSERT_TRUE(ExtractZip(*zip, base_ / "out").ok());
  EXPECT_EQ(Describe(base_ / "out"), Describe(src_));
  EXPECT_EQ(Describe(base_ / "out")["bootstrap"], "file x #!/bin/sh\necho hi\n");
  EXPECT_EQ(Describe(base_ / "out")["lib/data"], "link deep/data.bin");
}

TEST_F(ZipDirectoryTest, GivesTheSameBytesForTheSameTree) {
  auto first = ZipDirectory(src_);
  ASSERT_TRUE(first.ok());
  // Timestamps and permission bits other than exec must not leak into the bytes.
  fs::last_write_time(src_ / "function.yaml", fs::file_time_type::clock::now() - std::chrono::hours(5));
  fs::permissions(src_ / "function.yaml", static_cast<fs::perms>(0600));
  auto second = ZipDirectory(src_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(Sha256Hex(*first), Sha256Hex(*second));
}

TEST_F(ZipDirectoryTest, GivesDifferentBytesWhenAFileChanges) {
  auto first = ZipDirectory(src_);
  Write("function.yaml", "name: hello\nruntime: python3\n");
  auto second = ZipDirectory(src_);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
}

TEST_F(ZipDirectoryTest, SkipsGitAndNimbusDirectories) {
  fs::create_directories(src_ / ".git/objects");
  Write(".git/HEAD", "ref: refs/heads/main\n");
  fs::create_directories(src_ / ".nimbus");
  Write(".nimbus/state", "x");
  fs::create_directories(src_ / "lib/.git");
  auto zip = ZipDirectory(src_);
  ASSERT_TRUE(zip.ok());
  ASSERT_TRUE(ExtractZip(*zip, base_ / "out").ok());
  EXPECT_FALSE(fs::exists(base_ / "out/.git"));
  EXPECT_FALSE(fs::exists(base_ / "out/.nimbus"));
  EXPECT_FALSE(fs::exists(base_ / "out/lib/.git"));
  EXPECT_TRUE(fs::exists(base_ / "out/function.yaml"));
}

TEST_F(ZipDirectoryTest, RefusesAnAbsoluteSymlink) {
  fs::create_symlink("/etc/passwd", src_ / "passwd");
  auto zip = ZipDirectory(src_);
  EXPECT_EQ(zip.status().code(), Code::kInvalidArgument);
  EXPECT_NE(zip.status().message().find("passwd is a symlink to '/etc/passwd'"), std::string::npos)
      << zip.status().message();
}

TEST_F(ZipDirectoryTest, RefusesASymlinkPointingOutsideTheDirectory) {
  fs::create_symlink("../../elsewhere", src_ / "lib/escape");
  auto zip = ZipDirectory(src_);
  EXPECT_EQ(zip.status().code(), Code::kInvalidArgument);
  EXPECT_NE(zip.status().message().find("points outside the directory"), std::string::npos);
}

TEST_F(ZipDirectoryTest, RefusesAFifo) {
  ASSERT_EQ(::mkfifo((src_ / "pipe").c_str(), 0644), 0);
  auto zip = ZipDirectory(src_);
  EXPECT_EQ(zip.status().code(), Code::kInvalidArgument);
  EXPECT_NE(zip.status().message().find("pipe is not a file, directory or symlink"),
            std::string::npos);
}

// The CLI may run in the C locale; names must still be stored as UTF-8 with the zip's UTF-8
// flag (general purpose bit 11), so any unzip tool reads them back right.
TEST_F(ZipDirectoryTest, StoresNonAsciiNamesAsUtf8WithTheUtf8Flag) {
  fs::create_directories(src_ / "na\xc3\xafve");
  Write("caf\xc3\xa9.json", "{}");
  Write("na\xc3\xafve/ok.txt", "x");
  auto zip = ZipDirectory(src_);
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_EQ(testing::CentralFlags(*zip, "caf\xc3\xa9.json") & 0x800, 0x800);
  EXPECT_EQ(testing::CentralFlags(*zip, "na\xc3\xafve/") & 0x800, 0x800);
  EXPECT_EQ(testing::CentralFlags(*zip, "function.yaml") & 0x800, 0)
      << "ASCII names keep the bytes they always had";
  ASSERT_TRUE(ExtractZip(*zip, base_ / "out").ok());
  EXPECT_EQ(Describe(base_ / "out"), Describe(src_));
}

TEST_F(ZipDirectoryTest, RefusesAFileNameThatIsNotUtf8) {
  Write("caf\x82.txt", "x");
  auto zip = ZipDirectory(src_);
  EXPECT_EQ(zip.status().code(), Code::kInvalidArgument);
  EXPECT_NE(zip.status().message().find("caf\\x82.txt has a name that is not UTF-8"),
            std::string::npos)
      << zip.status().message();
}

TEST_F(ZipDirectoryTest, RefusesSomethingThatIsNotADirectory) {
  auto zip = ZipDirectory(src_ / "function.yaml");
  EXPECT_EQ(zip.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace nimbus::package
