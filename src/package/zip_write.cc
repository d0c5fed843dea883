#include "package/zip_write.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <vector>

#include "package/symlink_check.h"
#include "package/utf8_names.h"

namespace nimbus::package {
namespace {

namespace fs = std::filesystem;

// 1980-01-02 00:00:00 UTC: the DOS epoch plus a day, so the DOS date stays valid in any time zone.
constexpr time_t kFixedMtime = 315619200;

struct Item {
  std::string rel;  // '/'-separated, relative to the root
  fs::file_type type;
  bool executable = false;
  std::string link_target;
};

bool Skipped(const std::string& name) { return name == ".git" || name == ".nimbus"; }

Status Walk(const fs::path& root, const fs::path& dir, const std::string& prefix,
            std::vector<Item>* out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::Io("could not list " + dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::Io("could not list " + dir.string() + ": " + ec.message());
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    if (!IsUtf8(name)) {
      return Status::InvalidArgument(
          (dir / EscapeNonUtf8(name)).string() +
          " has a name that is not UTF-8; package entry names are UTF-8: rename it");
    }
    fs::file_status st = fs::symlink_status(p, ec);
    if (ec) return Status::Io("could not stat " + p.string() + ": " + ec.message());
    Item item{rel, st.type(), false, ""};
    switch (st.type()) {
      case fs::file_type::directory:
        if (Skipped(name)) continue;
        out->push_back(item);
        NIMBUS_RETURN_IF_ERROR(Walk(root, p, rel, out));
        break;
      case fs::file_type::regular:
        item.executable = (st.permissions() & (fs::perms::owner_exec | fs::perms::group_exec |
                                               fs::perms::others_exec)) != fs::perms::none;
        out->push_back(item);
        break;
      case fs::file_type::symlink: {
        item.link_target = fs::read_symlink(p, ec).string();
        if (ec) return Status::Io("could not read symlink " + p.string() + ": " + ec.message());
        if (!IsUtf8(item.link_target)) {
          return Status::InvalidArgument(
              p.string() + " is a symlink whose target is not UTF-8; package entry names are "
              "UTF-8: link to a file with a UTF-8 name");
        }
        out->push_back(item);
        break;
      }
      default:
        return Status::InvalidArgument(
            p.string() + " is not a file, directory or symlink (a device, fifo or socket); "
            "a package cannot hold it: move it out of the function's directory");
    }
  }
  return Status::Ok();
}

la_ssize_t AppendToString(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

Status ArchiveError(struct archive* a, const std::string& what) {
  const char* err = archive_error_string(a);
  return Status::Io("could not zip " + what + ": " + (err ? err : "libarchive error"));
}

Status AddFileData(struct archive* a, const fs::path& path, const std::string& rel) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::Io("could not open " + path.string() + ": " + std::strerror(errno));
  char buf[64 * 1024];
  Status st;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Status::Io("could not read " + path.string() + ": " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    if (archive_write_data(a, buf, static_cast<size_t>(n)) < 0) {
      st = ArchiveError(a, rel);
      break;
    }
  }
  ::close(fd);
  return st;
}

}  // namespace

Result<std::string> ZipDirectory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::InvalidArgument(dir.string() +
                                   " is not a directory; pass the function's directory");
  }
  std::vector<Item> items;
  NIMBUS_RETURN_IF_ERROR(Walk(dir, dir, "", &items));
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.rel < b.rel; });

  std::map<std::string, std::string> links;
  for (const Item& item : items) {
    if (item.type == fs::file_type::symlink) links[item.rel] = item.link_target;
  }
  for (const auto& [path, target] : links) {
    LinkVerdict v = CheckLink(links, path);
    if (v == LinkVerdict::kInside) continue;
    return Status::InvalidArgument(
        (dir / path).string() + " is a symlink to '" + target + "', which " +
        (v == LinkVerdict::kLoop ? "ends in a symlink loop" : "points outside the directory") +
        "; replace it with a copy of what it points to, or a relative link inside the directory");
  }

  std::string out;
  // Names are written as their UTF-8 bytes with the zip's UTF-8 flag (general purpose bit 11)
  // on every non-ASCII name, in any locale: libarchive converts from the thread's locale
  // charset, which this makes UTF-8, to the zip's, which hdrcharset makes UTF-8 and flagged.
  ScopedUtf8Names utf8;
  std::unique_ptr<struct archive, ArchiveWriteDeleter> a(archive_write_new());
  if (!a) return Status::Internal("libarchive could not allocate a writer");
  if (archive_write_set_format_zip(a.get()) != ARCHIVE_OK ||
      archive_write_set_options(a.get(), "zip:compression=deflate") != ARCHIVE_OK ||
      archive_write_set_options(a.get(), "zip:hdrcharset=UTF-8") != ARCHIVE_OK ||
      // Without this libarchive pads the output to 10 KiB blocks.
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr) != ARCHIVE_OK) {
    return ArchiveError(a.get(), dir.string());
  }
  for (const Item& item : items) {
    std::unique_ptr<struct archive_entry, EntryDeleter> e(archive_entry_new());
    const fs::path full = dir / item.rel;
    archive_entry_set_mtime(e.get(), kFixedMtime, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    if (item.type == fs::file_type::directory) {
      archive_entry_set_pathname(e.get(), (item.rel + "/").c_str());
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      archive_entry_set_perm(e.get(), 0755);
      archive_entry_set_size(e.get(), 0);
    } else if (item.type == fs::file_type::symlink) {
      archive_entry_set_pathname(e.get(), item.rel.c_str());
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_perm(e.get(), 0777);
      archive_entry_set_symlink(e.get(), item.link_target.c_str());
      archive_entry_set_size(e.get(), 0);
    } else {
      struct stat st;
      if (::lstat(full.c_str(), &st) != 0) {
        return Status::Io("could not stat " + full.string() + ": " + std::strerror(errno));
      }
      archive_entry_set_pathname(e.get(), item.rel.c_str());
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), item.executable ? 0755 : 0644);
      archive_entry_set_size(e.get(), st.st_size);
    }
    if (archive_write_header(a.get(), e.get()) < ARCHIVE_WARN) {
      return ArchiveError(a.get(), full.string());
    }
    if (item.type == fs::file_type::regular) {
      NIMBUS_RETURN_IF_ERROR(AddFileData(a.get(), full, full.string()));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return ArchiveError(a.get(), dir.string());
  return out;
}

}  // namespace nimbus::package
