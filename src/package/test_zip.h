// Test helpers: builds zips (and one tar) in memory with libarchive, including entries a
// well-behaved zip tool would never write, by patching the unix mode in the central directory.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace nimbus::package::testing {

struct ZipItem {
  std::string path;
  mode_t type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK
  int perm = 0644;
  std::string data;
  std::string link;  // symlink target
};

inline ZipItem File(std::string path, std::string data, int perm = 0644) {
  return {std::move(path), AE_IFREG, perm, std::move(data), ""};
}
inline ZipItem Dir(std::string path) { return {std::move(path), AE_IFDIR, 0755, "", ""}; }
inline ZipItem Link(std::string path, std::string target) {
  return {std::move(path), AE_IFLNK, 0777, "", std::move(target)};
}

inline la_ssize_t AppendTo(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// `format` is ARCHIVE_FORMAT_ZIP or ARCHIVE_FORMAT_TAR_PAX_RESTRICTED.
// `zero_bytes` appends an entry "zeros" of that many zero bytes, fed in chunks (bomb tests).
inline std::string MakeArchive(const std::vector<ZipItem>& items, int format = ARCHIVE_FORMAT_ZIP,
                               uint64_t zero_bytes = 0) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format(a, format);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, AppendTo, nullptr);
  auto header = [&](struct archive_entry* e) {
    if (archive_write_header(a, e) < ARCHIVE_WARN) {
      throw std::runtime_error(std::string("test zip: ") + archive_error_string(a));
    }
  };
  for (const ZipItem& item : items) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, item.path.c_str());
    archive_entry_set_filetype(e, item.type);
    archive_entry_set_perm(e, item.perm);
    archive_entry_set_size(e, static_cast<la_int64_t>(item.data.size()));
    if (item.type == AE_IFLNK) archive_entry_set_symlink(e, item.link.c_str());
    header(e);
    if (!item.data.empty()) archive_write_data(a, item.data.data(), item.data.size());
    archive_entry_free(e);
  }
  if (zero_bytes > 0) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "zeros");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(zero_bytes));
    header(e);
    std::string chunk(1 << 20, '\0');
    for (uint64_t left = zero_bytes; left > 0;) {
      size_t n = left < chunk.size() ? static_cast<size_t>(left) : chunk.size();
      archive_write_data(a, chunk.data(), n);
      left -= n;
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string MakeZip(const std::vector<ZipItem>& items) { return MakeArchive(items); }

// Rewrites the unix mode (file type and permissions) that the central directory records for
// `name`, the way a hostile tool could. Returns false if the entry is not found.
inline bool PatchMode(std::string* zip, const std::string& name, uint32_t mode) {
  for (size_t p = zip->find("PK\x01\x02"); p != std::string::npos;
       p = zip->find("PK\x01\x02", p + 4)) {
    uint16_t name_len;
    std::memcpy(&name_len, zip->data() + p + 28, 2);
    if (zip->compare(p + 46, name_len, name) != 0) continue;
    uint32_t attr = mode << 16;
    std::memcpy(zip->data() + p + 38, &attr, 4);
    return true;
  }
  return false;
}

// Sets the UTF-8 flag (general purpose bit 11) on every entry, in the local headers and the
// central directory, as Python's zipfile and Info-ZIP do for non-ASCII names. The names'
// bytes are left as they are. Only for zips whose file data holds no header signature.
inline void MarkNamesUtf8(std::string* zip) {
  auto set_bit = [&](const char* signature, size_t flags_offset) {
    for (size_t p = zip->find(signature, 0, 4); p != std::string::npos;
         p = zip->find(signature, p + 4, 4)) {
      (*zip)[p + flags_offset + 1] = static_cast<char>((*zip)[p + flags_offset + 1] | 0x08);
    }
  };
  set_bit("PK\x03\x04", 6);  // local file header: flags at offset 6
  set_bit("PK\x01\x02", 8);  // central directory header: flags at offset 8
}

// The general purpose flags of `name`'s central directory entry; -1 if it is not found.
inline int CentralFlags(const std::string& zip, const std::string& name) {
  for (size_t p = zip.find("PK\x01\x02"); p != std::string::npos;
       p = zip.find("PK\x01\x02", p + 4)) {
    uint16_t name_len, flags;
    std::memcpy(&name_len, zip.data() + p + 28, 2);
    if (zip.compare(p + 46, name_len, name) != 0) continue;
    std::memcpy(&flags, zip.data() + p + 8, 2);
    return flags;
  }
  return -1;
}

}  // namespace nimbus::package::testing
