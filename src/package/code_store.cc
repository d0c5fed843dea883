#include "package/code_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "package/sha256.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;

Status FsError(const std::string& what, const std::error_code& ec) {
  return Status::Io(what + ": " + ec.message());
}

Status WriteFileDurably(const fs::path& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return Status::Io("could not create " + path.string() + ": " + std::strerror(errno));
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      return Status::Io("could not write " + path.string() + ": " + std::strerror(err));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Io("could not sync " + path.string() + ": " + std::strerror(err));
  }
  ::close(fd);
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
  if (Contains(sha)) {
    Entry e{sha, DirFor(sha), zip_bytes.size(), SumFileBytes(DirFor(sha))};
    return e;
  }
  std::error_code ec;
  for (const char* sub : {"tmp", "code", "packages"}) {
    fs::create_directories(root_ / sub, ec);
    if (ec) return FsError("could not create " + (root_ / sub).string(), ec);
  }
  std::string templ = (root_ / "tmp" / "put-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return Status::Io("could not create a staging directory under " + (root_ / "tmp").string() +
                      ": " + std::strerror(errno));
  }
  const fs::path staging(templ);
  auto fail = [&](Status st) {
    (void)RemoveTreeForce(staging);
    return st;
  };

  ExtractStats stats;
  Status st = ExtractZip(zip_bytes, staging / "code", limits, &stats);
  if (!st.ok()) return fail(st);
  st = WriteFileDurably(staging / "package.zip", zip_bytes);
  if (!st.ok()) return fail(st);
  st = MakeReadOnly(staging / "code");
  if (!st.ok()) return fail(st);

  // The zip first, the code directory last: a crash in between leaves an orphan zip that the
  // next Put of the same package overwrites, never a code directory without its zip.
  fs::rename(staging / "package.zip", ZipFor(sha), ec);
  if (ec) return fail(FsError("could not move the package into " + ZipFor(sha).string(), ec));
  SyncDir(root_ / "packages");
  if (::rename((staging / "code").c_str(), DirFor(sha).c_str()) != 0) {
    int err = errno;
    // Another Put of the same package got there first: same bytes, so theirs is ours.
    if (!((err == EEXIST || err == ENOTEMPTY) && Contains(sha))) {
      return fail(Status::Io("could not move the code into " + DirFor(sha).string() + ": " +
                             std::strerror(err)));
    }
  }
  SyncDir(root_ / "code");
  (void)RemoveTreeForce(staging);
  return Entry{sha, DirFor(sha), zip_bytes.size(), stats.unzipped_bytes};
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
