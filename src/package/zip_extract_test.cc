// ExtractZip: what a package may hold, and every way a hostile package is refused.
#include "package/zip_extract.h"

#include <gtest/gtest.h>
#include <langinfo.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "package/test_small_disk.h"
#include "package/test_zip.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;
using testing::Dir;
using testing::File;
using testing::Link;
using testing::MakeArchive;
using testing::MakeZip;
using testing::MarkNamesUtf8;
using testing::PatchMode;

class ExtractZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-extract-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    base_ = templ;
    dest_ = base_ / "out";
  }
  void TearDown() override { fs::remove_all(base_); }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static unsigned Mode(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  // A refusal must leave no destination directory behind.
  void ExpectRefused(const Status& st, Code code, const std::string& needle) {
    EXPECT_EQ(st.code(), code) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
    EXPECT_FALSE(fs::exists(fs::symlink_status(dest_))) << "refusal left " << dest_;
  }

  fs::path base_;
  fs::path dest_;
};

TEST_F(ExtractZipTest, ExtractsNestedDirectoriesAndContents) {
  std::string zip = MakeZip({Dir("src/"), File("src/lib/util.py", "def f(): pass\n"),
                             File("function.yaml", "name: hello\n"), Dir("empty/")});
  ExtractStats stats;
  ASSERT_TRUE(ExtractZip(zip, dest_, {}, &stats).ok());
  EXPECT_EQ(Read(dest_ / "src/lib/util.py"), "def f(): pass\n");
  EXPECT_EQ(Read(dest_ / "function.yaml"), "name: hello\n");
  EXPECT_TRUE(fs::is_directory(dest_ / "empty"));
  EXPECT_EQ(Mode(dest_ / "src/lib"), 0755u);  // created implicitly as a parent
  EXPECT_EQ(stats.entries, 4u);
  EXPECT_EQ(stats.unzipped_bytes, 14u + 12u);
}

TEST_F(ExtractZipTest, KeepsTheExecutableBitAndNormalisesOtherModes) {
  std::string zip = MakeZip({File("bootstrap", "#!/bin/sh\n", 0700), File("data.txt", "x", 0600),
                             File("world.txt", "x", 0666), Dir("d/")});
  ASSERT_TRUE(ExtractZip(zip, dest_).ok());
  EXPECT_EQ(Mode(dest_ / "bootstrap"), 0755u);
  EXPECT_EQ(Mode(dest_ / "data.txt"), 0644u);
  EXPECT_EQ(Mode(dest_ / "world.txt"), 0644u);
  EXPECT_EQ(Mode(dest_ / "d"), 0755u);
  EXPECT_EQ(Mode(dest_), 0755u);
}

TEST_F(ExtractZipTest, KeepsRelativeSymlinksThatStayInside) {
  std::string zip = MakeZip({File("lib/real.so", "ELF"), Link("lib/alias.so", "real.so"),
                             Link("bin/tool", "../lib/real.so")});
  ASSERT_TRUE(ExtractZip(zip, dest_).ok());
  EXPECT_TRUE(fs::is_symlink(dest_ / "lib/alias.so"));
  EXPECT_EQ(fs::read_symlink(dest_ / "bin/tool"), "../lib/real.so");
  EXPECT_EQ(Read(dest_ / "bin/tool"), "ELF");
}

TEST_F(ExtractZipTest, RefusesPathTraversalWithDotDot) {
  std::string zip = MakeZip({File("ok.txt", "x"), File("../x", "evil")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'../x' climbs out");
  EXPECT_FALSE(fs::exists(base_ / "x"));
}

TEST_F(ExtractZipTest, RefusesDotDotEvenDeepInAPath) {
  std::string zip = MakeZip({File("a/b/../../../x", "evil")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "climbs out");
  EXPECT_FALSE(fs::exists(base_ / "x"));
}

TEST_F(ExtractZipTest, RefusesAbsolutePaths) {
  std::string zip = MakeZip({File("/etc/x", "evil")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'/etc/x' has an absolute path");
}

TEST_F(ExtractZipTest, RefusesASymlinkToAnAbsolutePath) {
  std::string zip = MakeZip({Link("passwd", "/etc/passwd")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument,
                "'passwd' is a symlink to the absolute path '/etc/passwd'");
}

TEST_F(ExtractZipTest, RefusesASymlinkThatClimbsOutOfThePackage) {
  std::string zip = MakeZip({Link("sub/x", "../../x")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument,
                "'sub/x' is a symlink to '../../x', which points outside the package");
}

TEST_F(ExtractZipTest, RefusesSymlinksThatEscapeThroughAnotherSymlink) {
  // Each link alone stays inside by its text; together e resolves to the package's parent.
  std::string zip = MakeZip({Dir("x/y/"), Link("x/y/d", "../.."), Link("e", "x/y/d/..")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'e' is a symlink");
}

TEST_F(ExtractZipTest, NeverWritesThroughASymlinkTheArchiveJustCreated) {
  fs::create_directories(base_ / "outside");
  std::string zip = MakeZip({Link("l", "../outside"), File("l/pwned", "evil")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'l/pwned' lies under 'l'");
  EXPECT_FALSE(fs::exists(base_ / "outside/pwned"));
}

// Zip has no way to say "hard link", and libarchive reads a zip's fifo as a plain file, so
// these entries reach the extraction loop through a tar, which can say both.
std::string TarWith(const std::function<void(struct archive_entry*)>& special) {
  std::string tar;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &tar, nullptr, testing::AppendTo, nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "real");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 1);
  archive_write_header(a, e);
  archive_write_data(a, "x", 1);
  archive_entry_clear(e);
  special(e);
  archive_write_header(a, e);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return tar;
}

Status ExtractTar(const std::string& tar, const fs::path& dest) {
  struct archive* r = archive_read_new();
  archive_read_support_format_tar(r);
  EXPECT_EQ(archive_read_open_memory(r, tar.data(), tar.size()), ARCHIVE_OK);
  Status st = internal::ExtractArchive(r, dest, {}, nullptr);
  archive_read_free(r);
  return st;
}

TEST_F(ExtractZipTest, RefusesHardLinks) {
  std::string tar = TarWith([](struct archive_entry* e) {
    archive_entry_set_pathname(e, "hard");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_hardlink(e, "real");
    archive_entry_set_size(e, 0);
  });
  ExpectRefused(ExtractTar(tar, dest_), Code::kInvalidArgument, "'hard' is a hard link to 'real'");
}

TEST_F(ExtractZipTest, RefusesAFifo) {
  std::string tar = TarWith([](struct archive_entry* e) {
    archive_entry_set_pathname(e, "pipe");
    archive_entry_set_filetype(e, AE_IFIFO);
    archive_entry_set_perm(e, 0644);
  });
  ExpectRefused(ExtractTar(tar, dest_), Code::kInvalidArgument, "'pipe' is a fifo");
}

TEST_F(ExtractZipTest, AZipClaimingAFifoNeverCreatesOne) {
  std::string zip = MakeZip({File("pipe", "")});
  ASSERT_TRUE(PatchMode(&zip, "pipe", S_IFIFO | 0644));
  // libarchive reads it as a plain file; either a refusal or a plain file is safe.
  Status st = ExtractZip(zip, dest_);
  if (st.ok()) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dest_ / "pipe")));
  } else {
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
  }
}

TEST_F(ExtractZipTest, RefusesACharacterDevice) {
  std::string zip = MakeZip({File("ok", "x"), File("dev", "")});
  ASSERT_TRUE(PatchMode(&zip, "dev", S_IFCHR | 0644));
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'dev' is a character device");
}

TEST_F(ExtractZipTest, RefusesASocket) {
  std::string zip = MakeZip({File("sock", "")});
  ASSERT_TRUE(PatchMode(&zip, "sock", S_IFSOCK | 0644));
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'sock' is a socket");
}

TEST_F(ExtractZipTest, RefusesMoreEntriesThanTheLimit) {
  std::string zip = MakeZip({File("a", "1"), File("b", "2"), File("c", "3"), File("d", "4")});
  Limits limits;
  limits.max_entries = 3;
  ExpectRefused(ExtractZip(zip, dest_, limits), Code::kInvalidArgument,
                "more than 3 entries");
  limits.max_entries = 4;
  EXPECT_TRUE(ExtractZip(zip, dest_, limits).ok());
}

TEST_F(ExtractZipTest, RefusesAPackageOverTheZippedLimitWithLambdasWording) {
  std::string big(static_cast<size_t>(61.2 * 1024 * 1024), 'z');
  ExpectRefused(ExtractZip(big, dest_), Code::kTooLarge,
                "package is 61.2 MB zipped; the limit is 50 MB (Lambda's limit)");
}

TEST_F(ExtractZipTest, RefusesAZipBombWithoutWritingPastTheLimit) {
  std::string zip = MakeArchive({File("small", "x")}, ARCHIVE_FORMAT_ZIP, 300ull << 20);
  ASSERT_LT(zip.size(), 2u << 20) << "zeros should compress well";
  Limits limits;
  limits.max_unzipped = 1 << 20;
  // If the extractor wrote past the limit, writes would fail with EFBIG (an Io error) instead
  // of the TooLarge refusal: the file size limit proves where it stopped.
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit tight = old;
  tight.rlim_cur = 2 << 20;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  Status st = ExtractZip(zip, dest_, limits);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  ExpectRefused(st, Code::kTooLarge, "package is over 1 MB unzipped (counted up to entry 'zeros')");
}

TEST_F(ExtractZipTest, RefusesAZipBombAtTheRealUnzippedLimit) {
  std::string zip = MakeArchive({}, ARCHIVE_FORMAT_ZIP, 300ull << 20);
  ASSERT_LT(zip.size(), Limits{}.max_zipped);
  ExpectRefused(ExtractZip(zip, dest_), Code::kTooLarge,
                "the limit is 250 MB (Lambda's limit)");
}

TEST_F(ExtractZipTest, RefusesBytesThatAreNotAZip) {
  ExpectRefused(ExtractZip("hello, I am a text file", dest_), Code::kInvalidArgument,
                "package is not a zip archive: ");
  ExpectRefused(ExtractZip("", dest_), Code::kInvalidArgument, "package is not a zip archive");
}

TEST_F(ExtractZipTest, RefusesAnEntryThatAppearsTwice) {
  std::string zip = MakeZip({File("a.txt", "1"), File("./a.txt", "2")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument, "'a.txt' appears more than once");
}

TEST_F(ExtractZipTest, LeavesAnExistingDestinationAlone) {
  fs::create_directories(dest_);
  std::ofstream(dest_ / "keep") << "mine";
  Status st = ExtractZip(MakeZip({File("a", "1")}), dest_);
  EXPECT_EQ(st.code(), Code::kAlreadyExists);
  EXPECT_TRUE(fs::exists(dest_ / "keep"));
}

// ---- names: UTF-8 on disk as in the zip, whatever the daemon's locale ----

// The daemon runs in the C locale, and so does this test binary; libarchive used to fail to
// convert a flagged non-ASCII name to it and report no name at all ("an entry with an empty
// name").
TEST_F(ExtractZipTest, ExtractsNonAsciiNamesFlaggedUtf8AsTheirUtf8Bytes) {
  ASSERT_STRNE(::nl_langinfo(CODESET), "UTF-8") << "the test must run in a non-UTF-8 locale";
  std::string zip = MakeZip({File("caf\xc3\xa9.json", "{}"),
                             File("na\xc3\xafve/\xe6\x97\xa5\xe6\x9c\xac.txt", "x")});
  MarkNamesUtf8(&zip);
  ASSERT_EQ(testing::CentralFlags(zip, "caf\xc3\xa9.json") & 0x800, 0x800);
  Status st = ExtractZip(zip, dest_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Read(dest_ / "caf\xc3\xa9.json"), "{}");
  EXPECT_EQ(Read(dest_ / "na\xc3\xafve/\xe6\x97\xa5\xe6\x9c\xac.txt"), "x");
}

TEST_F(ExtractZipTest, KeepsUnflaggedNamesThatAreValidUtf8) {
  // What tools on Linux and macOS often write: UTF-8 bytes without the flag.
  std::string zip = MakeZip({File("caf\xc3\xa9.json", "{}")});
  ASSERT_EQ(testing::CentralFlags(zip, "caf\xc3\xa9.json") & 0x800, 0);
  ASSERT_TRUE(ExtractZip(zip, dest_).ok());
  EXPECT_EQ(Read(dest_ / "caf\xc3\xa9.json"), "{}");
}

TEST_F(ExtractZipTest, RefusesAnUnflaggedNameInALegacyCodePage) {
  // 0x82 is 'é' in CP437, the zip format's default for names without the UTF-8 flag.
  std::string zip = MakeZip({File("ok.txt", "1"), File("caf\x82.txt", "2")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument,
                "package entry 'caf\\x82.txt' has a name that is not UTF-8 (it was written in a "
                "legacy code page such as CP437, without the zip's UTF-8 flag); rename the file");
}

TEST_F(ExtractZipTest, RefusesANameFlaggedUtf8ThatIsNot) {
  std::string zip = MakeZip({File("ok.txt", "1"), File("caf\x82.txt", "2")});
  MarkNamesUtf8(&zip);
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument,
                "package entry number 2 (after 'ok.txt') has a name that is not valid UTF-8 "
                "although the zip marks it as UTF-8");
}

TEST_F(ExtractZipTest, RefusesASymlinkWhoseTargetIsNotUtf8) {
  std::string zip = MakeZip({Link("l", "caf\x82.txt")});
  ExpectRefused(ExtractZip(zip, dest_), Code::kInvalidArgument,
                "package entry 'l' is a symlink whose target is not valid UTF-8");
}

TEST_F(ExtractZipTest, LeavesTheThreadsLocaleAsItWas) {
  const std::string before = ::nl_langinfo(CODESET);
  std::string zip = MakeZip({File("caf\xc3\xa9.json", "{}")});
  MarkNamesUtf8(&zip);
  ASSERT_TRUE(ExtractZip(zip, dest_).ok());
  EXPECT_EQ(::nl_langinfo(CODESET), before);
}

// ---- a full disk is the server's problem, not the package's ----

class ExtractZipFullDiskTest : public ExtractZipTest {
 protected:
  void SetUp() override {
    ExtractZipTest::SetUp();
    std::string why = disk_.Mount(base_ / "small", 1 << 20);
    if (!why.empty()) GTEST_SKIP() << why;
    dest_ = disk_.dir() / "out";
  }
  void TearDown() override {
    disk_.Unmount();  // before the base directory under it is removed
    ExtractZipTest::TearDown();
  }
  testing::SmallDisk disk_;
};

TEST_F(ExtractZipFullDiskTest, APackageLargerThanTheDiskIsResourceExhaustedAndLeavesNothing) {
  std::string zip = MakeArchive({File("small", "x")}, ARCHIVE_FORMAT_ZIP, 2 << 20);
  ASSERT_LT(zip.size(), 64u << 10) << "zeros should compress well";
  Status st = ExtractZip(zip, dest_);
  ExpectRefused(st, Code::kResourceExhausted,
                "no space left on the disk holding " + dest_.string() +
                    " (ENOSPC) while extracting the package (at entry 'zeros'); free space on "
                    "that disk and try again");
  EXPECT_EQ(disk_.UsedBytes(), 0u) << "the partly written package still takes space";
}

TEST_F(ExtractZipFullDiskTest, TheMessageNamesTheDirectoryTheCallerChose) {
  std::string zip = MakeArchive({}, ARCHIVE_FORMAT_ZIP, 2 << 20);
  Status st = ExtractZip(zip, dest_, {}, nullptr, "/srv/nimbus-data");
  ExpectRefused(st, Code::kResourceExhausted, "on the disk holding /srv/nimbus-data (ENOSPC)");
}

TEST(FormatMegabytesTest, PrintsWholeAndFractionalMegabytes) {
  EXPECT_EQ(FormatMegabytes(52428800), "50 MB");
  EXPECT_EQ(FormatMegabytes(262144000), "250 MB");
  EXPECT_EQ(FormatMegabytes(1572864), "1.5 MB");
}

}  // namespace
}  // namespace nimbus::package
