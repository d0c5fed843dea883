// Control groups for instance processes: each instance gets its own cgroup with the function's
// memory limit (swap included, so the limit cannot be escaped through swap) and a pids cap, and
// nimbus reads back the group's peak memory ("Max Memory Used" in the REPORT line) and whether
// the kernel OOM-killed it. Works on cgroup v1 (one directory per controller hierarchy), pure
// cgroup v2 (one directory), and hybrid machines, with the layout detected from mountinfo.
//
// All calls here do blocking file I/O on cgroupfs and belong off the hot path (instance start and
// stop), never on an event loop that serves requests; PeakMemoryBytes() and OomKilled() are one
// pread each on a descriptor kept open, cheap enough to call once per invocation.
//
// Threading: a CgroupManager is immutable after Create(); CreateGroup() and Describe() may be
// called from any thread at the same time. A Cgroup belongs to the one instance that owns it:
// PeakMemoryBytes() and OomKilled() may run concurrently with each other, Destroy() must not run
// concurrently with anything else on the same Cgroup.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0 = no memory limit
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

// For each controller nimbus uses (memory, pids), picks the hierarchy that holds it: the v1
// hierarchy it is bound to, else the v2 hierarchy when `v2_available` (the words of the v2 root's
// cgroup.controllers) lists it. Controllers that share a hierarchy share one entry; each entry's
// `controllers` lists only memory and/or pids. Pure: no filesystem access.
std::vector<CgroupHierarchy> ChooseHierarchies(const CgroupMounts& mounts,
                                               const std::vector<std::string>& v2_available);

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
  // to each pid in cgroup.procs until none is left) and removes the directories, retrying rmdir
  // briefly while the kernel releases the group. Idempotent; a failed Destroy can be retried.
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
  // uses; on v2 it enables memory and pids in cgroup.subtree_control from the root down to the
  // parent. Returns FailedPrecondition with what to do when cgroups cannot be used (no memory
  // controller mounted, read-only mount, not root); the daemon then runs without limits and says
  // so once in its log.
  static Result<std::unique_ptr<CgroupManager>> Create(
      std::string parent_name, std::string mountinfo_path = "/proc/self/mountinfo");

  ~CgroupManager();  // removes the parent group (and ancestors it created) when empty

  CgroupManager(const CgroupManager&) = delete;
  CgroupManager& operator=(const CgroupManager&) = delete;

  // Creates the group `instance_id` (one path component: letters, digits, '-', '_', '.') under
  // the parent with `limits` applied. A memory limit also caps swap where the kernel can (v1
  // memory.memsw.limit_in_bytes, v2 memory.swap.max = 0); on v2 memory.oom.group is set so an
  // OOM kills the whole instance rather than one of its processes. A pids limit is ignored when
  // no pids controller is mounted (Describe() says so).
  Result<std::unique_ptr<Cgroup>> CreateGroup(const std::string& instance_id,
                                              const CgroupLimits& limits) const;

  // Sets `limits` on an existing group (one made with no limits ahead of time). Blocking.
  Status SetLimits(Cgroup& group, const CgroupLimits& limits) const;

  // For the startup log, e.g. "cgroup v1 (memory, pids)" or "cgroup v2 (memory, pids)".
  std::string Describe() const;

  bool has_pids() const;
  // The parent group's directory in each hierarchy used.
  std::vector<std::string> parent_paths() const;

 private:
  CgroupManager() = default;

  struct Parent {
    CgroupHierarchy hierarchy;
    std::string path;                  // mount_point + "/" + parent_name
    std::vector<std::string> created;  // directories this manager made, outermost first
  };
  std::vector<Parent> parents_;
};

}  // namespace nimbus::sandbox
