// Tests for cgroup layout detection (pure parsing of mountinfo samples) and for real groups on
// this machine: children are forked, moved into a group, and made to break its limits. The
// real-group tests skip themselves with the reason when cgroups cannot be used here (not root,
// read-only or missing cgroupfs); the detection test fails if cgroups look usable but Create()
// still fails, so a broken manager cannot hide behind a skip.
#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace nimbus::sandbox {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// Real lines from a pure cgroup v2 machine (systemd, Debian 12).
constexpr const char* kPureV2Mountinfo =
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "26 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4002216k,mode=755\n"
    "28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "30 22 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw\n";

// This machine's layout: v1 controllers each in their own hierarchy, an empty v2 tree beside.
constexpr const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

CgroupHierarchy H(int version, std::string mount, std::vector<std::string> controllers,
                  bool ro = false) {
  CgroupHierarchy h;
  h.version = version;
  h.mount_point = std::move(mount);
  h.controllers = std::move(controllers);
  h.read_only = ro;
  return h;
}

TEST(CgroupMountsTest, PureV2MachineHasOneV2HierarchyAndNoV1) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  EXPECT_TRUE(m.v1.empty());
  ASSERT_TRUE(m.v2.has_value());
  EXPECT_EQ(*m.v2, H(2, "/sys/fs/cgroup", {}));
}

TEST(CgroupMountsTest, PureV2MachineUsesTheV2TreeForMemoryAndPidsWhenItListsThem) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  std::vector<CgroupHierarchy> chosen =
      ChooseHierarchies(m, {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(2, "/sys/fs/cgroup", {"memory", "pids"}));
}

TEST(CgroupMountsTest, PureV2MachineWithoutMemoryInCgroupControllersOffersOnlyPids) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {"cpu", "pids"});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(2, "/sys/fs/cgroup", {"pids"}));
}

TEST(CgroupMountsTest, HybridMachineListsV1ControllersAndSkipsNamedHierarchies) {
  CgroupMounts m = ParseCgroupMounts(kHybridMountinfo);
  ASSERT_EQ(m.v1.size(), 8u);  // cpu cpuacct cpuset memory devices freezer blkio pids
  EXPECT_EQ(m.v1[3], H(1, "/sys/fs/cgroup/memory", {"memory"}));
  EXPECT_EQ(m.v1[7], H(1, "/sys/fs/cgroup/pids", {"pids"}));
  for (const CgroupHierarchy& h : m.v1) EXPECT_NE(h.mount_point, "/sys/fs/cgroup/systemd");
  ASSERT_TRUE(m.v2.has_value());
  EXPECT_EQ(m.v2->mount_point, "/sys/fs/cgroup/unified");
}

TEST(CgroupMountsTest, HybridMachineUsesV1MemoryAndV1PidsEvenWithAV2TreeMounted) {
  CgroupMounts m = ParseCgroupMounts(kHybridMountinfo);
  // The unified tree has no controllers here; even if it named some, v1-bound ones win.
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {});
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], H(1, "/sys/fs/cgroup/memory", {"memory"}));
  EXPECT_EQ(chosen[1], H(1, "/sys/fs/cgroup/pids", {"pids"}));
}

TEST(CgroupMountsTest, ControllersCoMountedInOneV1HierarchyShareOneDirectory) {
  CgroupMounts m = ParseCgroupMounts(
      "40 31 0:40 / /cg/mp rw,relatime - cgroup cgroup rw,memory,pids,clone_children\n"
      "41 31 0:41 / /cg/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n");
  ASSERT_EQ(m.v1.size(), 2u);
  EXPECT_EQ(m.v1[1], H(1, "/cg/cpu,cpuacct", {"cpu", "cpuacct"}));
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(1, "/cg/mp", {"memory", "pids"}));
}

TEST(CgroupMountsTest, MemoryOnV1AndPidsOnV2AreBothUsed) {
  CgroupMounts m = ParseCgroupMounts(
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {"pids"});
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], H(1, "/sys/fs/cgroup/memory", {"memory"}));
  EXPECT_EQ(chosen[1], H(2, "/sys/fs/cgroup/unified", {"pids"}));
}

TEST(CgroupMountsTest, ReadOnlyMountsAndEscapedPathsAreParsed) {
  CgroupMounts m = ParseCgroupMounts(
      "29 22 0:26 / /my\\040cgroups ro,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
      "rw\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime master:3 - cgroup cgroup ro,memory\n");
  ASSERT_TRUE(m.v2.has_value());
  EXPECT_EQ(m.v2->mount_point, "/my cgroups");
  EXPECT_TRUE(m.v2->read_only);
  ASSERT_EQ(m.v1.size(), 1u);
  EXPECT_TRUE(m.v1[0].read_only);
}

TEST(CgroupMountsTest, MalformedAndUnrelatedLinesAreIgnored) {
  CgroupMounts m = ParseCgroupMounts(
      "garbage\n\n1 2 3\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup\n"  // truncated
      "28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n");
  EXPECT_TRUE(m.v1.empty());
  EXPECT_FALSE(m.v2.has_value());
}

// Writes `text` to a fresh temporary file and returns its path.
std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/nimbus-cgroup-test-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  return path;
}

TEST(CgroupManagerTest, CreateFailsWithAClearReasonWhenNoMemoryControllerIsMounted) {
  std::string path = WriteTemp(
      "28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n");
  auto m = CgroupManager::Create("nimbus-test/none", path);
  ::unlink(path.c_str());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("memory controller"), std::string::npos)
      << m.status().message();
}

TEST(CgroupManagerTest, CreateFailsWithAClearReasonWhenCgroupfsIsReadOnly) {
  std::string path =
      WriteTemp("35 31 0:32 / /sys/fs/cgroup/memory ro,relatime - cgroup cgroup ro,memory\n");
  auto m = CgroupManager::Create("nimbus-test/ro", path);
  ::unlink(path.c_str());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("read-only"), std::string::npos) << m.status().message();
}

TEST(CgroupManagerTest, CreateRejectsAParentNameThatLeavesTheHierarchy) {
  auto m = CgroupManager::Create("../escape");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(CgroupManager::Create("/abs").ok());
  EXPECT_FALSE(CgroupManager::Create("").ok());
}

// ---------------------------------------------------------------------------------------------
// Real cgroups on this machine.

// One top-level name per test: test processes run in parallel, and a shared ancestor such as
// "nimbus-test" would be left behind by whichever manager did not create it.
std::string UniqueParent() {
  static int counter = 0;
  return "nimbus-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// True when this process could plausibly use cgroups: root, and mountinfo lists a writable
// memory controller. Decided independently of CgroupManager's own detection.
bool CgroupsLookUsable() {
  if (::geteuid() != 0) return false;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (dash == f.end() || f.end() - dash < 4 || f.size() < 6) continue;
    bool ro = ("," + f[5] + ",").find(",ro,") != std::string::npos ||
              ("," + dash[3] + ",").find(",ro,") != std::string::npos;
    if (ro) continue;
    if (dash[1] == "cgroup" && ("," + dash[3] + ",").find(",memory,") != std::string::npos) {
      return true;
    }
    if (dash[1] == "cgroup2") {
      std::ifstream c(f[4] + "/cgroup.controllers");
      std::string all((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
      if ((" " + all + " ").find(" memory") != std::string::npos) return true;
    }
  }
  return false;
}

TEST(CgroupManagerTest, DetectionFindsAUsableLayoutWhereverCgroupsLookUsable) {
  auto m = CgroupManager::Create(UniqueParent());
  if (!CgroupsLookUsable()) {
    ASSERT_FALSE(m.ok()) << "Create succeeded although cgroups look unusable here";
    GTEST_SKIP() << "cgroups are not usable here (" << m.status().message() << ")";
  }
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::string d = (*m)->Describe();
  EXPECT_EQ(d.rfind("cgroup v", 0), 0u) << d;
  EXPECT_NE(d.find("memory"), std::string::npos) << d;
  for (const std::string& p : (*m)->parent_paths()) {
    struct stat st;
    EXPECT_EQ(::stat((p + "/cgroup.procs").c_str(), &st), 0) << p << " is not a cgroup";
  }
}

TEST(CgroupManagerTest, DestroyingTheManagerRemovesItsEmptyParentGroupAndAncestorsItMade) {
  auto m = CgroupManager::Create(UniqueParent() + "/daemon");
  if (!m.ok()) GTEST_SKIP() << "cgroups are not usable here: " << m.status().message();
  std::vector<std::string> parents = (*m)->parent_paths();
  ASSERT_FALSE(parents.empty());
  for (const std::string& p : parents) {
    ASSERT_EQ(::access(p.c_str(), F_OK), 0) << p << " was not created";
  }
  m = Status::Internal("released");  // runs ~CgroupManager
  for (const std::string& p : parents) {
    EXPECT_NE(::access(p.c_str(), F_OK), 0) << p << " is still there";
    std::string above = p.substr(0, p.rfind('/'));
    EXPECT_NE(::access(above.c_str(), F_OK), 0) << above << " is still there";
  }
}

TEST(CgroupManagerTest, DestroyingTheManagerKeepsAnAncestorItDidNotCreate) {
  std::string top = UniqueParent();
  auto outer = CgroupManager::Create(top);  // stands in for an operator-made "nimbus" group
  if (!outer.ok()) GTEST_SKIP() << "cgroups are not usable here: " << outer.status().message();
  auto inner = CgroupManager::Create(top + "/daemon");
  ASSERT_TRUE(inner.ok()) << inner.status().message();
  std::vector<std::string> inner_paths = (*inner)->parent_paths();
  inner = Status::Internal("released");
  for (const std::string& p : inner_paths) EXPECT_NE(::access(p.c_str(), F_OK), 0) << p;
  for (const std::string& p : (*outer)->parent_paths()) {
    EXPECT_EQ(::access(p.c_str(), F_OK), 0)
        << p << " was removed by a manager that did not create it";
  }
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = CgroupManager::Create(UniqueParent());
    if (!m.ok()) GTEST_SKIP() << "cgroups are not usable here: " << m.status().message();
    manager_ = std::move(*m);
    // Grandchildren orphaned by a test child get this process as their parent instead of init,
    // so TearDown can reap them rather than leave zombies behind.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }

  void TearDown() override {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      pid_t p = ::waitpid(-1, nullptr, WNOHANG);
      if (p < 0) break;  // ECHILD: none left
      if (p == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<Cgroup> MakeGroup(const std::string& id, CgroupLimits limits) {
    auto g = manager_->CreateGroup(id, limits);
    EXPECT_TRUE(g.ok()) << g.status().message();
    return g.ok() ? std::move(*g) : nullptr;
  }

  // Forks a child that enters `group` and then runs `body`, whose return value is its exit code.
  template <typename Body>
  pid_t ForkInto(const Cgroup& group, Body body) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (group.EnterFromChild() != 0) ::_exit(120);
      ::_exit(body());
    }
    EXPECT_GT(pid, 0);
    return pid;
  }

  // Waits for `pid`; a child still running after 10 s is killed and the test fails, so a limit
  // or a kill that does not work shows as a failure instead of a hang.
  static int Wait(pid_t pid) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) return status;
      if (r < 0 && errno != EINTR) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        return 0;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "child " << pid << " still running after 10 s; killing it";
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return 0;  // the failure is recorded above whatever the caller then checks
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<CgroupManager> manager_;
};

// Touches every page of `bytes` of fresh anonymous memory; returns 0 when it could.
int TouchMemory(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 121;
  char* c = static_cast<char*>(p);
  for (size_t i = 0; i < bytes; i += 4096) c[i] = 1;
  return 0;
}

TEST_F(CgroupTest, AChildTouchingMoreThanItsMemoryLimitIsOomKilled) {
  auto group = MakeGroup("oom", {.memory_bytes = 64 * kMiB, .pids_max = 0});
  ASSERT_TRUE(group);
  EXPECT_FALSE(group->OomKilled());
  pid_t pid = ForkInto(*group, [] { return TouchMemory(200 * kMiB); });
  int status = Wait(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(group->OomKilled());
  EXPECT_TRUE(group->Destroy().ok());
}

TEST_F(CgroupTest, AChildUnderItsMemoryLimitSurvivesAndItsPeakIsReported) {
  auto group = MakeGroup("fits", {.memory_bytes = 64 * kMiB, .pids_max = 0});
  ASSERT_TRUE(group);
  pid_t pid = ForkInto(*group, [] { return TouchMemory(10 * kMiB); });
  int status = Wait(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(group->OomKilled());
  uint64_t peak = group->PeakMemoryBytes();
  EXPECT_GE(peak, 10 * kMiB);
  EXPECT_LE(peak, 64 * kMiB);
  // Reading again goes through the same descriptor and must give the same answer.
  EXPECT_EQ(group->PeakMemoryBytes(), peak);
}

TEST_F(CgroupTest, LimitsSetOnAGroupMadeWithoutThemAreEnforced) {
  // The launcher makes groups (and moves a waiting process in) before it knows the function.
  auto group = MakeGroup("later", {.memory_bytes = 0, .pids_max = 0});
  ASSERT_TRUE(group);
  ASSERT_TRUE(manager_->SetLimits(*group, {.memory_bytes = 64 * kMiB, .pids_max = 0}).ok());
  pid_t pid = ForkInto(*group, [] { return TouchMemory(200 * kMiB); });
  int status = Wait(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(group->OomKilled());
}

TEST_F(CgroupTest, TheMemoryLimitAlsoCapsSwapWhereTheKernelAccountsIt) {
  auto group = MakeGroup("swap", {.memory_bytes = 64 * kMiB, .pids_max = 0});
  ASSERT_TRUE(group);
  bool checked = false;
  for (const std::string& dir : group->paths()) {
    std::ifstream memsw(dir + "/memory.memsw.limit_in_bytes");
    std::ifstream swapmax(dir + "/memory.swap.max");
    uint64_t v = 1;
    if (memsw >> v) {
      EXPECT_EQ(v, 64 * kMiB);
      checked = true;
    } else if (swapmax >> v) {
      EXPECT_EQ(v, 0u);
      checked = true;
    }
  }
  if (!checked) GTEST_SKIP() << "this kernel has no swap accounting";
}

TEST_F(CgroupTest, AChildCannotForkBeyondThePidsLimit) {
  if (!manager_->has_pids()) GTEST_SKIP() << "no pids controller: " << manager_->Describe();
  auto group = MakeGroup("forks", {.memory_bytes = 0, .pids_max = 4});
  ASSERT_TRUE(group);
  // Exit code: forks that succeeded, plus 100 if one failed with EAGAIN.
  pid_t pid = ForkInto(*group, [] {
    int made = 0;
    for (int i = 0; i < 10; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p < 0) return errno == EAGAIN ? 100 + made : 122;
      ++made;
    }
    return made;
  });
  int status = Wait(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 103);  // the child plus 3 grandchildren fill the 4 slots
  // The grandchildren still pause in the group; Destroy must get rid of them.
  EXPECT_TRUE(group->Destroy().ok());
}

TEST_F(CgroupTest, DestroyKillsEveryProcessLeftAndRemovesTheDirectories) {
  auto group = MakeGroup("leftover", {.memory_bytes = 64 * kMiB, .pids_max = 16});
  ASSERT_TRUE(group);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ForkInto(*group, [&] {
    if (::fork() == 0) {  // a grandchild the test never waits for
      ::pause();
      ::_exit(0);
    }
    (void)::write(ready[1], "x", 1);
    ::pause();
    return 0;
  });
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);

  std::vector<std::string> dirs = group->paths();
  ASSERT_FALSE(dirs.empty());
  std::ifstream procs(dirs[0] + "/cgroup.procs");
  int n = 0;
  for (std::string line; std::getline(procs, line);) ++n;
  EXPECT_EQ(n, 2);

  Status st = group->Destroy();
  EXPECT_TRUE(st.ok()) << st.message();
  int status = Wait(pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  for (const std::string& d : dirs) EXPECT_NE(::access(d.c_str(), F_OK), 0) << d;
  EXPECT_TRUE(group->procs_fds().empty());
  EXPECT_TRUE(group->Destroy().ok()) << "a second Destroy must be a no-op";
}

TEST_F(CgroupTest, EachHierarchyGetsAProcsDescriptorThatMovesTheChildIn) {
  auto group = MakeGroup("enter", {.memory_bytes = 64 * kMiB, .pids_max = 8});
  ASSERT_TRUE(group);
  EXPECT_EQ(group->procs_fds().size(), group->paths().size());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ForkInto(*group, [&] {
    (void)::write(ready[1], "x", 1);
    ::pause();
    return 0;
  });
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  for (const std::string& d : group->paths()) {
    std::ifstream procs(d + "/cgroup.procs");
    std::string line;
    ASSERT_TRUE(std::getline(procs, line)) << d << " is empty";
    EXPECT_EQ(line, std::to_string(pid)) << d;
  }
  ASSERT_TRUE(group->Destroy().ok());
  Wait(pid);
}

TEST_F(CgroupTest, CreateGroupRejectsAnIdThatIsNotAPlainName) {
  auto g = manager_->CreateGroup("../oops", {});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kInvalidArgument);
}

TEST_F(CgroupTest, CreateGroupRefusesAnIdThatIsAlreadyInUse) {
  auto first = MakeGroup("twice", {});
  ASSERT_TRUE(first);
  auto second = manager_->CreateGroup("twice", {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists);
  // The failed attempt must not have removed the first group's directories.
  for (const std::string& d : first->paths()) EXPECT_EQ(::access(d.c_str(), F_OK), 0) << d;
}

}  // namespace
}  // namespace nimbus::sandbox
