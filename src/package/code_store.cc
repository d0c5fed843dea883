#include "package/code_store.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <system_error>
#include <vector>

#include "package/no_space.h"
#include "package/sha256.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;

Status FsError(const std::string& what, const std::error_code& ec) {
  return Status::Io(what + ": " + ec.message());
}

// A failed OS call while a package is stored: a full disk names the data directory `root`.
Status SaveError(const fs::path& root, const std::string& what, int err) {
  return OsError(root, "saving the package", what, err);
}

// Closes a file descriptor on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

Status WriteFileDurably(const fs::path& path, std::string_view bytes, const fs::path& root) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    const int err = errno;
    return SaveError(root, "could not create " + path.string(), err);
  }
  FdCloser closer{fd};
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int err = errno;
      return SaveError(root, "could not write " + path.string(), err);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  // Filesystems that allocate late report a full disk only here.
  if (::fsync(fd) != 0) {
    const int err = errno;
    return SaveError(root, "could not sync " + path.string(), err);
  }
  closer.fd = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    return SaveError(root, "could not close " + path.string(), err);
  }
  return Status::Ok();
}

// Opens a regular file for reading without following a symlink or blocking on a fifo; -1 on
// any failure or if it is something else.
int OpenRegular(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads up to `n` bytes, short only at the end of the file; -1 on error.
ssize_t ReadFull(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

constexpr size_t kCompareChunk = 64 * 1024;

// True when `path` is a regular file holding exactly `bytes`. Streams: never holds the file.
bool FileHolds(const fs::path& path, std::string_view bytes) {
  FdCloser f{OpenRegular(path)};
  if (f.fd < 0) return false;
  std::vector<char> buf(kCompareChunk);
  for (size_t at = 0;;) {
    ssize_t n = ReadFull(f.fd, buf.data(), buf.size());
    if (n < 0) return false;
    const std::string_view got(buf.data(), static_cast<size_t>(n));
    if (bytes.substr(std::min(at, bytes.size()), got.size()) != got) return false;
    at += got.size();
    if (got.size() < buf.size()) return at == bytes.size();
  }
}

// True when two regular files hold the same bytes. Streams: never holds either file.
bool SameContent(const fs::path& a, const fs::path& b) {
  FdCloser fa{OpenRegular(a)}, fb{OpenRegular(b)};
  if (fa.fd < 0 || fb.fd < 0) return false;
  std::vector<char> x(kCompareChunk), y(kCompareChunk);
  for (;;) {
    ssize_t n = ReadFull(fa.fd, x.data(), x.size());
    ssize_t m = ReadFull(fb.fd, y.data(), y.size());
    if (n < 0 || n != m || std::memcmp(x.data(), y.data(), static_cast<size_t>(n)) != 0) {
      return false;
    }
    if (static_cast<size_t>(n) < x.size()) return true;
  }
}

// What the comparison of two trees looks at: everything that can change what an instance
// reads or may do, but not timestamps.
struct NodeInfo {
  mode_t mode = 0;  // file type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;    // regular files
  std::string link;  // symlinks: the target
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

std::optional<NodeInfo> Describe(const fs::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  NodeInfo n{st.st_mode, st.st_uid, st.st_gid, S_ISREG(st.st_mode) ? st.st_size : 0, ""};
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    n.link = fs::read_symlink(path, ec).string();
    if (ec) return std::nullopt;
  }
  return n;
}

// Relative path -> NodeInfo for the tree under `root` (root itself is ""); nullopt when the
// tree cannot be read completely.
std::optional<std::map<std::string, NodeInfo>> DescribeTree(const fs::path& root) {
  std::map<std::string, NodeInfo> out;
  std::optional<NodeInfo> top = Describe(root);
  if (!top) return std::nullopt;
  out[""] = *top;
  if (!S_ISDIR(top->mode)) return out;
  std::error_code ec;
  // Symlinks are listed, never followed.
  for (fs::recursive_directory_iterator it(root, ec), end; it != end; it.increment(ec)) {
    if (ec) return std::nullopt;
    std::optional<NodeInfo> n = Describe(it->path());
    if (!n) return std::nullopt;
    out[it->path().lexically_relative(root).string()] = *n;
  }
  if (ec) return std::nullopt;
  return out;
}

// True when `existing` holds exactly what `fresh` holds: the same names, types, modes, owners,
// link targets and file contents. Anything unreadable counts as different.
bool SameTree(const fs::path& fresh, const fs::path& existing) {
  auto a = DescribeTree(fresh);
  auto b = DescribeTree(existing);
  if (!a || !b || *a != *b) return false;
  for (const auto& [rel, info] : *a) {
    if (S_ISREG(info.mode) && !SameContent(fresh / rel, existing / rel)) return false;
  }
  return true;
}

// Puts the tree at `fresh` in place of whatever is at `target`, atomically: renameat2 with
// RENAME_EXCHANGE swaps the two names in one step, so a launch never finds `target` missing,
// and the old tree ends up at `fresh` for the caller to remove. Filesystems without
// RENAME_EXCHANGE get two renames (the old tree to `old_slot`, then the fresh one into place),
// with a moment in which `target` is missing.
Status ReplaceTree(const fs::path& fresh, const fs::path& target, const fs::path& old_slot,
                   const fs::path& root) {
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    return Status::Ok();
  }
  if (const int err = errno; err != EINVAL && err != ENOSYS && err != ENOTSUP) {
    return SaveError(root, "could not replace " + target.string(), err);
  }
  if (::rename(target.c_str(), old_slot.c_str()) != 0) {
    const int err = errno;
    return SaveError(root, "could not move " + target.string() + " aside", err);
  }
  if (::rename(fresh.c_str(), target.c_str()) != 0) {
    int err = errno;
    (void)::rename(old_slot.c_str(), target.c_str());  // put back what was there
    return SaveError(root, "could not move the code into " + target.string(), err);
  }
  return Status::Ok();
}

// Makes a rename into `dir` survive a power loss. Best effort: not every filesystem allows it.
void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Files 0444 (0555 if executable), directories 0555; symlinks have no mode of their own.
Status MakeReadOnly(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; it != end; it.increment(ec)) {
    if (ec) return FsError("could not walk " + dir.string(), ec);
    fs::file_status st = it->symlink_status(ec);
    if (ec) return FsError("could not stat " + it->path().string(), ec);
    fs::perms mode;
    if (st.type() == fs::file_type::directory) {
      mode = static_cast<fs::perms>(0555);
    } else if (st.type() == fs::file_type::regular) {
      bool exec = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      mode = static_cast<fs::perms>(exec ? 0555 : 0444);
    } else {
      continue;
    }
    fs::permissions(it->path(), mode, fs::perm_options::replace, ec);
    if (ec) return FsError("could not make " + it->path().string() + " read-only", ec);
  }
  if (ec) return FsError("could not walk " + dir.string(), ec);
  fs::permissions(dir, static_cast<fs::perms>(0555), fs::perm_options::replace, ec);
  if (ec) return FsError("could not make " + dir.string() + " read-only", ec);
  return Status::Ok();
}

uint64_t SumFileBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; it != end; it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace

Status RemoveTreeForce(const fs::path& path) {
  std::error_code ec;
  fs::file_status st = fs::symlink_status(path, ec);
  if (!fs::exists(st)) return Status::Ok();
  if (st.type() == fs::file_type::directory) {
    // Directories need write permission for their entries to be unlinked (unless root).
    fs::permissions(path, static_cast<fs::perms>(0755), fs::perm_options::replace, ec);
    for (fs::recursive_directory_iterator it(path, ec), end; it != end; it.increment(ec)) {
      if (ec) break;
      if (it->symlink_status(ec).type() == fs::file_type::directory) {
        fs::permissions(it->path(), static_cast<fs::perms>(0755), fs::perm_options::replace, ec);
      }
    }
  }
  fs::remove_all(path, ec);
  if (ec) return FsError("could not remove " + path.string(), ec);
  return Status::Ok();
}

CodeStore::CodeStore(std::filesystem::path root) : root_(std::move(root)) {
  // Staging directories outlive only a crash mid-Put; nothing refers to them.
  std::error_code ec;
  fs::path tmp = root_ / "tmp";
  if (fs::is_directory(tmp, ec)) {
    for (fs::directory_iterator it(tmp, ec), end; it != end; it.increment(ec)) {
      if (ec) break;
      (void)RemoveTreeForce(it->path());
    }
  }
}

fs::path CodeStore::DirFor(const std::string& sha256) const { return root_ / "code" / sha256; }

fs::path CodeStore::ZipFor(const std::string& sha256) const {
  return root_ / "packages" / (sha256 + ".zip");
}

bool CodeStore::Contains(const std::string& sha256) const {
  std::error_code ec;
  // The code directory is renamed into place last, so its presence means the Put completed.
  return IsSha256Hex(sha256) && fs::is_directory(DirFor(sha256), ec);
}

Result<CodeStore::Entry> CodeStore::Get(const std::string& sha256) const {
  if (!Contains(sha256)) {
    return Status::NotFound("code package " + sha256 + " is not in the code store at " +
                            root_.string() + "; deploy the function again");
  }
  std::error_code ec;
  Entry e{sha256, DirFor(sha256), 0, SumFileBytes(DirFor(sha256))};
  uintmax_t zipped = fs::file_size(ZipFor(sha256), ec);
  if (!ec) e.zipped_size = zipped;
  return e;
}

Result<CodeStore::Entry> CodeStore::Put(std::string_view zip_bytes, const Limits& limits) {
  const std::string sha = Sha256Hex(zip_bytes);
  std::error_code ec;
  for (const char* sub : {"tmp", "code", "packages"}) {
    fs::create_directories(root_ / sub, ec);
    if (ec) return SaveError(root_, "could not create " + (root_ / sub).string(), ec.value());
  }
  std::string templ = (root_ / "tmp" / "put-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    const int err = errno;
    return SaveError(root_,
                     "could not create a staging directory under " + (root_ / "tmp").string(), err);
  }
  const fs::path staging(templ);
  const fs::path fresh = staging / "code";
  auto fail = [&](Status st) {
    (void)RemoveTreeForce(staging);
    return st;
  };

  // Every Put extracts, also when the package's directory already exists: the tree on disk is
  // then compared with the fresh extraction and replaced if they differ (see ReplaceTree).
  // Comparing with a fresh extraction, rather than reading the zip a second way, keeps the
  // extractor the one definition of what a package holds (its normalised names, implied
  // directories and modes), and an intact tree stays in place, so instances running from it
  // are not disturbed by a redeploy of the same code.
  ExtractStats stats;
  Status st = ExtractZip(zip_bytes, fresh, limits, &stats, root_);
  if (!st.ok()) return fail(st);
  st = MakeReadOnly(fresh);
  if (!st.ok()) return fail(st);

  // The zip first, the code directory last: a crash in between leaves an orphan zip that the
  // next Put of the same package replaces, never a code directory without its zip.
  const fs::path zip_path = ZipFor(sha);
  const bool zip_was_there = fs::exists(fs::symlink_status(zip_path, ec));
  if (!FileHolds(zip_path, zip_bytes)) {
    st = WriteFileDurably(staging / "package.zip", zip_bytes, root_);
    if (!st.ok()) return fail(st);
    if (::rename((staging / "package.zip").c_str(), zip_path.c_str()) != 0) {
      const int err = errno;
      return fail(SaveError(root_, "could not move the package into " + zip_path.string(), err));
    }
    SyncDir(root_ / "packages");
  }

  const fs::path dir = DirFor(sha);
  struct stat existing;
  if (::lstat(dir.c_str(), &existing) != 0) {
    if (::rename(fresh.c_str(), dir.c_str()) != 0) {
      int err = errno;
      // Another Put of the same package got there first: same bytes, so theirs is ours.
      if (!((err == EEXIST || err == ENOTEMPTY) && Contains(sha))) {
        if (!zip_was_there) fs::remove(zip_path, ec);
        return fail(SaveError(root_, "could not move the code into " + dir.string(), err));
      }
    }
  } else if (!SameTree(fresh, dir)) {
    st = ReplaceTree(fresh, dir, staging / "old", root_);
    if (!st.ok()) return fail(st);
  }
  SyncDir(root_ / "code");
  // After a replacement this removes the old tree: instances that still have its files open
  // keep reading them until they close them.
  (void)RemoveTreeForce(staging);
  return Entry{sha, dir, zip_bytes.size(), stats.unzipped_bytes};
}

Status CodeStore::Remove(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) {
    return Status::InvalidArgument("'" + sha256 +
                                   "' is not a sha256 (64 lowercase hex digits); pass the "
                                   "code_sha256 of a version");
  }
  std::error_code ec;
  bool has_dir = fs::is_directory(DirFor(sha256), ec);
  bool has_zip = fs::exists(ZipFor(sha256), ec);
  if (!has_dir && !has_zip) {
    return Status::NotFound("code package " + sha256 + " is not in the code store at " +
                            root_.string() + "; nothing to remove");
  }
  if (has_dir) {
    // Move it out of code/ atomically first, so no reader ever sees a half-deleted tree.
    fs::create_directories(root_ / "tmp", ec);
    std::string templ = (root_ / "tmp" / "rm-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return Status::Io("could not create a staging directory under " +
                        (root_ / "tmp").string() + ": " + std::strerror(errno));
    }
    fs::path doomed = fs::path(templ) / "code";
    if (::rename(DirFor(sha256).c_str(), doomed.c_str()) != 0) {
      int err = errno;
      (void)RemoveTreeForce(templ);
      return Status::Io("could not remove " + DirFor(sha256).string() + ": " + std::strerror(err));
    }
    NIMBUS_RETURN_IF_ERROR(RemoveTreeForce(templ));
  }
  if (has_zip) {
    fs::remove(ZipFor(sha256), ec);
    if (ec) return FsError("could not remove " + ZipFor(sha256).string(), ec);
  }
  return Status::Ok();
}

}  // namespace nimbus::package
