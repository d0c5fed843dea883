// Tests for cgroup layout detection (pure parsing of mountinfo samples), the CPU weight and the
// files each limit goes to (pure, v1 and v2), and real groups on this machine: children are
// forked, moved into a group, and made to break its limits (memory, a fork bomb against
// pids.max); dead and live "daemons" (forked children with managers) leave groups that a new
// manager must reclaim or leave alone. The real-group tests skip themselves with the reason when
// cgroups cannot be used here (not root, read-only or missing cgroupfs); the detection test
// fails if cgroups look usable but Create() still fails, so a broken manager cannot hide behind
// a skip.
#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

TEST(CgroupMountsTest, PureV2MachineUsesTheV2TreeForMemoryPidsAndCpuWhenItListsThem) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  std::vector<CgroupHierarchy> chosen =
      ChooseHierarchies(m, {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(2, "/sys/fs/cgroup", {"memory", "pids", "cpu"}));
}

TEST(CgroupMountsTest, PureV2MachineWithoutMemoryInCgroupControllersOffersOnlyPidsAndCpu) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {"cpu", "pids"});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(2, "/sys/fs/cgroup", {"pids", "cpu"}));
}

TEST(CgroupMountsTest, PureV2MachineWithoutCpuInCgroupControllersUsesNoCpuController) {
  CgroupMounts m = ParseCgroupMounts(kPureV2Mountinfo);
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {"memory", "pids", "io"});
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0], H(2, "/sys/fs/cgroup", {"memory", "pids"}));
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

TEST(CgroupMountsTest, HybridMachineUsesV1MemoryPidsAndCpuEvenWithAV2TreeMounted) {
  CgroupMounts m = ParseCgroupMounts(kHybridMountinfo);
  // The unified tree has no controllers here; even if it named some, v1-bound ones win.
  for (const std::vector<std::string>& v2 : {std::vector<std::string>{},
                                             std::vector<std::string>{"memory", "pids", "cpu"}}) {
    std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, v2);
    ASSERT_EQ(chosen.size(), 3u);
    EXPECT_EQ(chosen[0], H(1, "/sys/fs/cgroup/memory", {"memory"}));
    EXPECT_EQ(chosen[1], H(1, "/sys/fs/cgroup/pids", {"pids"}));
    EXPECT_EQ(chosen[2], H(1, "/sys/fs/cgroup/cpu", {"cpu"}));
  }
}

TEST(CgroupMountsTest, ControllersCoMountedInOneV1HierarchyShareOneDirectory) {
  CgroupMounts m = ParseCgroupMounts(
      "40 31 0:40 / /cg/mp rw,relatime - cgroup cgroup rw,memory,pids,clone_children\n"
      "41 31 0:41 / /cg/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n");
  ASSERT_EQ(m.v1.size(), 2u);
  EXPECT_EQ(m.v1[1], H(1, "/cg/cpu,cpuacct", {"cpu", "cpuacct"}));
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {});
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], H(1, "/cg/mp", {"memory", "pids"}));
  // cpu is found in its usual "cpu,cpuacct" co-mount; only cpu is listed as used there.
  EXPECT_EQ(chosen[1], H(1, "/cg/cpu,cpuacct", {"cpu"}));
}

TEST(CgroupMountsTest, CpuOnlyInTheV2TreeIsTakenFromThereBesideV1MemoryAndPids) {
  CgroupMounts m = ParseCgroupMounts(
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  std::vector<CgroupHierarchy> chosen = ChooseHierarchies(m, {"cpu"});
  ASSERT_EQ(chosen.size(), 3u);
  EXPECT_EQ(chosen[2], H(2, "/sys/fs/cgroup/unified", {"cpu"}));
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

// ---------------------------------------------------------------------------------------------
// CPU weight and the files a limit is written to (pure; the v2 half is checked only here, since
// this machine's v2 tree has no controllers).

TEST(CpuWeightTest, A128MiBInstanceGetsTheKernelsDefaultWeight) {
  EXPECT_EQ(CpuWeightForMemory(1, 128 * kMiB), 1024u);  // v1 cpu.shares default
  EXPECT_EQ(CpuWeightForMemory(2, 128 * kMiB), 100u);   // v2 cpu.weight default
}

TEST(CpuWeightTest, WeightIsProportionalToMemoryOverTheManifestRange) {
  // 64..10240 MiB is what a manifest accepts; Lambda's 1769 MB (one vCPU) falls inside.
  EXPECT_EQ(CpuWeightForMemory(1, 64 * kMiB), 512u);
  EXPECT_EQ(CpuWeightForMemory(1, 1769 * kMiB), 14152u);
  EXPECT_EQ(CpuWeightForMemory(1, 10240 * kMiB), 81920u);
  EXPECT_EQ(CpuWeightForMemory(2, 64 * kMiB), 50u);
  EXPECT_EQ(CpuWeightForMemory(2, 1769 * kMiB), 1382u);
  EXPECT_EQ(CpuWeightForMemory(2, 10240 * kMiB), 8000u);
  for (int version : {1, 2}) {
    EXPECT_EQ(CpuWeightForMemory(version, 512 * kMiB), 2 * CpuWeightForMemory(version, 256 * kMiB))
        << "v" << version;
  }
}

TEST(CpuWeightTest, NoMemoryLimitLeavesTheDefaultAndExtremesAreClampedToTheKernelsRange) {
  EXPECT_EQ(CpuWeightForMemory(1, 0), 0u);
  EXPECT_EQ(CpuWeightForMemory(2, 0), 0u);
  EXPECT_EQ(CpuWeightForMemory(1, 4096), 2u);
  EXPECT_EQ(CpuWeightForMemory(2, 4096), 1u);
  EXPECT_EQ(CpuWeightForMemory(1, uint64_t{1} << 50), 262144u);
  EXPECT_EQ(CpuWeightForMemory(2, uint64_t{1} << 50), 10000u);
  EXPECT_EQ(CpuWeightForMemory(2, ~uint64_t{0}), 10000u);
}

using Writes = std::vector<std::pair<std::string, uint64_t>>;

TEST(LimitWritesTest, V2WritesMemorySwapCpuWeightAndPidsInOneDirectory) {
  CgroupHierarchy v2 = H(2, "/sys/fs/cgroup", {"memory", "pids", "cpu"});
  EXPECT_EQ(LimitWrites(v2, {.memory_bytes = 256 * kMiB, .pids_max = 64}, true),
            (Writes{{"memory.max", 256 * kMiB},
                    {"memory.swap.max", 0},
                    {"cpu.weight", 200},
                    {"pids.max", 64}}));
  EXPECT_EQ(LimitWrites(v2, {.memory_bytes = 256 * kMiB, .pids_max = 0}, false),
            (Writes{{"memory.max", 256 * kMiB}, {"cpu.weight", 200}}));
}

TEST(LimitWritesTest, V1WritesEachControllersFilesInItsOwnHierarchy) {
  CgroupLimits limits{.memory_bytes = 256 * kMiB, .pids_max = 64};
  EXPECT_EQ(LimitWrites(H(1, "/m", {"memory"}), limits, true),
            (Writes{{"memory.limit_in_bytes", 256 * kMiB},
                    {"memory.memsw.limit_in_bytes", 256 * kMiB}}));
  EXPECT_EQ(LimitWrites(H(1, "/c", {"cpu"}), limits, false), (Writes{{"cpu.shares", 2048}}));
  EXPECT_EQ(LimitWrites(H(1, "/p", {"pids"}), limits, false), (Writes{{"pids.max", 64}}));
}

TEST(LimitWritesTest, WithoutAMemoryLimitTheCpuWeightIsLeftAtTheDefault) {
  EXPECT_EQ(LimitWrites(H(2, "/sys/fs/cgroup", {"memory", "pids", "cpu"}),
                        {.memory_bytes = 0, .pids_max = 8}, true),
            (Writes{{"pids.max", 8}}));
  EXPECT_TRUE(LimitWrites(H(1, "/c", {"cpu"}), {}, false).empty());
}

TEST(LimitWritesTest, AHierarchyWithoutTheCpuControllerGetsNoCpuWeight) {
  EXPECT_EQ(LimitWrites(H(2, "/sys/fs/cgroup", {"memory", "pids"}),
                        {.memory_bytes = 128 * kMiB, .pids_max = 0}, false),
            (Writes{{"memory.max", 128 * kMiB}}));
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

// Waits for the child `pid`; a child still running after 10 s is killed and the test fails, so
// a limit or a kill that does not work shows as a failure instead of a hang.
int WaitChild(pid_t pid) {
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

// Reaps every child left (grandchildren come back to this process, a subreaper), waiting up to
// 2 s for them to end.
void ReapAll() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t p = ::waitpid(-1, nullptr, WNOHANG);
    if (p < 0) break;  // ECHILD: none left
    if (p == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
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

  void TearDown() override { ReapAll(); }

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

  static int Wait(pid_t pid) { return WaitChild(pid); }

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


// ---------------------------------------------------------------------------------------------
// CPU weight, the pids limit under a fork bomb

std::optional<uint64_t> ReadU64(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

// The line "key N" of a flat-keyed cgroup file.
std::optional<uint64_t> ReadKeyed(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// The directory of `group` that has `file` (the one in the hierarchy of its controller).
std::string DirWith(const Cgroup& group, const std::string& file) {
  for (const std::string& d : group.paths()) {
    if (::access((d + "/" + file).c_str(), F_OK) == 0) return d;
  }
  return "";
}

TEST_F(CgroupTest, TheCpuWeightOfAGroupFollowsItsMemoryLimit) {
  if (!manager_->has_cpu()) GTEST_SKIP() << "no cpu controller: " << manager_->Describe();
  auto group = MakeGroup("cpu", {.memory_bytes = 256 * kMiB, .pids_max = 0});
  ASSERT_TRUE(group);
  if (std::string d = DirWith(*group, "cpu.shares"); !d.empty()) {
    EXPECT_EQ(ReadU64(d + "/cpu.shares"), 2048u) << d;  // twice the default of a 128 MiB one
  } else {
    std::string w = DirWith(*group, "cpu.weight");
    ASSERT_FALSE(w.empty()) << "neither cpu.shares nor cpu.weight in the group";
    EXPECT_EQ(ReadU64(w + "/cpu.weight"), 200u) << w;
  }
}

TEST_F(CgroupTest, TheCpuWeightIsSetWithTheOtherLimitsOnAGroupMadeWithoutThem) {
  if (!manager_->has_cpu()) GTEST_SKIP() << "no cpu controller: " << manager_->Describe();
  auto group = MakeGroup("cpu-later", {});
  ASSERT_TRUE(group);
  std::string file = DirWith(*group, "cpu.shares");
  const int version = file.empty() ? 2 : 1;
  file = file.empty() ? DirWith(*group, "cpu.weight") + "/cpu.weight" : file + "/cpu.shares";
  EXPECT_EQ(ReadU64(file), version == 1 ? 1024u : 100u) << "the kernel's default until then";
  ASSERT_TRUE(manager_->SetLimits(*group, {.memory_bytes = 512 * kMiB, .pids_max = 0}).ok());
  EXPECT_EQ(ReadU64(file), CpuWeightForMemory(version, 512 * kMiB)) << file;
}

TEST_F(CgroupTest, DescribeSaysWhetherCpuIsSharedInProportionToMemory) {
  std::string d = manager_->Describe();
  if (manager_->has_cpu()) {
    EXPECT_NE(d.find(", cpu)"), std::string::npos) << d;
  } else {
    EXPECT_NE(d.find("CPU is not shared in proportion to memory"), std::string::npos) << d;
  }
}

TEST_F(CgroupTest, AForkBombIsHeldToThePidsLimitAndDestroyEndsItWithinTheBound) {
  if (!manager_->has_pids()) GTEST_SKIP() << "no pids controller: " << manager_->Describe();
  auto group = MakeGroup("bomb", {.memory_bytes = 64 * kMiB, .pids_max = 32});
  ASSERT_TRUE(group);
  std::string pids = DirWith(*group, "pids.current");
  ASSERT_FALSE(pids.empty());
  std::vector<std::string> dirs = group->paths();
  pid_t root = ForkInto(*group, [] {
    for (;;) ::fork();  // every child runs this loop too
    return 0;
  });

  // Wait (bounded) for the bomb to fill the group, then for the kernel to have refused a fork.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ReadU64(pids + "/pids.current").value_or(0) < 32 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  while (ReadKeyed(pids + "/pids.events", "max").value_or(0) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(ReadU64(pids + "/pids.current"), 32u) << "the bomb did not fill its 32 pids";
  EXPECT_GT(ReadKeyed(pids + "/pids.events", "max").value_or(0), 0u) << "no fork was refused";

  auto start = std::chrono::steady_clock::now();
  Status st = group->Destroy();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_LT(took, kDestroyBound);
  for (const std::string& d : dirs) EXPECT_NE(::access(d.c_str(), F_OK), 0) << d;

  // Every process of the bomb is dead: each one comes back here (a subreaper) to be reaped.
  int root_status = 0;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    int status = 0;
    pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p == root) root_status = status;
    if (p < 0) break;  // ECHILD: all reaped
    if (p == 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "bomb processes still alive";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ASSERT_TRUE(WIFSIGNALED(root_status));
  EXPECT_EQ(WTERMSIG(root_status), SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// Reclaiming the groups of dead daemons

// A pid that names no process: a child that has exited and been reaped.
pid_t DeadPid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

// A child that sleeps until killed, named `name` when given.
pid_t ForkSleeper(const char* name = nullptr) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (name) ::prctl(PR_SET_NAME, name);
    (void)::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  (void)::read(ready[0], &c, 1);
  ::close(ready[0]);
  return pid;
}

bool MoveInto(const std::string& dir, pid_t pid) {
  std::ofstream procs(dir + "/cgroup.procs");
  procs << pid << std::flush;
  return static_cast<bool>(procs);
}

// True while `pid` runs (exists and is not a zombie), whoever its parent is.
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Each test works in its own `<mount>/<unique>` directory of every hierarchy a manager uses, as
// a daemon works in `<mount>/nimbus`; its managers are named `<unique>/<number>` like a daemon's.
class CgroupReclaimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    top_ = UniqueParent();
    auto probe = CgroupManager::Create(top_ + "/probe");  // not a number: reclaims nothing
    if (!probe.ok()) GTEST_SKIP() << "cgroups are not usable here: " << probe.status().message();
    for (const std::string& p : (*probe)->parent_paths()) {
      bases_.push_back(p.substr(0, p.rfind('/')));
    }
    probe = Status::Internal("released");  // removes <mount>/<unique> again
    for (const std::string& b : bases_) ASSERT_EQ(::mkdir(b.c_str(), 0755), 0) << b;
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }

  void TearDown() override {
    ReapAll();  // first, so that no zombie named nimbus protects a group from the reclaim below
    for (const std::string& b : bases_) {
      (void)ReclaimLeftovers(b);
      ::rmdir(b.c_str());
    }
    ReapAll();
  }

  // The manager of a daemon starting now, as the daemon makes it: "<unique>/<own pid>".
  Result<std::unique_ptr<CgroupManager>> StartManager() {
    return CgroupManager::Create(top_ + "/" + std::to_string(::getpid()));
  }

  // Makes `<base>/<daemon>/instance-1` in every hierarchy, with `pid` in it when not 0.
  void MakeLeftover(pid_t daemon, pid_t pid) {
    for (const std::string& b : bases_) {
      std::string d = b + "/" + std::to_string(daemon);
      ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
      ASSERT_EQ(::mkdir((d + "/instance-1").c_str(), 0755), 0) << d;
      if (pid != 0) {
        ASSERT_TRUE(MoveInto(d + "/instance-1", pid)) << d;
      }
    }
  }

  bool ExistsInEveryHierarchy(const std::string& rel) {
    for (const std::string& b : bases_) {
      if (::access((b + "/" + rel).c_str(), F_OK) != 0) return false;
    }
    return true;
  }
  bool GoneFromEveryHierarchy(const std::string& rel) {
    for (const std::string& b : bases_) {
      if (::access((b + "/" + rel).c_str(), F_OK) == 0) return false;
    }
    return true;
  }

  // Forks a daemon: a child with its own manager and one instance group holding a process of
  // its own that never dies with it (as after a kill -9 on v1). Returns {daemon, instance}.
  std::pair<pid_t, pid_t> ForkDaemonWithAnInstance() {
    int ready[2];
    if (::pipe(ready) != 0) return {-1, -1};
    pid_t daemon = ::fork();
    if (daemon == 0) {
      auto m = CgroupManager::Create(top_ + "/" + std::to_string(::getpid()));
      if (!m.ok()) ::_exit(1);
      auto g = (*m)->CreateGroup("instance-1", {.memory_bytes = 64 * kMiB, .pids_max = 16});
      if (!g.ok()) ::_exit(2);
      if (::fork() == 0) {
        if ((*g)->EnterFromChild() != 0) ::_exit(3);
        pid_t self = ::getpid();
        (void)::write(ready[1], &self, sizeof self);
        for (;;) ::pause();
      }
      for (;;) ::pause();
    }
    ::close(ready[1]);
    pid_t instance = -1;
    if (::read(ready[0], &instance, sizeof instance) != sizeof instance) instance = -1;
    ::close(ready[0]);
    return {daemon, instance};
  }

  std::string top_;
  std::vector<std::string> bases_;  // <mount>/<unique>, one per hierarchy
};

TEST_F(CgroupReclaimTest, TheGroupsOfADeadDaemonAreEmptiedAndRemovedWhenAManagerStarts) {
  pid_t dead = DeadPid();
  pid_t stray = ForkSleeper();
  ASSERT_GT(stray, 0);
  MakeLeftover(dead, stray);

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  int status = WaitChild(stray);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the process left in the group was not killed";
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(GoneFromEveryHierarchy(std::to_string(dead)));

  const std::string d = std::to_string(dead);
  ASSERT_EQ((*m)->reclaimed().size(), 1u);
  const LeftoverGroups& r = (*m)->reclaimed()[0];
  EXPECT_EQ(r.daemon, d);
  EXPECT_EQ(r.groups, (std::vector<std::string>{d, d + "/instance-1"}));
  EXPECT_EQ(r.killed, (std::vector<int64_t>{stray}));  // once, however many hierarchies
  EXPECT_TRUE(r.status.ok()) << r.status.message();
  std::string described = (*m)->Describe();
  EXPECT_NE(described.find("; reclaimed 2 cgroups left by a previous nimbus (pid " + d +
                           ") and killed the 1 process still in them"),
            std::string::npos)
      << described;
}

TEST_F(CgroupReclaimTest, ADaemonKilledWithSigkillIsReclaimedThoughItsInstanceOutlivesIt) {
  auto [daemon, instance] = ForkDaemonWithAnInstance();
  ASSERT_GT(daemon, 0);
  ASSERT_GT(instance, 0) << "the daemon could not start its instance";
  ::kill(daemon, SIGKILL);
  WaitChild(daemon);
  // Its instance process lives on in its group; it inherited the daemon's descriptors, but not
  // its hold on the group.
  ASSERT_TRUE(Alive(instance));
  const std::string d = std::to_string(daemon);
  ASSERT_TRUE(ExistsInEveryHierarchy(d + "/instance-1"));

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  int status = WaitChild(instance);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(GoneFromEveryHierarchy(d));
  ASSERT_EQ((*m)->reclaimed().size(), 1u);
  EXPECT_EQ((*m)->reclaimed()[0].daemon, d);
  EXPECT_EQ((*m)->reclaimed()[0].killed, (std::vector<int64_t>{instance}));
}

TEST_F(CgroupReclaimTest, ALiveDaemonsGroupsAndProcessesAreLeftAlone) {
  auto [daemon, instance] = ForkDaemonWithAnInstance();
  ASSERT_GT(daemon, 0);
  ASSERT_GT(instance, 0) << "the daemon could not start its instance";
  const std::string d = std::to_string(daemon);

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE((*m)->reclaimed().empty());
  EXPECT_TRUE(ExistsInEveryHierarchy(d + "/instance-1"));
  EXPECT_TRUE(Alive(instance));
  EXPECT_TRUE(Alive(daemon));
  // Nor does it disturb a daemon holding its own group in this same process.
  auto again = ReclaimLeftovers(bases_[0]);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->empty());
  EXPECT_TRUE(ExistsInEveryHierarchy(std::to_string(::getpid())));

  // Once that daemon is gone, its groups are leftovers like any other.
  ::kill(daemon, SIGKILL);
  WaitChild(daemon);
  for (const std::string& b : bases_) {
    auto r = ReclaimLeftovers(b);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  int status = WaitChild(instance);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(GoneFromEveryHierarchy(d));
}

TEST_F(CgroupReclaimTest, AGroupWhosePidWasReusedIsReclaimedAndTheNewProcessSpared) {
  pid_t unrelated = ForkSleeper();
  ASSERT_GT(unrelated, 0);
  MakeLeftover(unrelated, 0);  // a dead daemon's group whose pid now names this sleeper

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(GoneFromEveryHierarchy(std::to_string(unrelated)));
  ASSERT_EQ((*m)->reclaimed().size(), 1u);
  EXPECT_TRUE((*m)->reclaimed()[0].killed.empty());
  EXPECT_TRUE(Alive(unrelated)) << "only processes inside a group are killed";
  ::kill(unrelated, SIGKILL);
  WaitChild(unrelated);
}

TEST_F(CgroupReclaimTest, AGroupOfARunningProcessNamedNimbusIsLeftAloneThoughNothingHoldsIt) {
  // A daemon from before groups were held takes no lock; its name and pid are all there is.
  pid_t old_daemon = ForkSleeper("nimbus");
  ASSERT_GT(old_daemon, 0);
  MakeLeftover(old_daemon, 0);
  const std::string d = std::to_string(old_daemon);

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE((*m)->reclaimed().empty());
  EXPECT_TRUE(ExistsInEveryHierarchy(d + "/instance-1"));

  ::kill(old_daemon, SIGKILL);
  WaitChild(old_daemon);
  for (const std::string& b : bases_) {
    auto r = ReclaimLeftovers(b);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->size(), 1u) << b;
    EXPECT_EQ((*r)[0].groups, (std::vector<std::string>{d, d + "/instance-1"})) << b;
  }
  EXPECT_TRUE(GoneFromEveryHierarchy(d));
}

TEST_F(CgroupReclaimTest, ADaemonNamedNimbusKilledButNotYetReapedIsALeftover) {
  // After kill -9 the daemon stays a zombie until its parent (a shell, a supervisor) reaps it.
  pid_t daemon = ForkSleeper("nimbus");
  ASSERT_GT(daemon, 0);
  MakeLeftover(daemon, 0);
  ::kill(daemon, SIGKILL);
  siginfo_t info;
  ASSERT_EQ(::waitid(P_PID, daemon, &info, WEXITED | WNOWAIT), 0);  // dead, still unreaped
  ASSERT_FALSE(Alive(daemon));

  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ((*m)->reclaimed().size(), 1u);
  EXPECT_EQ((*m)->reclaimed()[0].daemon, std::to_string(daemon));
  EXPECT_TRUE(GoneFromEveryHierarchy(std::to_string(daemon)));
  WaitChild(daemon);
}

TEST_F(CgroupReclaimTest, ALeftoverOfADaemonThatHadThisVeryPidIsReclaimedToo) {
  // A daemon killed with SIGKILL whose pid came round again to the daemon starting now.
  MakeLeftover(::getpid(), 0);
  auto m = StartManager();
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ((*m)->reclaimed().size(), 1u);
  EXPECT_EQ((*m)->reclaimed()[0].daemon, std::to_string(::getpid()));
  // The new manager's group is fresh: the old instance-1 is gone, so the id can be used again.
  EXPECT_TRUE(GoneFromEveryHierarchy(std::to_string(::getpid()) + "/instance-1"));
  auto g = (*m)->CreateGroup("instance-1", {});
  EXPECT_TRUE(g.ok()) << g.status().message();
}

// cgroup v2 has cgroup.kill, which empties a group in one write. This machine's v2 tree
// (hybrid, at /sys/fs/cgroup/unified) has no controllers, so no manager uses it; the reclaim
// runs there directly, with a real process in a real v2 group.
TEST(CgroupReclaimV2Test, ALeftoverInAV2TreeIsEmptiedAndRemoved) {
  std::ifstream in("/proc/self/mountinfo");
  std::string mountinfo((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CgroupMounts mounts = ParseCgroupMounts(mountinfo);
  if (!mounts.v2) GTEST_SKIP() << "no cgroup v2 tree mounted here";
  if (::geteuid() != 0 || mounts.v2->read_only) GTEST_SKIP() << "not root, or v2 is read-only";
  const std::string base = mounts.v2->mount_point + "/" + UniqueParent();
  ASSERT_EQ(::mkdir(base.c_str(), 0755), 0) << base << ": " << std::strerror(errno);
  pid_t dead = DeadPid();
  const std::string d = std::to_string(dead);
  ASSERT_EQ(::mkdir((base + "/" + d).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((base + "/" + d + "/instance-1").c_str(), 0755), 0);
  pid_t stray = ForkSleeper();
  ASSERT_TRUE(MoveInto(base + "/" + d + "/instance-1", stray));
  bool has_kill = ::access((base + "/" + d + "/cgroup.kill").c_str(), F_OK) == 0;

  auto r = ReclaimLeftovers(base);
  int status = WaitChild(stray);
  ::rmdir(base.c_str());
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].groups, (std::vector<std::string>{d, d + "/instance-1"}));
  EXPECT_EQ((*r)[0].killed, (std::vector<int64_t>{stray}));
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  if (!has_kill) std::printf("note: no cgroup.kill here (Linux < 5.14); SIGKILL loop used\n");
}

TEST(CgroupReclaimV2Test, ReclaimingInADirectoryThatDoesNotExistFindsNothing) {
  auto r = ReclaimLeftovers("/nonexistent/nimbus");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->empty());
}

}  // namespace
}  // namespace nimbus::sandbox
