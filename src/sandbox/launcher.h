// The launcher role: the one owner of instance process creation, confinement and reaping. The
// scheduler asks a Launcher for instance processes and never touches fork, namespaces, cgroups
// or waitpid itself, so scheduler tests inject a fake launcher and production injects the
// process launcher (stems pre-forked into their own namespaces and cgroup, an unprivileged uid,
// seccomp; see docs/sandbox.md).
//
// Threading: a Launcher runs its own thread. Launch() and Release() are thread-safe and return
// at once; the work (cgroup writes, fork, mounts, kill, waitpid, cgroup removal) happens on the
// launcher's thread, never on the caller's event loop. Launch's callback runs on the launcher's
// thread: callers post what they need back to their own loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

class CgroupManager;

// A host directory the instance sees at `target` (under /mnt), as Lambda mounts file systems.
struct BindMount {
  std::string host;    // absolute host path, an existing directory
  std::string target;  // absolute path inside the instance, e.g. /mnt/shared
  bool read_only = false;
};

enum class Network {
  kEgress,  // the host's network: outbound connections allowed
  kNone,    // a private network namespace with only loopback
};

struct LaunchSpec {
  // What runs. `code_dir` is the function's extracted package on the host; `runtime_dir` the
  // nimbus runtime directory for the function's runtime (empty for `provided`). The executable
  // is `bootstrap` in the runtime directory when there is one, else in the code directory. The
  // launcher decides where the instance sees them (/var/task and /var/runtime in the sandbox,
  // the host paths without one) and adds LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR and
  // AWS_LAMBDA_RUNTIME_API (and NIMBUS_RUNTIME_FD when it gives the instance a runtime channel) to
  // `env`; the working directory is the task root.
  std::string code_dir;
  std::string runtime_dir;
  std::vector<std::string> env;  // "KEY=value"; the rest of the environment
  uint64_t memory_bytes = 0;     // 0 = unlimited
  uint64_t pids_max = 0;         // 0 = unlimited
  uint64_t tmp_bytes = 512ull << 20;  // the private /tmp (ephemeral_storage)
  Network network = Network::kEgress;
  std::vector<BindMount> mounts;  // manifest `filesystems`
  std::string label;              // for messages and the cgroup name, e.g. "hello/3"
};

// A started instance process. Not thread-safe: owned and used by one event loop. Every call is
// a non-blocking syscall or a small read of /proc or cgroup files. Hand it back to the launcher
// with Launcher::Release() when done: destroying it directly blocks (waitpid, cgroup removal).
class Process {
 public:
  virtual ~Process() = default;
  virtual int pid() const = 0;
  // Becomes readable when the process exits (a pidfd); -1 if the implementation has none.
  virtual int exit_fd() const = 0;
  // Read ends of the process's stdout and stderr pipes, non-blocking; the caller takes
  // ownership (closes them). -1 if none.
  virtual int TakeStdout() = 0;
  virtual int TakeStderr() = 0;
  // The listening socket of the instance's Runtime API (non-blocking, already listening, inside
  // the instance's network namespace when it has one); the caller takes ownership. -1 if none.
  virtual int TakeRuntimeApiListener() = 0;
  // The daemon's end of the instance's runtime channel (docs/runtime-channel.md): a connected
  // Unix stream socket whose other end the instance inherits as the descriptor named in its
  // NIMBUS_RUNTIME_FD; the caller takes ownership. -1 if none.
  virtual int TakeRuntimeChannel() { return -1; }
  // The uid the instance runs as; a Runtime API connection whose peer socket belongs to another
  // uid is not from this instance. -1 when instances run as the daemon's own user.
  virtual int uid() const = 0;
  // True when Runtime API connections must be checked against uid() (the listener is on the
  // host's loopback, reachable by every local process).
  virtual bool check_peer_uid() const = 0;
  // SIGKILLs the whole instance (its process group, PID namespace and cgroup). Idempotent.
  virtual void Kill() = 0;
  // Collects the exit status once exit_fd is readable. Returns a description such as
  // "exit status 1" or "signal 9 (Killed)"; empty if the process is still running.
  virtual std::string Reap() = 0;
  // Peak memory in bytes (cgroup when present, else the kernel's VmHWM), 0 if unknown.
  virtual uint64_t PeakMemoryBytes() = 0;
  // True when the kernel's OOM killer ended it (known only with a cgroup).
  virtual bool OomKilled() = 0;
  // True when it was a primed instance (its runtime started before its function was known).
  virtual bool primed() const { return false; }
};

using LaunchDone = std::function<void(Result<std::unique_ptr<Process>>)>;

class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts a process for `spec` off the caller's thread; `done` runs once, on the launcher's
  // thread, with the process or the reason it could not start.
  virtual void Launch(LaunchSpec spec, LaunchDone done) = 0;
  // Takes a process back: kills it if it still runs, reaps it and removes its cgroup, off the
  // caller's thread.
  virtual void Release(std::unique_ptr<Process> proc) = 0;
  // Waits until every Release()d process is gone (for shutdown and tests).
  virtual void Drain() {}
};

}  // namespace nimbus::sandbox
