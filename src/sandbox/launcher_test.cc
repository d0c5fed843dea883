// The process launcher against the real kernel: instances are real processes started from
// stems, with and without the sandbox. Each test runs a shell `bootstrap` that reports what it
// sees on stdout. They need root, namespaces and seccomp; elsewhere they skip and say why.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/jail.h"
#include "sandbox/process_launcher.h"

namespace nimbus::sandbox {
namespace {
namespace fs = std::filesystem;

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
    base_ = fs::temp_directory_path() / ("nimbus-launcher-test-" + std::to_string(getpid()));
    fs::create_directories(base_ / "code");
    fs::create_directories(base_ / "other");
    std::ofstream(base_ / "other" / "secret.txt") << "other function's code\n";
    fs::permissions(base_, fs::perms(0755));
  }
  void TearDown() override {
    launcher_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  void MakeLauncher(bool sandbox, size_t stems = 1) {
    ProcessLauncherOptions o;
    o.sandbox = sandbox;
    o.root_dir = (base_ / "root").string();
    o.init_path = NIMBUS_INIT_PATH;
    o.stems = stems;
    o.staged_dirs = {base_.string()};  // holds code/ (and other/, which must stay out of reach)
    auto l = NewProcessLauncher(nullptr, o);
    if (!l.ok() && sandbox) GTEST_SKIP() << "no sandbox here: " << l.status().message();
    ASSERT_TRUE(l.ok()) << l.status().message();
    launcher_ = std::move(l).value();
  }

  void WriteBootstrap(const std::string& script) {
    auto path = base_ / "code" / "bootstrap";
    std::ofstream(path) << "#!/bin/sh\n" << script;
    fs::permissions(path, fs::perms(0755));
  }

  // Launches `spec` as it is (label aside) and waits for the process; null (and a failure) when
  // the launch fails.
  std::unique_ptr<Process> Launch(LaunchSpec spec) {
    spec.label = "test/1";
    std::promise<Result<std::unique_ptr<Process>>> p;
    auto f = p.get_future();
    launcher_->Launch(spec, [&p](Result<std::unique_ptr<Process>> r) { p.set_value(std::move(r)); });
    auto r = f.get();
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // The code directory and a small /tmp unless the spec says otherwise.
  std::unique_ptr<Process> Start(LaunchSpec spec = {}) {
    if (spec.code_dir.empty()) spec.code_dir = (base_ / "code").string();
    spec.tmp_bytes = 8 << 20;
    return Launch(std::move(spec));
  }

  // Everything the process writes to stdout (and stderr, appended) until it exits.
  static std::string ReadAll(Process& proc) {
    int fds[2] = {proc.TakeStdout(), proc.TakeStderr()};
    std::string out[2];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int open_fds = 2;
    while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
      pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
      poll(p, 2, 200);
      for (int i = 0; i < 2; ++i) {
        if (fds[i] < 0) continue;
        char buf[4096];
        ssize_t n = read(fds[i], buf, sizeof buf);
        if (n > 0) out[i].append(buf, static_cast<size_t>(n));
        if (n == 0) {
          close(fds[i]);
          fds[i] = -1;
          --open_fds;
        }
      }
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    return out[0] + out[1];
  }

  static std::string WaitExit(Process& proc) {
    for (int i = 0; i < 400; ++i) {
      std::string how = proc.Reap();
      if (!how.empty()) return how;
      usleep(25 * 1000);
    }
    return "still running";
  }

  fs::path base_;
  std::unique_ptr<Launcher> launcher_;
};

TEST_F(LauncherTest, SandboxedInstanceSeesOnlyItsOwnWorld) {
  MakeLauncher(true);
  WriteBootstrap(
      "echo uid=$(id -u) gid=$(id -g)\n"
      "echo root=$LAMBDA_TASK_ROOT api=$AWS_LAMBDA_RUNTIME_API pwd=$(pwd)\n"
      "test -r /etc/shadow && echo shadow=readable || echo shadow=hidden\n"
      "test -e " + (base_ / "other" / "secret.txt").string() + " && echo other=visible || echo other=hidden\n"
      "touch /var/task/x 2>/dev/null && echo task=writable || echo task=readonly\n"
      "echo hello > /tmp/t && echo tmp=$(cat /tmp/t)\n"
      "echo host=$(hostname)\n"
      "echo procs=$(ls /proc | grep -c '^[0-9]')\n"
      "echo pid=$$\n"
      "grep -q CapEff:.0000000000000000 /proc/self/status && echo caps=none || echo caps=some\n"
      "grep -q 'NoNewPrivs:.1' /proc/self/status && echo nnp=1\n"
      "grep -q 'Seccomp:.2' /proc/self/status && echo seccomp=filter\n"
      "echo staged=$(ls -A /.nimbus 2>/dev/null | wc -l)\n"
      "cat /.nimbus/0/other/secret.txt 2>/dev/null && echo staged=readable\n"
      "exit 3\n");
  auto proc = Start();
  ASSERT_TRUE(proc);
  std::string out = ReadAll(*proc);
  // An instance uid of this daemon's slot: 300001 + N * 250,000,000 onwards, N being the slot
  // (another daemon on the host, e.g. a test running beside this one, may hold slot 0).
  const size_t at = out.find("uid=");
  ASSERT_NE(at, std::string::npos) << out;
  const uint64_t uid = std::strtoull(out.c_str() + at + 4, nullptr, 10);
  EXPECT_GE(uid, 300001u) << out;
  EXPECT_LT((uid - 300001) % 250'000'000, 1'000'000u) << out;
  EXPECT_NE(out.find("root=/var/task api=127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("pwd=/var/task"), std::string::npos) << out;
  EXPECT_NE(out.find("shadow=hidden"), std::string::npos) << out;
  EXPECT_NE(out.find("other=hidden"), std::string::npos) << out;
  EXPECT_NE(out.find("task=readonly"), std::string::npos) << out;
  EXPECT_NE(out.find("tmp=hello"), std::string::npos) << out;
  EXPECT_NE(out.find("host=nimbus"), std::string::npos) << out;
  EXPECT_NE(out.find("pid=2"), std::string::npos) << out;  // nimbus-init is 1
  EXPECT_NE(out.find("caps=none"), std::string::npos) << out;
  EXPECT_NE(out.find("nnp=1"), std::string::npos) << out;
  EXPECT_NE(out.find("seccomp=filter"), std::string::npos) << out;
  EXPECT_NE(out.find("staged=0"), std::string::npos) << out;  // covered: nothing listed
  EXPECT_EQ(out.find("staged=readable"), std::string::npos) << out;
  EXPECT_EQ(WaitExit(*proc), "exit status 3");
  EXPECT_GT(proc->uid(), 300000);
  EXPECT_TRUE(proc->check_peer_uid());
  launcher_->Release(std::move(proc));
  launcher_->Drain();
}

TEST_F(LauncherTest, EveryInstanceInheritsItsOwnRuntimeChannelAndNothingElse) {
  for (bool sandbox : {true, false}) {
    SCOPED_TRACE(sandbox ? "sandboxed" : "unsandboxed");
    MakeLauncher(sandbox);
    WriteBootstrap(
        "echo fd=$NIMBUS_RUNTIME_FD\n"
        "printf 'N\\n' >&$NIMBUS_RUNTIME_FD\n"
        "echo open:\n"
        "exec ls /proc/self/fd\n");  // ls's own directory handle is 3
    auto proc = Start();
    ASSERT_TRUE(proc);
    int chan = proc->TakeRuntimeChannel();
    ASSERT_GE(chan, 0);
    EXPECT_EQ(proc->TakeRuntimeChannel(), -1);  // taken once
    std::string out = ReadAll(*proc);
    EXPECT_NE(out.find("fd=4\n"), std::string::npos) << out;
    // stdin, stdout, stderr and the channel; no descriptor of the daemon's leaks in.
    EXPECT_NE(out.find("open:\n0\n1\n2\n3\n4\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("\n5\n"), std::string::npos) << out;
    EXPECT_EQ(WaitExit(*proc), "exit status 0");
    // What the instance wrote, then end-of-file: no other process (nimbus-init included) holds
    // the instance's end.
    std::string got;
    char buf[64];
    ssize_t n;
    while ((n = read(chan, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(n, 0);
    EXPECT_EQ(got, "N\n");
    close(chan);
    launcher_->Release(std::move(proc));
    launcher_->Drain();
    launcher_.reset();
  }
}

// A function with `filesystems` needs host paths at launch: it takes the slower path through a
// stem that has not pivoted yet, and sees the host directory where the manifest puts it.
TEST_F(LauncherTest, FileSystemsAreMountedWhereTheManifestSays) {
  MakeLauncher(true);
  fs::create_directories(base_ / "shared");
  fs::permissions(base_ / "shared", fs::perms(01777));
  std::ofstream(base_ / "shared" / "in.txt") << "from the host\n";
  WriteBootstrap(
      "cat /mnt/shared/in.txt\n"
      "echo from-instance > /mnt/shared/out.txt && echo wrote\n"
      "test -e " + (base_ / "other" / "secret.txt").string() + " && echo other=visible || echo other=hidden\n");
  LaunchSpec spec;
  spec.mounts = {{(base_ / "shared").string(), "/mnt/shared", false}};
  auto proc = Start(spec);
  ASSERT_TRUE(proc);
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("from the host"), std::string::npos) << out;
  EXPECT_NE(out.find("wrote"), std::string::npos) << out;
  EXPECT_NE(out.find("other=hidden"), std::string::npos) << out;
  std::ifstream back(base_ / "shared" / "out.txt");
  std::string line;
  std::getline(back, line);
  EXPECT_EQ(line, "from-instance");
  EXPECT_EQ(WaitExit(*proc), "exit status 0");
  launcher_->Release(std::move(proc));
  launcher_->Drain();
}

TEST_F(LauncherTest, KilledInstanceIsReportedAsKilled) {
  MakeLauncher(true);
  WriteBootstrap("echo ready\nexec sleep 100\n");
  auto proc = Start();
  ASSERT_TRUE(proc);
  int out = proc->TakeStdout();
  char buf[16];
  pollfd p = {out, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  ASSERT_GT(read(out, buf, sizeof buf), 0);
  close(out);
  proc->Kill();
  EXPECT_EQ(WaitExit(*proc), "signal 9 (Killed)");
  launcher_->Release(std::move(proc));
  launcher_->Drain();
}

TEST_F(LauncherTest, PrivateNetworkHasOnlyItsLoopbackAndTheRuntimeApi) {
  MakeLauncher(true);
  WriteBootstrap(
      "echo api=$AWS_LAMBDA_RUNTIME_API\n"
      "ls /sys/class/net 2>/dev/null\n"
      "bash -c 'exec 3<>/dev/tcp/127.0.0.1/9001 && printf hi >&3 && echo connected'\n");
  LaunchSpec spec;
  spec.network = Network::kNone;
  auto proc = Start(spec);
  ASSERT_TRUE(proc);
  int listener = proc->TakeRuntimeApiListener();
  ASSERT_GE(listener, 0);
  pollfd p = {listener, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1) << "the instance could not reach its Runtime API";
  int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("api=127.0.0.1:9001"), std::string::npos) << out;
  EXPECT_NE(out.find("connected"), std::string::npos) << out;
  EXPECT_FALSE(proc->check_peer_uid());
  close(conn);
  close(listener);
  launcher_->Release(std::move(proc));
  launcher_->Drain();
}

TEST_F(LauncherTest, WithoutTheSandboxInstancesRunOnHostPaths) {
  MakeLauncher(false);
  WriteBootstrap("echo root=$LAMBDA_TASK_ROOT uid=$(id -u)\nexit 0\n");
  auto proc = Start();
  ASSERT_TRUE(proc);
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("root=" + (base_ / "code").string() + " uid=0"), std::string::npos) << out;
  EXPECT_EQ(WaitExit(*proc), "exit status 0");
  EXPECT_FALSE(proc->check_peer_uid());
  launcher_->Release(std::move(proc));
  launcher_->Drain();
}

TEST_F(LauncherTest, NetworkNoneIsRefusedWithoutTheSandbox) {
  MakeLauncher(false);
  WriteBootstrap("exit 0\n");
  LaunchSpec spec;
  spec.code_dir = (base_ / "code").string();
  spec.network = Network::kNone;
  std::promise<Status> p;
  launcher_->Launch(spec, [&p](Result<std::unique_ptr<Process>> r) { p.set_value(r.status()); });
  Status st = p.get_future().get();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("needs the sandbox"), std::string::npos) << st.message();
}

// Regression: with no ready stem, a launch forks one and sends the spec at once; the worker
// could pivot into the instance's root before the stem had exec'd nimbus-init by its host path,
// and the instance died "before it was ready" with exit status 127.
TEST_F(LauncherTest, LaunchesWithoutReadyStemsAllStart) {
  MakeLauncher(true, /*stems=*/0);
  WriteBootstrap("echo started\n");
  for (int i = 0; i < 25; ++i) {
    auto proc = Start();
    ASSERT_TRUE(proc);
    std::string out = ReadAll(*proc);
    ASSERT_NE(out.find("started"), std::string::npos) << "launch " << i << ": " << out;
    ASSERT_EQ(WaitExit(*proc), "exit status 0") << "launch " << i;
    launcher_->Release(std::move(proc));
  }
  launcher_->Drain();
}

// Regression: uids were given back and reused, so sockets a stopped instance had passed to
// another one (over a unix socket) passed the Runtime API check of a later instance.
TEST_F(LauncherTest, EveryInstanceGetsAUidNeverUsedBefore) {
  MakeLauncher(true);
  WriteBootstrap("exit 0\n");
  int last = 0;
  for (int i = 0; i < 4; ++i) {
    auto proc = Start();
    ASSERT_TRUE(proc);
    EXPECT_GT(proc->uid(), last);
    last = proc->uid();
    ReadAll(*proc);
    WaitExit(*proc);
    launcher_->Release(std::move(proc));
    launcher_->Drain();  // the uid is free again, as far as any pool could tell
  }
}

// A default launch (egress, no `filesystems`, the default /tmp, code in a staged directory)
// starts from a prepared stem: already in its jail as a fresh uid, its code bound at the launch
// by its nimbus-init. It must see exactly what an instance started the usual way sees.
TEST_F(LauncherTest, ADefaultLaunchStartsFromAPreparedStemThatSeesOnlyItsOwnWorld) {
  MakeLauncher(true, /*stems=*/2);
  WriteBootstrap(
      "echo uid=$(id -u) pwd=$(pwd) root=$LAMBDA_TASK_ROOT\n"
      "echo task=$(ls /var/task | tr '\\n' ,)\n"
      "touch /var/task/x 2>/dev/null && echo task=writable || echo task=readonly\n"
      "echo hi > /tmp/t && echo tmp=$(cat /tmp/t) tmpsize=$(df -k /tmp | awk 'NR==2 {print $2}')\n"
      "ls /.nimbus 2>/dev/null | wc -l | sed 's/^/staged=/'\n"
      "test -e " + (base_ / "other" / "secret.txt").string() + " && echo other=visible || echo other=hidden\n"
      "ls /proc/1/fd/ >/dev/null 2>&1 && echo initfds=visible || echo initfds=hidden\n");
  for (int i = 0; i < 3; ++i) {
    LaunchSpec spec;
    spec.tmp_bytes = 512ull << 20;
    spec.code_dir = (base_ / "code").string();
    auto proc = Launch(spec);
    ASSERT_NE(proc, nullptr);
    // The two prepared stems took the first two uids of this launcher's range when they were
    // made; a usual start would take the next one.
    if (i == 0) {
      EXPECT_EQ((proc->uid() - 300001) % 250'000'000, 0) << proc->uid();
    }
    std::string out = ReadAll(*proc);
    EXPECT_NE(out.find("uid=" + std::to_string(proc->uid()) + " pwd=/var/task root=/var/task\n"), std::string::npos) << out;
    EXPECT_NE(out.find("task=bootstrap,\n"), std::string::npos) << out;
    EXPECT_NE(out.find("task=readonly"), std::string::npos) << out;
    EXPECT_NE(out.find("tmp=hi tmpsize=524288"), std::string::npos) << out;
    EXPECT_NE(out.find("staged=0"), std::string::npos) << out;
    EXPECT_NE(out.find("other=hidden"), std::string::npos) << out;
    EXPECT_NE(out.find("initfds=hidden"), std::string::npos) << out;
    EXPECT_EQ(WaitExit(*proc), "exit status 0");
    launcher_->Release(std::move(proc));
  }
}

// The Runtime API trusts a connection by its uid, so two daemons on one host must never hand
// out the same one: each launcher holds a uid range of its own.
TEST_F(LauncherTest, TwoDaemonsOnOneHostNeverShareAUid) {
  MakeLauncher(true);
  WriteBootstrap("exit 0\n");
  ProcessLauncherOptions o;
  o.root_dir = (base_ / "root2").string();
  o.init_path = NIMBUS_INIT_PATH;
  o.stems = 1;
  o.staged_dirs = {base_.string()};
  auto other = NewProcessLauncher(nullptr, o);
  ASSERT_TRUE(other.ok()) << other.status().message();
  auto mine = Start();
  ASSERT_NE(mine, nullptr);
  std::unique_ptr<Launcher> first = std::move(launcher_);
  launcher_ = std::move(other).value();
  auto theirs = Start();
  ASSERT_NE(theirs, nullptr);
  int64_t apart = static_cast<int64_t>(theirs->uid()) - mine->uid();
  EXPECT_GE(apart < 0 ? -apart : apart, 250'000'000 - 16) << mine->uid() << " " << theirs->uid();
  launcher_->Release(std::move(theirs));
  first->Release(std::move(mine));
  first->Drain();
}

TEST_F(LauncherTest, MissingBootstrapIsReportedOnStderr) {
  MakeLauncher(true);
  auto proc = Start();
  ASSERT_TRUE(proc);
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("cannot execute /var/task/bootstrap"), std::string::npos) << out;
  EXPECT_EQ(WaitExit(*proc), "exit status 127");
  launcher_->Release(std::move(proc));
}


}  // namespace
}  // namespace nimbus::sandbox

namespace nimbus::sandbox {
namespace {

// Regression: `filesystems` refused only the literal "/", so a symlink to /, /proc or the
// daemon's own data directory could be shared into an instance.
TEST(ShareableHostDirTest, OnlyADirectoryOfItsOwnCanBeShared) {
  namespace fs = std::filesystem;
  fs::path base = fs::temp_directory_path() / ("nimbus-share-test-" + std::to_string(getpid()));
  fs::create_directories(base / "data" / "code");
  fs::create_directories(base / "shared");
  fs::create_symlink("/", base / "rootlink");
  fs::create_symlink(base / "data", base / "datalink");
  std::vector<std::string> guarded = {(base / "data").string()};

  auto ok = CheckShareableHostDir((base / "shared").string(), guarded);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok, (base / "shared").string());
  for (std::string bad : {std::string("/"), (base / "rootlink").string(), std::string("/proc"), std::string("/etc/ssl"),
                          std::string("/usr/lib"), std::string("/tmp"), (base / "data").string(),
                          (base / "data" / "code").string(), (base / "datalink").string(), base.string(),
                          (base / "missing").string()}) {
    auto r = CheckShareableHostDir(bad, guarded);
    EXPECT_FALSE(r.ok()) << bad << " was accepted as " << (r.ok() ? *r : "");
  }
  fs::remove_all(base);
}


// Primed instances (ProcessLauncherOptions::primed_runtimes). The runtime here is a small Python
// program: it reports what it sees before its hand-off, reads the `A` frame from the runtime
// channel, takes the environment and the task root it names, and reports again.
class PrimedLauncherTest : public LauncherTest {
 protected:
  void MakePrimedLauncher(bool sandbox, std::vector<std::string> primed_env = {}) {
    fs::create_directories(base_ / "runtime");
    auto path = base_ / "runtime" / "bootstrap";
    std::ofstream(path) << R"PY(#!/usr/bin/python3
import os, sys
def seen():
    try:
        return ",".join(sorted(os.listdir("/var/task" if os.path.isdir("/var/task") else os.getcwd())))
    except OSError as e:
        return "error:%d" % e.errno
if os.environ.get("DIE") and os.environ.get("NIMBUS_PRIMED") == "1":
    os.close(int(os.environ["NIMBUS_RUNTIME_FD"]))  # first, so the mark means a closed channel
    open(os.environ["DIE"], "w").close()
    sys.exit(3)
print("primed=%s before=%s" % (os.environ.get("NIMBUS_PRIMED", "0"), seen() if os.environ.get("NIMBUS_PRIMED") else "-"))
if os.environ.get("NIMBUS_PRIMED") == "1":
    fd = int(os.environ["NIMBUS_RUNTIME_FD"])
    data = b""
    while b"\n" not in data:
        data += os.read(fd, 65536)
    header, _, rest = data.partition(b"\n")
    size = int(header.split(b" ")[1])
    while len(rest) < size:
        rest += os.read(fd, 65536)
    for entry in rest[:size].split(b"\0")[:-1]:
        key, _, value = entry.decode().partition("=")
        os.environ[key] = value
    del os.environ["NIMBUS_PRIMED"]
    os.chdir(os.environ["LAMBDA_TASK_ROOT"])
print("uid=%d foo=%s root=%s" % (os.getuid(), os.environ.get("FOO"), os.environ["LAMBDA_TASK_ROOT"]))
print("task=" + ",".join(sorted(os.listdir("."))))
for probe in ["/var/task/x", "/.nimbus/0/code/handler.txt", "/proc/1/fd/5"]:
    try:
        if probe.endswith("/x"):
            open(probe, "w").close()
        else:
            os.stat(probe)
        print(probe + "=reachable")
    except OSError:
        print(probe + "=out of reach")
)PY";
    fs::permissions(path, fs::perms(0755));
    std::ofstream(base_ / "code" / "handler.txt") << "the function\n";
    ProcessLauncherOptions o;
    o.sandbox = sandbox;
    o.root_dir = (base_ / "root").string();
    o.init_path = NIMBUS_INIT_PATH;
    o.stems = 1;
    o.staged_dirs = {base_.string()};
    o.primed_runtimes = {(base_ / "runtime").string()};
    o.primed_per_runtime = 1;
    // Marks this launcher's primed runtimes, so PrimedRuntimes counts no other daemon's.
    marker_ = "NIMBUS_TEST_LAUNCHER=" + std::to_string(getpid()) + "-" + std::to_string(++launchers_made_);
    primed_env.push_back(marker_);
    o.primed_env = std::move(primed_env);
    auto l = NewProcessLauncher(nullptr, o);
    if (!l.ok() && sandbox) GTEST_SKIP() << "no sandbox here: " << l.status().message();
    ASSERT_TRUE(l.ok()) << l.status().message();
    launcher_ = std::move(l).value();
  }

  // Primed runtimes of this test's launcher that are running and, when `waiting`, blocked
  // (state S: this runtime blocks only on the channel once it has started).
  int PrimedRuntimes(bool waiting) {
    int n = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      std::ifstream environ(entry.path() / "environ");
      std::string env((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
      if (env.find(std::string("NIMBUS_PRIMED=1\0", 16)) == std::string::npos ||
          env.find(marker_ + std::string(1, '\0')) == std::string::npos) {
        continue;
      }
      std::ifstream status(entry.path() / "status");
      std::string line;
      bool sleeping = false;
      while (std::getline(status, line)) {
        if (line.rfind("State:", 0) == 0) sleeping = line.find('S', 6) != std::string::npos;
      }
      n += !waiting || sleeping;
    }
    return n;
  }

  // Until PrimedRuntimes(waiting) == want, for at most 20 s.
  bool AwaitPrimed(bool waiting, int want) {
    for (int i = 0; i < 2000; ++i) {
      if (PrimedRuntimes(waiting) == want) return true;
      usleep(10 * 1000);
    }
    return false;
  }

  LaunchSpec PrimableSpec() {
    LaunchSpec spec;
    spec.code_dir = (base_ / "code").string();
    spec.runtime_dir = (base_ / "runtime").string();
    spec.tmp_bytes = 512ull << 20;
    spec.env = {"FOO=bar"};
    return spec;
  }

  std::string marker_;
  static inline int launchers_made_ = 0;
};

TEST_F(PrimedLauncherTest, APrimedInstanceGetsItsFunctionsCodeAndEnvironmentAtTheHandOff) {
  MakePrimedLauncher(true);
  ASSERT_TRUE(AwaitPrimed(/*waiting=*/true, 1)) << "the primed runtime never started";
  auto proc = Launch(PrimableSpec());
  ASSERT_NE(proc, nullptr);
  EXPECT_TRUE(proc->primed());
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("primed=1 before=\n"), std::string::npos) << out;  // started with an empty /var/task
  EXPECT_NE(out.find("uid=" + std::to_string(proc->uid()) + " foo=bar root=/var/task\n"), std::string::npos) << out;
  EXPECT_NE(out.find("task=handler.txt\n"), std::string::npos) << out;
  EXPECT_NE(out.find("/var/task/x=out of reach"), std::string::npos) << out;  // read-only code
  EXPECT_NE(out.find("/.nimbus/0/code/handler.txt=out of reach"), std::string::npos) << out;  // staging covered
  EXPECT_NE(out.find("/proc/1/fd/5=out of reach"), std::string::npos) << out;  // nimbus-init's descriptors
  launcher_->Release(std::move(proc));
}

TEST_F(PrimedLauncherTest, ALaunchThatSetsAVariableReadAtStartUpIsStartedTheUsualWay) {
  MakePrimedLauncher(true);
  for (const char* entry : {"PYTHONPATH=/var/task/lib", "LD_PRELOAD=/var/task/x.so", "NODE_OPTIONS=--inspect",
                            "PATH=/opt/bin", "LANG=de_DE.UTF-8"}) {
    LaunchSpec spec = PrimableSpec();
    spec.env.push_back(entry);
    auto proc = Launch(spec);
    ASSERT_NE(proc, nullptr);
    EXPECT_FALSE(proc->primed()) << entry;
    std::string out = ReadAll(*proc);
    EXPECT_NE(out.find("primed=0"), std::string::npos) << entry << ": " << out;
    EXPECT_NE(out.find("task=handler.txt\n"), std::string::npos) << out;
    launcher_->Release(std::move(proc));
  }
}

TEST_F(PrimedLauncherTest, OnlyDefaultLaunchesOfAPrimedRuntimeArePrimed) {
  MakePrimedLauncher(true);
  LaunchSpec small_tmp = PrimableSpec();
  small_tmp.tmp_bytes = 8 << 20;
  LaunchSpec other_runtime = PrimableSpec();
  other_runtime.runtime_dir = (base_ / "code").string();
  fs::copy_file(base_ / "runtime" / "bootstrap", base_ / "code" / "bootstrap");
  for (auto* spec : {&small_tmp, &other_runtime}) {
    auto proc = Launch(*spec);
    ASSERT_NE(proc, nullptr);
    EXPECT_FALSE(proc->primed());
    launcher_->Release(std::move(proc));
  }
}

TEST_F(PrimedLauncherTest, APrimedRuntimeThatDiedIsReplacedByAUsualStart) {
  // Without the sandbox, so the runtime can leave a mark on the host as it exits.
  const fs::path died = base_ / "died";
  MakePrimedLauncher(false, {"DIE=" + died.string()});
  for (int i = 0; i < 2000 && !fs::exists(died); ++i) usleep(10 * 1000);
  ASSERT_TRUE(fs::exists(died)) << "the primed runtime never started";
  ASSERT_TRUE(AwaitPrimed(/*waiting=*/false, 0)) << "the primed runtime did not exit";
  auto proc = Launch(PrimableSpec());
  ASSERT_NE(proc, nullptr);
  EXPECT_FALSE(proc->primed());
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("foo=bar"), std::string::npos) << out;
  launcher_->Release(std::move(proc));
}

TEST_F(PrimedLauncherTest, WithoutTheSandboxAPrimedInstanceMovesToItsCodeDirectory) {
  MakePrimedLauncher(false);
  ASSERT_TRUE(AwaitPrimed(/*waiting=*/true, 1)) << "the primed runtime never started";
  auto proc = Launch(PrimableSpec());
  ASSERT_NE(proc, nullptr);
  EXPECT_TRUE(proc->primed());
  std::string out = ReadAll(*proc);
  EXPECT_NE(out.find("foo=bar root=" + (base_ / "code").string() + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("task=handler.txt\n"), std::string::npos) << out;
  launcher_->Release(std::move(proc));
}

}  // namespace
}  // namespace nimbus::sandbox
