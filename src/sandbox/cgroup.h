// Control groups for instance processes: each instance gets its own cgroup with the function's
// memory limit (swap included, so the limit cannot be escaped through swap), a CPU weight in
// proportion to that memory, and a pids cap; nimbus reads back the group's peak memory ("Max
// Memory Used" in the REPORT line) and whether the kernel OOM-killed it. Works on cgroup v1 (one
// directory per controller hierarchy), pure cgroup v2 (one directory), and hybrid machines, with
// the layout detected from mountinfo. A daemon holds its groups (a POSIX lock on its parent
// group), so that a daemon starting later can tell the groups of a daemon that died (kill -9)
// from those of one that still runs, and reclaim only the former.
//
// All calls here do blocking file I/O on cgroupfs and belong off the hot path (instance start and
// stop), never on an event loop that serves requests; PeakMemoryBytes() and OomKilled() are one
// pread each on a descriptor kept open, cheap enough to call once per invocation.
//
// Threading: a CgroupManager is immutable after Create(); CreateGroup(), SetLimits(), Describe()
// and the accessors may be called from any thread at the same time. A Cgroup belongs to the one
// instance that owns it: PeakMemoryBytes() and OomKilled() may run concurrently with each other,
// Destroy() must not run concurrently with anything else on the same Cgroup. Blocking bounds:
// Destroy() (and so ~Cgroup) gives up after kDestroyBound (5 s, overrun by at most one poll)
// even while a fork bomb runs in the group; Create() spends at most that long on each leftover
// daemon group it reclaims, and waits up to 30 s for another daemon's reclaim in the same
// directory to finish. Waiting for the kernel (processes to exit, rmdir to stop failing with
// EBUSY) polls with sleeps of 1 ms doubling to 16 ms, never a busy loop. Only processes stuck in
// uninterruptible sleep make a call reach its bound; it then reports what is left, and Destroy()
// can be called again.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

// The longest Destroy() blocks; see the threading note above.
inline constexpr std::chrono::seconds kDestroyBound{5};

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0 = no memory limit (and the kernel's default CPU weight)
  uint64_t pids_max = 0;      // 0 = no pids limit
};

// One mounted cgroup hierarchy.
struct CgroupHierarchy {
  int version = 0;                        // 1 or 2
  std::string mount_point;                // e.g. "/sys/fs/cgroup/memory" or "/sys/fs/cgroup"
  std::vector<std::string> controllers;   // v1: bound controllers; v2: those nimbus will use
  bool read_only = false;
  bool operator==(const CgroupHierarchy&) const = default;
};

// The cgroup mounts one mountinfo file lists. v1 hierarchies with no controller (such as
// "name=systemd") are left out; a v2 hierarchy's controllers are not in mountinfo (they are in
// its cgroup.controllers file), so `v2->controllers` is empty here.
struct CgroupMounts {
  std::vector<CgroupHierarchy> v1;
  std::optional<CgroupHierarchy> v2;
};

// Parses /proc/self/mountinfo text. Pure: no filesystem access.
CgroupMounts ParseCgroupMounts(std::string_view mountinfo);

// For each controller nimbus uses (memory, pids, cpu), picks the hierarchy that holds it: the v1
// hierarchy it is bound to (cpu is usually co-mounted as "cpu,cpuacct"), else the v2 hierarchy
// when `v2_available` (the words of the v2 root's cgroup.controllers) lists it. Controllers that
// share a hierarchy share one entry; each entry's `controllers` lists only memory, pids and/or
// cpu, in that order. Pure: no filesystem access.
std::vector<CgroupHierarchy> ChooseHierarchies(const CgroupMounts& mounts,
                                               const std::vector<std::string>& v2_available);

// The CPU weight of an instance with `memory_bytes` of memory, for v1 cpu.shares (`version` 1)
// or v2 cpu.weight (`version` 2); 0 when `memory_bytes` is 0 (leave the kernel's default).
// CPU follows memory as on Lambda (one vCPU per 1769 MB), but as a share, not a quota: weights
// only divide the CPU among instances that all want it, and an instance alone on an idle machine
// may use every core (a quota of 128/1769 of a core would make a 128 MB function's cold start 14
// times slower on an idle machine). Instances are siblings under the daemon's parent group, so
// only the ratio between their weights matters, never the scale; the scale is chosen so that a
// 128 MiB instance (nimbus's default size and Lambda's smallest) gets the kernel's default weight
// (1024 shares, weight 100), which leaves v2's coarse 1..10000 range room for every size a
// manifest allows (64 MiB = 50 ... 10240 MiB = 8000). Clamped to the kernel's range (v1 2..262144,
// v2 1..10000). Pure.
uint64_t CpuWeightForMemory(int version, uint64_t memory_bytes);

// The files (relative to a group's directory) and values that apply `limits` in a hierarchy
// holding `h.controllers`, in the order they must be written. `swap_accounted` says whether the
// kernel accounts swap there (v1 memory.memsw.limit_in_bytes or v2 memory.swap.max exists).
// Pure: CreateGroup() and SetLimits() write exactly these.
std::vector<std::pair<std::string, uint64_t>> LimitWrites(const CgroupHierarchy& h,
                                                          const CgroupLimits& limits,
                                                          bool swap_accounted);

// Groups that a daemon which is gone left behind, found and removed by ReclaimLeftovers().
struct LeftoverGroups {
  std::string daemon;                // the leftover parent's name: the dead daemon's pid
  std::vector<std::string> groups;   // groups removed, relative to the scanned directory, parent
                                     // first ("4242", "4242/instance-3")
  std::vector<int64_t> killed;       // processes still in them, SIGKILLed
  Status status;                     // Unavailable when part could not be removed in time
};

// Reclaims the groups that dead daemons left in `dir` (a `<mount>/nimbus` directory holding one
// `<daemon pid>` group per daemon): kills whatever still runs in them (cgroup.kill where the
// kernel has it, else SIGKILL to each pid in cgroup.procs until none is left) and removes them
// bottom-up. A `<number>` group is live, and not touched, while /proc/locks shows a lock on it:
// every CgroupManager holds a POSIX read lock on its parent group from before anyone else can
// see the group until the manager is destroyed. The kernel drops that lock when the daemon dies,
// even by SIGKILL, and a POSIX lock is not inherited by forked children, so instance processes
// that outlive their daemon do not keep its groups alive. Hence a group whose pid was reused by
// an unrelated process is still reclaimed (nothing holds it), and a daemon whose number is not
// its pid here (another pid namespace) is still protected (it holds it). One exception: a group
// nobody holds whose number is the pid of a running (not zombie) process named "nimbus" (not the
// caller) is left alone, since a daemon built before groups were held holds no lock. Other
// entries of `dir` are ignored; so is a process's own parent group if it has a manager for it.
// Serialised with other daemons' Create() and ReclaimLeftovers() on the same directory through
// a flock on its cgroup.procs file. Returns what was reclaimed (empty when `dir` does not exist),
// or Io when `dir` cannot be locked or /proc/locks read. Blocking: up to kDestroyBound per
// leftover whose processes will not die.
Result<std::vector<LeftoverGroups>> ReclaimLeftovers(const std::string& dir);

// One instance's cgroup: a directory in each hierarchy nimbus uses (one per controller on v1,
// a single one on v2).
class Cgroup {
 public:
  ~Cgroup();  // runs Destroy()
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // One cgroup.procs descriptor per hierarchy, opened O_CLOEXEC before fork so the runtime
  // cannot reach them after exec. Empty after Destroy().
  const std::vector<int>& procs_fds() const { return procs_fds_; }

  // Moves the calling process into this group by writing "0" to every procs fd. Meant for the
  // child between fork and exec: async-signal-safe (write(2) only, no allocation). Returns 0, or
  // the errno of the first write that failed; the child should then _exit rather than run
  // without its limits.
  int EnterFromChild() const noexcept;

  // Peak memory of the group in bytes (v1 memory.max_usage_in_bytes; v2 memory.peak when the
  // kernel has it, else memory.current at the time of the call); 0 when unknown.
  uint64_t PeakMemoryBytes() const;

  // True when the kernel OOM-killed a process in this group (v1: the oom_kill counter of
  // memory.oom_control, or memory.failcnt on kernels without it; v2: oom_kill in memory.events).
  bool OomKilled() const;

  // Kills every process still in the group (v2 cgroup.kill when the kernel has it, else SIGKILL
  // to each pid in cgroup.procs, repeated until the list stays empty) and removes the
  // directories, retrying rmdir while the kernel releases the group. The repeated kill ends a
  // fork bomb too: a process with a SIGKILL pending cannot complete a fork, so each round leaves
  // only the children forked since the list was read, and pids.max bounds those. Gives up after
  // kDestroyBound with Unavailable when something is still there. Idempotent; a failed Destroy
  // can be retried.
  Status Destroy();

  // The group's directories, one per hierarchy (for logs and tests).
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  friend class CgroupManager;
  Cgroup() = default;

  struct Dir {
    int version = 0;
    std::string path;
  };
  std::vector<Dir> dirs_;           // directories created, in hierarchy order
  std::vector<std::string> paths_;  // same paths, for paths()
  std::vector<int> procs_fds_;
  int peak_fd_ = -1;        // v1 memory.max_usage_in_bytes / v2 memory.peak or memory.current
  int oom_fd_ = -1;         // v1 memory.oom_control or memory.failcnt / v2 memory.events
  bool oom_from_failcnt_ = false;
};

class CgroupManager {
 public:
  // Detects the layout from `mountinfo_path` and creates (or reuses) nimbus's parent group
  // `parent_name` (a relative path such as "nimbus/<daemon pid>") at the top of each hierarchy it
  // uses, and holds it (see ReclaimLeftovers) until destroyed; on v2 it enables memory, pids and
  // cpu in cgroup.subtree_control from the root down to the parent. When the last component of
  // `parent_name` is a number, it first reclaims the groups that dead daemons left beside it
  // (ReclaimLeftovers on the directory above, in each hierarchy); reclaimed() and Describe() say
  // what was found. The hold is a POSIX lock, which belongs to the process and goes when the
  // process closes any descriptor of the directory: a process has at most one manager per parent
  // group and does not open the parent directory itself (nor does a child that shares its
  // descriptor table, CLONE_FILES; ordinary forked children do not matter). Returns FailedPrecondition with what to
  // do when cgroups cannot be used (no memory controller mounted, read-only mount, not root); the
  // daemon then runs without limits and says so once in its log. A missing pids or cpu
  // controller is not an error (Describe() says what is then not enforced).
  static Result<std::unique_ptr<CgroupManager>> Create(
      std::string parent_name, std::string mountinfo_path = "/proc/self/mountinfo");

  ~CgroupManager();  // removes the parent group (and ancestors it created) when empty

  CgroupManager(const CgroupManager&) = delete;
  CgroupManager& operator=(const CgroupManager&) = delete;

  // Creates the group `instance_id` (one path component: letters, digits, '-', '_', '.') under
  // the parent with `limits` applied (LimitWrites). A memory limit also caps swap where the
  // kernel can (v1 memory.memsw.limit_in_bytes, v2 memory.swap.max = 0) and sets the CPU weight
  // (CpuWeightForMemory); on v2 memory.oom.group is set so an OOM kills the whole instance rather
  // than one of its processes. A pids limit is ignored when no pids controller is mounted, and
  // the CPU weight when no cpu controller is (Describe() says so).
  Result<std::unique_ptr<Cgroup>> CreateGroup(const std::string& instance_id,
                                              const CgroupLimits& limits) const;

  // Sets `limits` on an existing group (one made with no limits ahead of time), memory, swap,
  // CPU weight and pids as CreateGroup() does. Blocking.
  Status SetLimits(Cgroup& group, const CgroupLimits& limits) const;

  // For the startup log, e.g. "cgroup v1 (memory, pids, cpu) under /sys/fs/cgroup/memory/nimbus/42
  // ..." followed by what is not enforced and what was reclaimed ("; reclaimed 3 cgroups left by
  // a previous nimbus (pid 4242) and killed the 1 process still in them").
  std::string Describe() const;

  bool has_pids() const;
  bool has_cpu() const;
  // The parent group's directory in each hierarchy used.
  std::vector<std::string> parent_paths() const;
  // What Create() reclaimed of dead daemons, one entry per daemon, merged over the hierarchies
  // (a v1 instance group counts once however many hierarchies it had a directory in).
  const std::vector<LeftoverGroups>& reclaimed() const { return reclaimed_; }

 private:
  CgroupManager() = default;

  struct Parent {
    CgroupHierarchy hierarchy;
    std::string path;                  // mount_point + "/" + parent_name
    std::vector<std::string> created;  // directories this manager made, outermost first
    int hold_fd = -1;                  // `path`, opened with a POSIX read lock while we live
  };
  std::vector<Parent> parents_;
  std::vector<LeftoverGroups> reclaimed_;
  std::string cpu_note_;      // why a cpu controller that is mounted is not used, if it is not
  std::string reclaim_note_;  // why leftovers could not be looked for, if they could not
};

}  // namespace nimbus::sandbox
