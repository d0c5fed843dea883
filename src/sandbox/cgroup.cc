// Cgroup layout detection and per-instance groups; see cgroup.h for the contract.
#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace nimbus::sandbox {
namespace {

// The controllers nimbus uses, in the order Describe() names them.
constexpr const char* kWanted[] = {"memory", "pids", "cpu"};

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

using Clock = std::chrono::steady_clock;

// Sleeps between polls of the kernel: 1 ms, doubling up to 16 ms. Whatever is awaited (processes
// exiting, rmdir no longer failing with EBUSY) usually happens within the first few.
class Backoff {
 public:
  void Wait() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::milliseconds(16));
  }

 private:
  std::chrono::milliseconds delay_{1};
};

// flock(2), retried on EINTR. Returns 0 or the errno.
int Flock(int fd, int op) {
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// Takes a POSIX read lock on all of `fd`'s file: the hold on a daemon's parent group. Unlike a
// flock, a POSIX lock belongs to the process, so forked children (stems, instance processes
// that outlive a daemon killed with SIGKILL) do not keep it. Returns 0 or the errno.
int HoldPosixLock(int fd) {
  struct flock lock = {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // to the end, whatever the size
  while (::fcntl(fd, F_SETLK, &lock) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// How /proc/locks names a file: "<major>:<minor>:<inode>", device numbers in hex.
std::string LockKey(const struct stat& st) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%lu", ::major(st.st_dev), ::minor(st.st_dev),
                static_cast<unsigned long>(st.st_ino));
  return buf;
}

// The files some process holds a lock on (any kind), as LockKey() names them.
Result<std::vector<std::string>> LockedFiles() {
  Result<std::string> text = ReadFile("/proc/locks");
  if (!text.ok()) return text.status();
  std::vector<std::string> keys;
  for (std::string_view line : Split(*text, '\n')) {
    for (std::string_view w : Split(line, ' ')) {
      if (std::count(w.begin(), w.end(), ':') == 2 && w.front() != ':') keys.emplace_back(w);
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

bool IsNumber(std::string_view s) {
  return !s.empty() && s.size() <= 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The pids in a group's cgroup.procs; nullopt when it cannot be read (the group is gone).
// Processes outside our pid namespace are listed as 0 and left out.
std::optional<std::vector<int64_t>> ListProcs(const std::string& dir) {
  Result<std::string> text = ReadFile(dir + "/cgroup.procs");
  if (!text.ok()) return std::nullopt;
  std::vector<int64_t> pids;
  for (std::string_view line : Split(*text, '\n')) {
    std::optional<uint64_t> pid = ParseU64(line);
    if (pid && *pid > 0) pids.push_back(static_cast<int64_t>(*pid));
  }
  return pids;
}

// Empties the group `dir` and removes it: kills what is listed in its cgroup.procs (one write to
// cgroup.kill where the kernel has it, else SIGKILL to each pid), reads the list again until it
// is empty, then rmdirs; an rmdir that still finds the group busy sends it back to killing, so
// nothing that joined after a read is left behind. Gives up at `deadline`. Adds the pids it saw
// to `killed` when not null. Returns 0 once the directory is gone, else the errno that kept it
// (EBUSY at the deadline).
int KillAndRemove(const std::string& dir, Clock::time_point deadline,
                  std::vector<int64_t>* killed) {
  Backoff backoff;
  bool kill_file = true;  // until a write to cgroup.kill fails (v1, or v2 before Linux 5.14)
  for (;;) {
    int err = EBUSY;
    std::optional<std::vector<int64_t>> pids = ListProcs(dir);
    if (pids && !pids->empty()) {
      if (killed) killed->insert(killed->end(), pids->begin(), pids->end());
      if (kill_file && WriteFileErrno(dir + "/cgroup.kill", "1") != 0) kill_file = false;
      if (!kill_file) {
        for (int64_t pid : *pids) ::kill(static_cast<pid_t>(pid), SIGKILL);
      }
    } else {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return 0;
      err = errno;
      if (err != EBUSY) return err;
    }
    if (Clock::now() >= deadline) return err;
    backoff.Wait();
  }
}

// A group and its descendants, children before parents, each with its path relative to the
// directory that ReclaimLocked() scans.
struct TreeDir {
  std::string path;
  std::string rel;
};
void CollectPostOrder(const std::string& path, const std::string& rel, int depth,
                      std::vector<TreeDir>* out) {
  if (DIR* d = depth < 16 ? ::opendir(path.c_str()) : nullptr) {
    std::vector<std::string> children;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::lstat((path + "/" + e->d_name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      if (is_dir) children.emplace_back(name);
    }
    ::closedir(d);
    std::sort(children.begin(), children.end());
    for (const std::string& c : children) {
      CollectPostOrder(path + "/" + c, rel + "/" + c, depth + 1, out);
    }
  }
  out->push_back({path, rel});
}

// True when `pid` is a running process called "nimbus" (its executable's name). A zombie does
// not count: a daemon killed with SIGKILL stays one until its parent reaps it.
bool IsRunningNimbus(const std::string& pid) {
  // "<pid> (<comm>) <state> ..."; comm may itself hold ')' or ' ', so find the last ')'.
  Result<std::string> stat = ReadFile("/proc/" + pid + "/stat");
  if (!stat.ok()) return false;
  size_t open = stat->find(" (");
  size_t close = stat->rfind(") ");
  if (open == std::string::npos || close == std::string::npos || close < open ||
      close + 2 >= stat->size()) {
    return false;
  }
  char state = (*stat)[close + 2];
  return stat->compare(open + 2, close - open - 2, "nimbus") == 0 && state != 'Z' &&
         state != 'X';
}

// How long Create() waits for another daemon's reclaim in the same directory (each leftover
// takes at most kDestroyBound) before giving up.
constexpr std::chrono::seconds kScanLockWait{30};

// Holds the flock that serialises reclaiming the daemon groups in one directory with creating a
// new one there: a daemon's parent group is created and held under it, so a reclaim never sees
// a group in the moment between its mkdir and its holder's lock. The lock is on the directory's
// cgroup.procs file, not on the directory, which a manager may hold itself.
class ScanLock {
 public:
  ScanLock() = default;
  ScanLock(const ScanLock&) = delete;
  ScanLock& operator=(const ScanLock&) = delete;
  ~ScanLock() { CloseFd(fd_); }

  // Waits up to kScanLockWait while another daemon reclaims or creates in `dir`. Returns 0 or
  // the errno (ENOENT when `dir` is gone, ETIMEDOUT).
  int Lock(const std::string& dir) {
    CloseFd(fd_);
    fd_ = ::open((dir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return errno;
    const Clock::time_point deadline = Clock::now() + kScanLockWait;
    Backoff backoff;
    int err;
    while ((err = Flock(fd_, LOCK_EX | LOCK_NB)) == EWOULDBLOCK && Clock::now() < deadline) {
      backoff.Wait();
    }
    if (err == EWOULDBLOCK) err = ETIMEDOUT;
    if (err != 0) CloseFd(fd_);
    return err;
  }

 private:
  int fd_ = -1;
};

// ReclaimLeftovers() for a caller that holds `dir`'s ScanLock. A live manager's hold is seen in
// /proc/locks rather than by trying to lock the group: a POSIX lock never conflicts with its own
// process's, and opening and closing the directory would drop that process's hold.
Result<std::vector<LeftoverGroups>> ReclaimLocked(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (IsNumber(e->d_name)) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  if (names.empty()) return std::vector<LeftoverGroups>{};
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  Result<std::vector<std::string>> locked = LockedFiles();
  if (!locked.ok()) return locked.status();
  const std::string self = std::to_string(::getpid());
  std::vector<LeftoverGroups> out;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (std::binary_search(locked->begin(), locked->end(), LockKey(st))) continue;  // live
    if (name != self && IsRunningNimbus(name)) continue;  // live, from before groups were held
    LeftoverGroups found;
    found.daemon = name;
    std::vector<TreeDir> tree;
    CollectPostOrder(path, name, 0, &tree);
    const Clock::time_point deadline = Clock::now() + kDestroyBound;
    for (const TreeDir& t : tree) {
      int err = KillAndRemove(t.path, deadline, &found.killed);
      if (err == 0) {
        found.groups.push_back(t.rel);
      } else if (found.status.ok()) {
        found.status = Status::Unavailable(
            "cannot remove cgroup " + t.path + ": " + ErrnoText(err) +
            (err == EBUSY ? " (its processes did not exit within " +
                                std::to_string(kDestroyBound.count()) +
                                " s); the next daemon start tries again"
                          : ""));
      }
    }
    std::reverse(found.groups.begin(), found.groups.end());  // parent first
    std::sort(found.killed.begin(), found.killed.end());
    found.killed.erase(std::unique(found.killed.begin(), found.killed.end()), found.killed.end());
    out.push_back(std::move(found));
  }
  return out;
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
// Limits

uint64_t CpuWeightForMemory(int version, uint64_t memory_bytes) {
  if (memory_bytes == 0) return 0;
  // 128 MiB gets the kernel's default; see cgroup.h for why the scale does not matter otherwise.
  constexpr uint64_t kReference = 128ull << 20;
  const uint64_t unit = version == 2 ? 100 : 1024;
  const uint64_t lo = version == 2 ? 1 : 2;
  const uint64_t hi = version == 2 ? 10000 : 262144;
  if (memory_bytes >= hi * (kReference / unit)) return hi;  // also keeps the product below in range
  uint64_t w = (memory_bytes * unit + kReference / 2) / kReference;
  return std::clamp(w, lo, hi);
}

std::vector<std::pair<std::string, uint64_t>> LimitWrites(const CgroupHierarchy& h,
                                                          const CgroupLimits& limits,
                                                          bool swap_accounted) {
  std::vector<std::pair<std::string, uint64_t>> writes;
  const bool v2 = h.version == 2;
  if (Contains(h.controllers, "memory") && limits.memory_bytes > 0) {
    if (v2) {
      writes.emplace_back("memory.max", limits.memory_bytes);
      // Without swap accounting there is no swap to escape to.
      if (swap_accounted) writes.emplace_back("memory.swap.max", 0);
    } else {
      // memsw is memory+swap and may not be below the memory limit, so memory goes first.
      writes.emplace_back("memory.limit_in_bytes", limits.memory_bytes);
      if (swap_accounted) writes.emplace_back("memory.memsw.limit_in_bytes", limits.memory_bytes);
    }
  }
  if (Contains(h.controllers, "cpu") && limits.memory_bytes > 0) {
    writes.emplace_back(v2 ? "cpu.weight" : "cpu.shares",
                        CpuWeightForMemory(h.version, limits.memory_bytes));
  }
  if (Contains(h.controllers, "pids") && limits.pids_max > 0) {
    writes.emplace_back("pids.max", limits.pids_max);
  }
  return writes;
}

namespace {

// Writes LimitWrites() into the group directory `dir`.
Status ApplyLimits(const std::string& dir, const CgroupHierarchy& h, const CgroupLimits& limits) {
  bool swap_accounted = Contains(h.controllers, "memory") &&
                        Exists(dir + (h.version == 2 ? "/memory.swap.max"
                                                     : "/memory.memsw.limit_in_bytes"));
  for (const auto& [file, value] : LimitWrites(h, limits, swap_accounted)) {
    int err = WriteFileErrno(dir + "/" + file, std::to_string(value));
    if (err != 0) {
      return Status::Io("cannot write " + std::to_string(value) + " to " + dir + "/" + file +
                        ": " + ErrnoText(err));
    }
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Leftovers of dead daemons

Result<std::vector<LeftoverGroups>> ReclaimLeftovers(const std::string& dir) {
  ScanLock lock;
  int err = lock.Lock(dir);
  if (err == ENOENT) return std::vector<LeftoverGroups>{};
  if (err != 0) {
    return Status::Io("cannot lock " + dir + "/cgroup.procs to look for leftover cgroups: " +
                      ErrnoText(err));
  }
  return ReclaimLocked(dir);
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

  // On v1 the same processes are listed in every hierarchy: the first directory's kill loop
  // ends them all, and the others are empty by the time their turn comes.
  const Clock::time_point deadline = Clock::now() + kDestroyBound;
  Status result;
  std::vector<Dir> left;
  for (const Dir& d : dirs_) {
    int err = KillAndRemove(d.path, deadline, nullptr);
    if (err == 0) continue;
    left.push_back(d);
    if (result.ok()) {
      result = Status::Unavailable(
          "cannot remove cgroup " + d.path + ": " + ErrnoText(err) +
          (err == EBUSY ? "; its processes did not exit within " +
                              std::to_string(kDestroyBound.count()) +
                              " s; Destroy() can be called again to retry"
                        : ""));
    }
  }
  dirs_ = std::move(left);
  paths_.clear();
  for (const Dir& d : dirs_) paths_.push_back(d.path);
  return result;
}

// ---------------------------------------------------------------------------------------------
// CgroupManager

namespace {

// Removes a parent group when it is empty, and then the ancestors listed in `created` (outermost
// first) that are empty too; stops at the first that is not.
void RemoveIfEmpty(const std::string& path, const std::vector<std::string>& created) {
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return;
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    if (*it == path) continue;
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT) break;
  }
}

// Adds what one hierarchy's reclaim found to `all`, merging entries for the same daemon: on v1
// one instance has a directory (and the same processes) in each hierarchy.
void MergeReclaimed(std::vector<LeftoverGroups> found, std::vector<LeftoverGroups>* all) {
  for (LeftoverGroups& f : found) {
    auto same = std::find_if(all->begin(), all->end(),
                             [&](const LeftoverGroups& a) { return a.daemon == f.daemon; });
    if (same == all->end()) {
      all->push_back(std::move(f));
      continue;
    }
    for (std::string& g : f.groups) {
      if (!Contains(same->groups, g)) same->groups.push_back(std::move(g));
    }
    for (int64_t pid : f.killed) {
      if (std::find(same->killed.begin(), same->killed.end(), pid) == same->killed.end()) {
        same->killed.push_back(pid);
      }
    }
    std::sort(same->killed.begin(), same->killed.end());
    if (same->status.ok()) same->status = std::move(f.status);
  }
}

}  // namespace

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
  // "nimbus/<pid>": the other numbered groups in "nimbus" are other daemons', live or dead.
  const bool reclaim = components.size() >= 2 && IsNumber(components.back());

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
    // On v2, memory and pids must be enabled all the way down; cpu is optional (the kernel
    // refuses it while, for example, a realtime process sits in a non-root group), and is
    // dropped from this hierarchy if refused.
    auto enable = [&](const std::string& dir) -> Status {
      std::vector<std::string> required;
      for (const std::string& c : parent.hierarchy.controllers) {
        if (c != "cpu") required.push_back(c);
      }
      NIMBUS_RETURN_IF_ERROR(EnableSubtreeControllers(dir, required));
      if (Contains(parent.hierarchy.controllers, "cpu")) {
        Status cpu = EnableSubtreeControllers(dir, {"cpu"});
        if (!cpu.ok()) {
          std::erase(parent.hierarchy.controllers, std::string("cpu"));
          manager->cpu_note_ = cpu.message();
        }
      }
      return Status::Ok();
    };
    // Another process may remove an empty shared ancestor (say "nimbus") between our mkdir of it
    // and of its child; walking the chain again then succeeds.
    Status st;
    for (int attempt = 0; attempt < 5; ++attempt) {
      st = Status::Ok();
      std::string dir = h.mount_point;
      bool retry = false;
      for (size_t i = 0; i <= components.size(); ++i) {
        if (h.version == 2) {
          st = enable(dir);
          if (!st.ok()) break;
        }
        if (i == components.size()) break;
        const bool last = i + 1 == components.size();
        // Held from the reclaim until our own group exists and is held (see ScanLock).
        ScanLock scan;
        if (last && reclaim) {
          int err = scan.Lock(dir);
          if (err == ENOENT) {
            retry = true;
            break;
          }
          if (err == ETIMEDOUT) {
            st = Status::Unavailable(
                "another nimbus has been reclaiming leftover cgroups in " + dir + " for " +
                std::to_string(kScanLockWait.count()) + " s (processes that will not die?); "
                "start again when it is done");
            break;
          }
          if (err != 0) {
            st = PermissionAdvice("lock", dir + "/cgroup.procs", err);
            break;
          }
          Result<std::vector<LeftoverGroups>> found = ReclaimLocked(dir);
          if (found.ok()) {
            MergeReclaimed(std::move(found).value(), &manager->reclaimed_);
          } else {
            manager->reclaim_note_ = found.status().message();
          }
        }
        dir.append("/").append(components[i]);
        if (::mkdir(dir.c_str(), 0755) == 0) {
          parent.created.push_back(dir);
          // Instances as a whole weigh one task per core against the host's processes (the
          // daemon's loops, a load generator), not one task, as a new group does by default.
          if (Contains(parent.hierarchy.controllers, "cpu")) {
            unsigned cores = std::max(1u, std::thread::hardware_concurrency());
            (void)WriteFileErrno(dir + (h.version == 2 ? "/cpu.weight" : "/cpu.shares"),
                                 std::to_string((h.version == 2 ? 100u : 1024u) * cores));
          }
        } else if (errno == ENOENT) {
          retry = true;
          break;
        } else if (errno != EEXIST) {
          st = PermissionAdvice("create cgroup", dir, errno);
          break;
        }
        if (last) {
          CloseFd(parent.hold_fd);
          parent.hold_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (parent.hold_fd < 0 && errno == ENOENT) {
            retry = true;
            break;
          }
          // Without the hold, another daemon would take this group for a dead one's.
          int err = parent.hold_fd < 0 ? errno : HoldPosixLock(parent.hold_fd);
          if (err != 0) {
            st = Status::FailedPrecondition("cannot hold cgroup " + dir + " (a read lock on it): " +
                                            ErrnoText(err));
            break;
          }
        }
      }
      if (!retry) break;
    }
    if (st.ok() && !Exists(parent.path)) {
      st = Status::FailedPrecondition("cannot create cgroup " + parent.path +
                                      ": it keeps disappearing; is another nimbus removing it?");
    }
    if (st.ok() && parent.hierarchy.controllers.empty()) {
      // Its only controller (cpu) was refused: nothing to do in this hierarchy.
      CloseFd(parent.hold_fd);
      RemoveIfEmpty(parent.path, parent.created);
      continue;
    }
    manager->parents_.push_back(std::move(parent));  // so the destructor cleans up on failure
    if (!st.ok()) return st;
  }
  return manager;
}

CgroupManager::~CgroupManager() {
  for (Parent& p : parents_) {
    // The parent itself goes when empty even if an earlier run made it; ancestors only when
    // this manager made them, since an operator may have put limits on a shared "nimbus" group.
    // The hold is dropped after the rmdir: a parent that could not be removed (instance groups
    // left in it) is then a leftover that the next daemon to start reclaims.
    RemoveIfEmpty(p.path, p.created);
    CloseFd(p.hold_fd);
  }
}

Status CgroupManager::SetLimits(Cgroup& group, const CgroupLimits& limits) const {
  // group.dirs_ follows parents_ order (CreateGroup makes one directory per parent).
  for (size_t i = 0; i < group.dirs_.size() && i < parents_.size(); ++i) {
    NIMBUS_RETURN_IF_ERROR(ApplyLimits(group.dirs_[i].path, parents_[i].hierarchy, limits));
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
    NIMBUS_RETURN_IF_ERROR(ApplyLimits(dir, p.hierarchy, limits));

    const bool v2 = p.hierarchy.version == 2;
    if (Contains(p.hierarchy.controllers, "memory")) {
      if (v2) {
        // An instance is one unit: after an OOM kill its runtime is gone anyway, so kill all of
        // it rather than leave half an instance running.
        if (Exists(dir + "/memory.oom.group")) {
          int err = WriteFileErrno(dir + "/memory.oom.group", "1");
          if (err != 0) {
            return Status::Io("cannot write 1 to " + dir + "/memory.oom.group: " +
                              ErrnoText(err));
          }
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
  if (!has_cpu()) {
    out += cpu_note_.empty() ? "; no cpu controller"
                             : "; cpu controller not usable (" + cpu_note_ + ")";
    out += ", so CPU is not shared in proportion to memory";
  }
  out += " under";
  for (const Parent& p : parents_) out += " " + p.path;
  if (!reclaim_note_.empty()) out += "; leftover cgroups not looked for (" + reclaim_note_ + ")";
  for (const LeftoverGroups& r : reclaimed_) {
    if (!r.groups.empty()) {
      out += "; reclaimed " + std::to_string(r.groups.size()) +
             (r.groups.size() == 1 ? " cgroup" : " cgroups") +
             " left by a previous nimbus (pid " + r.daemon + ")";
      if (!r.killed.empty()) {
        out += " and killed the " + std::to_string(r.killed.size()) +
               (r.killed.size() == 1 ? " process" : " processes") + " still in them";
      }
    }
    if (!r.status.ok()) {
      out += "; could not reclaim all cgroups left by a previous nimbus (pid " + r.daemon +
             "): " + r.status.message();
    }
  }
  return out;
}

bool CgroupManager::has_pids() const {
  return std::any_of(parents_.begin(), parents_.end(),
                     [](const Parent& p) { return Contains(p.hierarchy.controllers, "pids"); });
}

bool CgroupManager::has_cpu() const {
  return std::any_of(parents_.begin(), parents_.end(),
                     [](const Parent& p) { return Contains(p.hierarchy.controllers, "cpu"); });
}

std::vector<std::string> CgroupManager::parent_paths() const {
  std::vector<std::string> out;
  for (const Parent& p : parents_) out.push_back(p.path);
  return out;
}

}  // namespace nimbus::sandbox
