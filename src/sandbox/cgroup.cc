// Cgroup layout detection and per-instance groups; see cgroup.h for the contract.
#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

namespace nimbus::sandbox {
namespace {

// The controllers nimbus uses, in the order Describe() names them.
constexpr const char* kWanted[] = {"memory", "pids"};

// Words in a v1 super-options field that name a controller (anything else is a mount option
// such as "rw", "noprefix" or "name=systemd").
constexpr const char* kV1Controllers[] = {"cpu",     "cpuacct", "cpuset",     "memory",
                                          "devices", "freezer", "net_cls",    "net_prio",
                                          "blkio",   "pids",    "perf_event", "hugetlb",
                                          "rdma",    "misc"};

std::string ErrnoText(int err) { return std::strerror(err); }

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, std::string_view word) {
  return std::find(v.begin(), v.end(), word) != v.end();
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo (octal).
std::string UnescapeMountPath(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](size_t j) { return s[j] >= '0' && s[j] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1) && octal(i + 2) &&
        octal(i + 3)) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Status::Io("cannot open " + path + ": " + ErrnoText(err));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::Io("cannot read " + path + ": " + ErrnoText(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Writes `data` to an existing cgroup file in one write(2), as cgroupfs expects. Returns 0 or
// the errno.
int WriteFileErrno(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  ssize_t n;
  do {
    n = ::write(fd, data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) err = errno;
  ::close(fd);
  return err;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Parses the leading unsigned decimal of `s`; nullopt when there is none.
std::optional<uint64_t> ParseU64(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.remove_prefix(1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

// Value of the "key N" line in a flat-keyed cgroup file (memory.events, memory.oom_control).
std::optional<uint64_t> KeyedValue(std::string_view text, std::string_view key) {
  for (std::string_view line : Split(text, '\n')) {
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return ParseU64(line.substr(key.size() + 1));
    }
  }
  return std::nullopt;
}

// Reads a small cgroup file from offset 0 of a descriptor kept open; cgroupfs regenerates the
// content on every read at offset 0.
std::optional<std::string> PreadSmall(int fd) {
  if (fd < 0) return std::nullopt;
  char buf[512];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Accepts one path component that is safe to use as a directory name.
bool IsSafeComponent(std::string_view c) {
  if (c.empty() || c == "." || c == ".." || c.size() > 200) return false;
  for (char ch : c) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

Status PermissionAdvice(const std::string& what, const std::string& path, int err) {
  if (err == EACCES || err == EPERM) {
    return Status::FailedPrecondition(
        "cannot " + what + " " + path + ": " + ErrnoText(err) +
        "; run nimbus as root (or delegate a cgroup subtree to its user) to enforce function "
        "memory limits");
  }
  if (err == EROFS) {
    return Status::FailedPrecondition(
        "cannot " + what + " " + path + ": the cgroup filesystem is mounted read-only; mount it "
        "read-write (for a container: run it privileged or with a writable cgroup mount)");
  }
  return Status::FailedPrecondition("cannot " + what + " " + path + ": " + ErrnoText(err));
}

// On v2, makes `controllers` available to the children of `dir` unless they already are.
Status EnableSubtreeControllers(const std::string& dir,
                                const std::vector<std::string>& controllers) {
  const std::string file = dir + "/cgroup.subtree_control";
  Result<std::string> current = ReadFile(file);
  if (!current.ok()) return Status::FailedPrecondition(current.status().message());
  std::vector<std::string> enabled;
  for (std::string_view w : Split(*current, ' ')) {
    while (!w.empty() && w.back() == '\n') w.remove_suffix(1);
    if (!w.empty()) enabled.emplace_back(w);
  }
  for (const std::string& c : controllers) {
    if (Contains(enabled, c)) continue;
    int err = WriteFileErrno(file, "+" + c);
    if (err == EBUSY) {
      return Status::FailedPrecondition(
          "cannot enable the " + c + " controller in " + file +
          ": the group holds processes of its own, and cgroup v2 then refuses controllers for "
          "its children; move those processes into a child group (for example " + dir +
          "/init) and start nimbus again");
    }
    if (err != 0) return PermissionAdvice("enable " + c + " in", file, err);
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layout detection

CgroupMounts ParseCgroupMounts(std::string_view mountinfo) {
  CgroupMounts mounts;
  for (std::string_view line : Split(mountinfo, '\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS
    std::vector<std::string_view> f = Split(line, ' ');
    auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
    if (dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 4) continue;
    std::string_view fstype = dash[1];
    std::string_view super_opts = dash[3];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;

    CgroupHierarchy h;
    h.mount_point = UnescapeMountPath(f[4]);
    std::vector<std::string> mount_opts;
    for (std::string_view o : Split(f[5], ',')) mount_opts.emplace_back(o);
    std::vector<std::string> sopts;
    for (std::string_view o : Split(super_opts, ',')) sopts.emplace_back(o);
    h.read_only = Contains(mount_opts, "ro") || Contains(sopts, "ro");

    if (fstype == "cgroup2") {
      h.version = 2;
      if (!mounts.v2) mounts.v2 = std::move(h);  // a bind mount of the same tree adds nothing
      continue;
    }
    h.version = 1;
    for (const char* c : kV1Controllers) {
      if (Contains(sopts, c)) h.controllers.emplace_back(c);
    }
    if (h.controllers.empty()) continue;  // e.g. name=systemd
    // A controller lives in one v1 hierarchy; a second mount of it is a bind mount.
    bool seen = std::any_of(mounts.v1.begin(), mounts.v1.end(), [&](const CgroupHierarchy& o) {
      return o.controllers == h.controllers;
    });
    if (!seen) mounts.v1.push_back(std::move(h));
  }
  return mounts;
}

std::vector<CgroupHierarchy> ChooseHierarchies(const CgroupMounts& mounts,
                                               const std::vector<std::string>& v2_available) {
  std::vector<CgroupHierarchy> chosen;
  auto add = [&](const CgroupHierarchy& from, const char* controller) {
    for (CgroupHierarchy& c : chosen) {
      if (c.mount_point == from.mount_point) {
        c.controllers.emplace_back(controller);
        return;
      }
    }
    CgroupHierarchy h = from;
    h.controllers = {controller};
    chosen.push_back(std::move(h));
  };
  for (const char* want : kWanted) {
    auto v1 = std::find_if(mounts.v1.begin(), mounts.v1.end(),
                           [&](const CgroupHierarchy& h) { return Contains(h.controllers, want); });
    if (v1 != mounts.v1.end()) {
      add(*v1, want);
    } else if (mounts.v2 && Contains(v2_available, want)) {
      add(*mounts.v2, want);
    }
  }
  return chosen;
}

// ---------------------------------------------------------------------------------------------
// Cgroup

Cgroup::~Cgroup() { (void)Destroy(); }

int Cgroup::EnterFromChild() const noexcept {
  const int* fds = procs_fds_.data();
  const size_t n = procs_fds_.size();
  for (size_t i = 0; i < n; ++i) {
    ssize_t w;
    do {
      w = ::write(fds[i], "0", 1);
    } while (w < 0 && errno == EINTR);
    if (w != 1) return w < 0 ? errno : EIO;
  }
  return 0;
}

uint64_t Cgroup::PeakMemoryBytes() const {
  std::optional<std::string> text = PreadSmall(peak_fd_);
  if (!text) return 0;
  return ParseU64(*text).value_or(0);
}

bool Cgroup::OomKilled() const {
  std::optional<std::string> text = PreadSmall(oom_fd_);
  if (!text) return false;
  if (oom_from_failcnt_) return ParseU64(*text).value_or(0) > 0;
  return KeyedValue(*text, "oom_kill").value_or(0) > 0;
}

Status Cgroup::Destroy() {
  for (int& fd : procs_fds_) CloseFd(fd);
  procs_fds_.clear();
  CloseFd(peak_fd_);
  CloseFd(oom_fd_);

  // Kill first in every hierarchy, so that on v1 no process lingers in one of them.
  for (const Dir& d : dirs_) {
    if (d.version == 2 && WriteFileErrno(d.path + "/cgroup.kill", "1") == 0) continue;
    // No cgroup.kill (v1, or v2 before Linux 5.14): signal what is listed until nothing is. A
    // process may fork between the read and the kill, hence the loop; the pids limit bounds it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      Result<std::string> procs = ReadFile(d.path + "/cgroup.procs");
      if (!procs.ok()) break;  // already gone
      bool any = false;
      for (std::string_view p : Split(*procs, '\n')) {
        std::optional<uint64_t> pid = ParseU64(p);
        if (pid && *pid > 0) {
          ::kill(static_cast<pid_t>(*pid), SIGKILL);
          any = true;
        }
      }
      if (!any || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // rmdir fails with EBUSY until the killed processes have finished exiting (freeing a large
  // address space takes a moment), so retry briefly.
  Status result;
  std::vector<Dir> left;
  for (const Dir& d : dirs_) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    int err = 0;
    for (;;) {
      if (::rmdir(d.path.c_str()) == 0 || errno == ENOENT) {
        err = 0;
        break;
      }
      err = errno;
      if (err != EBUSY || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (err != 0) {
      left.push_back(d);
      if (result.ok()) {
        result = Status::Unavailable("cannot remove cgroup " + d.path + ": " + ErrnoText(err) +
                                     "; processes in it are still exiting; Destroy() can be "
                                     "called again to retry");
      }
    }
  }
  dirs_ = std::move(left);
  paths_.clear();
  for (const Dir& d : dirs_) paths_.push_back(d.path);
  return result;
}

// ---------------------------------------------------------------------------------------------
// CgroupManager

Result<std::unique_ptr<CgroupManager>> CgroupManager::Create(std::string parent_name,
                                                             std::string mountinfo_path) {
  std::vector<std::string_view> components = Split(parent_name, '/');
  bool name_ok = !parent_name.empty() && parent_name.front() != '/' && !components.empty() &&
                 std::all_of(components.begin(), components.end(), IsSafeComponent);
  if (!name_ok) {
    return Status::InvalidArgument("cgroup parent name '" + parent_name +
                                   "' is not a relative path of plain names (letters, digits, "
                                   "'-', '_', '.'); use something like \"nimbus/1234\"");
  }

  Result<std::string> mountinfo = ReadFile(mountinfo_path);
  if (!mountinfo.ok()) {
    return Status::FailedPrecondition(
        mountinfo.status().message() +
        "; cgroups cannot be detected without it (is /proc mounted?)");
  }
  CgroupMounts mounts = ParseCgroupMounts(*mountinfo);
  std::vector<std::string> v2_available;
  if (mounts.v2) {
    Result<std::string> controllers = ReadFile(mounts.v2->mount_point + "/cgroup.controllers");
    if (controllers.ok()) {
      for (std::string_view w : Split(*controllers, ' ')) {
        while (!w.empty() && w.back() == '\n') w.remove_suffix(1);
        if (!w.empty()) v2_available.emplace_back(w);
      }
    }
  }
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(mounts, v2_available);
  bool has_memory = std::any_of(chosen.begin(), chosen.end(), [](const CgroupHierarchy& h) {
    return Contains(h.controllers, "memory");
  });
  if (!has_memory) {
    return Status::FailedPrecondition(
        "no usable cgroup memory controller in " + mountinfo_path +
        " (neither a cgroup v1 mount with 'memory' nor a cgroup2 mount listing memory in its "
        "cgroup.controllers), so function memory limits cannot be enforced; mount one, e.g. "
        "`mount -t cgroup2 none /sys/fs/cgroup`");
  }
  for (const CgroupHierarchy& h : chosen) {
    if (h.read_only) {
      return Status::FailedPrecondition(
          "the cgroup filesystem at " + h.mount_point + " is mounted read-only, so function "
          "memory limits cannot be enforced; mount it read-write (for a container: run it "
          "privileged or with a writable cgroup mount)");
    }
  }

  std::unique_ptr<CgroupManager> manager(new CgroupManager());
  for (const CgroupHierarchy& h : chosen) {
    Parent parent;
    parent.hierarchy = h;
    parent.path = h.mount_point + "/" + parent_name;
    // Another process may remove an empty shared ancestor (say "nimbus") between our mkdir of it
    // and of its child; walking the chain again then succeeds.
    Status st;
    for (int attempt = 0; attempt < 5; ++attempt) {
      st = Status::Ok();
      std::string dir = h.mount_point;
      bool retry = false;
      for (size_t i = 0; i <= components.size(); ++i) {
        if (h.version == 2) {
          st = EnableSubtreeControllers(dir, h.controllers);
          if (!st.ok()) break;
        }
        if (i == components.size()) break;
        dir += "/" + std::string(components[i]);
        if (::mkdir(dir.c_str(), 0755) == 0) {
          parent.created.push_back(dir);
        } else if (errno == ENOENT) {
          retry = true;
          break;
        } else if (errno != EEXIST) {
          st = PermissionAdvice("create cgroup", dir, errno);
          break;
        }
      }
      if (!retry) break;
    }
    if (st.ok() && !Exists(parent.path)) {
      st = Status::FailedPrecondition("cannot create cgroup " + parent.path +
                                      ": it keeps disappearing; is another nimbus removing it?");
    }
    manager->parents_.push_back(std::move(parent));  // so the destructor cleans up on failure
    if (!st.ok()) return st;
  }
  return manager;
}

CgroupManager::~CgroupManager() {
  for (const Parent& p : parents_) {
    // The parent itself goes when empty even if an earlier run made it; ancestors only when
    // this manager made them, since an operator may have put limits on a shared "nimbus" group.
    if (::rmdir(p.path.c_str()) != 0 && errno != ENOENT) continue;
    for (auto it = p.created.rbegin(); it != p.created.rend(); ++it) {
      if (*it == p.path) continue;
      if (::rmdir(it->c_str()) != 0 && errno != ENOENT) break;
    }
  }
}

Status CgroupManager::SetLimits(Cgroup& group, const CgroupLimits& limits) const {
  // group.dirs_ follows parents_ order (CreateGroup makes one directory per parent).
  for (size_t i = 0; i < group.dirs_.size() && i < parents_.size(); ++i) {
    const std::string& dir = group.dirs_[i].path;
    const CgroupHierarchy& h = parents_[i].hierarchy;
    std::vector<std::pair<std::string, uint64_t>> writes;
    if (Contains(h.controllers, "memory") && limits.memory_bytes > 0) {
      if (h.version == 2) {
        writes.emplace_back("memory.max", limits.memory_bytes);
        if (Exists(dir + "/memory.swap.max")) writes.emplace_back("memory.swap.max", 0);
      } else {
        // memsw is memory+swap and may not be below the memory limit, so memory goes first.
        writes.emplace_back("memory.limit_in_bytes", limits.memory_bytes);
        if (Exists(dir + "/memory.memsw.limit_in_bytes")) {
          writes.emplace_back("memory.memsw.limit_in_bytes", limits.memory_bytes);
        }
      }
    }
    if (Contains(h.controllers, "pids") && limits.pids_max > 0) writes.emplace_back("pids.max", limits.pids_max);
    for (const auto& [file, value] : writes) {
      int err = WriteFileErrno(dir + "/" + file, std::to_string(value));
      if (err != 0) {
        return Status::Io("cannot write " + std::to_string(value) + " to " + dir + "/" + file + ": " +
                          ErrnoText(err));
      }
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Cgroup>> CgroupManager::CreateGroup(const std::string& instance_id,
                                                           const CgroupLimits& limits) const {
  if (!IsSafeComponent(instance_id)) {
    return Status::InvalidArgument("instance id '" + instance_id +
                                   "' cannot name a cgroup; use letters, digits, '-', '_', '.'");
  }
  std::unique_ptr<Cgroup> group(new Cgroup());  // destroys what was made if a step below fails
  auto set = [](const std::string& file, uint64_t value) -> Status {
    int err = WriteFileErrno(file, std::to_string(value));
    if (err != 0) return Status::Io("cannot write " + std::to_string(value) + " to " + file + ": " +
                                    ErrnoText(err));
    return Status::Ok();
  };
  auto open_read = [](const std::string& file) {
    return ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  };

  for (const Parent& p : parents_) {
    const std::string dir = p.path + "/" + instance_id;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      int err = errno;
      if (err == EEXIST) {
        return Status::AlreadyExists("cgroup " + dir + " already exists; instance ids must be "
                                     "unique (or an earlier instance with this id was not cleaned "
                                     "up; remove the directory with rmdir)");
      }
      return Status::Io("cannot create cgroup " + dir + ": " + ErrnoText(err));
    }
    group->dirs_.push_back({p.hierarchy.version, dir});
    group->paths_.push_back(dir);

    const bool v2 = p.hierarchy.version == 2;
    if (Contains(p.hierarchy.controllers, "memory")) {
      if (limits.memory_bytes > 0) {
        if (v2) {
          NIMBUS_RETURN_IF_ERROR(set(dir + "/memory.max", limits.memory_bytes));
          // Absent when the kernel has no swap accounting; then there is no swap to escape to.
          if (Exists(dir + "/memory.swap.max")) {
            NIMBUS_RETURN_IF_ERROR(set(dir + "/memory.swap.max", 0));
          }
        } else {
          // memsw is memory+swap and may not be below the memory limit, so memory goes first.
          NIMBUS_RETURN_IF_ERROR(set(dir + "/memory.limit_in_bytes", limits.memory_bytes));
          if (Exists(dir + "/memory.memsw.limit_in_bytes")) {
            NIMBUS_RETURN_IF_ERROR(set(dir + "/memory.memsw.limit_in_bytes", limits.memory_bytes));
          }
        }
      }
      if (v2) {
        // An instance is one unit: after an OOM kill its runtime is gone anyway, so kill all of
        // it rather than leave half an instance running.
        if (Exists(dir + "/memory.oom.group")) {
          NIMBUS_RETURN_IF_ERROR(set(dir + "/memory.oom.group", 1));
        }
        group->peak_fd_ = open_read(dir + "/memory.peak");  // Linux 5.19+
        if (group->peak_fd_ < 0) group->peak_fd_ = open_read(dir + "/memory.current");
        group->oom_fd_ = open_read(dir + "/memory.events");
      } else {
        group->peak_fd_ = open_read(dir + "/memory.max_usage_in_bytes");
        group->oom_fd_ = open_read(dir + "/memory.oom_control");
        // The oom_kill counter appeared in Linux 4.13; before it, hitting the limit at all
        // (failcnt) is the best sign there is.
        std::optional<std::string> oom = PreadSmall(group->oom_fd_);
        if (!oom || !KeyedValue(*oom, "oom_kill")) {
          CloseFd(group->oom_fd_);
          group->oom_fd_ = open_read(dir + "/memory.failcnt");
          group->oom_from_failcnt_ = true;
        }
      }
    }
    if (Contains(p.hierarchy.controllers, "pids") && limits.pids_max > 0) {
      NIMBUS_RETURN_IF_ERROR(set(dir + "/pids.max", limits.pids_max));
    }
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return Status::Io("cannot open " + dir + "/cgroup.procs: " + ErrnoText(err));
    }
    group->procs_fds_.push_back(fd);
  }
  return group;
}

std::string CgroupManager::Describe() const {
  std::string out;
  for (int version : {1, 2}) {
    std::vector<std::string> names;
    for (const Parent& p : parents_) {
      if (p.hierarchy.version != version) continue;
      for (const std::string& c : p.hierarchy.controllers) names.push_back(c);
    }
    if (names.empty()) continue;
    // Keep kWanted order regardless of hierarchy order.
    std::string list;
    for (const char* w : kWanted) {
      if (!Contains(names, w)) continue;
      if (!list.empty()) list += ", ";
      list += w;
    }
    if (!out.empty()) out += " + ";
    out += "cgroup v" + std::to_string(version) + " (" + list + ")";
  }
  if (!has_pids()) out += "; no pids controller, so instance process counts are not capped";
  out += " under";
  for (const Parent& p : parents_) out += " " + p.path;
  return out;
}

bool CgroupManager::has_pids() const {
  return std::any_of(parents_.begin(), parents_.end(),
                     [](const Parent& p) { return Contains(p.hierarchy.controllers, "pids"); });
}

std::vector<std::string> CgroupManager::parent_paths() const {
  std::vector<std::string> out;
  for (const Parent& p : parents_) out.push_back(p.path);
  return out;
}

}  // namespace nimbus::sandbox
