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

#include <cerrno>
#include <cstring>

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

class ProcessLauncher : public Launcher {
 public:
  explicit ProcessLauncher(CgroupManager* cgroups) : cgroups_(cgroups) {}

  Result<std::unique_ptr<Process>> Launch(const LaunchSpec& spec) override {
    std::unique_ptr<Cgroup> cg;
    std::vector<int> procs_fds;
    if (cgroups_) {
      auto r = cgroups_->CreateGroup(spec.instance_id, CgroupLimits{spec.memory_bytes, spec.pids_max});
      if (!r.ok()) return r.status();
      cg = std::move(r).value();
      procs_fds = cg->procs_fds();
    }

    std::vector<char*> argv, envp;
    for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return Status::Io(std::string("pipe: ") + strerror(errno));
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      return Status::Io(std::string("pipe: ") + strerror(errno));
    }
    // Messages the child may need, built before fork.
    std::string exec_fail = "nimbus: cannot execute " + spec.executable + ": ";
    std::string cwd_fail = "nimbus: cannot enter " + spec.cwd + ": ";
    const char* exe = spec.executable.c_str();
    const char* cwd = spec.cwd.c_str();
    pid_t parent = getpid();

    // TODO(perf): clone(CLONE_VM|CLONE_VFORK) avoids copying the daemon's page tables.
    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      return Status::Unavailable(std::string("fork failed: ") + strerror(e));
    }
    if (pid == 0) {
      // Child: async-signal-safe calls only.
      setsid();
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(126);
      for (int fd : procs_fds) {
        if (write(fd, "0", 1) < 0) _exit(125);
      }
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      syscall(SYS_close_range, 3, ~0U, 0);
      signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (chdir(cwd) != 0) {
        int e = errno;
        (void)!write(2, cwd_fail.data(), cwd_fail.size());
        const char* m = strerror(e);
        (void)!write(2, m, strlen(m));
        (void)!write(2, "\n", 1);
        _exit(127);
      }
      execve(exe, argv.data(), envp.data());
      int e = errno;
      (void)!write(2, exec_fail.data(), exec_fail.size());
      const char* m = strerror(e);
      (void)!write(2, m, strlen(m));
      (void)!write(2, "\n", 1);
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    int pidfd = PidfdOpen(pid);
    return std::unique_ptr<Process>(new ForkedProcess(pid, pidfd, out[0], err[0], std::move(cg)));
  }

 private:
  CgroupManager* cgroups_;
};

}  // namespace

std::unique_ptr<Launcher> NewProcessLauncher(CgroupManager* cgroups) {
  return std::make_unique<ProcessLauncher>(cgroups);
}

}  // namespace nimbus::sandbox
