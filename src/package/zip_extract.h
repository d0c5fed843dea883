// Safe extraction of a function package (a zip, as Lambda takes them) into a directory.
//
// Everything in a package is untrusted. The extractor refuses, before or while writing:
// absolute paths and '..' components, symlinks that are absolute or resolve outside the package
// (relative links inside are kept), hard links, devices, fifos and sockets, more than
// Limits::max_entries entries, more than Limits::max_zipped bytes zipped, and more than
// Limits::max_unzipped bytes unzipped, counted from the bytes actually written (header sizes
// are never trusted, so a zip bomb stops at the limit). It writes through directory file
// descriptors opened with O_NOFOLLOW, so no entry can write through a symlink another entry
// created. Entry names are UTF-8, on disk as in the zip, in any locale; a name that is not
// UTF-8 is refused. On any refusal, and on a full disk, the destination directory is removed
// entirely. docs/package.md describes the format and every refusal.
//
// Threading: blocking file I/O with no shared state; callable from any thread, but never from
// an event-loop thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

struct archive;  // libarchive's reader, for internal::ExtractArchive

namespace nimbus::package {

// Lambda's limits for a directly uploaded package.
struct Limits {
  uint64_t max_zipped = 52428800;     // 50 MiB
  uint64_t max_unzipped = 262144000;  // 250 MiB
  uint64_t max_entries = 20000;
};

// What an extraction wrote, for callers that record sizes.
struct ExtractStats {
  uint64_t entries = 0;
  uint64_t unzipped_bytes = 0;  // bytes of regular files written
};

// Extracts `zip_bytes` into `dest`, which must not exist (AlreadyExists if it does; it is then
// left alone) and is created along with missing parents. Directories are created 0755, files
// 0644, or 0755 when the archive marks them executable (a `bootstrap` stays runnable).
// Refusals: TooLarge for the size limits, InvalidArgument for everything else, each message
// naming the entry and what to do. A full disk or quota (ENOSPC, EDQUOT) is ResourceExhausted,
// its message naming the disk by `disk` (by `dest` when `disk` is empty: a caller extracting
// into scratch space names the directory its users know). Io for other local failures.
Status ExtractZip(std::string_view zip_bytes, const std::filesystem::path& dest,
                  const Limits& limits = {}, ExtractStats* stats = nullptr,
                  const std::filesystem::path& disk = {});

// "61.2 MB", "50 MB": sizes in the messages, in MiB as Lambda's documentation counts them.
std::string FormatMegabytes(uint64_t bytes);

namespace internal {
// The extraction loop over an already opened libarchive reader; ExtractZip opens a zip reader
// and calls this. Exposed so tests can feed it entries a zip cannot express (hard links).
// `dest` must not exist; `disk` as for ExtractZip. Does not free `reader`.
Status ExtractArchive(struct archive* reader, const std::filesystem::path& dest,
                      const Limits& limits, ExtractStats* stats,
                      const std::filesystem::path& disk = {});
}  // namespace internal

}  // namespace nimbus::package
