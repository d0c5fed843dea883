// The scheduler: per-function-version pools of instance processes. It starts instances on
// demand (one request at a time per instance), reuses them while warm, queues requests beyond
// `concurrency.max` (bounded by the function's timeout, then a clean 429), stops instances after
// `keep_alive` idle seconds, kills an instance whose invocation passed its deadline or whose
// runtime does not become ready within Options::init_timeout, replaces crashed ones, and retires
// old versions after a redeploy without touching requests in flight. Processes come from a
// sandbox::Launcher and go back to it (Release) when their instance ends; the scheduler never
// forks, waits for or kills a process group itself.
//
// Policy and mechanism are apart: each pool's rules (instance states, the queue and its
// deadlines, scale-out, keep-alive, min_warm, init deadlines, retirement) are a PoolPolicy
// (pool_policy.h), a state machine with no I/O that decides; this class is its executor. It
// feeds the policy the events it sees (a request, a runtime's /next, a response, a failed start,
// an init error, a process exit, the pool's timer) with the time, and carries out what the policy
// decides: launching, dispatching, stopping, answering 429 or the init failure, re-arming the
// pool's timer. What callers above use is the Invoker interface (invoker.h).
//
// Threading:
// - Invoke(), KeepWarm(), RetireVersions(), CountsFor(), AllCounts() and LiveInstances() are
//   thread-safe; call them from any thread (usually a loop of the LoopGroup).
// - All scheduling state (the pools with their policies, waiting invocations, parked /next
//   connections, launch results not yet taken) is guarded by one mutex, `mu_`, held only while
//   the policy decides and its decisions are booked; the posts, launcher calls and completions
//   they lead to run after it is released. Nothing blocking runs under it, and no Launcher call
//   is made under it.
// - Each pool has one timer, on one loop, armed for its policy's next wake (a queue deadline,
//   an init deadline, a keep-alive expiry, an answered instance's deadline to ask again); its
//   handler asks the policy what is due and re-arms. Whoever moves the wake earlier posts the
//   handler to the timer's loop. The timer is destroyed on that loop once the pool is unused.
// - Each instance is owned by one loop of the LoopGroup: its Runtime API listener (the socket
//   the launcher created, adopted there), process handle, exit watch, output pipes and deadline
//   timer live there and are touched only there. Work for an instance is posted to its loop.
// - The Launcher calls back on its own thread; the callback only stores the result under `mu_`
//   and posts the rest to the instance's loop (or, once Shutdown() has begun, hands the process
//   straight back with Release()).
// - Each invocation is its caller's RequestContext (request_context.h), held by shared_ptr: in
//   its pool's queue (`Pool::waiting`, under `mu_`), then as its instance's current one. The
//   scheduler's writes to it (observations, log tail, its private started/deadline state) are
//   made on the instance's loop, or under `mu_` before anyone else can see it.
// - A context is finished exactly once (RequestContext::Finish): on the instance's loop or a
//   pool timer's loop, on the loop where an instance event failed it (start failure, init error,
//   exit), or on the caller's thread when Invoke() answers at once (shutting down, full queue),
//   or on the thread that runs Shutdown(). Its Complete() hops back to the caller's loop when it
//   must (Connection::Reply does).
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
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "common/mutex.h"

#include "catalog/catalog.h"
#include "http/server.h"
#include "observability/log_store.h"
#include "sandbox/launcher.h"
#include "scheduler/invoker.h"
#include "scheduler/pool_policy.h"

namespace nimbus::scheduler {

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

struct Pool;
struct Instance;

class Scheduler final : public Invoker {
 public:
  Scheduler(http::LoopGroup& loops, sandbox::Launcher& launcher, observability::LogStore& logs, Options options);
  ~Scheduler() override;

  // Invoker (invoker.h).
  void Invoke(ContextPtr ctx) override;
  void KeepWarm(const catalog::ConfigPtr& fn) override;
  void RetireVersions(const std::string& function, const std::vector<std::string>& keep) override;
  Counts CountsFor(const std::string& function) const override;
  std::unordered_map<std::string, Counts> AllCounts() const override;

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
  // What a policy decision leaves to do once mu_ is released (scheduler.cc).
  struct Effects;

  // The pool for `fn`, made when missing; a stale one (retired, or other code under the same
  // version) is retired and replaced.
  std::shared_ptr<Pool> PoolForLocked(const catalog::ConfigPtr& fn, Effects& fx) NIMBUS_REQUIRES(mu_);
  // The executor's instance for a policy's new instance `id`, on the caller's loop when it is
  // one of ours; the caller launches it after unlocking.
  std::shared_ptr<Instance> NewInstanceLocked(const std::shared_ptr<Pool>& pool, InstanceId id) NIMBUS_REQUIRES(mu_);
  // Carries out the bookkeeping of `d` under mu_ (instances to create, requests taken out of
  // the pool, the pool's timer) and leaves the rest in `fx`. Requests in d.fail end with
  // `fail_with`, or, for an instance stopped for its init timeout, with that timeout.
  void ApplyLocked(const std::shared_ptr<Pool>& pool, Decisions&& d, Effects& fx,
                   const InvokeResult* fail_with = nullptr) NIMBUS_REQUIRES(mu_);
  // After unlocking: posts dispatches, launches and stops to their loops, answers requests,
  // and wakes the pool's timer when it must fire sooner.
  void Carry(Effects&& fx);
  // The waiting invocation behind `ticket`, out of the pool.
  ContextPtr TakeWaitingLocked(Pool& pool, RequestTicket ticket) NIMBUS_REQUIRES(mu_);
  // Posts Launch() for each to its loop.
  void PostLaunches(std::vector<std::shared_ptr<Instance>>&& instances);
  // On the instance's loop: asks the launcher for its process.
  void Launch(const std::shared_ptr<Instance>& inst);
  // On the launcher's thread: stores the result and posts OnLaunched to the instance's loop
  // (or releases the process when shutting down or the instance is gone).
  void LaunchDone(std::shared_ptr<Instance> inst, Result<std::unique_ptr<sandbox::Process>> result);
  // On the instance's loop: adopts the process (Runtime API listener, exit watch, pipes), or
  // releases it when the instance ended meanwhile.
  void OnLaunched(const std::shared_ptr<Instance>& inst);
  // On the instance's loop: the instance could not start; fails the request it was for.
  void FailStart(const std::shared_ptr<Instance>& inst, const std::string& why);
  // On the instance's loop: starts `ctx` (START line, deadline) and sends its event on the
  // parked /next connection, or keeps it for the runtime's next /next when there is none.
  void Dispatch(const std::shared_ptr<Instance>& inst, const ContextPtr& ctx);
  // Finishes `ctx` with `result` (the version that ran filled in), unless it was finished
  // already.
  static void Finish(RequestContext& ctx, InvokeResult&& result);
  // On the pool timer's loop: asks the policy what is due (PoolPolicy::OnTimer), carries it
  // out and re-arms the timer for the policy's next wake.
  void RunPoolTimer(const std::shared_ptr<Pool>& pool);
  // Takes a pool with nothing left to run or keep out of pools_ and lets its timer go.
  void ErasePoolIfUnusedLocked(const std::shared_ptr<Pool>& pool) NIMBUS_REQUIRES(mu_);

  http::LoopGroup& loops_;
  sandbox::Launcher& launcher_;
  observability::LogStore& logs_;
  const Options options_;

  mutable Mutex mu_;
  // A string_view finds a std::string key without building one.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  // Pools by function name, then one per version in use (a handful): an Invoke finds its pool
  // without allocating.
  std::unordered_map<std::string, std::vector<std::shared_ptr<Pool>>, NameHash, std::equal_to<>> pools_
      NIMBUS_GUARDED_BY(mu_);
  // Each pool's timer by pool serial (the map is guarded by mu_; a timer itself is used only on
  // its loop, and destroyed there once its pool is unused, or by Shutdown).
  std::unordered_map<uint64_t, std::unique_ptr<boost::asio::steady_timer>> pool_timers_ NIMBUS_GUARDED_BY(mu_);
  // Every instance not yet cleaned up, so Shutdown() reaches those already out of their pool
  // (killed, waiting for their exit).
  std::unordered_map<InstanceId, std::shared_ptr<Instance>> instances_ NIMBUS_GUARDED_BY(mu_);
  InstanceIds instance_ids_ NIMBUS_GUARDED_BY(mu_);  // shared by every pool's policy
  uint64_t next_pool_serial_ NIMBUS_GUARDED_BY(mu_) = 1;
  bool shutting_down_ NIMBUS_GUARDED_BY(mu_) = false;
  size_t launches_in_flight_ NIMBUS_GUARDED_BY(mu_) = 0;  // Launcher::Launch calls not yet called back
  CondVar launches_done_;  // launches_in_flight_ reached 0
};

// The environment entries every instance launch carries whatever its function ("KEY=value":
// region, TZ, LANG, PATH, HOME, TMPDIR, PYTHONUNBUFFERED); each launch adds its function's own
// entries around them. What a launcher may give an instance before its function is known.
std::vector<std::string> FixedEnvironment(const Options& options);

// Lambda's "Billed Duration": whole milliseconds, rounded up.
int64_t BilledMs(double duration_ms);

}  // namespace nimbus::scheduler
