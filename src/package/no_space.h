// A full disk while a package is saved or extracted is the server's problem, not the package's:
// ENOSPC (no space left) and EDQUOT (disk quota exceeded) become Code::kResourceExhausted, with
// a message that names the disk by a directory on it and says what to do. Every other errno
// stays an Io error.
//
// Threading: pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace nimbus::package {

// True for ENOSPC and EDQUOT.
bool IsNoSpace(int err);

// "no space left on the disk holding DIR (ENOSPC) while DOING; free space on that disk and try
// again" (EDQUOT: "disk quota exceeded ... (EDQUOT) ..."). `err` must satisfy IsNoSpace.
Status NoSpace(const std::filesystem::path& dir, int err, std::string_view doing);

// The Status for a failed OS call: NoSpace(dir, err, doing) for ENOSPC and EDQUOT, otherwise
// Io("WHAT: strerror"), e.g. WHAT = "could not create 'a/b'".
Status OsError(const std::filesystem::path& dir, std::string_view doing, std::string_view what,
               int err);

}  // namespace nimbus::package
