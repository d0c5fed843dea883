// The production Launcher: instance processes started from pre-forked stems on a dedicated
// launcher thread. With the sandbox on (the default) each stem is cloned into its own mount,
// PID, IPC and UTS namespaces (and a network namespace for `network: none`), joins its cgroup,
// builds the instance's root filesystem (jail.h), and waits; a launch binds the function's
// code, pivots into the root, drops to an unprivileged uid with seccomp and execs the
// bootstrap. docs/sandbox.md describes the whole design and what it isolates.
//
// Threading: see Launcher in launcher.h. Everything that blocks (fork, mounts done by the
// parent, cgroup writes and removal, waitpid) runs on the launcher's own thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/launcher.h"

namespace nimbus::sandbox {

struct ProcessLauncherOptions {
  // false only with `nimbus serve --insecure-no-sandbox`: instances run as plain children of
  // the daemon, as its user, with host paths (cgroups still apply when given).
  bool sandbox = true;
  std::string root_dir;   // an empty host directory the instances' root is mounted on
  std::string init_path;  // the nimbus-init executable
  // Instances run as uids from uid_base+1, each launch a uid never used before by this daemon,
  // and all carry the supplementary group uid_base, so a shared host directory can be given to
  // that group. Daemons on one host must never share a uid (the Runtime API trusts uids), so
  // each takes one of `uid_slots` ranges of `uid_count` uids (slot N: uid_base+1+N*uid_count
  // on), held with a lock file in `uid_lock_dir` for as long as it runs: 250 million launches,
  // about 14 days at 200 a second, for each of up to 16 daemons.
  uid_t uid_base = 300000;
  uint64_t uid_count = 250'000'000;
  unsigned uid_slots = 16;
  std::string uid_lock_dir = "/run/nimbus";
  size_t stems = 2;  // ready stems kept for `network: egress` launches
  // Host directories every instance's code and runtime come from (the code store, the
  // runtimes): staged read-only inside each stem's root so a launch needs no host path. A
  // function whose code is elsewhere, or that mounts `filesystems`, is started the slower way.
  std::vector<std::string> staged_dirs;
  // Directories no `filesystems` entry may contain or be inside (the data directory, the
  // runtimes), besides the host's system directories (CheckShareableHostDir).
  std::vector<std::string> protected_dirs;
  // Primed instances (docs/sandbox.md): for each runtime directory listed, keep
  // `primed_per_runtime` instances whose runtime is already started, in a fresh jail with an
  // empty /var/task, waiting for a function. A launch for that runtime takes one: its code is
  // bound at /var/task from outside, its limits written, and the function's environment sent
  // on the runtime channel (frame `A`, docs/runtime-channel.md), so it skips the runtime's
  // start-up. Launches that need what a primed instance cannot give (see Primable in
  // launcher.cc: `network: none`, `filesystems`, a non-default /tmp size, an environment that
  // changes how the runtime starts) are started the usual way.
  std::vector<std::string> primed_runtimes;
  size_t primed_per_runtime = 2;
  // The environment a primed runtime starts with, besides what the launcher adds: the fixed
  // entries every launch carries (PATH, LANG, TZ, ...). A launch whose entries for variables
  // read at process start-up (PATH, LANG, LC_*, LD_*, PYTHON*, NODE_*, ...) differ from these
  // is not given a primed instance.
  std::vector<std::string> primed_env;
};

// `cgroups` may be null (no limits); it must outlive the launcher. Fails, naming what is
// missing, when the sandbox is asked for and namespaces, mounts or seccomp do not work here.
Result<std::unique_ptr<Launcher>> NewProcessLauncher(CgroupManager* cgroups, ProcessLauncherOptions options);

}  // namespace nimbus::sandbox
