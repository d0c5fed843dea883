// Zips a function's directory the way Lambda packages are made, for `nimbus deploy DIR`.
//
// Paths are relative to the directory; files keep their executable bit in the unix mode (0755,
// else 0644); relative symlinks are stored as links; `.git` and `.nimbus` directories are
// skipped at any depth. Names are stored as UTF-8, with the zip's UTF-8 flag on non-ASCII names,
// whatever the locale. The output is deterministic: entries sorted by path, fixed timestamps,
// owner 0, so the same tree gives the same bytes and the same sha256 (which lets a deploy of an
// unchanged directory be recognised as a no-op). The zip's DOS timestamps are computed by
// libarchive in the local time zone, so bytes are stable per machine and time zone.
//
// Threading: blocking file I/O with no shared state; callable from any thread, but never from
// an event-loop thread.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"

namespace nimbus::package {

// Refuses (InvalidArgument, naming the path and what to do) what ExtractZip would refuse:
// absolute symlinks, symlinks resolving outside `dir`, devices, fifos, sockets, and names or
// link targets that are not UTF-8.
Result<std::string> ZipDirectory(const std::filesystem::path& dir);

}  // namespace nimbus::package
