// The scheduler: per-function-version pools of instance processes. It starts instances on
// demand (one request at a time per instance), reuses them while warm, queues requests beyond
// `concurrency.max` (bounded by the function's timeout, then a clean 429), stops instances after
// `keep_alive` idle seconds, kills an instance whose invocation passed its deadline or whose
// runtime does not become ready within Options::init_timeout, replaces crashed ones, and retires
// old versions after a redeploy without touching requests in flight. Processes come from a
// sandbox::Launcher and go back to it (Release) when their instance ends; the scheduler never
// forks, waits for or kills a process group itself.
//
// Threading:
// - Invoke(), KeepWarm(), RetireVersions(), CountsFor(), AllCounts() and LiveInstances() are
//   thread-safe; call them from any thread (usually a loop of the LoopGroup).
// - All scheduling state (pools, queues, instance states, parked /next connections, launch
//   results not yet taken) is guarded by one mutex, `mu_`, held only for a few pointer moves;
//   nothing blocking runs under it, and no Launcher call is made under it.
// - Each instance is owned by one loop of the LoopGroup: its Runtime API listener (the socket
//   the launcher created, adopted there), process handle, exit watch, output pipes and timers
//   live there and are touched only there. Work for an instance is posted to its loop.
// - The Launcher calls back on its own thread; the callback only stores the result under `mu_`
//   and posts the rest to the instance's loop (or, once Shutdown() has begun, hands the process
//   straight back with Release()).
// - A Completion is called exactly once: on the instance's loop or a queue timer's loop, or on
//   the caller's thread when Invoke() answers at once (shutting down, full queue), or on the
//   thread that runs Shutdown(). Callers hop back to their own loop (Connection::Reply does).
// - Shutdown() runs once, after every loop has stopped: it waits for launches in flight, hands
//   every process back to the launcher and waits (Launcher::Drain) until they are gone.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "common/mutex.h"

#include "catalog/catalog.h"
#include "http/server.h"
#include "observability/log_store.h"
#include "sandbox/launcher.h"

namespace nimbus::scheduler {

struct InvokeRequest {
  std::string request_id;
  std::string payload;
  std::string client_context;    // base64 JSON, Lambda-Runtime-Client-Context
  std::string cognito_identity;  // JSON, Lambda-Runtime-Cognito-Identity
  std::string invoked_arn;       // ARN with the qualifier the caller used
  bool want_log_tail = false;    // collect this invocation's log lines for X-Amz-Log-Result
};

enum class Outcome {
  kSuccess,        // body: the function's response
  kFunctionError,  // body: the runtime's error JSON (handler exception, init error)
  kTimeout,        // killed at its deadline
  kCrash,          // the runtime exited during the invocation (or before becoming ready)
  kOutOfMemory,    // the kernel killed it at its memory limit
  kThrottled,      // waited for a free instance until its timeout, or the queue was full
  kStartFailed,    // the instance process could not be started
  kShutdown,       // the daemon is stopping
};

struct InvokeResult {
  Outcome outcome = Outcome::kSuccess;
  std::string body;        // response payload, or Lambda error JSON {"errorMessage","errorType"}
  std::string error_type;  // e.g. "Sandbox.Timedout", "Runtime.ExitError"; empty on success
  std::string log_tail;    // when requested: START..REPORT of this invocation
  std::string version;     // the version that ran
};

using Completion = std::function<void(InvokeResult&&)>;

struct Options {
  std::string runtimes_dir;           // <share>/runtimes: python3/bootstrap, nodejs/bootstrap
  size_t queue_per_slot = 100;        // queued requests allowed per unit of concurrency.max
  std::string path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  // How long a new instance may take, from its launch, to ask for its first event (GET
  // /runtime/invocation/next), as Lambda's 10 s init phase. Past it the instance is killed and
  // the request waiting for it fails with Runtime.InitError. A request waiting for a starting
  // instance is not throttled at its queue deadline: its wait ends with the instance's init.
  // Must be positive.
  std::chrono::milliseconds init_timeout{10'000};
};

struct Counts {
  int busy = 0;      // running an invocation, or between its response and the next /next
  int idle = 0;      // parked in /next, ready for a request
  int starting = 0;  // launching or initialising, or waiting for its runtime to come back to /next
  size_t queued = 0;
};

struct Pool;
struct Instance;
struct Invocation;

class Scheduler {
 public:
  Scheduler(http::LoopGroup& loops, sandbox::Launcher& launcher, observability::LogStore& logs, Options options);
  ~Scheduler();

  // Runs `req` on an instance of `fn`; `done` gets the result.
  void Invoke(const catalog::ConfigPtr& fn, InvokeRequest req, Completion done);

  // Starts instances of `fn` until it has concurrency.min_warm of them (no-op when 0). Called
  // when a version becomes $LATEST or an alias target, and at start-up.
  void KeepWarm(const catalog::ConfigPtr& fn);

  // Instances of this function whose version is not in `keep` stop as soon as they are idle
  // (at once if idle now); requests in flight or queued on them still finish.
  void RetireVersions(const std::string& function, const std::vector<std::string>& keep);

  Counts CountsFor(const std::string& function) const;
  // Every function's counts in one pass (for listings and /metrics).
  std::unordered_map<std::string, Counts> AllCounts() const;
  // Live instance processes across all functions (for tests and metrics).
  size_t LiveInstances() const;

  // Fails queued and running requests (ServiceException), hands every instance process back to
  // the launcher and waits until the launcher has killed and reaped them and removed their
  // cgroups. Call once, after the LoopGroup has stopped (it touches instance state that loops
  // own).
  void Shutdown();

 private:
  friend struct Instance;
  friend struct Pool;
  using Lock = MutexLock;

  std::shared_ptr<Pool> PoolForLocked(const catalog::ConfigPtr& fn) NIMBUS_REQUIRES(mu_);
  // Reserves an instance slot; the caller posts Launch() after unlocking.
  std::shared_ptr<Instance> NewInstanceLocked(const std::shared_ptr<Pool>& pool) NIMBUS_REQUIRES(mu_);
  // Posts Launch() for each to its loop.
  void PostLaunches(std::vector<std::shared_ptr<Instance>>&& instances);
  // On the instance's loop: asks the launcher for its process and arms the init timeout.
  void Launch(const std::shared_ptr<Instance>& inst);
  // On the launcher's thread: stores the result and posts OnLaunched to the instance's loop
  // (or releases the process when shutting down or the instance is gone).
  void LaunchDone(std::shared_ptr<Instance> inst, Result<std::unique_ptr<sandbox::Process>> result);
  // On the instance's loop: adopts the process (Runtime API listener, exit watch, pipes), or
  // releases it when the instance ended meanwhile.
  void OnLaunched(const std::shared_ptr<Instance>& inst);
  // On the instance's loop: the instance could not start; fails the request it was for.
  void FailStart(const std::shared_ptr<Instance>& inst, const std::string& why);
  // On the instance's loop: starts `inv` (START line, deadline) and sends its event on the
  // parked /next connection, or keeps it for the runtime's next /next when there is none.
  void Dispatch(const std::shared_ptr<Instance>& inst, const std::shared_ptr<Invocation>& inv);
  void Finish(const std::shared_ptr<Invocation>& inv, InvokeResult&& result);
  // On the timer's loop: fails queued requests past their deadline, re-arms for the next one.
  void ArmQueueTimer(const std::shared_ptr<Pool>& pool, boost::asio::steady_timer* timer);
  void ErasePoolIfUnusedLocked(const std::shared_ptr<Pool>& pool) NIMBUS_REQUIRES(mu_);
  void RemoveInstanceLocked(Instance* inst) NIMBUS_REQUIRES(mu_);
  void MaybeStartForQueueLocked(const std::shared_ptr<Pool>& pool, std::vector<std::shared_ptr<Instance>>& to_launch) NIMBUS_REQUIRES(mu_);
  void FailFrontLocked(const std::shared_ptr<Pool>& pool, InvokeResult&& result,
                       std::vector<std::pair<std::shared_ptr<Invocation>, InvokeResult>>& to_fail) NIMBUS_REQUIRES(mu_);

  http::LoopGroup& loops_;
  sandbox::Launcher& launcher_;
  observability::LogStore& logs_;
  const Options options_;

  mutable Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Pool>> pools_ NIMBUS_GUARDED_BY(mu_);  // "name\nversion"; guarded by mu_
  // Each pool key's queue timer, kept until Shutdown (the map is guarded by mu_; a timer itself
  // is used only on its loop).
  std::unordered_map<std::string, std::unique_ptr<boost::asio::steady_timer>> queue_timers_ NIMBUS_GUARDED_BY(mu_);
  // Every instance not yet cleaned up, so Shutdown() reaches those already out of their pool
  // (killed, waiting for their exit). Guarded by mu_.
  std::unordered_map<uint64_t, std::shared_ptr<Instance>> instances_ NIMBUS_GUARDED_BY(mu_);
  uint64_t next_instance_id_ NIMBUS_GUARDED_BY(mu_) = 1;                                  // guarded by mu_
  uint64_t next_pool_serial_ NIMBUS_GUARDED_BY(mu_) = 1;                                  // guarded by mu_
  bool shutting_down_ NIMBUS_GUARDED_BY(mu_) = false;                                     // guarded by mu_
  size_t launches_in_flight_ NIMBUS_GUARDED_BY(mu_) = 0;  // Launcher::Launch calls not yet called back; guarded by mu_
  CondVar launches_done_;  // launches_in_flight_ reached 0
};

// The variables every instance's environment carries whatever its function (PATH, LANG, TZ,
// HOME, ...), as Launch puts them first; primed instances start with these
// (ProcessLauncherOptions::primed_env).
std::vector<std::string> FixedEnvironment(const Options& options);

// Lambda's "Billed Duration": whole milliseconds, rounded up.
int64_t BilledMs(double duration_ms);

}  // namespace nimbus::scheduler
