// The process launcher (process_launcher.h). Layout of one instance:
//
//   daemon (launcher thread)
//     `- stem  = nimbus-init, PID 1 of the instance's namespaces; reaps, reports the status
//          `- worker: waits for the launch spec, enters the jail, execs the bootstrap
//
// A stem is cloned ahead of need (joining a fresh memory cgroup alone costs the joining
// process an RCU grace period, 10-20 ms on a quiet machine, and the namespaces and the root
// skeleton cost more), so a launch only writes the function's limits and one spec down a pipe.
// Everything a child does after clone() is async-signal-safe: its buffers are allocated before.
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <deque>
#include <optional>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "sandbox/cgroup.h"
#include "sandbox/jail.h"
#include "sandbox/process_launcher.h"
#include "sandbox/seccomp_filter.h"

namespace nimbus::sandbox {
namespace {

constexpr size_t kSpecMax = 64 * 1024;
constexpr size_t kMaxPointers = 2048;
constexpr uint16_t kPrivateApiPort = 9001;  // the Runtime API inside a private network namespace
constexpr int kChannelFd = 4;  // where an instance inherits its runtime channel (NIMBUS_RUNTIME_FD)
constexpr std::chrono::milliseconds kTopUpDelay{20};

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "status " + std::to_string(status);
}

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

// A listening loopback socket for the Runtime API, in the calling thread's network namespace.
Result<int> ListenLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Io(Errno("socket"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    Status st = Status::Io(Errno("bind the Runtime API socket"));
    close(fd);
    return st;
  }
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

// Instance uids: each launch gets a uid never given before by this daemon. A uid is what the
// Runtime API check trusts, and a socket keeps the uid it was created under for as long as any
// process holds it: a stopped instance could have passed its sockets to another instance (over
// a unix socket), so handing its uid to a later instance would let those sockets pass as that
// instance's. Every instance dies with the daemon, so a new daemon may start over. Thread-safe.
class UidPool {
 public:
  UidPool(uid_t base, uint64_t count) : base_(base), count_(count) {}
  Result<uid_t> Take() {
    uint64_t n = next_.fetch_add(1);
    if (n >= count_) {
      return Status::Unavailable("this daemon has started " + std::to_string(count_) +
                                 " instances, each under a uid of its own, and has none left; restart nimbus");
    }
    return static_cast<uid_t>(base_ + 1 + n);
  }

 private:
  const uid_t base_;
  const uint64_t count_;
  std::atomic<uint64_t> next_{0};
};

// The files a stem holds until a launch takes it.
struct Stem {
  pid_t pid = -1;  // nimbus-init, as the daemon sees it
  int pidfd = -1;
  int ctrl = -1;    // write end: the spec, then EOF
  int status = -1;  // read end: the worker's wait status when it ends
  int out = -1, err = -1;
  int api = -1;  // the Runtime API's listening socket
  int chan = -1;  // the daemon's end of the runtime channel
  uint16_t api_port = 0;
  Network network = Network::kEgress;
  bool pivoted = false;  // already inside its root, with the code and runtimes staged
  std::unique_ptr<Cgroup> cgroup;

  Stem() = default;
  Stem(Stem&& o) noexcept { *this = std::move(o); }
  Stem& operator=(Stem&& o) noexcept {
    pid = std::exchange(o.pid, -1);
    pidfd = std::exchange(o.pidfd, -1);
    ctrl = std::exchange(o.ctrl, -1);
    status = std::exchange(o.status, -1);
    out = std::exchange(o.out, -1);
    err = std::exchange(o.err, -1);
    api = std::exchange(o.api, -1);
    chan = std::exchange(o.chan, -1);
    api_port = o.api_port;
    network = o.network;
    pivoted = o.pivoted;
    cgroup = std::move(o.cgroup);
    return *this;
  }
  ~Stem() { Discard(); }
  void Discard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
    CloseAll({pidfd, ctrl, status, out, err, api, chan});
    pidfd = ctrl = status = out = err = api = chan = -1;
    if (cgroup) (void)cgroup->Destroy();
    cgroup.reset();
  }
};

class ForkedProcess : public Process {
 public:
  ForkedProcess(Stem&& stem, int uid, bool check_peer)
      : stem_(std::move(stem)), uid_(uid), check_peer_(check_peer) {
    // The worker's own /proc status, for VmHWM when there is no cgroup.
    std::string children = "/proc/" + std::to_string(stem_.pid) + "/task/" + std::to_string(stem_.pid) + "/children";
    int fd = open(children.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[64] = {};
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n > 0) {
        std::string path = "/proc/" + std::to_string(atoi(buf)) + "/status";
        status_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      }
    }
  }
  // Blocking (waitpid, cgroup removal): runs on the launcher thread through Release().
  ~ForkedProcess() override {
    Kill();
    if (!reaped_ && stem_.pid > 0) waitpid(stem_.pid, nullptr, 0);
    stem_.pid = -1;
    if (status_fd_ >= 0) close(status_fd_);
    stem_.Discard();
  }
  int pid() const override { return stem_.pid; }
  int exit_fd() const override { return stem_.pidfd; }
  int TakeStdout() override { return std::exchange(stem_.out, -1); }
  int TakeStderr() override { return std::exchange(stem_.err, -1); }
  int TakeRuntimeApiListener() override { return std::exchange(stem_.api, -1); }
  int TakeRuntimeChannel() override { return std::exchange(stem_.chan, -1); }
  int uid() const override { return uid_; }
  bool check_peer_uid() const override { return check_peer_; }
  void Kill() override {
    if (reaped_ || stem_.pid <= 0) return;
    // PID 1 of the instance's namespace: its death ends every process in it. Without the
    // sandbox the instance is a process group (and a cgroup, emptied on release).
    kill(stem_.pid, SIGKILL);
    kill(-stem_.pid, SIGKILL);
  }
  std::string Reap() override {
    if (reaped_) return description_;
    int status = 0;
    if (waitpid(stem_.pid, &status, WNOHANG) != stem_.pid) return "";
    reaped_ = true;
    int worker = 0;
    ssize_t n = stem_.status >= 0 ? read(stem_.status, &worker, sizeof worker) : -1;
    description_ = n == static_cast<ssize_t>(sizeof worker) ? DescribeWait(worker) : DescribeWait(status);
    if (!check_peer_ && uid_ < 0) kill(-stem_.pid, SIGKILL);  // what the instance left behind
    return description_;
  }
  uint64_t PeakMemoryBytes() override {
    if (stem_.cgroup) {
      uint64_t v = stem_.cgroup->PeakMemoryBytes();
      if (v) return v;
    }
    return ReadVmHwm(status_fd_);
  }
  bool OomKilled() override { return stem_.cgroup && stem_.cgroup->OomKilled(); }

 private:
  Stem stem_;
  const int uid_;
  const bool check_peer_;
  int status_fd_ = -1;
  bool reaped_ = false;
  std::string description_;
};

// What a launch sends to its worker: three little-endian u32 counts (argc, envc, mounts), then
// NUL-terminated strings: executable, cwd, code_dir, runtime_dir, tmp options, passwd, group,
// hostname, uid, gid, the mounts (host, target, ro|rw), argv..., env....
// code_dir and runtime_dir are inside the root (under /.nimbus) when the stem has pivoted.
bool SerialiseSpec(const std::vector<std::string>& head, const std::vector<BindMount>& mounts,
                   const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string& out) {
  if (argv.size() + env.size() + 3 * mounts.size() + head.size() + 4 > kMaxPointers) return false;
  uint32_t counts[3] = {static_cast<uint32_t>(argv.size()), static_cast<uint32_t>(env.size()),
                        static_cast<uint32_t>(mounts.size())};
  out.assign(reinterpret_cast<const char*>(counts), sizeof counts);
  auto put = [&out](const std::string& s) {
    out += s;
    out.push_back('\0');
  };
  for (const auto& h : head) put(h);
  for (const auto& m : mounts) {
    put(m.host);
    put(m.target);
    put(m.read_only ? "ro" : "rw");
  }
  for (const auto& a : argv) put(a);
  for (const auto& e : env) put(e);
  return out.size() <= kSpecMax;
}
constexpr int kHeadStrings = 11;

// Buffers a child uses after clone(), allocated by the parent before it.
struct ChildBuffers {
  std::vector<char> spec = std::vector<char>(kSpecMax + 1);
  std::vector<char*> ptrs = std::vector<char*>(kMaxPointers + 2);
  std::vector<char> scratch = std::vector<char>(4096);
  char worker_pid[16] = {};
};

void WriteAll(int fd, const char* s) { (void)!write(fd, s, strlen(s)); }

[[noreturn]] void ChildFail(int fd, const char* step, int err) {
  WriteAll(fd, "nimbus: cannot start the instance: ");
  WriteAll(fd, step);
  WriteAll(fd, ": ");
  WriteAll(fd, strerror(err));
  WriteAll(fd, "\n");
  _exit(125);
}

unsigned ParseUnsigned(const char* s) {
  unsigned v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + static_cast<unsigned>(*s++ - '0');
  return v;
}

class ProcessLauncher : public Launcher {
 public:
  ProcessLauncher(CgroupManager* cgroups, ProcessLauncherOptions options, std::unique_ptr<JailPlan> plan)
      : cgroups_(cgroups),
        options_(std::move(options)),
        plan_(std::move(plan)),
        uids_(options_.uid_base, options_.uid_count) {
    host_netns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    init_fd_ = open(options_.init_path.c_str(), O_PATH | O_CLOEXEC);
    TopUp();  // the first stems start now, so the first cold start does not wait for one
    thread_ = std::thread([this] { Run(); });
  }
  ~ProcessLauncher() override {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.NotifyAll();
    thread_.join();
    stems_.clear();
    if (host_netns_ >= 0) close(host_netns_);
    if (init_fd_ >= 0) close(init_fd_);
  }

  void Launch(LaunchSpec spec, LaunchDone done) override {
    Post([this, spec = std::move(spec), done = std::move(done)]() mutable {
      done(LaunchNow(spec));
      // A replacement stem costs a clone, a few dozen mounts and an RCU grace period: started
      // at once, it competes for the CPU with the instance just launched, whose cold start is
      // a few milliseconds. So it is made a little later (launches meanwhile with no ready
      // stem fork their own).
      if (!topup_due_) topup_due_ = std::chrono::steady_clock::now() + kTopUpDelay;
    });
  }

  void Release(std::unique_ptr<Process> proc) override {
    if (!proc) return;
    // Kill now (a syscall), so the instance stops even if the launcher is busy.
    proc->Kill();
    Post([p = std::shared_ptr<Process>(std::move(proc))]() mutable { p.reset(); });
  }

  void Drain() override {
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    Post([done] { done->set_value(); });
    fut.wait();
  }

 private:
  void Post(std::function<void()> job) NIMBUS_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.NotifyOne();
  }

  void Run() NIMBUS_EXCLUDES(mu_) {
    for (;;) {
      std::function<void()> job;
      {
        MutexLock lock(mu_);
        // Until a job or the stop comes, or (when stems are to be replaced) until that is due.
        while (!stopping_ && jobs_.empty()) {
          if (!topup_due_) {
            cv_.Wait(mu_);
          } else if (cv_.WaitUntil(mu_, *topup_due_) == std::cv_status::timeout) {
            break;
          }
        }
        if (jobs_.empty() && stopping_) return;  // every job has run
        if (!jobs_.empty()) {
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
      }
      if (job) {
        job();
      } else if (topup_due_ && std::chrono::steady_clock::now() >= *topup_due_) {
        topup_due_.reset();
        TopUp();
      }
    }
  }

  // On the launcher thread.
  Result<std::unique_ptr<Process>> LaunchNow(const LaunchSpec& spec) {
    const bool sandbox = options_.sandbox;
    if (!sandbox && spec.network == Network::kNone) {
      return Status::FailedPrecondition(
          "`network: none` needs the sandbox, and this daemon runs with --insecure-no-sandbox");
    }
    if (!sandbox && !spec.mounts.empty()) {
      return Status::FailedPrecondition(
          "`filesystems` needs the sandbox, and this daemon runs with --insecure-no-sandbox");
    }
    std::vector<BindMount> mounts = spec.mounts;
    for (auto& m : mounts) {
      auto real = CheckShareableHostDir(m.host, options_.protected_dirs);
      if (!real.ok()) return Status::FailedPrecondition("filesystems: " + real.status().message());
      m.host = *real;  // bind what was checked, not a path a symlink may point elsewhere later
    }
    const std::string task_root = sandbox ? kTaskRoot : spec.code_dir;
    const std::string runtime_root =
        spec.runtime_dir.empty() ? task_root : (sandbox ? std::string(kRuntimeRoot) : spec.runtime_dir);
    const std::string exe = runtime_root + "/bootstrap";

    int uid = -1;
    if (sandbox) {
      auto u = uids_.Take();
      if (!u.ok()) return u.status();
      uid = static_cast<int>(*u);
    }

    // A pivoted stem serves every launch whose code and runtime are staged inside its root;
    // host directories (`filesystems`) need a stem that still sees the host.
    std::string code_in = sandbox ? StagedPath(*plan_, spec.code_dir) : spec.code_dir;
    std::string runtime_in =
        sandbox && !spec.runtime_dir.empty() ? StagedPath(*plan_, spec.runtime_dir) : spec.runtime_dir;
    const bool pivot = sandbox && spec.mounts.empty() && !code_in.empty() &&
                       (spec.runtime_dir.empty() || !runtime_in.empty());
    if (sandbox && !pivot) {
      code_in = spec.code_dir;
      runtime_in = spec.runtime_dir;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      Stem stem = TakeStem(spec.network, pivot);
      if (stem.pid < 0) {
        auto fresh = ForkStem(spec.network, pivot);
        if (!fresh.ok()) {
          return fresh.status();
        }
        stem = std::move(fresh).value();
      }
      std::vector<std::string> env = spec.env;
      env.push_back("LAMBDA_TASK_ROOT=" + task_root);
      env.push_back("LAMBDA_RUNTIME_DIR=" + runtime_root);
      env.push_back("AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + std::to_string(stem.api_port));
      if (stem.chan >= 0) env.push_back("NIMBUS_RUNTIME_FD=" + std::to_string(kChannelFd));
      std::string uid_s = std::to_string(uid < 0 ? 0 : uid);
      std::string passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:" + uid_s + ":" + uid_s +
                           "::/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
      std::string group = "root:x:0:\nsbx_user:x:" + uid_s + ":\nnimbus-functions:x:" +
                          std::to_string(options_.uid_base) + ":sbx_user\nnogroup:x:65534:\n";
      std::vector<std::string> head = {exe,    task_root, code_in, runtime_in,
                                       "size=" + std::to_string(spec.tmp_bytes) + ",mode=1777",
                                       passwd, group,     "nimbus", uid_s,      uid_s,
                                       stem.pivoted ? "1" : "0"};
      std::string blob;
      if (!SerialiseSpec(head, mounts, {exe}, env, blob)) {
        return Status::InvalidArgument("the environment of " + spec.label +
                                       " is too large to start it (over 64 KB in all)");
      }
      if (stem.cgroup && cgroups_) {
        Status st = cgroups_->SetLimits(*stem.cgroup, CgroupLimits{spec.memory_bytes, spec.pids_max});
        if (!st.ok()) {
          return st;
        }
      }
      ssize_t n = write(stem.ctrl, blob.data(), blob.size());
      close(std::exchange(stem.ctrl, -1));
      if (n != static_cast<ssize_t>(blob.size())) continue;  // the stem died while waiting: use another
      bool check_peer = sandbox && spec.network == Network::kEgress;
      return std::unique_ptr<Process>(new ForkedProcess(std::move(stem), uid, check_peer));
    }
    return Status::Unavailable("could not start " + spec.label + ": its starter process died twice");
  }

  Stem TakeStem(Network net, bool pivoted) {
    for (auto it = stems_.rbegin(); it != stems_.rend(); ++it) {
      if (it->network == net && it->pivoted == pivoted) {
        Stem s = std::move(*it);
        stems_.erase(std::next(it).base());
        return s;
      }
    }
    if (net == Network::kNone && pivoted) want_private_net_ = true;
    return Stem();
  }

  // Keeps `options_.stems` stems for egress and, once a `network: none` function has run, one
  // with a private network. On the launcher thread (or in the constructor, before it runs).
  // Stems that see the host (for `filesystems`) are forked when needed, not kept.
  void TopUp() {
    const bool pivot = options_.sandbox;
    auto count = [this, pivot](Network n) {
      size_t c = 0;
      for (auto& s : stems_) c += s.network == n && s.pivoted == pivot;
      return c;
    };
    while (count(Network::kEgress) < options_.stems) {
      auto s = ForkStem(Network::kEgress, pivot);
      if (!s.ok()) return;  // the next launch forks its own and reports the error
      stems_.push_back(std::move(s).value());
    }
    if (options_.sandbox && want_private_net_ && count(Network::kNone) < 1) {
      auto s = ForkStem(Network::kNone, pivot);
      if (s.ok()) stems_.push_back(std::move(s).value());
    }
  }

  Result<Stem> ForkStem(Network net, bool pivot) {
    Stem stem;
    stem.network = net;
    stem.pivoted = pivot && options_.sandbox;
    std::vector<int> procs_fds;
    if (cgroups_) {
      auto r = cgroups_->CreateGroup("instance-" + std::to_string(next_id_++), CgroupLimits{});
      if (!r.ok()) return r.status();
      stem.cgroup = std::move(r).value();
      procs_fds = stem.cgroup->procs_fds();
    }
    int out[2] = {-1, -1}, err[2] = {-1, -1}, ctrl[2] = {-1, -1}, status[2] = {-1, -1}, chan[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(ctrl, O_CLOEXEC) != 0 ||
        pipe2(status, O_CLOEXEC) != 0) {
      Status st = Status::Io(Errno("pipe"));
      CloseAll({out[0], out[1], err[0], err[1], ctrl[0], ctrl[1], status[0], status[1]});
      return st;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) != 0) {
      Status st = Status::Io(Errno("socketpair for the runtime channel"));
      CloseAll({out[0], out[1], err[0], err[1], ctrl[0], ctrl[1], status[0], status[1]});
      return st;
    }
    ChildBuffers buf;
    unsigned long flags = SIGCHLD;
    if (options_.sandbox) {
      flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
      if (net == Network::kNone) flags |= CLONE_NEWNET;
    }
    const pid_t parent = getpid();
    // A raw clone: glibc's fork() would run atfork handlers, and namespaces need the flags.
    long pid = syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
    if (pid < 0) {
      Status st = Status::Unavailable(Errno(options_.sandbox ? "clone into new namespaces" : "fork"));
      CloseAll({out[0], out[1], err[0], err[1], ctrl[0], ctrl[1], status[0], status[1], chan[0], chan[1]});
      return st;
    }
    if (pid == 0) RunStem(parent, stem.pivoted, procs_fds, out[1], err[1], ctrl[0], status[1], chan[1], buf);

    CloseAll({out[1], err[1], ctrl[0], status[1], chan[1]});
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    fcntl(status[0], F_SETFL, fcntl(status[0], F_GETFL) | O_NONBLOCK);
    // A full pipe must never block: the spec fits the pipe buffer or the launch fails.
    fcntl(ctrl[1], F_SETFL, fcntl(ctrl[1], F_GETFL) | O_NONBLOCK);
    stem.pid = static_cast<pid_t>(pid);
    stem.pidfd = PidfdOpen(stem.pid);
    stem.ctrl = ctrl[1];
    stem.status = status[0];
    stem.out = out[0];
    stem.err = err[0];
    stem.chan = chan[0];
    auto api = net == Network::kNone && options_.sandbox ? ListenInside(stem.pid) : ListenLoopback(0);
    if (!api.ok()) return api.status();  // ~Stem kills the child
    stem.api = *api;
    stem.api_port = PortOf(stem.api);
    return stem;
  }

  // The Runtime API socket of a `network: none` instance lives in its own network namespace,
  // at 127.0.0.1:9001 as in Lambda. setns() moves only this thread; it moves back at once.
  Result<int> ListenInside(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return Status::Io(Errno("open the instance's network namespace"));
    if (setns(ns, CLONE_NEWNET) != 0) {
      Status st = Status::Io(Errno("enter the instance's network namespace"));
      close(ns);
      return st;
    }
    close(ns);
    Result<int> fd = Status::Io("unset");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    strcpy(ifr.ifr_name, "lo");
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
      if (ioctl(s, SIOCSIFFLAGS, &ifr) == 0) {
        fd = ListenLoopback(kPrivateApiPort);
      } else {
        fd = Status::Io(Errno("bring up the instance's loopback"));
      }
    } else {
      fd = Status::Io(Errno("find the instance's loopback"));
    }
    if (s >= 0) close(s);
    if (setns(host_netns_, CLONE_NEWNET) != 0) {
      // Cannot happen with a valid fd; going on in the wrong namespace would be worse.
      fprintf(stderr, "nimbus: launcher cannot return to the host network namespace: %s\n", strerror(errno));
      abort();
    }
    return fd;
  }

  // The stem child (PID 1 of the new namespaces when sandboxed). Async-signal-safe only.
  [[noreturn]] void RunStem(pid_t parent, bool pivot, const std::vector<int>& procs_fds, int out, int err, int ctrl,
                            int status, int chan, ChildBuffers& buf) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!options_.sandbox && getppid() != parent) _exit(126);
    setsid();
    for (int fd : procs_fds) {
      if (write(fd, "0", 1) < 0) ChildFail(err, "join the instance's cgroup", errno);
    }
    const char* what = "";
    if (options_.sandbox) {
      if (int e = PrepareRoot(*plan_, pivot, &what)) ChildFail(err, what, e);
    } else {
      prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    long worker = syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (worker < 0) ChildFail(err, "fork the worker", errno);
    if (worker == 0) RunWorker(out, err, ctrl, chan, buf);

    // The stem becomes nimbus-init: nothing of the daemon's memory stays with the instance.
    long v = worker;
    char digits[16];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v > 0);
    for (int i = 0; i < n; ++i) buf.worker_pid[i] = digits[n - 1 - i];
    buf.worker_pid[n] = '\0';
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    dup2(status, 3);
    // By descriptor, not by path: the worker may already have pivoted into the instance's root
    // and detached the host's, where the path lives.
    dup2(init_fd_, 4);
    fcntl(4, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, 5, ~0U, 0);
    char* argv[] = {const_cast<char*>("nimbus-init"), buf.worker_pid, nullptr};
    char* envp[] = {nullptr};
    syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
    _exit(123);
  }

  // The worker: waits for its launch, enters the jail, execs. Async-signal-safe only.
  [[noreturn]] void RunWorker(int out, int err, int ctrl, int chan, ChildBuffers& buf) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    dup2(ctrl, 3);
    dup2(chan, kChannelFd);  // inherited across exec: the function's runtime channel
    syscall(SYS_close_range, kChannelFd + 1, ~0U, 0);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);

    char* spec = buf.spec.data();
    size_t n = 0;
    for (;;) {
      ssize_t r = read(3, spec + n, kSpecMax - n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      n += static_cast<size_t>(r);
      if (n == kSpecMax) break;
    }
    close(3);
    if (n < 12) _exit(0);  // retired without a job
    spec[n] = '\0';
    uint32_t counts[3];
    memcpy(counts, spec, sizeof counts);
    char* p = spec + sizeof counts;
    char* end = spec + n;
    auto next = [&]() -> char* {
      char* s = p;
      while (p < end && *p) ++p;
      if (p >= end) _exit(124);
      ++p;
      return s;
    };
    char* head[kHeadStrings];
    for (auto& h : head) h = next();
    char** ptrs = buf.ptrs.data();
    size_t k = 0;
    char** mounts = ptrs;
    for (uint32_t i = 0; i < 3 * counts[2]; ++i) ptrs[k++] = next();
    char** argv = ptrs + k;
    for (uint32_t i = 0; i < counts[0]; ++i) ptrs[k++] = next();
    ptrs[k++] = nullptr;
    char** envp = ptrs + k;
    for (uint32_t i = 0; i < counts[1]; ++i) ptrs[k++] = next();
    ptrs[k++] = nullptr;

    const char* exe = head[0];
    const char* cwd = head[1];
    if (options_.sandbox) {
      JailLaunch l{head[10][0] == '1', head[2], head[3], head[4], head[5], head[6], head[7], mounts, counts[2],
                   ParseUnsigned(head[8]), ParseUnsigned(head[9])};
      const char* what = "";
      if (int e = EnterRoot(*plan_, l, buf.scratch.data(), buf.scratch.size(), &what)) ChildFail(2, what, e);
    }
    if (chdir(cwd) != 0) ChildFail(2, "enter the task root", errno);
    execve(exe, argv, envp);
    int e = errno;
    WriteAll(2, "nimbus: cannot execute ");
    WriteAll(2, exe);
    WriteAll(2, ": ");
    WriteAll(2, strerror(e));
    WriteAll(2, "\n");
    _exit(127);
  }

  CgroupManager* const cgroups_;
  const ProcessLauncherOptions options_;
  const std::unique_ptr<JailPlan> plan_;  // null without the sandbox
  UidPool uids_;
  int host_netns_ = -1;
  int init_fd_ = -1;  // nimbus-init, opened once (O_PATH)

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> jobs_ NIMBUS_GUARDED_BY(mu_);
  bool stopping_ NIMBUS_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // Owned by the launcher thread (and the constructor before the thread starts):
  std::vector<Stem> stems_;
  std::optional<std::chrono::steady_clock::time_point> topup_due_;  // when to replace used stems
  bool want_private_net_ = false;
  uint64_t next_id_ = 1;
};

// Tries what the sandbox needs in a throwaway child: the namespaces, the root skeleton, the
// privilege drop and the seccomp filter. Blocking; runs once at start-up.
Status ProbeSandbox(const JailPlan& plan) {
  ChildBuffers buf;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Status::Io(Errno("pipe"));
  unsigned long flags = SIGCHLD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
  long pid = syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    int e = errno;
    CloseAll({pipefd[0], pipefd[1]});
    return Status::Unavailable(std::string("namespaces are not available (clone with CLONE_NEWPID|CLONE_NEWNS|"
                                           "CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWNET: ") +
                               strerror(e) + ")");
  }
  if (pid == 0) {
    const char* what = "";
    int e = PrepareRoot(plan, /*pivot=*/true, &what);
    if (e == 0) {
      char* mounts[1] = {nullptr};
      JailLaunch l{true, "/usr", "", "size=1m,mode=1777", "", "", "probe", mounts, 0, 65534, 65534};
      e = EnterRoot(plan, l, buf.scratch.data(), buf.scratch.size(), &what);
    }
    if (e != 0) {
      WriteAll(pipefd[1], what);
      WriteAll(pipefd[1], ": ");
      WriteAll(pipefd[1], strerror(e));
    }
    _exit(e == 0 ? 0 : 1);
  }
  close(pipefd[1]);
  int status = 0;
  waitpid(static_cast<pid_t>(pid), &status, 0);
  char msg[512] = {};
  ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
  close(pipefd[0]);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status::Unavailable("the sandbox does not work here (" + std::string(n > 0 ? msg : "the probe died") + ")");
}

}  // namespace

Result<std::unique_ptr<Launcher>> NewProcessLauncher(CgroupManager* cgroups, ProcessLauncherOptions options) {
  if (access(options.init_path.c_str(), X_OK) != 0) {
    return Status::FailedPrecondition("nimbus-init not found at " + options.init_path +
                                      "; build it with `make build` or pass --share-dir");
  }
  std::unique_ptr<JailPlan> plan;
  if (options.sandbox) {
    auto filter = BuildInstanceFilter();
    if (!filter.ok()) return Status::Unavailable("seccomp is not available: " + filter.status().message());
    auto p = BuildJailPlan(options.root_dir, std::move(filter).value(), options.uid_base);
    if (!p.ok()) return p.status();
    // Matched textually against the paths launches name, so they are kept as the daemon
    // spells them (absolute, not resolved).
    for (const auto& dir : options.staged_dirs) {
      std::error_code ec;
      if (!std::filesystem::is_directory(dir, ec)) {
        return Status::FailedPrecondition("cannot stage " + dir + " for instances: not a directory");
      }
      p->staged.push_back(dir);
    }
    plan = std::make_unique<JailPlan>(std::move(p).value());
    NIMBUS_RETURN_IF_ERROR(ProbeSandbox(*plan));
  }
  return std::unique_ptr<Launcher>(new ProcessLauncher(cgroups, std::move(options), std::move(plan)));
}

}  // namespace nimbus::sandbox
