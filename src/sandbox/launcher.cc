// The process launcher (process_launcher.h). Layout of one instance:
//
//   daemon (launcher thread)
//     `- stem  = nimbus-init, PID 1 of the instance's namespaces; reaps, reports the status
//          `- worker: waits for the launch spec, enters the jail, execs the bootstrap
//
// A primed stem (ProcessLauncherOptions::primed_runtimes) goes one step further before any
// function is known: its worker gets a spec without code and starts the runtime, which waits on
// the runtime channel. Its nimbus-init keeps the staging directory and a control socket, so a
// launch can have it bind the function's code at /var/task; the launch then writes the limits
// and sends the function's environment to the runtime (frame `A`).
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
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
#include <string_view>
#include <unordered_map>
#include <algorithm>
#include <poll.h>
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
constexpr int kInitStageFd = 5;    // a primed nimbus-init's staging directory (init_main.c)
constexpr int kInitControlFd = 6;  // a primed nimbus-init's control socket
constexpr uint64_t kReadyTmpBytes = 512ull << 20;  // the /tmp of prepared and primed stems (the default)
// How long a primed nimbus-init may take to bind the code before the launch gives up on it.
constexpr int kHandOffTimeoutMs = 2000;
// Room a primed runtime's environment block keeps (NIMBUS_PRIMED_SPACE) so the runtime can
// write its function's environment there at the hand-off, where /proc/PID/environ shows it.
constexpr size_t kPrimedEnvSpace = 32 * 1024;
// A runtime whose priming failed this many times in a row is not primed again.
constexpr int kMaxPrimeFailures = 3;

// Variables a runtime reads when its process starts (the loader, libc, the interpreter): a
// primed runtime has started already, so a function that sets one differently cannot use it.
bool ReadAtStartUp(std::string_view entry) {
  std::string_view key = entry.substr(0, entry.find('='));
  for (std::string_view exact : {"PATH", "LANG", "LANGUAGE"}) {
    if (key == exact) return true;
  }
  for (std::string_view prefix : {"LC_", "LD_", "GLIBC_", "MALLOC_", "PYTHON", "NODE_", "UV_", "OPENSSL_"}) {
    if (key.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

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
// instance's. Every instance dies with the daemon, so a new daemon may start over in its slot.
// Thread-safe.
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

// This daemon's range of instance uids among the daemons of the host (ProcessLauncherOptions):
// slot `index`, held by an flock on `lock_fd` until the daemon exits (close-on-exec, and every
// child closes it before it execs, so no instance keeps it).
struct UidSlot {
  unsigned index = 0;
  int lock_fd = -1;
  UidSlot() = default;
  UidSlot(unsigned i, int fd) : index(i), lock_fd(fd) {}
  UidSlot(UidSlot&& o) noexcept : index(o.index), lock_fd(std::exchange(o.lock_fd, -1)) {}
  UidSlot& operator=(UidSlot&& o) noexcept {
    if (this != &o) {
      if (lock_fd >= 0) close(lock_fd);
      index = o.index;
      lock_fd = std::exchange(o.lock_fd, -1);
    }
    return *this;
  }
  ~UidSlot() {
    if (lock_fd >= 0) close(lock_fd);
  }
};

// Takes the first free uid slot of the host.
Result<UidSlot> TakeUidSlot(const ProcessLauncherOptions& o) {
  if ((static_cast<uint64_t>(o.uid_base) + 1 + uint64_t{o.uid_slots} * o.uid_count) > 0xFFFFFFFEull) {
    return Status::InvalidArgument("the instance uid ranges go past the largest uid");
  }
  if (mkdir(o.uid_lock_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Io(Errno(("create " + o.uid_lock_dir).c_str()));
  }
  for (unsigned i = 0; i < o.uid_slots; ++i) {
    std::string path = o.uid_lock_dir + "/uids-" + std::to_string(i) + ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Io(Errno(("open " + path).c_str()));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return UidSlot(i, fd);
    int e = errno;
    close(fd);
    if (e != EWOULDBLOCK) return Status::Io("lock " + path + ": " + strerror(e));
  }
  return Status::FailedPrecondition(std::to_string(o.uid_slots) +
                                    " nimbus daemons already run on this host, each with instance uids of its own "
                                    "(locks in " + o.uid_lock_dir + "); stop one first");
}

// The files a stem holds until a launch takes it.
struct Stem {
  pid_t pid = -1;  // nimbus-init, as the daemon sees it
  int pidfd = -1;
  int ctrl = -1;    // write end: the spec, then EOF
  int status = -1;  // read end: the worker's wait status when it ends
  int out = -1, err = -1;
  int api = -1;  // the Runtime API's listening socket
  int chan = -1;  // the daemon's end of the runtime channel
  int init_ctl = -1;  // primed: the daemon's end of nimbus-init's control socket
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
    init_ctl = std::exchange(o.init_ctl, -1);
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
    CloseAll({pidfd, ctrl, status, out, err, api, chan, init_ctl});
    pidfd = ctrl = status = out = err = api = chan = init_ctl = -1;
    if (cgroup) (void)cgroup->Destroy();
    cgroup.reset();
  }
};

class ForkedProcess : public Process {
 public:
  ForkedProcess(Stem&& stem, int uid, bool check_peer, bool primed = false)
      : stem_(std::move(stem)), uid_(uid), check_peer_(check_peer), primed_(primed) {
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
  bool primed() const override { return primed_; }

 private:
  Stem stem_;
  const int uid_;
  const bool check_peer_;
  const bool primed_;
  int status_fd_ = -1;
  bool reaped_ = false;
  std::string description_;
};

// What a launch sends to its worker, as one message: a little-endian u32 length, then three u32
// counts (argc, envc, mounts), then NUL-terminated strings: executable, cwd, code_dir,
// runtime_dir, tmp options, passwd, group, hostname, uid, gid, pivoted (1|0), wait (1|0), the
// mounts (host, target, ro|rw), argv..., env....
// code_dir and runtime_dir are inside the root (under /.nimbus) when the stem has pivoted; an
// empty one is not bound (a prepared or primed stem's nimbus-init binds it later). With wait=1
// the worker enters the root and then waits for a second message, the exec (SerialiseExec),
// before it execs; executable, cwd, argv and env of this one are then empty.
bool SerialiseSpec(const std::vector<std::string>& head, const std::vector<BindMount>& mounts,
                   const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string& out) {
  if (argv.size() + env.size() + 3 * mounts.size() + head.size() + 4 > kMaxPointers) return false;
  uint32_t counts[4] = {0, static_cast<uint32_t>(argv.size()), static_cast<uint32_t>(env.size()),
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
  uint32_t length = static_cast<uint32_t>(out.size() - sizeof(uint32_t));
  memcpy(out.data(), &length, sizeof length);
  return out.size() <= kSpecMax;
}
constexpr int kHeadStrings = 12;

// The second message to a waiting worker: a u32 length, u32 argc and envc, then
// NUL-terminated strings: executable, cwd, argv..., env....
bool SerialiseExec(const std::string& exe, const std::string& cwd, const std::vector<std::string>& argv,
                   const std::vector<std::string>& env, std::string& out) {
  if (argv.size() + env.size() + 4 > kMaxPointers) return false;
  uint32_t counts[3] = {0, static_cast<uint32_t>(argv.size()), static_cast<uint32_t>(env.size())};
  out.assign(reinterpret_cast<const char*>(counts), sizeof counts);
  for (const auto* s : {&exe, &cwd}) {
    out += *s;
    out.push_back('\0');
  }
  for (const auto& a : argv) {
    out += a;
    out.push_back('\0');
  }
  for (const auto& e : env) {
    out += e;
    out.push_back('\0');
  }
  uint32_t length = static_cast<uint32_t>(out.size() - sizeof(uint32_t));
  memcpy(out.data(), &length, sizeof length);
  return out.size() <= kSpecMax;
}

// Reads one length-prefixed message from `fd` into buf (NUL-terminated). Returns its length, 0
// when the writer closed the pipe before a message began, -1 for a cut or oversized one.
// Async-signal-safe.
ssize_t ReadMessage(int fd, char* buf, size_t max) {
  uint32_t length = 0;
  size_t have = 0;
  auto fill = [fd](char* to, size_t want, size_t& got) {
    while (got < want) {
      ssize_t r = read(fd, to + got, want - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  };
  if (!fill(reinterpret_cast<char*>(&length), sizeof length, have)) return have == 0 ? 0 : -1;
  if (length > max) return -1;
  size_t got = 0;
  if (!fill(buf, length, got)) return -1;
  buf[length] = '\0';
  return static_cast<ssize_t>(length);
}

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
  ProcessLauncher(CgroupManager* cgroups, ProcessLauncherOptions options, std::unique_ptr<JailPlan> plan,
                  UidSlot slot)
      : cgroups_(cgroups),
        options_(std::move(options)),
        plan_(std::move(plan)),
        uid_slot_(std::move(slot)),
        uids_(options_.uid_base + static_cast<uid_t>(uid_slot_.index * options_.uid_count), options_.uid_count) {
    host_netns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    init_fd_ = open(options_.init_path.c_str(), O_PATH | O_CLOEXEC);
    while (TopUpOne()) {
    }  // the first stems start now, so the first cold start does not wait for one
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
    prepared_.clear();
    primed_.clear();
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
        // The next one after any launch that came meanwhile.
        if (TopUpOne()) topup_due_ = std::chrono::steady_clock::now();
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

    if (Primable(spec)) {
      if (auto primed = TakeReady(primed_, spec.runtime_dir)) {
        auto handed = HandOff(std::move(*primed), spec, task_root, runtime_root);
        if (handed.ok()) {
          prime_failures_[spec.runtime_dir] = 0;
          return handed;
        }
        // Started another way instead; a runtime that keeps failing is not primed again.
        NotePrimeFailure(spec.runtime_dir, handed.status());
      }
    }
    if (Preparable(spec) && prime_failures_[""] < kMaxPrimeFailures) {
      if (auto prepared = TakeReady(prepared_, "")) {
        auto started = StartPrepared(std::move(*prepared), spec, exe, task_root, runtime_root);
        if (started.ok() || started.status().code() == Code::kInvalidArgument) {
          if (started.ok()) prime_failures_[""] = 0;
          return started;
        }
        // Started the usual way instead; if prepared stems keep failing, none are made.
        NotePrimeFailure("", started.status());
      }
    }

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
      AddLauncherEnv(env, stem, task_root, runtime_root);
      if (stem.cgroup && cgroups_) {
        Status st = cgroups_->SetLimits(*stem.cgroup, CgroupLimits{spec.memory_bytes, spec.pids_max});
        if (!st.ok()) {
          return st;
        }
      }
      auto sent = SendSpec(stem, exe, task_root, code_in, runtime_in, spec.tmp_bytes, uid, mounts, env, spec.label);
      if (!sent.ok()) return sent.status();
      if (!*sent) continue;  // the stem died while waiting: use another
      bool check_peer = sandbox && spec.network == Network::kEgress;
      return std::unique_ptr<Process>(new ForkedProcess(std::move(stem), uid, check_peer));
    }
    return Status::Unavailable("could not start " + spec.label + ": its starter process died twice");
  }

  // The variables the launcher adds for an instance started from `stem`.
  static void AddLauncherEnv(std::vector<std::string>& env, const Stem& stem, const std::string& task_root,
                             const std::string& runtime_root) {
    env.push_back("LAMBDA_TASK_ROOT=" + task_root);
    env.push_back("LAMBDA_RUNTIME_DIR=" + runtime_root);
    env.push_back("AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + std::to_string(stem.api_port));
    if (stem.chan >= 0) env.push_back("NIMBUS_RUNTIME_FD=" + std::to_string(kChannelFd));
  }

  // Writes the worker's launch spec and closes the stem's spec pipe. Returns false when the stem
  // died while waiting (the caller takes another), an error when the spec cannot be sent at all.
  // `wait`: a prepared stem's worker enters its root and waits for the exec (ExecPrepared); the
  // pipe stays open for it.
  Result<bool> SendSpec(Stem& stem, const std::string& exe, const std::string& task_root, const std::string& code_in,
                        const std::string& runtime_in, uint64_t tmp_bytes, int uid,
                        const std::vector<BindMount>& mounts, const std::vector<std::string>& env,
                        const std::string& label, bool wait = false) {
    std::string uid_s = std::to_string(uid < 0 ? 0 : uid);
    std::string passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:" + uid_s + ":" + uid_s +
                         "::/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    std::string group = "root:x:0:\nsbx_user:x:" + uid_s + ":\nnimbus-functions:x:" +
                        std::to_string(options_.uid_base) + ":sbx_user\nnogroup:x:65534:\n";
    std::vector<std::string> head = {exe,    task_root, code_in, runtime_in,
                                     "size=" + std::to_string(tmp_bytes) + ",mode=1777",
                                     passwd, group,     "nimbus", uid_s,      uid_s,
                                     stem.pivoted ? "1" : "0", wait ? "1" : "0"};
    std::string blob;
    if (!SerialiseSpec(head, mounts, {exe}, env, blob)) {
      return Status::InvalidArgument("the environment of " + label + " is too large to start it (over 64 KB in all)");
    }
    ssize_t n = write(stem.ctrl, blob.data(), blob.size());
    if (!wait) close(std::exchange(stem.ctrl, -1));
    return n == static_cast<ssize_t>(blob.size());
  }

  // A stem already in its jail with its uid, waiting for a function (see the top of this file):
  // prepared (its worker waits to exec) or primed (its runtime runs, waiting on the channel).
  struct ReadyStem {
    Stem stem;
    std::string runtime_dir;  // primed: as ProcessLauncherOptions::primed_runtimes names it
    int uid = -1;
  };

  // True when `spec` can start from a prepared stem: what the stem's root was built with
  // (egress, no `filesystems`, the default /tmp) and code and runtime it can bind from /.nimbus.
  bool Preparable(const LaunchSpec& spec) const {
    return options_.sandbox && spec.network == Network::kEgress && spec.mounts.empty() &&
           spec.tmp_bytes == kReadyTmpBytes && !StagedPath(*plan_, spec.code_dir).empty() &&
           (spec.runtime_dir.empty() || !StagedPath(*plan_, spec.runtime_dir).empty());
  }

  // True when `spec` can be served by a primed instance of its runtime.
  bool Primable(const LaunchSpec& spec) const {
    if (spec.runtime_dir.empty() || spec.network != Network::kEgress || !spec.mounts.empty() ||
        spec.tmp_bytes != kReadyTmpBytes) {
      return false;
    }
    if (options_.sandbox && !Preparable(spec)) return false;
    for (const auto& entry : spec.env) {
      if (ReadAtStartUp(entry) &&
          std::find(options_.primed_env.begin(), options_.primed_env.end(), entry) == options_.primed_env.end()) {
        return false;
      }
    }
    return true;
  }

  static std::optional<ReadyStem> TakeReady(std::vector<ReadyStem>& from, const std::string& runtime_dir) {
    for (auto it = from.begin(); it != from.end(); ++it) {
      if (it->runtime_dir == runtime_dir) {
        ReadyStem p = std::move(*it);
        from.erase(it);
        return p;
      }
    }
    return std::nullopt;
  }

  // Has the stem's nimbus-init bind the staged `code_dir` at /var/task and, when given,
  // `runtime_dir` at /var/runtime (both host paths under a staged directory). Blocks for its
  // answer (two mounts, well under a millisecond) up to kHandOffTimeoutMs.
  Status BindInside(Stem& stem, const std::string& code_dir, const std::string& runtime_dir) {
    auto rel = [this](const std::string& host) {
      std::string staged = StagedPath(*plan_, host);  // "/.nimbus/N/rest"
      return staged.substr(std::strlen(kStageRoot) + 1);
    };
    std::string msg = rel(code_dir);
    msg.push_back('\0');
    if (!runtime_dir.empty()) msg += rel(runtime_dir);
    if (send(stem.init_ctl, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
      return Status::Unavailable(Errno("ask the instance's nimbus-init to bind its code"));
    }
    pollfd answer{stem.init_ctl, POLLIN, 0};
    unsigned char err = 0;
    if (poll(&answer, 1, kHandOffTimeoutMs) != 1 || recv(stem.init_ctl, &err, 1, 0) != 1) {
      return Status::Unavailable("the instance's nimbus-init did not bind its code");
    }
    close(std::exchange(stem.init_ctl, -1));
    if (err != 0) return Status::Io(std::string("bind the code in the instance: ") + strerror(err));
    return Status::Ok();
  }

  static bool Alive(const Stem& stem) {
    pollfd alive{stem.pidfd, POLLIN, 0};
    return stem.pidfd >= 0 && poll(&alive, 1, 0) == 0;
  }

  // Starts `spec` from a prepared stem: limits, the code (and runtime) bound by nimbus-init, then
  // the exec. An Unavailable error means the stem had died: the caller tries another.
  Result<std::unique_ptr<Process>> StartPrepared(ReadyStem&& prepared, const LaunchSpec& spec, const std::string& exe,
                                                const std::string& task_root, const std::string& runtime_root) {
    Stem& stem = prepared.stem;
    if (!Alive(stem)) return Status::Unavailable("the prepared stem had exited");
    if (stem.cgroup && cgroups_) {
      NIMBUS_RETURN_IF_ERROR(cgroups_->SetLimits(*stem.cgroup, CgroupLimits{spec.memory_bytes, spec.pids_max}));
    }
    NIMBUS_RETURN_IF_ERROR(BindInside(stem, spec.code_dir, spec.runtime_dir));
    std::vector<std::string> env = spec.env;
    AddLauncherEnv(env, stem, task_root, runtime_root);
    std::string blob;
    if (!SerialiseExec(exe, task_root, {exe}, env, blob)) {
      return Status::InvalidArgument("the environment of " + spec.label + " is too large to start it (over 64 KB in all)");
    }
    ssize_t n = write(stem.ctrl, blob.data(), blob.size());
    close(std::exchange(stem.ctrl, -1));
    if (n != static_cast<ssize_t>(blob.size())) return Status::Unavailable(Errno("start the prepared stem"));
    return std::unique_ptr<Process>(new ForkedProcess(std::move(stem), prepared.uid, /*check_peer=*/true));
  }

  // Forks a stem and has its worker enter its root (no code, no runtime yet) and wait.
  Result<ReadyStem> PrepareOne() {
    auto u = uids_.Take();
    if (!u.ok()) return u.status();
    auto forked = ForkStem(Network::kEgress, /*pivot=*/true, /*bind_later=*/true);
    if (!forked.ok()) return forked.status();
    ReadyStem prepared{std::move(forked).value(), "", static_cast<int>(*u)};
    auto sent = SendSpec(prepared.stem, "", "", "", "", kReadyTmpBytes, prepared.uid, {}, {}, "a prepared stem",
                         /*wait=*/true);
    if (!sent.ok()) return sent.status();
    if (!*sent) return Status::Unavailable("the stem died");
    return prepared;
  }

  // Gives a primed instance its function: the limits, the code at /var/task (nimbus-init binds
  // it), then the function's environment on the runtime channel. Blocks for nimbus-init's
  // answer (a mount, well under a millisecond) up to kHandOffTimeoutMs.
  Result<std::unique_ptr<Process>> HandOff(ReadyStem&& primed, const LaunchSpec& spec, const std::string& task_root,
                                          const std::string& runtime_root) {
    Stem& stem = primed.stem;
    if (!Alive(stem)) return Status::Unavailable("its primed runtime had exited");
    if (stem.cgroup && cgroups_) {
      NIMBUS_RETURN_IF_ERROR(cgroups_->SetLimits(*stem.cgroup, CgroupLimits{spec.memory_bytes, spec.pids_max}));
    }
    if (options_.sandbox) NIMBUS_RETURN_IF_ERROR(BindInside(stem, spec.code_dir, ""));
    std::vector<std::string> env = spec.env;
    AddLauncherEnv(env, stem, task_root, runtime_root);
    size_t size = 0;
    for (const auto& e : env) size += e.size() + 1;
    if (size > kSpecMax) {
      return Status::InvalidArgument("the environment of " + spec.label + " is too large to start it (over 64 KB in all)");
    }
    std::string frame = "A " + std::to_string(size) + "\n";
    for (const auto& e : env) {
      frame += e;
      frame.push_back('\0');
    }
    // Far below the socket's buffer: it is taken whole or the runtime is gone.
    if (send(stem.chan, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
      return Status::Unavailable(Errno("send the function to its primed runtime"));
    }
    return std::unique_ptr<Process>(new ForkedProcess(std::move(stem), primed.uid, options_.sandbox, /*primed=*/true));
  }

  // `runtime_dir`: a primed runtime, or "" for prepared stems.
  void NotePrimeFailure(const std::string& runtime_dir, const Status& why) {
    if (++prime_failures_[runtime_dir] == kMaxPrimeFailures) {
      std::string what = runtime_dir.empty() ? "prepared stems" : "primed instances of " + runtime_dir;
      fprintf(stderr, "nimbus: no longer keeping %s: %s\n", what.c_str(), why.message().c_str());
    }
  }

  // Starts one primed instance of the runtime in `runtime_dir`. On the launcher thread.
  Result<ReadyStem> PrimeOne(const std::string& runtime_dir) {
    const bool sandbox = options_.sandbox;
    std::string runtime_in = sandbox ? StagedPath(*plan_, runtime_dir) : runtime_dir;
    if (runtime_in.empty()) return Status::FailedPrecondition(runtime_dir + " is not staged in the instances' root");
    int uid = -1;
    if (sandbox) {
      auto u = uids_.Take();
      if (!u.ok()) return u.status();
      uid = static_cast<int>(*u);
    }
    auto forked = ForkStem(Network::kEgress, sandbox, /*bind_later=*/sandbox);
    if (!forked.ok()) return forked.status();
    ReadyStem primed{std::move(forked).value(), runtime_dir, uid};
    // Until its function is known, a primed runtime without the sandbox runs in its runtime
    // directory; the hand-off names the task root.
    const std::string task_root = sandbox ? kTaskRoot : runtime_dir;
    const std::string runtime_root = sandbox ? kRuntimeRoot : runtime_dir;
    std::vector<std::string> env = options_.primed_env;
    AddLauncherEnv(env, primed.stem, task_root, runtime_root);
    env.push_back("NIMBUS_PRIMED=1");
    env.push_back("NIMBUS_PRIMED_SPACE=" + std::string(kPrimedEnvSpace, '-'));
    auto sent = SendSpec(primed.stem, runtime_root + "/bootstrap", task_root, /*code_in=*/"", runtime_in,
                         kReadyTmpBytes, uid, {}, env, "a primed instance");
    if (!sent.ok()) return sent.status();
    if (!*sent) return Status::Unavailable("its starter process died");
    return primed;
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
  // Makes one missing ready stem or primed instance; true when it made one (more may be
  // missing), false when none is missing or making it failed (the next launch tries again).
  // One at a time, so launches queued meanwhile run between them: making a stem takes the
  // launcher's thread for a few milliseconds. Primed runtimes first: PrimeOne returns once the
  // spec is sent, and each interpreter then starts (tens of milliseconds) in its own process.
  bool TopUpOne() {
    for (const auto& runtime_dir : options_.primed_runtimes) {
      if (prime_failures_[runtime_dir] >= kMaxPrimeFailures) continue;
      size_t have = 0;
      for (const auto& p : primed_) have += p.runtime_dir == runtime_dir;
      if (have >= options_.primed_per_runtime) continue;
      auto p = PrimeOne(runtime_dir);
      if (!p.ok()) {
        NotePrimeFailure(runtime_dir, p.status());
        return false;
      }
      primed_.push_back(std::move(p).value());
      return true;
    }
    if (options_.sandbox && prime_failures_[""] < kMaxPrimeFailures && prepared_.size() < options_.stems) {
      auto p = PrepareOne();
      if (!p.ok()) {
        NotePrimeFailure("", p.status());  // launches start the usual way meanwhile
        return false;
      }
      prepared_.push_back(std::move(p).value());
      return true;
    }
    const bool pivot = options_.sandbox;
    auto count = [this, pivot](Network n) {
      size_t c = 0;
      for (auto& s : stems_) c += s.network == n && s.pivoted == pivot;
      return c;
    };
    // With the sandbox, most launches start from prepared stems; one plain stem serves the
    // others (another /tmp size, code outside the code store).
    const size_t plain = options_.sandbox ? std::min<size_t>(options_.stems, 1) : options_.stems;
    Network missing = Network::kEgress;
    if (count(Network::kEgress) >= plain) {
      if (!(options_.sandbox && want_private_net_ && count(Network::kNone) < 1)) return false;
      missing = Network::kNone;
    }
    auto s = ForkStem(missing, pivot);
    if (!s.ok()) return false;  // the next launch forks its own and reports the error
    stems_.push_back(std::move(s).value());
    return true;
  }

  // `bind_later`: the stem's nimbus-init keeps the staging directory and a control socket, to
  // bind the code when a launch comes (prepared and primed stems; sandbox and pivot only).
  Result<Stem> ForkStem(Network net, bool pivot, bool bind_later = false) {
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
    int init_ctl[2] = {-1, -1};
    if (bind_later && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, init_ctl) != 0) {
      Status st = Status::Io(Errno("socketpair for a primed instance"));
      CloseAll({out[0], out[1], err[0], err[1], ctrl[0], ctrl[1], status[0], status[1], chan[0], chan[1]});
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
      CloseAll({out[0], out[1], err[0], err[1], ctrl[0], ctrl[1], status[0], status[1], chan[0], chan[1],
                init_ctl[0], init_ctl[1]});
      return st;
    }
    if (pid == 0) {
      RunStem(parent, stem.pivoted, procs_fds, out[1], err[1], ctrl[0], status[1], chan[1], init_ctl[1], buf);
    }

    CloseAll({out[1], err[1], ctrl[0], status[1], chan[1], init_ctl[1]});
    stem.init_ctl = init_ctl[0];
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
  // `init_ctl` (primed stems only, else -1): nimbus-init's end of the control socket.
  [[noreturn]] void RunStem(pid_t parent, bool pivot, const std::vector<int>& procs_fds, int out, int err, int ctrl,
                            int status, int chan, int init_ctl, ChildBuffers& buf) {
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
    // A primed nimbus-init binds the code later from the staging directory, which the worker
    // covers when it enters the root: it is opened now, before the worker exists.
    int stage = -1;
    if (init_ctl >= 0) {
      stage = open(kStageRoot, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (stage < 0) ChildFail(err, "open the staging directory", errno);
    }
    long worker = syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (worker < 0) ChildFail(err, "fork the worker", errno);
    if (worker == 0) RunWorker(out, err, ctrl, chan, buf);
    if (init_ctl >= 0) {
      // Out of the way of the descriptors placed below, then to where nimbus-init expects them.
      stage = fcntl(stage, F_DUPFD_CLOEXEC, 64);
      init_ctl = fcntl(init_ctl, F_DUPFD_CLOEXEC, 64);
      if (stage < 0 || init_ctl < 0) ChildFail(err, "keep the staging directory", errno);
    }

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
    if (init_ctl >= 0) {
      dup2(stage, kInitStageFd);
      dup2(init_ctl, kInitControlFd);
    }
    syscall(SYS_close_range, init_ctl >= 0 ? kInitControlFd + 1 : kInitStageFd, ~0U, 0);
    char* argv[] = {const_cast<char*>("nimbus-init"), buf.worker_pid,
                    init_ctl >= 0 ? const_cast<char*>("bind") : nullptr, nullptr};
    char* envp[] = {nullptr};
    syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
    _exit(123);
  }

  // The worker: waits for its launch, enters the jail, execs. Async-signal-safe only.
  [[noreturn]] void RunWorker(int out, int err, int ctrl, int chan, ChildBuffers& buf) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int init_exe = fcntl(init_fd_, F_DUPFD_CLOEXEC, 64);  // clear of the numbers set below
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    dup2(ctrl, 3);
    dup2(chan, kChannelFd);  // inherited across exec: the function's runtime channel
    // nimbus-init, for a prepared stem's `nimbus-init --exec`; gone at any exec.
    dup2(init_exe, kChannelFd + 1);
    fcntl(kChannelFd + 1, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, kChannelFd + 2, ~0U, 0);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);

    char* spec = buf.spec.data();
    ssize_t got = ReadMessage(3, spec, kSpecMax);
    if (got == 0) _exit(0);  // retired without a job
    if (got < static_cast<ssize_t>(3 * sizeof(uint32_t))) _exit(124);
    size_t n = static_cast<size_t>(got);
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
    const bool wait = head[11][0] == '1';
    if (!wait) close(3);
    if (options_.sandbox) {
      JailLaunch l{head[10][0] == '1', head[2], head[3], head[4], head[5], head[6], head[7], mounts, counts[2],
                   ParseUnsigned(head[8]), ParseUnsigned(head[9])};
      const char* what = "";
      if (int e = EnterRoot(*plan_, l, buf.scratch.data(), buf.scratch.size(), &what)) ChildFail(2, what, e);
    }
    if (wait) {
      // A prepared stem: in its jail already, as its uid, under seccomp. The exec comes later,
      // through `nimbus-init --exec` (init_main.c), which reads it from fd 3: this process is a
      // clone of the daemon, and letting its memory go now keeps that off the launch.
      char* init_argv[] = {const_cast<char*>("nimbus-init"), const_cast<char*>("--exec"), nullptr};
      char* init_env[] = {nullptr};
      syscall(SYS_execveat, kChannelFd + 1, "", init_argv, init_env, AT_EMPTY_PATH);
      ChildFail(2, "exec nimbus-init --exec", errno);
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
  const UidSlot uid_slot_;
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
  std::vector<ReadyStem> prepared_;  // in their jail, waiting to exec a launch
  std::vector<ReadyStem> primed_;    // their runtime running, waiting for a function
  std::unordered_map<std::string, int> prime_failures_;  // consecutive failures per runtime
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
  UidSlot slot;
  if (options.sandbox) {
    auto taken = TakeUidSlot(options);
    if (!taken.ok()) return taken.status();
    slot = std::move(taken).value();
  }
  return std::unique_ptr<Launcher>(
      new ProcessLauncher(cgroups, std::move(options), std::move(plan), std::move(slot)));
}

}  // namespace nimbus::sandbox
