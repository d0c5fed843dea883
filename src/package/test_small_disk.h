// Test helper: a real, small filesystem (a tmpfs of a given size mounted on a fresh directory),
// so tests can fill a disk and see what ENOSPC does. Mounting needs root (CAP_SYS_ADMIN);
// tests call Mount() and skip with its reason when it fails.
#pragma once

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

namespace nimbus::package::testing {

class SmallDisk {
 public:
  SmallDisk() = default;
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  ~SmallDisk() { Unmount(); }

  // Unmounts (dropping whatever is on it) and removes the directory. Idempotent.
  void Unmount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    mounted_ = false;
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove(dir_, ec);
    }
    dir_.clear();
  }

  // Mounts a tmpfs of `bytes` on a new directory `dir`. Returns "" on success, else why not.
  std::string Mount(const std::filesystem::path& dir, uint64_t bytes) {
    if (::geteuid() != 0) return "mounting a small tmpfs needs root";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return "could not create " + dir.string() + ": " + ec.message();
    dir_ = dir;
    std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      return std::string("could not mount a tmpfs on ") + dir.string() + ": " +
             std::strerror(errno);
    }
    mounted_ = true;
    return "";
  }

  // Bytes in use on the filesystem (0 when everything written has been removed again).
  uint64_t UsedBytes() const {
    struct statvfs st;
    if (::statvfs(dir_.c_str(), &st) != 0) return UINT64_MAX;
    return static_cast<uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
  }

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace nimbus::package::testing
