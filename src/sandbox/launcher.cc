// fork/exec implementation of the launcher. Everything the child needs (argv, envp, fds) is
// prepared before fork(), because after fork() in a multi-threaded process the child may only
// call async-signal-safe functions.
#include "sandbox/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "sandbox/cgroup.h"

namespace nimbus::sandbox {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

uint64_t ReadVmHwm(int status_fd) {
  if (status_fd < 0) return 0;
  char buf[4096];
  ssize_t n = pread(status_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = strstr(buf, "VmHWM:");
  if (!p) return 0;
  return strtoull(p + 6, nullptr, 10) * 1024;
}

class ForkedProcess : public Process {
 public:
  ForkedProcess(pid_t pid, int pidfd, int out, int err, std::unique_ptr<Cgroup> cg)
      : pid_(pid), pidfd_(pidfd), out_(out), err_(err), cgroup_(std::move(cg)) {
    std::string path = "/proc/" + std::to_string(pid) + "/status";
    status_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~ForkedProcess() override {
    Kill();
    if (!reaped_) waitpid(pid_, nullptr, 0);  // already SIGKILLed: returns promptly
    if (pidfd_ >= 0) close(pidfd_);
    if (out_ >= 0) close(out_);
    if (err_ >= 0) close(err_);
    if (status_fd_ >= 0) close(status_fd_);
    if (cgroup_) (void)cgroup_->Destroy();
  }
  int pid() const override { return pid_; }
  int exit_fd() const override { return pidfd_; }
  int TakeStdout() override { return std::exchange(out_, -1); }
  int TakeStderr() override { return std::exchange(err_, -1); }
  void Kill() override {
    if (reaped_) return;
    kill(-pid_, SIGKILL);  // its whole session/process group
    kill(pid_, SIGKILL);
  }
  std::string Reap() override {
    if (reaped_) return description_;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r != pid_) return "";
    reaped_ = true;
    if (WIFEXITED(status)) {
      description_ = "exit status " + std::to_string(WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      description_ = "signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    } else {
      description_ = "status " + std::to_string(status);
    }
    // Anything the instance left running in its group goes with it.
    kill(-pid_, SIGKILL);
    return description_;
  }
  uint64_t PeakMemoryBytes() override {
    if (cgroup_) {
      uint64_t v = cgroup_->PeakMemoryBytes();
      if (v) return v;
    }
    return ReadVmHwm(status_fd_);
  }
  bool OomKilled() override { return cgroup_ && cgroup_->OomKilled(); }

 private:
  pid_t pid_;
  int pidfd_;
  int out_, err_;
  int status_fd_ = -1;
  bool reaped_ = false;
  std::string description_;
  std::unique_ptr<Cgroup> cgroup_;
};

// Serialised LaunchSpec as a stem reads it: two little-endian u32 counts (argc, envc), then
// NUL-terminated strings: executable, cwd, argv..., env....
constexpr size_t kSpecMax = 64 * 1024;
constexpr size_t kMaxPointers = 2048;

bool SerialiseSpec(const LaunchSpec& spec, std::string& out) {
  if (spec.argv.size() + spec.env.size() + 2 > kMaxPointers) return false;
  uint32_t counts[2] = {static_cast<uint32_t>(spec.argv.size()), static_cast<uint32_t>(spec.env.size())};
  out.assign(reinterpret_cast<const char*>(counts), sizeof counts);
  auto put = [&out](const std::string& s) {
    out += s;
    out.push_back('\0');
  };
  put(spec.executable);
  put(spec.cwd);
  for (const auto& a : spec.argv) put(a);
  for (const auto& e : spec.env) put(e);
  return out.size() <= kSpecMax;
}

// A stem is a forked child that has already joined its cgroup and waits for the LaunchSpec to
// exec. Joining a cgroup costs the joining process an RCU grace period on a quiet machine
// (10-20 ms measured on cgroup v1), which would dominate a cold start; a stem pays it before
// any request needs it. Stems are generic (limits are set when one is taken), so a couple serve
// every function.
struct Stem {
  pid_t pid = -1;
  int pidfd = -1;
  int ctrl = -1;  // write end: the spec, then EOF
  int out = -1, err = -1;
  std::unique_ptr<Cgroup> cgroup;
  void Discard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    for (int fd : {pidfd, ctrl, out, err}) {
      if (fd >= 0) close(fd);
    }
    if (cgroup) (void)cgroup->Destroy();
    pid = -1;
    pidfd = ctrl = out = err = -1;
  }
};

class ProcessLauncher : public Launcher {
 public:
  // The first stems start now, so the first cold start does not wait for one.
  explicit ProcessLauncher(CgroupManager* cgroups) : cgroups_(cgroups) { TopUp(); }
  ~ProcessLauncher() override {
    std::lock_guard lock(mu_);
    for (auto& s : stems_) s.Discard();
  }

  void Replenish() override { TopUp(); }

  Result<std::unique_ptr<Process>> Launch(const LaunchSpec& spec) override {
    std::string blob;
    if (!SerialiseSpec(spec, blob)) {
      return Status::InvalidArgument("the environment and arguments of " + spec.executable +
                                     " are too large to start it (over 64 KB)");
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      Stem stem;
      {
        std::lock_guard lock(mu_);
        if (!stems_.empty()) {
          stem = std::move(stems_.back());
          stems_.pop_back();
        }
      }
      if (stem.pid < 0) {
        auto fresh = ForkStem();
        if (!fresh.ok()) return fresh.status();
        stem = std::move(fresh).value();
      }
      if (stem.cgroup && cgroups_) {
        Status st = cgroups_->SetLimits(*stem.cgroup, CgroupLimits{spec.memory_bytes, spec.pids_max});
        if (!st.ok()) {
          stem.Discard();
          return st;
        }
      }
      ssize_t n = write(stem.ctrl, blob.data(), blob.size());
      close(std::exchange(stem.ctrl, -1));
      if (n != static_cast<ssize_t>(blob.size())) {  // the stem died while waiting: use another
        stem.Discard();
        continue;
      }
      return std::unique_ptr<Process>(
          new ForkedProcess(stem.pid, stem.pidfd, stem.out, stem.err, std::move(stem.cgroup)));
    }
    return Status::Unavailable("could not start " + spec.executable + ": its starter process died twice");
  }

 private:
  static constexpr size_t kStems = 2;

  void TopUp() {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stems_.size() >= kStems) return;
      }
      auto stem = ForkStem();
      if (!stem.ok()) return;  // the next Launch forks its own and reports the error
      std::lock_guard lock(mu_);
      stems_.push_back(std::move(stem).value());
    }
  }

  Result<Stem> ForkStem() {
    Stem stem;
    std::vector<int> procs_fds;
    if (cgroups_) {
      auto r = cgroups_->CreateGroup("instance-" + std::to_string(next_id_.fetch_add(1)), CgroupLimits{});
      if (!r.ok()) return r.status();
      stem.cgroup = std::move(r).value();
      procs_fds = stem.cgroup->procs_fds();
    }
    int out[2], err[2], ctrl[2];
    if (pipe2(out, O_CLOEXEC) != 0) return Status::Io(std::string("pipe: ") + strerror(errno));
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      return Status::Io(std::string("pipe: ") + strerror(errno));
    }
    if (pipe2(ctrl, O_CLOEXEC) != 0) {
      for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      return Status::Io(std::string("pipe: ") + strerror(errno));
    }
    // Everything the child touches is allocated here: after fork() in a multi-threaded process
    // the child may only make async-signal-safe calls, so no malloc.
    std::vector<char> buf(kSpecMax + 1);
    std::vector<char*> ptrs(kMaxPointers + 2);
    static const char kExecFail[] = "nimbus: cannot execute ";
    static const char kCwdFail[] = "nimbus: cannot enter ";
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      for (int fd : {out[0], out[1], err[0], err[1], ctrl[0], ctrl[1]}) close(fd);
      return Status::Unavailable(std::string("fork failed: ") + strerror(e));
    }
    if (pid == 0) RunStem(parent, procs_fds, out[1], err[1], ctrl[0], buf.data(), ptrs.data(), kExecFail, kCwdFail);

    close(out[1]);
    close(err[1]);
    close(ctrl[0]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    // A full pipe must never block the loop: the spec fits the pipe buffer or the launch fails.
    fcntl(ctrl[1], F_SETFL, fcntl(ctrl[1], F_GETFL) | O_NONBLOCK);
    stem.pid = pid;
    stem.pidfd = PidfdOpen(pid);
    stem.ctrl = ctrl[1];
    stem.out = out[0];
    stem.err = err[0];
    return stem;
  }

  // The stem child. Async-signal-safe calls only.
  [[noreturn]] static void RunStem(pid_t parent, const std::vector<int>& procs_fds, int out, int err, int ctrl,
                                   char* buf, char** ptrs, const char* exec_fail, const char* cwd_fail) {
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    for (int fd : procs_fds) {
      if (write(fd, "0", 1) < 0) _exit(125);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    dup2(ctrl, 3);
    syscall(SYS_close_range, 4, ~0U, 0);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);

    size_t n = 0;
    for (;;) {
      ssize_t r = read(3, buf + n, kSpecMax - n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      n += static_cast<size_t>(r);
      if (n == kSpecMax) break;
    }
    close(3);
    if (n < 8) _exit(0);  // retired without a job
    buf[n] = '\0';
    uint32_t counts[2];
    memcpy(counts, buf, sizeof counts);
    char* p = buf + 8;
    char* end = buf + n;
    auto next = [&]() -> char* {
      char* s = p;
      while (p < end && *p) ++p;
      if (p >= end) _exit(124);
      ++p;
      return s;
    };
    char* exe = next();
    char* cwd = next();
    size_t k = 0;
    for (uint32_t i = 0; i < counts[0]; ++i) ptrs[k++] = next();
    ptrs[k++] = nullptr;
    char** envp = ptrs + k;
    for (uint32_t i = 0; i < counts[1]; ++i) ptrs[k++] = next();
    ptrs[k++] = nullptr;

    auto fail = [](const char* what, const char* path) {
      int e = errno;
      (void)!write(2, what, strlen(what));
      (void)!write(2, path, strlen(path));
      (void)!write(2, ": ", 2);
      const char* m = strerror(e);
      (void)!write(2, m, strlen(m));
      (void)!write(2, "\n", 1);
      _exit(127);
    };
    if (chdir(cwd) != 0) fail(cwd_fail, cwd);
    execve(exe, ptrs, envp);
    fail(exec_fail, exe);
    _exit(127);
  }

  CgroupManager* cgroups_;
  std::mutex mu_;
  std::vector<Stem> stems_;  // guarded by mu_
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace

std::unique_ptr<Launcher> NewProcessLauncher(CgroupManager* cgroups) {
  return std::make_unique<ProcessLauncher>(cgroups);
}

}  // namespace nimbus::sandbox
