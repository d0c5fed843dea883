#include "sandbox/jail.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sandbox/seccomp_filter.h"

namespace nimbus::sandbox {
namespace fs = std::filesystem;

namespace {

// /etc entries a runtime may read. Everything else of the host's /etc (shadow, ssh keys,
// ssl/private, the daemon's own configuration) stays out of the instance.
constexpr const char* kEtcFiles[] = {
    "hosts",        "resolv.conf", "nsswitch.conf", "host.conf",    "gai.conf",   "networks",
    "protocols",    "services",    "ld.so.cache",   "ld.so.conf",   "mime.types", "localtime",
    "timezone",     "os-release",  "ssl/openssl.cnf",
};
constexpr const char* kEtcDirs[] = {"ld.so.conf.d", "ssl/certs", "ca-certificates", "alternatives", "python3",
                                    "python3.11"};
constexpr const char* kTopLevel[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

// Adds an /etc entry: symlinks are copied as symlinks when they stay inside what the instance
// sees (/etc/localtime -> /usr/share/zoneinfo/...), else the target is bound.
void AddHostEntry(JailPlan& plan, const std::string& path, bool want_dir) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st)) return;
  if (fs::is_symlink(st)) {
    auto target = fs::read_symlink(path, ec);
    if (ec) return;
    std::string t = target.string();
    bool visible = t.rfind("/usr/", 0) == 0 || t.rfind("/etc/", 0) == 0 || target.is_relative();
    if (visible) {
      plan.entries.push_back({JailEntry::kSymlink, path, t, {}});
      return;
    }
    st = fs::status(path, ec);
    if (ec) return;
  }
  if (want_dir && fs::is_directory(st)) {
    plan.entries.push_back({JailEntry::kBindDir, path, path, {}});
  } else if (!want_dir && fs::is_regular_file(st)) {
    plan.entries.push_back({JailEntry::kBindFile, path, path, {}});
  }
}

// Writes a + b into out (NUL-terminated); false when it does not fit.
bool Join(char* out, size_t size, const char* a, const char* b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + lb + 1 > size) return false;
  memcpy(out, a, la);
  memcpy(out + la, b, lb + 1);
  return true;
}

int Fail(const char** what, const char* step) {
  *what = step;
  return errno ? errno : EINVAL;
}

int BindReadOnly(const char* src, const char* dst, unsigned long extra) {
  if (mount(src, dst, nullptr, MS_BIND | MS_REC, nullptr) != 0) return -1;
  return mount(nullptr, dst, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | extra, nullptr);
}

int WriteFile(const char* path, const char* content, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return -1;
  size_t left = strlen(content);
  while (left > 0) {
    ssize_t n = write(fd, content, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    content += n;
    left -= static_cast<size_t>(n);
  }
  close(fd);
  return 0;
}

}  // namespace

Result<JailPlan> BuildJailPlan(const std::string& root_dir, std::vector<sock_filter> seccomp, gid_t shared_gid) {
  JailPlan plan;
  plan.root = root_dir;
  plan.seccomp = std::move(seccomp);
  plan.shared_gid = shared_gid;
  std::error_code ec;
  fs::create_directories(root_dir, ec);
  if (ec) return Status::Io("cannot create the sandbox root " + root_dir + ": " + ec.message());
  ::chmod(root_dir.c_str(), 0755);

  auto add = [&plan](JailEntry::Kind k, std::string path, std::string src = {}, std::string content = {}) {
    plan.entries.push_back({k, std::move(path), std::move(src), std::move(content)});
  };
  for (const char* top : kTopLevel) {
    std::string host = std::string("/") + top;
    auto st = fs::symlink_status(host, ec);
    if (ec || !fs::exists(st)) continue;
    if (fs::is_symlink(st)) {
      add(JailEntry::kSymlink, host, fs::read_symlink(host, ec).string());
    } else if (fs::is_directory(st)) {
      add(JailEntry::kBindDir, host, host);
    }
  }
  add(JailEntry::kDir, "/etc");
  add(JailEntry::kDir, "/etc/ssl");
  for (const char* f : kEtcFiles) AddHostEntry(plan, std::string("/etc/") + f, false);
  for (const char* d : kEtcDirs) AddHostEntry(plan, std::string("/etc/") + d, true);
  add(JailEntry::kFile, "/etc/hostname", {}, "nimbus\n");

  add(JailEntry::kDir, "/dev");
  for (const char* d : kDevices) {
    std::string host = std::string("/dev/") + d;
    struct stat st;
    if (::stat(host.c_str(), &st) == 0 && S_ISCHR(st.st_mode)) add(JailEntry::kBindDevice, host, host);
  }
  add(JailEntry::kSymlink, "/dev/fd", "/proc/self/fd");
  add(JailEntry::kSymlink, "/dev/stdin", "/proc/self/fd/0");
  add(JailEntry::kSymlink, "/dev/stdout", "/proc/self/fd/1");
  add(JailEntry::kSymlink, "/dev/stderr", "/proc/self/fd/2");
  add(JailEntry::kDir, "/dev/shm");
  add(JailEntry::kTmpfs, "/dev/shm", "size=64m,mode=1777");
  add(JailEntry::kDir, "/proc");
  add(JailEntry::kProc, "/proc");
  for (const char* d : {"/var", "/var/task", "/var/runtime", "/tmp", "/mnt", "/opt", "/home", "/root", "/run"}) {
    add(JailEntry::kDir, d);
  }
  return plan;
}

Result<std::string> CheckShareableHostDir(const std::string& host, const std::vector<std::string>& protected_dirs) {
  std::error_code ec;
  fs::path real = fs::canonical(host, ec);
  if (ec || !fs::is_directory(real, ec)) {
    return Status::InvalidArgument("the host directory '" + host +
                                   "' does not exist on the machine nimbus runs on; create it or fix the path");
  }
  auto within = [](const fs::path& p, const fs::path& dir) {  // p is dir or below it
    auto rel = p.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
  };
  const std::string shown = real.string() == host ? "'" + host + "'" : "'" + host + "' (" + real.string() + ")";
  if (real == "/") {
    return Status::InvalidArgument("the host directory " + shown + " is the host's root; share a directory of its own");
  }
  // Directories that are the system itself: neither they nor anything inside may be shared.
  for (const char* sys : {"/proc", "/sys", "/dev", "/etc", "/usr", "/boot", "/root", "/run", "/bin", "/sbin", "/lib",
                          "/lib32", "/lib64", "/libx32", "/var/run", "/var/lib", "/var/log"}) {
    if (within(real, sys)) {
      return Status::InvalidArgument("the host directory " + shown + " is part of the host system (" + sys +
                                     "); share a directory made for it, e.g. under /srv");
    }
  }
  if (real == "/var" || real == "/home" || real == "/srv" || real == "/mnt" || real == "/opt" || real == "/tmp") {
    return Status::InvalidArgument("the host directory " + shown +
                                   " holds other users' files; share a directory made for it below it");
  }
  for (const auto& d : protected_dirs) {
    fs::path guarded = fs::weakly_canonical(d, ec);
    if (ec) guarded = d;
    if (within(real, guarded) || within(guarded, real)) {
      return Status::InvalidArgument("the host directory " + shown + " contains or is inside " + guarded.string() +
                                     ", which nimbus keeps from functions (its data or runtimes); share another "
                                     "directory");
    }
  }
  return real.string();
}

std::string StagedPath(const JailPlan& plan, const std::string& host_path) {
  for (size_t i = 0; i < plan.staged.size(); ++i) {
    const std::string& dir = plan.staged[i];
    if (host_path.size() > dir.size() && host_path.compare(0, dir.size(), dir) == 0 && host_path[dir.size()] == '/') {
      return std::string(kStageRoot) + "/" + std::to_string(i) + host_path.substr(dir.size());
    }
  }
  return "";
}

namespace {
// Enters the root at `root`: pivot_root(".", ".") stacks the old root under the new one, and
// detaching it leaves only the new root visible (no directory for the old root is needed).
int PivotInto(const char* root, const char** what) {
  if (chdir(root) != 0) return Fail(what, "enter the root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Fail(what, "pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return Fail(what, "detach the host's root");
  if (chdir("/") != 0) return Fail(what, "chdir /");
  return 0;
}
}  // namespace

int PrepareRoot(const JailPlan& plan, bool pivot, const char** what) {
  errno = 0;
  // Mounts made from here on stay in this mount namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Fail(what, "make mounts private");
  const char* root = plan.root.c_str();
  if (mount("nimbus", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755") != 0) {
    return Fail(what, "mount the root tmpfs");
  }
  char path[4096];
  for (const auto& e : plan.entries) {
    if (!Join(path, sizeof path, root, e.path.c_str())) return Fail(what, "path too long");
    const char* src = e.src.c_str();
    switch (e.kind) {
      case JailEntry::kDir:
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return Fail(what, "mkdir in the root");
        break;
      case JailEntry::kSymlink:
        if (symlink(src, path) != 0) return Fail(what, "symlink in the root");
        break;
      case JailEntry::kBindDir:
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return Fail(what, "mkdir for a bind");
        if (BindReadOnly(src, path, MS_NOSUID | MS_NODEV) != 0) return Fail(what, "bind a host directory");
        break;
      case JailEntry::kBindFile:
      case JailEntry::kBindDevice: {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return Fail(what, "create a bind target");
        close(fd);
        // Device I/O works on a read-only mount; read-only stops chmod and friends.
        const bool device = e.kind == JailEntry::kBindDevice;
        if (BindReadOnly(src, path, device ? MS_NOSUID | MS_NOEXEC : MS_NOSUID | MS_NODEV) != 0) {
          return Fail(what, device ? "bind a device" : "bind a host file");
        }
        break;
      }
      case JailEntry::kTmpfs:
        if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, src) != 0) return Fail(what, "mount a tmpfs");
        break;
      case JailEntry::kProc:
        if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
          return Fail(what, "mount /proc");
        }
        break;
      case JailEntry::kFile:
        if (WriteFile(path, e.content.c_str(), 0644) != 0) return Fail(what, "write a file in the root");
        break;
    }
  }
  if (!pivot) return 0;
  if (!Join(path, sizeof path, root, kStageRoot) || (mkdir(path, 0700) != 0 && errno != EEXIST)) {
    return Fail(what, "make the staging directory");
  }
  for (size_t i = 0; i < plan.staged.size(); ++i) {
    char num[24];
    int n = 0;
    size_t v = i;
    do {
      num[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    char name[32] = "/";
    for (int k = 0; k < n; ++k) name[1 + k] = num[n - 1 - k];
    name[1 + n] = '\0';
    char stage[4096];
    if (!Join(stage, sizeof stage, root, kStageRoot) || !Join(path, sizeof path, stage, name)) {
      return Fail(what, "path too long");
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) return Fail(what, "make a staging directory");
    if (BindReadOnly(plan.staged[i].c_str(), path, MS_NOSUID | MS_NODEV) != 0) {
      return Fail(what, "stage a host directory");
    }
  }
  return PivotInto(root, what);
}

int EnterRoot(const JailPlan& plan, const JailLaunch& l, char* scratch, size_t size, const char** what) {
  errno = 0;
  // Paths of the root: under the plan's root on the host until the pivot, "/" after it.
  const char* root = l.pivoted ? "" : plan.root.c_str();
  // A primed instance has no code yet: its nimbus-init binds it at the hand-off.
  if (l.code_dir[0]) {
    if (!Join(scratch, size, root, kTaskRoot)) return Fail(what, "path too long");
    if (BindReadOnly(l.code_dir, scratch, MS_NOSUID | MS_NODEV) != 0) return Fail(what, "bind the code at /var/task");
  }
  if (l.runtime_dir[0]) {
    if (!Join(scratch, size, root, kRuntimeRoot)) return Fail(what, "path too long");
    if (BindReadOnly(l.runtime_dir, scratch, MS_NOSUID | MS_NODEV) != 0) {
      return Fail(what, "bind the runtime at /var/runtime");
    }
  }
  if (!Join(scratch, size, root, "/tmp")) return Fail(what, "path too long");
  if (mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, l.tmp_options) != 0) return Fail(what, "mount /tmp");
  for (unsigned i = 0; i < l.mount_count; ++i) {
    const char* host = l.mounts[3 * i];
    const char* target = l.mounts[3 * i + 1];
    bool ro = l.mounts[3 * i + 2][0] == 'r' && l.mounts[3 * i + 2][1] == 'o';
    if (!Join(scratch, size, root, target)) return Fail(what, "path too long");
    if (mkdir(scratch, 0755) != 0 && errno != EEXIST) return Fail(what, "make a file system's mount point");
    if (ro) {
      if (BindReadOnly(host, scratch, MS_NOSUID | MS_NODEV) != 0) return Fail(what, "bind a file system");
    } else {
      if (mount(host, scratch, nullptr, MS_BIND, nullptr) != 0 ||
          mount(nullptr, scratch, nullptr, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, nullptr) != 0) {
        return Fail(what, "bind a file system");
      }
    }
  }
  if (l.pivoted) {
    // The staged code of every function goes under an empty read-only cover.
    if (mount("nimbus", kStageRoot, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0") != 0) {
      return Fail(what, "cover the staged directories");
    }
  }
  if (!Join(scratch, size, root, "/etc/passwd") || WriteFile(scratch, l.passwd, 0644) != 0) {
    return Fail(what, "write /etc/passwd");
  }
  if (!Join(scratch, size, root, "/etc/group") || WriteFile(scratch, l.group, 0644) != 0) {
    return Fail(what, "write /etc/group");
  }
  if (mount(nullptr, l.pivoted ? "/" : root, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return Fail(what, "make the root read-only");
  }
  if (!l.pivoted) {
    if (int e = PivotInto(root, what)) return e;
  }
  if (sethostname(l.hostname, strlen(l.hostname)) != 0) return Fail(what, "sethostname");

  struct rlimit core = {0, 0};
  if (setrlimit(RLIMIT_CORE, &core) != 0) return Fail(what, "setrlimit core");
  struct rlimit files = {1024, 1024};
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) return Fail(what, "setrlimit nofile");

  // No capability survives: the bounding set is emptied (so no exec can regain one), then the
  // uid change clears the permitted, effective and ambient sets.
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return Fail(what, "drop capabilities");
  }
  errno = 0;
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  // Raw system calls, not glibc's wrappers: those make every thread of the process change too,
  // by signalling and waiting for the threads glibc knows of, and a child cloned from the
  // multi-threaded daemon inherits that list but not the threads, so it could wait forever.
  // Credentials are per thread in the kernel, and this process has one thread.
  gid_t groups[1] = {plan.shared_gid};
  if (syscall(SYS_setgroups, 1, groups) != 0) return Fail(what, "setgroups");
  if (syscall(SYS_setresgid, l.gid, l.gid, l.gid) != 0) return Fail(what, "setresgid");
  if (syscall(SYS_setresuid, l.uid, l.uid, l.uid) != 0) return Fail(what, "setresuid");
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &hdr, data) != 0) return Fail(what, "clear capabilities");
  umask(002);

  if (!plan.seccomp.empty()) {
    if (int e = InstallFilter(plan.seccomp.data(), static_cast<unsigned short>(plan.seccomp.size()))) {
      errno = -e;
      return Fail(what, "install the seccomp filter");
    }
  }
  return 0;
}

}  // namespace nimbus::sandbox
