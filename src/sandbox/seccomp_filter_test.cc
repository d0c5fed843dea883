// Specification of the instance seccomp filter. Each case forks a child, installs the exported
// program there (as the launcher does) and reports through the child's exit code what a
// syscall did: 0 for success, else its errno. Every refused call is also made without the
// filter, so a case fails if the refusal came from somewhere else (permissions, bad arguments).
// Then the runtimes themselves (python3, node) run whole programs under the filter.
#include "sandbox/seccomp_filter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace nimbus::sandbox {
namespace {

constexpr int kInstallFailed = 200;

const std::vector<sock_filter>& Filter() {
  static const std::vector<sock_filter> prog = [] {
    Result<std::vector<sock_filter>> built = BuildInstanceFilter();
    if (!built.ok()) {
      ADD_FAILURE() << built.status().ToString();
      return std::vector<sock_filter>{};
    }
    return std::move(built).value();
  }();
  return prog;
}

enum class Filtered { kNo, kYes };

// Runs `probe` in a forked child, under the filter when asked, and returns the child's wait
// status. The probe's return value is the exit code. The test process is single-threaded, so
// the child may use the allocator.
int RunInChild(Filtered filtered, const std::function<int()>& probe) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (filtered == Filtered::kYes) {
      const std::vector<sock_filter>& prog = Filter();
      if (prog.empty() || InstallFilter(prog.data(), prog.size()) != 0) _exit(kInstallFailed);
    }
    _exit(probe());
  }
  int status = -1;
  EXPECT_EQ(waitpid(pid, &status, 0), pid) << std::strerror(errno);
  return status;
}

// Exit code of a filtered/unfiltered child running `probe`; -signal if it was killed.
int Outcome(Filtered filtered, const std::function<int()>& probe) {
  int status = RunInChild(filtered, probe);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

// 0 when a syscall-style result `rc` is success, else errno.
int ErrnoOf(long rc) { return rc == -1 ? errno : 0; }

// Refused with `expected` errno under the filter, and not for that reason without it.
void ExpectRefused(const char* what, const std::function<int()>& probe, int expected = EPERM) {
  SCOPED_TRACE(what);
  int without = Outcome(Filtered::kNo, probe);
  EXPECT_NE(without, expected) << what << " fails with errno " << expected
                               << " even without the filter; the probe proves nothing";
  EXPECT_GE(without, 0) << what << " killed the unfiltered child";
  EXPECT_EQ(Outcome(Filtered::kYes, probe), expected)
      << what << ": expected errno " << expected << " (" << std::strerror(expected) << ")";
}

void ExpectAllowed(const char* what, const std::function<int()>& probe) {
  int outcome = Outcome(Filtered::kYes, probe);
  EXPECT_EQ(outcome, 0) << what << " under the filter: "
                        << (outcome > 0 ? std::strerror(outcome) : "killed by a signal");
}

bool RunningAsRoot() { return geteuid() == 0; }

TEST(InstanceFilter, IsANonEmptyProgramTheKernelAccepts) {
  ASSERT_FALSE(Filter().empty());
  EXPECT_LE(Filter().size(), static_cast<size_t>(BPF_MAXINSNS));
  EXPECT_EQ(Outcome(Filtered::kYes, [] { return 0; }), 0);
}

TEST(InstanceFilter, RefusesMounting) {
  if (!RunningAsRoot()) GTEST_SKIP() << "the unfiltered control needs root";
  ExpectRefused("mount", [] {
    return ErrnoOf(mount("none", "/nonexistent-nimbus-target", "tmpfs", 0, nullptr));
  });
  ExpectRefused("chroot", [] { return ErrnoOf(chroot("/")); });
  ExpectRefused("fsopen", [] {
    long fd = syscall(SYS_fsopen, "tmpfs", 0);
    return ErrnoOf(fd);
  });
}

TEST(InstanceFilter, RefusesNewNamespaces) {
  if (!RunningAsRoot()) GTEST_SKIP() << "the unfiltered control needs root";
  ExpectRefused("unshare(CLONE_NEWUSER)", [] { return ErrnoOf(unshare(CLONE_NEWUSER)); });
  ExpectRefused("setns", [] {
    int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    return ErrnoOf(setns(fd, CLONE_NEWUTS));
  });
  ExpectRefused("clone(CLONE_NEWNS)", [] {
    long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) syscall(SYS_exit_group, 0);
    if (pid < 0) return errno;
    waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return 0;
  });
  ExpectRefused("clone(CLONE_NEWUSER|CLONE_NEWPID)", [] {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) syscall(SYS_exit_group, 0);
    if (pid < 0) return errno;
    waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return 0;
  });
}

TEST(InstanceFilter, AnswersClone3WithEnosysSoLibcFallsBackToClone) {
  // clone3 with a zero size is EINVAL without the filter.
  ExpectRefused("clone3", [] { return ErrnoOf(syscall(SYS_clone3, nullptr, 0)); }, ENOSYS);
}

TEST(InstanceFilter, RefusesTracingOtherProcesses) {
  if (!RunningAsRoot()) GTEST_SKIP() << "the unfiltered control needs root";
  ExpectRefused("ptrace(PTRACE_ATTACH)", [] {
    pid_t target = fork();
    if (target == 0) {
      pause();
      _exit(0);
    }
    int err = ErrnoOf(ptrace(PTRACE_ATTACH, target, nullptr, nullptr));
    kill(target, SIGKILL);
    waitpid(target, nullptr, 0);
    return err;
  });
  ExpectRefused("process_vm_readv", [] {
    char src = 'x', dst = 0;
    iovec local{&dst, 1}, remote{&src, 1};
    return ErrnoOf(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
  });
}

TEST(InstanceFilter, RefusesKernelAttackSurfaceAFunctionNeverUses) {
  if (!RunningAsRoot()) GTEST_SKIP() << "the unfiltered control needs root";
  ExpectRefused("bpf", [] {
    bpf_attr attr{};
    return ErrnoOf(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
  });
  ExpectRefused("keyctl", [] {
    return ErrnoOf(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1));
  });
  ExpectRefused("io_uring_setup", [] { return ErrnoOf(syscall(SYS_io_uring_setup, 1, nullptr)); });
  ExpectRefused("userfaultfd", [] { return ErrnoOf(syscall(SYS_userfaultfd, O_CLOEXEC)); });
  ExpectRefused("perf_event_open", [] {
    return ErrnoOf(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
  });
}

TEST(InstanceFilter, AllowsReadingThePersonaButNotChangingIt) {
  ExpectAllowed("personality(query)", [] {
    return personality(0xffffffff) == -1 ? errno : 0;
  });
  ExpectAllowed("personality(PER_LINUX)", [] { return personality(PER_LINUX) == -1 ? errno : 0; });
  ExpectRefused("personality(ADDR_NO_RANDOMIZE)", [] {
    return personality(ADDR_NO_RANDOMIZE) == -1 ? errno : 0;
  });
  ExpectRefused("personality(READ_IMPLIES_EXEC)", [] {
    return personality(READ_IMPLIES_EXEC) == -1 ? errno : 0;
  });
  ExpectRefused("personality(0x7fffffff)", [] {
    return ErrnoOf(syscall(SYS_personality, 0x7ffffffful));
  });
  // The kernel reads only the low 32 bits: what is above them neither hides a refused persona
  // nor turns an allowed one into a refusal.
  ExpectRefused("personality with upper bits", [] {
    return ErrnoOf(syscall(SYS_personality, (1ul << 32) | ADDR_NO_RANDOMIZE));
  });
  ExpectAllowed("personality(query) with upper bits", [] {
    return ErrnoOf(syscall(SYS_personality, (1ul << 32) | 0xfffffffful));
  });
}

#if defined(__x86_64__)
TEST(InstanceFilter, KillsAProcessThatUsesTheX32Abi) {
  constexpr long kX32Bit = 0x40000000;
  EXPECT_EQ(Outcome(Filtered::kYes, [] { return ErrnoOf(syscall(kX32Bit | SYS_getpid)); }),
            -SIGSYS);
}

TEST(InstanceFilter, KillsAProcessThatUsesThe32BitAbi) {
  auto getpid_via_int80 = [] {
    long ret;
    // i386 getpid is 20.
    asm volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory", "r8", "r9", "r10", "r11");
    return ret == getpid() ? 0 : 1;
  };
  int without = Outcome(Filtered::kNo, getpid_via_int80);
  if (without != 0) GTEST_SKIP() << "this kernel runs no 32-bit syscalls (outcome " << without << ")";
  EXPECT_EQ(Outcome(Filtered::kYes, getpid_via_int80), -SIGSYS);
}
#endif

void* ThreadBody(void* arg) {
  *static_cast<int*>(arg) = 42;
  return nullptr;
}

TEST(InstanceFilter, AllowsOrdinaryWork) {
  ExpectAllowed("fork and wait", [] {
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 1;
  });
  ExpectAllowed("exec /bin/true", [] {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  });
  ExpectAllowed("posix_spawn /bin/true", [] {
    pid_t pid;
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    if (int rc = posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ); rc != 0) {
      return rc;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  });
  ExpectAllowed("pthread_create", [] {
    pthread_t t;
    int value = 0;
    if (int rc = pthread_create(&t, nullptr, ThreadBody, &value); rc != 0) return rc;
    pthread_join(t, nullptr);
    return value == 42 ? 0 : 1;
  });
  ExpectAllowed("loopback TCP", [] {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0) return errno;
    if (listen(listener, 1) != 0) return errno;
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, reinterpret_cast<sockaddr*>(&addr), len) != 0) return errno;
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return errno;
    char c = 0;
    if (write(client, "x", 1) != 1 || read(conn, &c, 1) != 1) return errno;
    return c == 'x' ? 0 : 1;
  });
  ExpectAllowed("files and mmap", [] {
    char path[] = "/tmp/nimbus-seccomp-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return errno;
    unlink(path);
    if (write(fd, "hello", 5) != 5) return errno;
    void* file_map = mmap(nullptr, 5, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file_map == MAP_FAILED) return errno;
    if (std::memcmp(file_map, "hello", 5) != 0) return 1;
    void* anon = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return errno;
    static_cast<char*>(anon)[4096] = 1;
    char buf[5];
    if (pread(fd, buf, 5, 0) != 5) return errno;
    return std::memcmp(buf, "hello", 5) == 0 ? 0 : 1;
  });
}

// Execs `argv` from a filtered child and returns its exit code (-signal if killed).
int RunUnderFilter(std::vector<std::string> argv) {
  return Outcome(Filtered::kYes, [&argv] {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    return 127;
  });
}

bool Executable(const char* path) { return access(path, X_OK) == 0; }

TEST(InstanceFilter, Python311RunsThreadsSubprocessesAndSockets) {
  if (!Executable("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const char* script = R"PY(
import os, threading, subprocess, socket, asyncio, tempfile, multiprocessing
results = []
t = threading.Thread(target=lambda: results.append(sum(range(1000))))
t.start(); t.join()
assert results == [499500], results
subprocess.run(["/bin/true"], check=True)
assert subprocess.run(["/bin/echo", "hi"], capture_output=True).stdout == b"hi\n"
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
cli.sendall(b"ping"); assert conn.recv(4) == b"ping"
pid = os.fork()
if pid == 0:
    os._exit(3)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 3
with multiprocessing.Pool(2) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
async def main():
    await asyncio.sleep(0)
    return 5
assert asyncio.run(main()) == 5
with tempfile.TemporaryFile() as f:
    f.write(b"data"); f.seek(0); assert f.read() == b"data"
# The filter is inherited across exec: a refused call shows up as PermissionError.
try:
    os.chroot("/")
    raise SystemExit("chroot was allowed")
except PermissionError:
    pass
)PY";
  EXPECT_EQ(RunUnderFilter({"/usr/bin/python3", "-c", script}), 0);
}

TEST(InstanceFilter, NodeRunsWorkersChildProcessesAndSockets) {
  if (!Executable("/usr/bin/node")) GTEST_SKIP() << "no /usr/bin/node";
  const char* script = R"JS(
const assert = require('assert');
const cp = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { Worker } = require('worker_threads');
cp.execFileSync('/bin/true');
assert.strictEqual(cp.execFileSync('/bin/echo', ['hi']).toString(), 'hi\n');
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nimbus-')), 'f');
fs.writeFileSync(file, 'data');
assert.strictEqual(fs.readFileSync(file, 'utf8'), 'data');
(async () => {
  assert.strictEqual(await fs.promises.readFile(file, 'utf8'), 'data');
  fs.rmSync(path.dirname(file), { recursive: true });
  const fromWorker = await new Promise((resolve, reject) => {
    const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  });
  assert.strictEqual(fromWorker, 42);
  const server = net.createServer((s) => s.pipe(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const echoed = await new Promise((resolve, reject) => {
    const c = net.connect(server.address().port, '127.0.0.1', () => c.write('ping'));
    c.once('data', (d) => { c.destroy(); resolve(d.toString()); });
    c.once('error', reject);
  });
  assert.strictEqual(echoed, 'ping');
  server.close();
})().catch((e) => { console.error(e); process.exit(1); });
)JS";
  EXPECT_EQ(RunUnderFilter({"/usr/bin/node", "-e", script}), 0);
}

// Cost of the filter for the record (printed, not asserted: the machine is shared). getppid is
// allowed with no argument checks, so the kernel's per-syscall cache skips the program;
// personality(query) runs the longest path of the program.
TEST(InstanceFilter, CostPerSyscall) {
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  Result<std::vector<sock_filter>> built = BuildInstanceFilter();
  const double build_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  ASSERT_TRUE(built.ok());
  std::printf("%-44s %10.1f us  (%zu instructions)\n", "BuildInstanceFilter", build_us,
              built->size());
  for (Filtered filtered : {Filtered::kNo, Filtered::kYes}) {
    EXPECT_EQ(Outcome(filtered, [filtered] {
      constexpr int kCalls = 200000;
      auto time_ns = [](const std::function<void()>& call) {
        auto t0 = Clock::now();
        for (int i = 0; i < kCalls; ++i) call();
        return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kCalls;
      };
      const char* tag = filtered == Filtered::kYes ? "filtered" : "unfiltered";
      double getppid_ns = time_ns([] { syscall(SYS_getppid); });
      double personality_ns = time_ns([] { syscall(SYS_personality, 0xffffffffUL); });
      std::printf("%-44s %10.1f ns\n", (std::string("getppid, ") + tag).c_str(), getppid_ns);
      std::printf("%-44s %10.1f ns\n", (std::string("personality(query), ") + tag).c_str(),
                  personality_ns);
      std::fflush(stdout);
      return 0;
    }), 0);
  }
}

}  // namespace
}  // namespace nimbus::sandbox
