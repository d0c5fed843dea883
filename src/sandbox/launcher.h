// The process launcher seam: the scheduler asks a Launcher for instance processes and never
// touches fork/exec itself, so scheduler tests inject a fake launcher and production injects
// ProcessLauncher (fork + exec into its own session, optional cgroup, output on pipes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::sandbox {

class CgroupManager;

struct LaunchSpec {
  std::string executable;          // absolute path of the bootstrap
  std::vector<std::string> argv;   // argv[0] included
  std::vector<std::string> env;    // "KEY=value", the whole environment
  std::string cwd;                 // LAMBDA_TASK_ROOT
  uint64_t memory_bytes = 0;       // 0 = unlimited
  uint64_t pids_max = 0;           // 0 = unlimited
};

// A started instance process. Not thread-safe: owned and used by one event loop.
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
  // SIGKILLs the whole process group (and cgroup). Idempotent.
  virtual void Kill() = 0;
  // Collects the exit status once exit_fd is readable. Returns a description such as
  // "exit status 1" or "signal 9 (Killed)"; empty if the process is still running.
  virtual std::string Reap() = 0;
  // Peak memory in bytes (cgroup when present, else the kernel's VmHWM), 0 if unknown.
  virtual uint64_t PeakMemoryBytes() = 0;
  // True when the kernel's OOM killer ended it (known only with a cgroup).
  virtual bool OomKilled() = 0;
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts a process. Fast (hands the spec to a waiting stem, or one fork + exec); may be
  // called on a loop thread.
  virtual Result<std::unique_ptr<Process>> Launch(const LaunchSpec& spec) = 0;
  // Prepares for the next launches (forks replacement stems). Call soon after Launch, but after
  // whatever the new process's start-up needs from the caller's loop. Thread-safe.
  virtual void Replenish() {}
};

// fork/exec launcher. `cgroups` may be null (no limits); it must outlive the launcher.
std::unique_ptr<Launcher> NewProcessLauncher(CgroupManager* cgroups);

}  // namespace nimbus::sandbox
