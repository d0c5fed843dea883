#include "package/zip_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <system_error>
#include <vector>

#include "package/no_space.h"
#include "package/symlink_check.h"
#include "package/utf8_names.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;

constexpr char kShrinkAdvice[] =
    "leave out what the function does not need at run time (tests, docs, dev dependencies) "
    "or load large data from storage at run time";
constexpr char kRezipAdvice[] =
    "zip the function's directory with paths relative to it (for example "
    "`cd DIR && zip -r ../function.zip .`, or `nimbus deploy DIR`)";

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

constexpr char kRenameAdvice[] =
    "rename the file to a UTF-8 (or plain ASCII) name and zip it again with a tool that marks "
    "UTF-8 names (`nimbus deploy DIR`, Info-ZIP zip 3.0 in a UTF-8 locale, Python's zipfile)";

// What a full disk was interrupting, for its message.
std::string Extracting(std::string_view entry) {
  return entry.empty() ? "extracting the package"
                       : "extracting the package (at entry " + Quote(entry) + ")";
}

// 0, or the errno of the failed write.
int WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

const char* FileTypeName(mode_t type) {
  switch (type) {
    case AE_IFCHR: return "a character device";
    case AE_IFBLK: return "a block device";
    case AE_IFIFO: return "a fifo (named pipe)";
    case AE_IFSOCK: return "a socket";
    default: return "a special file";
  }
}

// One extraction: the reader, the open destination directory and what has been seen so far.
class Extractor {
 public:
  // `disk` is the directory a full-disk message names.
  Extractor(struct archive* reader, int root_fd, const Limits& limits, const fs::path& disk)
      : reader_(reader), root_fd_(root_fd), limits_(limits), disk_(disk) {}

  Status Run() {
    for (;;) {
      struct archive_entry* entry = nullptr;
      int r = archive_read_next_header(reader_, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        const char* err = archive_error_string(reader_);
        if (stats_.entries == 0) {
          return Status::InvalidArgument(std::string("package is not a zip archive: ") +
                                         (err ? err : "unreadable") +
                                         "; send a zip file (for example made with `zip -r`)");
        }
        return Damaged(err);
      }
      header_warned_ = r == ARCHIVE_WARN;
      if (++stats_.entries > limits_.max_entries) {
        return Status::InvalidArgument(
            "package has more than " + std::to_string(limits_.max_entries) +
            " entries; the limit is " + std::to_string(limits_.max_entries) + ": " +
            kShrinkAdvice);
      }
      NIMBUS_RETURN_IF_ERROR(ExtractEntry(entry));
    }
    // Every link is known now: check where each one resolves, through the others.
    for (const auto& [path, target] : links_) {
      switch (CheckLink(links_, path)) {
        case LinkVerdict::kInside: break;
        case LinkVerdict::kAbsolute:
        case LinkVerdict::kEscapes:
          return Status::InvalidArgument(
              "package entry " + Quote(path) + " is a symlink to " + Quote(target) +
              ", which points outside the package; copy the file it points to into the "
              "package, or link to it with a relative path inside the package");
        case LinkVerdict::kLoop:
          return Status::InvalidArgument("package entry " + Quote(path) + " is a symlink to " +
                                         Quote(target) +
                                         " that ends in a symlink loop; remove the loop");
      }
    }
    return Status::Ok();
  }

  const ExtractStats& stats() const { return stats_; }

 private:
  Status Damaged(const char* err) {
    return Status::InvalidArgument(std::string("package is a damaged zip archive: ") +
                                   (err ? err : "unreadable") + "; create the zip again");
  }

  // A failed OS call while writing `entry`: a full disk is the server's problem
  // (ResourceExhausted), anything else an Io error.
  Status OsError(const std::string& what, int err, std::string_view entry) {
    return package::OsError(disk_, Extracting(entry), what, err);
  }

  // Where an entry whose name cannot be shown sits in the archive.
  std::string Position() const {
    std::string at = "entry number " + std::to_string(stats_.entries);
    if (!last_name_.empty()) at += " (after " + Quote(last_name_) + ")";
    return at;
  }

  Status ExtractEntry(struct archive_entry* entry) {
    // Names are UTF-8 (ExtractArchive runs the reader with a UTF-8 character type). No name
    // means libarchive could not convert it: an entry flagged UTF-8 that is not.
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) {
      const char* err = archive_error_string(reader_);
      return Status::InvalidArgument("package " + Position() + " has a name that is not valid " +
                                     "UTF-8 although the zip marks it as UTF-8" +
                                     (err ? std::string(" (") + err + ")" : std::string()) +
                                     "; " + kRenameAdvice);
    }
    std::string name = raw;
    if (name.empty()) {
      return Status::InvalidArgument("package has an entry with an empty name; " +
                                     std::string(kRezipAdvice));
    }
    // A name without the UTF-8 flag is taken as written. Valid UTF-8 is kept (tools on Linux
    // and macOS write UTF-8 names without the flag); anything else is in some legacy code page
    // (CP437, the zip default, or a Windows one) that cannot be told apart reliably, so it is
    // refused rather than guessed: a wrong guess would give the file a name the code does not
    // use.
    if (!IsUtf8(name)) {
      return Status::InvalidArgument(
          "package entry " + Quote(EscapeNonUtf8(name)) +
          " has a name that is not UTF-8 (it was written in a legacy code page such as CP437, "
          "without the zip's UTF-8 flag); " + kRenameAdvice);
    }
    last_name_ = name;
    bool absolute = false, climbs = false;
    std::vector<std::string> parts = SplitEntryPath(name, &absolute, &climbs);
    if (absolute) {
      return Status::InvalidArgument("package entry " + Quote(name) +
                                     " has an absolute path; " + kRezipAdvice);
    }
    if (climbs) {
      return Status::InvalidArgument("package entry " + Quote(name) +
                                     " climbs out of the package with '..' (path traversal); " +
                                     kRezipAdvice);
    }
    if (const char* hardlink = archive_entry_hardlink(entry)) {
      return Status::InvalidArgument(
          "package entry " + Quote(name) + " is a hard link to " + Quote(hardlink) +
          "; hard links are not allowed: store the file itself (plain `zip -r` does)");
    }
    mode_t type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      return Status::InvalidArgument(
          "package entry " + Quote(name) + " is " + FileTypeName(type) +
          "; a package may hold only files, directories and relative symlinks: remove it "
          "from the function's directory");
    }
    if (parts.empty()) return Status::Ok();  // "./": the package root itself

    std::string path;
    for (const auto& p : parts) path += (path.empty() ? "" : "/") + p;
    auto parent = OpenParent(parts, path);
    if (!parent.ok()) return parent.status();
    Fd dir(*parent);
    const std::string& leaf = parts.back();

    if (type == AE_IFDIR) return MakeDir(dir.get(), leaf, path);
    if (type == AE_IFLNK) {
      // No target after a warning means libarchive could not convert it (as for names).
      const char* target = archive_entry_symlink(entry);
      std::string t = target ? target : "";
      if ((target == nullptr && header_warned_) || !IsUtf8(t)) {
        return Status::InvalidArgument(
            "package entry " + Quote(path) + " is a symlink whose target is not valid UTF-8; "
            "link to a file with a UTF-8 (or plain ASCII) name and zip it again");
      }
      if (t.empty() || t.front() == '/') {
        return Status::InvalidArgument(
            "package entry " + Quote(path) + " is a symlink to the absolute path " + Quote(t) +
            "; only relative links inside the package are allowed: copy the file into the "
            "package, or link to it with a relative path");
      }
      if (::symlinkat(t.c_str(), dir.get(), leaf.c_str()) != 0) {
        if (errno == EEXIST) return Duplicate(path);
        return OsError("could not create symlink " + Quote(path), errno, path);
      }
      links_[path] = t;
      return Status::Ok();
    }
    bool executable = (archive_entry_perm(entry) & 0111) != 0;
    return WriteFile(dir.get(), leaf, path, executable);
  }

  Status Duplicate(const std::string& path) {
    return Status::InvalidArgument("package entry " + Quote(path) +
                                   " appears more than once; " + kRezipAdvice);
  }

  // Opens (creating as needed) the directory holding the entry, one component at a time with
  // O_NOFOLLOW, so a symlink or file placed by an earlier entry is never written through.
  Result<int> OpenParent(const std::vector<std::string>& parts, const std::string& path) {
    Fd cur(::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
    if (!cur.valid()) return OsError("could not open the extraction directory", errno, path);
    std::string walked;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const char* comp = parts[i].c_str();
      walked += (walked.empty() ? "" : "/") + parts[i];
      constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
      int next = ::openat(cur.get(), comp, kFlags);
      if (next < 0 && errno == ENOENT) {
        if (::mkdirat(cur.get(), comp, 0755) != 0 && errno != EEXIST) {
          return OsError("could not create directory " + Quote(walked), errno, path);
        }
        next = ::openat(cur.get(), comp, kFlags);
        if (next >= 0 && ::fchmod(next, 0755) != 0) {
          int err = errno;
          ::close(next);
          return OsError("could not set the mode of " + Quote(walked), err, path);
        }
      }
      if (next < 0) {
        if (errno == ELOOP || errno == ENOTDIR) {
          return Status::InvalidArgument(
              "package entry " + Quote(path) + " lies under " + Quote(walked) +
              ", which the package itself makes a symlink or a file; a package must not "
              "write through its own links: store the files under their real directory");
        }
        return OsError("could not open directory " + Quote(walked), errno, path);
      }
      cur = Fd(next);
    }
    return cur.Release();  // the caller owns it now
  }

  Status MakeDir(int parent, const std::string& leaf, const std::string& path) {
    if (::mkdirat(parent, leaf.c_str(), 0755) != 0) {
      if (errno != EEXIST) return OsError("could not create directory " + Quote(path), errno, path);
      struct stat st;
      if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISDIR(st.st_mode)) {
        return Duplicate(path);
      }
      return Status::Ok();  // listed twice, or created earlier as a parent: both harmless
    }
    Fd fd(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid() || ::fchmod(fd.get(), 0755) != 0) {
      return OsError("could not set the mode of " + Quote(path), errno, path);
    }
    return Status::Ok();
  }

  Status WriteFile(int parent, const std::string& leaf, const std::string& path,
                   bool executable) {
    Fd fd(::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600));
    if (!fd.valid()) {
      if (errno == EEXIST) return Duplicate(path);
      return OsError("could not create " + Quote(path), errno, path);
    }
    char buf[64 * 1024];
    for (;;) {
      la_ssize_t n = archive_read_data(reader_, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) return Damaged(archive_error_string(reader_));
      // Counted before writing, from what decompression produced: a bomb stops here.
      if (stats_.unzipped_bytes + static_cast<uint64_t>(n) > limits_.max_unzipped) {
        return Status::TooLarge("package is over " + FormatMegabytes(limits_.max_unzipped) +
                                " unzipped (counted up to entry " + Quote(path) +
                                "); the limit is " + FormatMegabytes(limits_.max_unzipped) +
                                " (Lambda's limit): " + kShrinkAdvice);
      }
      stats_.unzipped_bytes += static_cast<uint64_t>(n);
      if (int err = WriteAll(fd.get(), buf, static_cast<size_t>(n)); err != 0) {
        return OsError("could not write " + Quote(path), err, path);
      }
    }
    if (::fchmod(fd.get(), executable ? 0755 : 0644) != 0) {
      return OsError("could not set the mode of " + Quote(path), errno, path);
    }
    return Status::Ok();
  }

  struct archive* reader_;
  int root_fd_;
  Limits limits_;
  fs::path disk_;
  ExtractStats stats_;
  std::string last_name_;                     // the last entry name read, for messages
  bool header_warned_ = false;                // libarchive warned about the current header
  std::map<std::string, std::string> links_;  // normalized path -> target
};

}  // namespace

std::string FormatMegabytes(uint64_t bytes) {
  char buf[64];
  if (bytes % (1024 * 1024) == 0) {
    std::snprintf(buf, sizeof buf, "%llu MB",
                  static_cast<unsigned long long>(bytes / (1024 * 1024)));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buf;
}

namespace internal {

Status ExtractArchive(struct archive* reader, const std::filesystem::path& dest,
                      const Limits& limits, ExtractStats* stats,
                      const std::filesystem::path& disk) {
  const fs::path& named = disk.empty() ? dest : disk;
  // libarchive converts names to the thread's locale charset while reading headers.
  ScopedUtf8Names utf8;
  std::error_code ec;
  if (dest.has_parent_path()) {
    fs::create_directories(dest.parent_path(), ec);
    if (ec) {
      return OsError(named, Extracting(""), "could not create " + dest.parent_path().string(),
                     ec.value());
    }
  }
  if (::mkdir(dest.c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      return Status::AlreadyExists("extraction directory " + dest.string() +
                                   " already exists; extract into a new directory");
    }
    return OsError(named, Extracting(""), "could not create " + dest.string(), errno);
  }
  Status st;
  {
    Fd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root.valid()) {
      st = OsError(named, Extracting(""), "could not open " + dest.string(), errno);
    } else if (::fchmod(root.get(), 0755) != 0) {
      st = OsError(named, Extracting(""), "could not set the mode of " + dest.string(), errno);
    } else {
      Extractor extractor(reader, root.get(), limits, named);
      st = extractor.Run();
      if (stats) *stats = extractor.stats();
    }
  }
  if (!st.ok()) fs::remove_all(dest, ec);  // a refused package leaves nothing behind
  return st;
}

}  // namespace internal

Status ExtractZip(std::string_view zip_bytes, const std::filesystem::path& dest,
                  const Limits& limits, ExtractStats* stats, const std::filesystem::path& disk) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dest, ec))) {
    return Status::AlreadyExists("extraction directory " + dest.string() +
                                 " already exists; extract into a new directory");
  }
  if (zip_bytes.size() > limits.max_zipped) {
    return Status::TooLarge("package is " + FormatMegabytes(zip_bytes.size()) +
                            " zipped; the limit is " + FormatMegabytes(limits.max_zipped) +
                            " (Lambda's limit): " + kShrinkAdvice);
  }
  // Before the reader exists: libarchive notes the locale's charset when it first converts.
  ScopedUtf8Names utf8;
  struct archive* reader = archive_read_new();
  if (!reader) return Status::Internal("libarchive could not allocate a reader");
  // The seekable zip reader trusts the central directory, which is where file types and unix
  // modes live; the streaming reader would have to guess them from local headers.
  archive_read_support_format_zip_seekable(reader);
  Status st;
  if (archive_read_open_memory(reader, zip_bytes.data(), zip_bytes.size()) != ARCHIVE_OK) {
    const char* err = archive_error_string(reader);
    st = Status::InvalidArgument(std::string("package is not a zip archive: ") +
                                 (err ? err : "unreadable") +
                                 "; send a zip file (for example made with `zip -r`)");
  } else {
    st = internal::ExtractArchive(reader, dest, limits, stats, disk);
  }
  archive_read_free(reader);
  return st;
}

}  // namespace nimbus::package
