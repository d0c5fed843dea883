// The instance's filesystem view and privileges. A JailPlan is built in the daemon (it may
// allocate); the two child-side steps run in processes forked from the multi-threaded daemon and
// so use async-signal-safe system calls only, reading the plan and spec without allocating:
//
// - PrepareRoot (in a stem, before any function is known): make every mount private, put a
//   small tmpfs on the plan's root directory and fill it with read-only binds of the host
//   directories a runtime needs (/usr, /etc files, device nodes), /proc of the instance's PID
//   namespace and the empty mount points the launch fills in. With `pivot`, it also binds the
//   plan's staged directories (every function's code, the runtimes) read-only under /.nimbus
//   and pivots into the root now: detaching the host's root waits for an RCU grace period
//   (3 ms measured), which a stem pays before any request needs it.
// - EnterRoot (in the stem's worker, when a launch spec arrives): bind the function's code at
//   /var/task and the runtime at /var/runtime read-only (from /.nimbus when pivoted, which is
//   then covered by an empty read-only tmpfs: covering is a mount, so it costs no grace
//   period, and without capabilities nothing can lift the cover), mount the private /tmp, bind
//   the manifest's file systems under /mnt (only without the early pivot: they are arbitrary
//   host paths), write /etc/passwd, make the root read-only, pivot into it if not done yet, and
//   drop to the instance's uid with no capabilities, no_new_privs, rlimits and seccomp.
//
// The layout is written down in docs/sandbox.md; keep the two in step.
//
// Threading: BuildJailPlan runs on the launcher thread; the plan is immutable afterwards and
// only read by forked children.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

// Where an instance sees its code and runtime when it is sandboxed.
inline constexpr char kTaskRoot[] = "/var/task";
inline constexpr char kRuntimeRoot[] = "/var/runtime";
// Where a pivoted stem keeps the staged host directories until a launch covers them.
inline constexpr char kStageRoot[] = "/.nimbus";

struct JailEntry {
  enum Kind {
    kDir,         // mkdir
    kSymlink,     // symlink(src, path)
    kBindDir,     // read-only bind of the host directory src
    kBindFile,    // read-only bind of the host file src (an empty file is made to mount on)
    kBindDevice,  // bind of a host device node (read-write, nosuid, noexec)
    kTmpfs,       // tmpfs with options src
    kProc,        // proc of the instance's PID namespace
    kFile,        // a file with `content`
  };
  Kind kind;
  std::string path;  // absolute, inside the new root ("/usr"); the host path is root + path
  std::string src;
  std::string content;
};

struct JailPlan {
  std::string root;  // host directory the new root's tmpfs is mounted on (empty, root-owned)
  std::vector<JailEntry> entries;
  std::vector<sock_filter> seccomp;  // installed last, before exec
  gid_t shared_gid = 0;              // supplementary group of every instance (shared files)
  // Host directories a pivoted stem keeps at /.nimbus/0, /.nimbus/1, ... (read-only), so a
  // launch can bind a function's code and runtime from inside the root.
  std::vector<std::string> staged;
};

// Where `host_path` is inside a pivoted stem's root ("/.nimbus/N/rest"), or "" when it is not
// under a staged directory.
std::string StagedPath(const JailPlan& plan, const std::string& host_path);

// The plan for this host: binds what exists of /usr, /bin, /lib*, /sbin (symlinks copied as
// symlinks, as on merged-/usr systems), a few /etc files (never shadow, ssl/private, ...),
// /dev/{null,zero,full,random,urandom,tty}.
Result<JailPlan> BuildJailPlan(const std::string& root_dir, std::vector<sock_filter> seccomp, gid_t shared_gid);

// Checks a `filesystems` host directory before it is bound into an instance: it is resolved
// through symlinks, must be an existing directory, and must be neither a system directory (/,
// /proc, /sys, /dev, /etc, /usr, /boot, /root, /run, /bin, /sbin, /lib*, /var) nor inside one of
// those that hold the system, nor inside or above one of `protected_dirs` (nimbus's data and
// runtime directories). Returns the resolved path, which is what gets bound.
Result<std::string> CheckShareableHostDir(const std::string& host, const std::vector<std::string>& protected_dirs);

// Child side, async-signal-safe. Each returns 0 or the errno of the first failure and, in
// `what`, a static description of the step that failed.
int PrepareRoot(const JailPlan& plan, bool pivot, const char** what);

// The parsed launch as the worker sees it (pointers into the spec buffer).
struct JailLaunch {
  bool pivoted;             // PrepareRoot pivoted already: paths below are inside the root
  const char* code_dir;     // bound at /var/task; "" for a primed instance (bound later)
  const char* runtime_dir;  // bound at /var/runtime, or ""
  const char* tmp_options;  // tmpfs options of /tmp, e.g. "size=536870912,mode=1777"
  const char* passwd;       // /etc/passwd content
  const char* group;        // /etc/group content
  const char* hostname;
  char** mounts;            // host, target, "ro"|"rw" triples
  unsigned mount_count;
  uid_t uid;
  gid_t gid;
};
// Fills the root and pivots into it, then drops privileges. After it returns 0 the caller only
// chdirs and execs.
int EnterRoot(const JailPlan& plan, const JailLaunch& launch, char* scratch, size_t scratch_size, const char** what);

}  // namespace nimbus::sandbox
