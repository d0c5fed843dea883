#include "package/no_space.h"

#include <cerrno>
#include <cstring>

namespace nimbus::package {

bool IsNoSpace(int err) { return err == ENOSPC || err == EDQUOT; }

Status NoSpace(const std::filesystem::path& dir, int err, std::string_view doing) {
  const bool quota = err == EDQUOT;
  return Status::ResourceExhausted(
      std::string(quota ? "disk quota exceeded" : "no space left") + " on the disk holding " +
      dir.string() + (quota ? " (EDQUOT)" : " (ENOSPC)") + " while " + std::string(doing) +
      "; free space on that disk" + (quota ? " or raise the quota" : "") + " and try again");
}

Status OsError(const std::filesystem::path& dir, std::string_view doing, std::string_view what,
               int err) {
  if (IsNoSpace(err)) return NoSpace(dir, err, doing);
  return Status::Io(std::string(what) + ": " + std::strerror(err));
}

}  // namespace nimbus::package
