#include "scheduler/scheduler.h"

#ifdef __clang__
#pragma clang diagnostic ignored "-Wthread-safety-precise"
#endif

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/iso_time.h"
#include "runtimeapi/channel.h"
#include "runtimeapi/runtime_api.h"
#include "sandbox/peer_uid.h"

namespace nimbus::scheduler {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using observability::LogStream;

namespace {

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string Fixed2(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// "10 s", "0.5 s".
std::string SecondsText(std::chrono::milliseconds d) {
  char buf[64];
  snprintf(buf, sizeof buf, "%g s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::string ErrorTypeOf(std::string_view body, std::string_view header) {
  if (!header.empty()) return std::string(header);
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto* t = v.as_object().if_contains("errorType"); t && t->is_string()) return std::string(t->as_string());
  }
  return "Unhandled";
}

// A runtime uses one or two Runtime API connections; more would only spend the daemon's file
// descriptors, which every other function needs too.
constexpr size_t kRuntimeApiConnectionCap = 8;

}  // namespace

int64_t BilledMs(double duration_ms) { return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(duration_ms))); }

std::vector<std::string> FixedEnvironment(const Options& options) {
  return {
      "AWS_REGION=local",
      "AWS_DEFAULT_REGION=local",
      "TZ=:UTC",
      "LANG=C.UTF-8",
      "PATH=" + options.path_env,
      "HOME=/tmp",
      "TMPDIR=/tmp",
      "PYTHONUNBUFFERED=1",
  };
}

// An instance's life. Its state is its pool policy's (PoolPolicy::StateOf); "dead" is out of the
// policy. Which executor fields go with which state (all guarded by Scheduler::mu_):
// - kStarting: launched or being launched; its runtime has not asked /next yet. No parked, no
//   current. The policy holds its init deadline.
// - kIdle: parked in /next (`parked` set and open) and listed once in the policy's idle list,
//   which holds its keep-alive expiry.
// - kDetached: ready between invocations, but its parked /next connection closed. Not listed,
//   not dispatchable, not counted as capacity; its runtime's next /next makes it idle again,
//   and keep-alive stops it like an idle one.
// - kBusy: `current` is set. Until `delivered`, its event waits for a /next connection: the
//   parked one when Dispatch runs, else the runtime's next /next.
// - kFinishing: answered its invocation; its runtime's next /next is on the way.
// - dead: out of its pool; its process is killed (or exiting, or never came). It may still hold
//   a parked connection, which Cleanup answers.
//
// A GET /next arriving in each state (the rule that keeps a duplicate or foreign /next harmless):
// - kStarting, kFinishing, kDetached: the runtime is ready (PoolPolicy::OnReady); it takes the
//   oldest queued request or parks (kIdle, listed once).
// - kIdle, or kBusy before the event is delivered: the newer connection replaces the parked one,
//   which is answered 403 InvalidStateTransition; the instance stays listed once (or not at all
//   when busy), and a pending event goes to the newer connection.
// - kBusy after the event is delivered: answered 403 InvalidStateTransition; the invocation
//   goes on and ends by its response, its deadline or the process exit.
// - dead: answered 410 InstanceStopped.

PoolLimits LimitsOf(const catalog::FunctionConfig& fn, const Options& options) {
  const auto& m = fn.manifest;
  PoolLimits l;
  l.max = static_cast<size_t>(std::max(0, m.concurrency.max));
  l.min_warm = static_cast<size_t>(std::max(0, m.concurrency.min_warm));
  l.queue_bound = l.max * options.queue_per_slot;
  l.queue_timeout = std::chrono::seconds(m.timeout_s);
  l.keep_alive = std::chrono::seconds(m.keep_alive_s);
  l.init_timeout = options.init_timeout;
  return l;
}

struct Pool {
  Pool(Scheduler* s, catalog::ConfigPtr f, uint64_t n, PoolLimits limits, InstanceIds& ids)
      : sched(s), fn(std::move(f)), serial(n), policy(limits, ids) {}

  Scheduler* const sched;
  const catalog::ConfigPtr fn;
  const uint64_t serial;  // names its timer in Scheduler::pool_timers_
  PoolPolicy policy NIMBUS_GUARDED_BY(sched->mu_);
  // The requests waiting in the policy's queue, by ticket.
  std::unordered_map<RequestTicket, ContextPtr> waiting NIMBUS_GUARDED_BY(sched->mu_);
  RequestTicket next_ticket NIMBUS_GUARDED_BY(sched->mu_) = 1;
  // The pool's one timer (created with the first deadline, in Scheduler::pool_timers_), the
  // loop it lives on, and what it is armed for (or about to be).
  asio::steady_timer* timer NIMBUS_GUARDED_BY(sched->mu_) = nullptr;
  asio::io_context* timer_loop NIMBUS_GUARDED_BY(sched->mu_) = nullptr;
  Clock::time_point timer_due NIMBUS_GUARDED_BY(sched->mu_) = Clock::time_point::max();
  bool gone NIMBUS_GUARDED_BY(sched->mu_) = false;  // unused and let go: no timer any more

  void AddCounts(Counts& c) const NIMBUS_REQUIRES(sched->mu_) {
    c.starting += policy.Count(InstanceState::kStarting) + policy.Count(InstanceState::kDetached);
    c.idle += policy.Count(InstanceState::kIdle);
    c.busy += policy.Count(InstanceState::kBusy) + policy.Count(InstanceState::kFinishing);
    c.queued += policy.queued();
  }
};

struct Instance : runtimeapi::RuntimeApiSink, std::enable_shared_from_this<Instance> {
  Instance(Scheduler* s, std::shared_ptr<Pool> p, InstanceId n, asio::io_context& l)
      : sched(s), pool(std::move(p)), id(n), loop(l), deadline_timer(l) {}
  // Cleanup (or Shutdown) has released the process by now; this is a last resort.
  ~Instance() override {
    if (proc) sched->launcher_.Release(std::move(proc));
  }

  Scheduler* const sched;
  const std::shared_ptr<Pool> pool;
  const InstanceId id;
  asio::io_context& loop;

  // Guarded by sched->mu_:
  ContextPtr current NIMBUS_GUARDED_BY(sched->mu_);
  bool delivered NIMBUS_GUARDED_BY(sched->mu_) = false;  // current's event was sent to the runtime
  runtimeapi::PeerPtr parked NIMBUS_GUARDED_BY(sched->mu_);  // the runtime's pending next call
  bool launching NIMBUS_GUARDED_BY(sched->mu_) = false;  // Launcher::Launch called, result not yet taken by OnLaunched
  std::optional<Result<std::unique_ptr<sandbox::Process>>> launch_result NIMBUS_GUARDED_BY(sched->mu_);  // arrived, not yet taken

  // Owned by `loop`:
  std::unique_ptr<http::Listener> api;
  std::shared_ptr<runtimeapi::Channel> channel;  // the runtime channel, when the launcher gave one
  std::unique_ptr<sandbox::Process> proc;
  std::optional<asio::posix::stream_descriptor> exit_watch, out, err;
  std::string out_partial, err_partial, stderr_tail;
  asio::steady_timer deadline_timer;
  ContextPtr log_inv;  // the invocation printed lines belong to
  Clock::time_point launched_at;
  double spawn_ms = 0;  // from Launch to the launcher's process (OnLaunched)
  double init_ms = 0;   // from Launch to the runtime's first next
  bool dispatched_once = false;
  bool refusal_logged = false;
  bool cleaned_up = false;

  const std::string& fn_name() const { return pool->fn->name; }
  std::optional<InstanceState> StateLocked() const NIMBUS_REQUIRES(sched->mu_) { return pool->policy.StateOf(id); }

  // RuntimeApiSink (on `loop`):
  void OnNext(const runtimeapi::PeerPtr& peer) override;
  void OnResponse(const runtimeapi::PeerPtr& peer, std::string_view id, std::string&& body) override;
  void OnError(const runtimeapi::PeerPtr& peer, std::string_view id, std::string&& body,
               std::string_view error_type) override;
  void OnInitError(const runtimeapi::PeerPtr& peer, std::string&& body, std::string_view error_type) override;

  // The parked connection if it is still open (taken out of `parked`), else null.
  runtimeapi::PeerPtr TakeParkedLocked() NIMBUS_REQUIRES(sched->mu_);
  std::optional<Result<std::unique_ptr<sandbox::Process>>> TakeLaunchResultLocked() NIMBUS_REQUIRES(sched->mu_) {
    return std::exchange(launch_result, std::nullopt);
  }
  ContextPtr TakeCurrentLocked() NIMBUS_REQUIRES(sched->mu_) { return std::move(current); }
  // Sends `inv`'s event to `peer`.
  void Deliver(const runtimeapi::PeerPtr& peer, RequestContext& inv);
  // Notices when a parked next's transport closes.
  void WatchParked(const runtimeapi::PeerPtr& peer);
  void OnParkedClosed(const runtimeapi::RuntimePeer* peer);
  // The current invocation if `rid` names it (refusing with 400 InvalidRequestID otherwise).
  ContextPtr TakeCurrent(const runtimeapi::PeerPtr& peer, std::string_view rid);
  void OnDeadline(const ContextPtr& inv);
  // The policy stopped the instance (it is out of its pool already); `failed` are the requests
  // that end with its init timeout.
  void OnStopped(StopReason why, std::vector<ContextPtr> failed);
  void OnInitTimeout(std::vector<ContextPtr> failed);
  void OnExit();
  // A Runtime API connection from someone other than the instance was closed unread.
  void OnRefused(const std::string& who);
  // Kills the process of an instance already out of its pool; OnExit then cleans up.
  void Stop();
  void ReadPipe(bool is_err);
  void DrainPipes();
  void Consume(bool is_err, const char* data, size_t n);
  // The last stderr output, for error messages: "; last output: ..." or empty.
  std::string OutputTail() const;
  void EmitLine(LogStream stream, std::string text);
  // The invocation's START line; its END and REPORT lines (EndInvocation), which also record
  // its duration and the instance's peak memory in its observations. Kept as records by the
  // log store, rendered as text here only for a caller who asked for the log tail.
  void EmitStart(RequestContext& inv);
  void EndInvocation(RequestContext& inv);
  // Closes everything the loop owns, answers a parked connection and gives the process back to
  // the launcher. Idempotent; on the loop, or on Shutdown's thread once the loops stopped.
  void Cleanup();
};

// ---- Scheduler ---------------------------------------------------------------------------------

struct Scheduler::Effects {
  struct StopWork {
    std::shared_ptr<Instance> inst;
    StopReason why;
    std::vector<ContextPtr> failed;  // ended by its init timeout
  };
  std::vector<std::shared_ptr<Instance>> launch;
  std::vector<StopWork> stop;
  std::vector<std::pair<ContextPtr, InvokeResult>> finish;
  std::shared_ptr<Pool> wake_timer;  // post RunPoolTimer to the pool's timer loop
  asio::io_context* timer_loop = nullptr;
};

namespace {

InvokeResult Throttled(const RequestContext& inv, ThrottleReason why) {
  const auto& m = inv.fn->manifest;
  std::string msg =
      why == ThrottleReason::kQueueFull
          ? "function '" + inv.fn->name + "' has " + std::to_string(m.concurrency.max) +
                " busy instances (concurrency.max) and its queue is full; retry later or raise concurrency.max in "
                "function.yaml"
          : "no instance of '" + inv.fn->name + "' became free within " + std::to_string(m.timeout_s) +
                " s (concurrency.max is " + std::to_string(m.concurrency.max) +
                "); retry later or raise concurrency.max in function.yaml";
  return {Outcome::kThrottled, runtimeapi::ErrorJson("TooManyRequestsException", msg), "TooManyRequestsException"};
}

InvokeResult ShuttingDown() {
  return {Outcome::kShutdown, runtimeapi::ErrorJson("ServiceException", "nimbus is shutting down"), "ServiceException"};
}

}  // namespace

Scheduler::Scheduler(http::LoopGroup& loops, sandbox::Launcher& launcher, observability::LogStore& logs,
                     Options options)
    : loops_(loops), launcher_(launcher), logs_(logs), options_(std::move(options)) {}

Scheduler::~Scheduler() = default;

std::shared_ptr<Pool> Scheduler::PoolForLocked(const catalog::ConfigPtr& fn, Effects& fx) {
  // Found without building a key: the name by string_view, then the version among the few of
  // the function that have a pool.
  auto it = pools_.find(std::string_view(fn->name));
  if (it != pools_.end()) {
    auto& versions = it->second;
    auto found = std::find_if(versions.begin(), versions.end(),
                              [&](const std::shared_ptr<Pool>& p) { return p->fn->version == fn->version; });
    if (found != versions.end()) {
      if (!(*found)->policy.retired() && (*found)->fn->code_sha256 == fn->code_sha256) return *found;
      // A function deleted and deployed again starts its versions at 1 again: a pool of the old
      // version 1 (retired, or running other code) must not serve the new one, or it starts
      // instances on the old, removed code. Its instances keep the old pool until they stop.
      auto old = std::move(*found);
      versions.erase(found);
      if (versions.empty()) pools_.erase(it);
      ApplyLocked(old, old->policy.Retire(Clock::now()), fx);
      it = pools_.find(std::string_view(fn->name));
    }
  }
  if (it == pools_.end()) it = pools_.try_emplace(fn->name).first;
  auto pool = std::make_shared<Pool>(this, fn, next_pool_serial_++, LimitsOf(*fn, options_), instance_ids_);
  it->second.push_back(pool);
  return pool;
}

std::shared_ptr<Instance> Scheduler::NewInstanceLocked(const std::shared_ptr<Pool>& pool, InstanceId id) {
  // A new instance lives on the loop that asked for it when that is one of ours.
  asio::io_context* here = http::LoopGroup::Current();
  auto inst = std::make_shared<Instance>(this, pool, id, here ? *here : loops_.next());
  pool->policy.SetAffinity(id, reinterpret_cast<Affinity>(&inst->loop));
  instances_[id] = inst;
  return inst;
}

ContextPtr Scheduler::TakeWaitingLocked(Pool& pool, RequestTicket ticket) {
  auto it = pool.waiting.find(ticket);
  if (it == pool.waiting.end()) return nullptr;
  auto inv = std::move(it->second);
  pool.waiting.erase(it);
  return inv;
}

void Scheduler::ApplyLocked(const std::shared_ptr<Pool>& pool, Decisions&& d, Effects& fx,
                            const InvokeResult* fail_with) {
  for (InstanceId id : d.start) {
    if (shutting_down_) {
      pool->policy.Forget(id);
      continue;
    }
    fx.launch.push_back(NewInstanceLocked(pool, id));
  }
  for (const auto& t : d.throttle) {
    if (auto inv = TakeWaitingLocked(*pool, t.request)) fx.finish.emplace_back(inv, Throttled(*inv, t.why));
  }
  for (const auto& s : d.stop) {
    auto it = instances_.find(s.instance);
    if (it != instances_.end()) fx.stop.push_back({it->second, s.why, {}});
  }
  for (const auto& f : d.fail) {
    auto inv = TakeWaitingLocked(*pool, f.request);
    if (!inv) continue;
    auto by = std::find_if(fx.stop.begin(), fx.stop.end(), [&](const Effects::StopWork& w) {
      return w.why == StopReason::kInitTimeout && w.inst->id == f.instance;
    });
    if (by != fx.stop.end()) {
      by->failed.push_back(std::move(inv));  // answered on the instance's loop, with its output
    } else if (fail_with) {
      fx.finish.emplace_back(std::move(inv), *fail_with);
    } else {
      fx.finish.emplace_back(std::move(inv),
                             InvokeResult{Outcome::kStartFailed,
                                          runtimeapi::ErrorJson("Runtime.StartError", "the instance did not start"),
                                          "Runtime.StartError"});
    }
  }
  ErasePoolIfUnusedLocked(pool);
  const Clock::time_point due = pool->timer_due;  // a copy: comparing takes a reference
  if (d.wake < due && !pool->gone && !shutting_down_) {
    pool->timer_due = d.wake;
    if (!pool->timer) {
      asio::io_context* here = http::LoopGroup::Current();
      pool->timer_loop = here ? here : &loops_.next();
      auto& timer = pool_timers_[pool->serial];
      timer = std::make_unique<asio::steady_timer>(*pool->timer_loop);
      pool->timer = timer.get();
    }
    fx.wake_timer = pool;
    fx.timer_loop = pool->timer_loop;
  }
}

void Scheduler::Carry(Effects&& fx) {
  PostLaunches(std::move(fx.launch));
  for (auto& s : fx.stop) {
    asio::io_context& loop = s.inst->loop;  // read before `s.inst` moves into the closure
    asio::post(loop, [inst = std::move(s.inst), why = s.why, failed = std::move(s.failed)]() mutable {
      inst->OnStopped(why, std::move(failed));
    });
  }
  for (auto& [inv, result] : fx.finish) Finish(*inv, std::move(result));
  if (fx.wake_timer) {
    asio::post(*fx.timer_loop, [this, pool = std::move(fx.wake_timer)] { RunPoolTimer(pool); });
  }
}

void Scheduler::ErasePoolIfUnusedLocked(const std::shared_ptr<Pool>& pool) {
  if (!pool->policy.Unused() || !pool->waiting.empty() || pool->gone) return;
  if (auto it = pools_.find(std::string_view(pool->fn->name)); it != pools_.end()) {
    std::erase(it->second, pool);
    if (it->second.empty()) pools_.erase(it);
  }
  if (shutting_down_) return;  // Shutdown lets every timer go itself
  pool->gone = true;
  if (pool->timer) {
    // Destroyed on its own loop, after any handler of it already queued there.
    auto it = pool_timers_.find(pool->serial);
    if (it != pool_timers_.end()) {
      asio::post(*pool->timer_loop, [timer = std::move(it->second)] {});
      pool_timers_.erase(it);
    }
    pool->timer = nullptr;
  }
}

void Scheduler::Invoke(ContextPtr inv) {
  Effects fx;
  Lock lock(mu_);
  if (shutting_down_) {
    lock.Unlock();
    Finish(*inv, ShuttingDown());
    return;
  }
  auto pool = PoolForLocked(inv->fn, fx);
  const auto now = Clock::now();
  inv->obs_.queued_at = now;  // before the context is visible to another thread
  const RequestTicket ticket = pool->next_ticket++;
  Decisions d = pool->policy.Submit(now, ticket, reinterpret_cast<Affinity>(http::LoopGroup::Current()));
  if (d.dispatch) {
    // Warm path. The parked connection stays with the instance: Dispatch takes whichever is
    // parked when it runs.
    std::shared_ptr<Instance> inst = instances_.at(d.dispatch->instance);
    inst->current = inv;
    inst->delivered = false;
    d.dispatch.reset();
    ApplyLocked(pool, std::move(d), fx);
    lock.Unlock();
    asio::io_context& loop = inst->loop;  // read before `inst` moves into the closure
    asio::post(loop, [this, inst = std::move(inst), inv = std::move(inv)] { Dispatch(inst, inv); });
    Carry(std::move(fx));
    return;
  }
  if (!d.throttle.empty()) {  // the queue is full
    lock.Unlock();
    Finish(*inv, Throttled(*inv, d.throttle.front().why));
    Carry(std::move(fx));
    return;
  }
  pool->waiting.emplace(ticket, std::move(inv));
  ApplyLocked(pool, std::move(d), fx);
  lock.Unlock();
  Carry(std::move(fx));
}

void Scheduler::RunPoolTimer(const std::shared_ptr<Pool>& pool) {
  Effects fx;
  asio::steady_timer* timer = nullptr;
  Clock::time_point next = Clock::time_point::max();
  {
    Lock lock(mu_);
    if (pool->gone || shutting_down_) return;
    Decisions d = pool->policy.OnTimer(Clock::now());
    next = d.wake;
    pool->timer_due = d.wake;  // ApplyLocked then wakes no one: this handler arms below
    ApplyLocked(pool, std::move(d), fx);
    // Still valid when the pool went just now: its destruction is queued behind this handler.
    timer = pool->gone ? nullptr : pool->timer;
  }
  if (timer && next != Clock::time_point::max()) {
    timer->expires_at(next);  // cancels an earlier wait, whose handler then does nothing
    timer->async_wait([this, pool](const boost::system::error_code& ec) {
      if (!ec) RunPoolTimer(pool);
    });
  }
  Carry(std::move(fx));
}

void Scheduler::Finish(RequestContext& ctx, InvokeResult&& result) {
  result.version = ctx.fn->version;
  ctx.Finish(std::move(result));  // nothing when finished already
}

void Scheduler::PostLaunches(std::vector<std::shared_ptr<Instance>>&& instances) {
  for (auto& inst : instances) {
    asio::io_context& loop = inst->loop;
    // Moved, so no reference stays behind on the calling thread.
    asio::post(loop, [this, inst = std::move(inst)] { Launch(inst); });
  }
}

void Scheduler::Launch(const std::shared_ptr<Instance>& inst) {
  {
    Lock lock(mu_);
    if (inst->StateLocked() != InstanceState::kStarting || shutting_down_) {
      lock.Unlock();
      inst->Cleanup();
      return;
    }
    ++launches_in_flight_;
    inst->launching = true;
  }
  const catalog::FunctionConfig& fn = *inst->pool->fn;
  const auto& m = fn.manifest;
  sandbox::LaunchSpec spec;
  spec.code_dir = fn.code_dir.string();
  if (m.runtime != "provided") spec.runtime_dir = options_.runtimes_dir + "/" + m.runtime;
  spec.memory_bytes = static_cast<uint64_t>(m.memory_mb) << 20;
  spec.pids_max = 1024;
  spec.tmp_bytes = static_cast<uint64_t>(m.ephemeral_storage_mb) << 20;
  spec.network = m.network == manifest::Network::kNone ? sandbox::Network::kNone : sandbox::Network::kEgress;
  for (const auto& f : m.filesystems) spec.mounts.push_back({f.host, f.mount, f.read_only});
  spec.label = fn.name + "/" + fn.version;
  // The launcher adds LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR and AWS_LAMBDA_RUNTIME_API: only it
  // knows where the instance sees its code and how it reaches its Runtime API.
  spec.env = {
      "_HANDLER=" + m.handler,
      "AWS_LAMBDA_FUNCTION_NAME=" + fn.name,
      "AWS_LAMBDA_FUNCTION_VERSION=" + fn.version,
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(m.memory_mb),
      "AWS_LAMBDA_FUNCTION_TIMEOUT=" + std::to_string(m.timeout_s),
      "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + fn.name,
      "AWS_LAMBDA_LOG_STREAM_NAME=" + fn.version + "/instance-" + std::to_string(inst->id),
      "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
      "AWS_EXECUTION_ENV=AWS_Lambda_" + m.runtime,
  };
  // The manifest's own value of a fixed variable (TZ, LANG, PATH, ...) replaces the default:
  // one entry per name, since getenv takes the first.
  for (auto& e : FixedEnvironment(options_)) {
    if (!m.environment.count(e.substr(0, e.find('=')))) spec.env.push_back(std::move(e));
  }
  for (const auto& [k, v] : m.environment) spec.env.push_back(k + "=" + v);

  // Init time counts from here: the launcher's work is part of a cold start. (The init
  // deadline is the pool policy's, from when it decided to start the instance.)
  inst->launched_at = Clock::now();
  // The callback holds the instance weakly: the last reference to an instance must not be
  // dropped on the launcher's thread (its timers belong to its loop). `instances_` keeps it
  // alive while the launch is under way.
  launcher_.Launch(std::move(spec), [this, weak = std::weak_ptr<Instance>(inst)](
                                        Result<std::unique_ptr<sandbox::Process>> result) {
    LaunchDone(weak.lock(), std::move(result));
  });
}

void Scheduler::LaunchDone(std::shared_ptr<Instance> inst, Result<std::unique_ptr<sandbox::Process>> result) {
  {
    Lock lock(mu_);
    if (!shutting_down_ && inst) {
      inst->launch_result.emplace(std::move(result));
      asio::io_context& loop = inst->loop;  // read before `inst` moves into the closure
      asio::post(loop, [this, inst = std::move(inst)] { OnLaunched(inst); });
      if (--launches_in_flight_ == 0) launches_done_.NotifyAll();
      return;
    }
  }
  inst.reset();
  // Shutting down (the loops are stopped) or the instance is gone: the process goes straight back.
  if (result.ok()) launcher_.Release(std::move(result).value());
  Lock lock(mu_);
  if (--launches_in_flight_ == 0) launches_done_.NotifyAll();
}

void Scheduler::OnLaunched(const std::shared_ptr<Instance>& inst) {
  std::optional<Result<std::unique_ptr<sandbox::Process>>> result;
  bool keep = false;
  {
    Lock lock(mu_);
    if (!inst->launch_result) return;  // Shutdown took it
    result = inst->TakeLaunchResultLocked();
    inst->launching = false;
    const auto& pool = inst->pool;
    if (shutting_down_) {
      pool->policy.Forget(inst->id);
    } else {
      keep = pool->policy.OnLaunched(inst->id);  // false: ended meanwhile, or retired with nothing queued
    }
    if (!keep) ErasePoolIfUnusedLocked(pool);
  }
  if (!result->ok()) {
    if (keep) return FailStart(inst, result->status().message());
    inst->Cleanup();
    return;
  }
  if (!keep) {  // removed meanwhile (init timeout, retirement): the launcher takes it back
    launcher_.Release(std::move(*result).value());
    inst->Cleanup();
    return;
  }
  inst->proc = std::move(*result).value();
  inst->spawn_ms = MsSince(inst->launched_at);
  int listening = inst->proc->TakeRuntimeApiListener();
  if (listening < 0) return FailStart(inst, "the launcher gave the instance no Runtime API socket");
  http::ServerOptions api_options{16 << 20, std::chrono::seconds(0)};
  api_options.max_connections = kRuntimeApiConnectionCap;
  if (inst->proc->check_peer_uid()) {
    // The listener is on the host's loopback, reachable by every local process: only
    // connections from the instance's own uid are served.
    api_options.accept_filter = [weak = inst->weak_from_this(), uid = inst->proc->uid()](int fd) {
      auto peer = sandbox::SocketPeerUid(fd);
      if (peer.ok() && static_cast<int64_t>(peer.value()) == uid) return true;
      if (auto i = weak.lock()) {
        i->OnRefused(peer.ok() ? "uid " + std::to_string(peer.value()) : peer.status().message());
      }
      return false;
    };
  }
  inst->api = std::make_unique<http::Listener>(runtimeapi::MakeHandler(inst->weak_from_this()),
                                               std::move(api_options));
  Status st = inst->api->Adopt(inst->loop, listening);
  if (!st.ok()) return FailStart(inst, "cannot serve the Runtime API: " + st.message());
  if (int fd = inst->proc->TakeRuntimeChannel(); fd >= 0) {
    inst->channel = std::make_shared<runtimeapi::Channel>(
        inst->loop, fd, inst->weak_from_this(), [weak = inst->weak_from_this()](std::string why) {
          if (auto i = weak.lock()) i->EmitLine(LogStream::kPlatform, "nimbus: runtime channel closed: " + why);
        });
    inst->channel->Start();
  }

  int pidfd = inst->proc->exit_fd();
  if (pidfd >= 0) {
    inst->exit_watch.emplace(inst->loop, dup(pidfd));
    inst->exit_watch->async_wait(asio::posix::stream_descriptor::wait_read,
                                 [inst](const boost::system::error_code& ec) {
                                   if (!ec) inst->OnExit();
                                 });
  }
  int o = inst->proc->TakeStdout(), e = inst->proc->TakeStderr();
  if (o >= 0) {
    inst->out.emplace(inst->loop, o);
    inst->ReadPipe(false);
  }
  if (e >= 0) {
    inst->err.emplace(inst->loop, e);
    inst->ReadPipe(true);
  }
}

void Scheduler::FailStart(const std::shared_ptr<Instance>& inst, const std::string& why) {
  Effects fx;
  {
    Lock lock(mu_);
    if (inst->StateLocked()) {
      const InvokeResult failed{Outcome::kStartFailed, runtimeapi::ErrorJson("Runtime.StartError", why),
                                "Runtime.StartError"};
      // The request it was for fails; the rest of the queue gets its own attempt (and its own
      // StartError), not a late 429.
      ApplyLocked(inst->pool, inst->pool->policy.OnStartFailed(Clock::now(), inst->id), fx, &failed);
    }
  }
  inst->EmitLine(LogStream::kPlatform, "nimbus: could not start an instance: " + why);
  Carry(std::move(fx));
  inst->Cleanup();
}

void Scheduler::Dispatch(const std::shared_ptr<Instance>& inst, const ContextPtr& inv) {
  runtimeapi::PeerPtr conn;
  {
    Lock lock(mu_);
    if (inst->current != inv) return;  // ended before it started (the process exited)
    conn = inst->TakeParkedLocked();
    inst->delivered = conn != nullptr;
  }
  const auto& m = inst->pool->fn->manifest;
  RequestContext::Observations& obs = inv->obs_;
  inv->started_ = true;
  obs.started_at = Clock::now();
  obs.queue_wait_ms = RequestContext::MsBetween(obs.queued_at, obs.started_at);
  inv->deadline_ms_ = EpochMs() + static_cast<int64_t>(m.timeout_s) * 1000;
  if (!inst->dispatched_once) {
    inst->dispatched_once = true;
    obs.cold = true;
    obs.init_ms = inst->init_ms;
    // Where the cold start's time went: waiting for a launch to begin, the launcher's work
    // (fork, jail, exec), then the runtime's own start-up until it asked for its first event.
    // (Zero for an instance that was started ahead of the request, by min_warm.)
    double queued_ms = std::max(0.0, RequestContext::MsBetween(obs.queued_at, inst->launched_at));
    inst->EmitLine(LogStream::kPlatform, "INIT_REPORT Init Duration: " + Fixed2(inst->init_ms) +
                                             " ms\tPhase: init\tStatus: success\tQueue Wait: " + Fixed2(queued_ms) +
                                             " ms\tSpawn: " + Fixed2(inst->spawn_ms) + " ms\tRuntime Init: " +
                                             Fixed2(inst->init_ms - inst->spawn_ms) + " ms");
  }
  inst->log_inv = inv;
  inst->EmitStart(*inv);
  inst->deadline_timer.expires_after(std::chrono::seconds(m.timeout_s));
  inst->deadline_timer.async_wait([inst, inv](const boost::system::error_code& ec) {
    if (!ec) inst->OnDeadline(inv);
  });
  // No open /next connection (it closed after the instance was picked): the event waits for
  // the runtime's next /next, or ends with the process or the deadline.
  if (conn) inst->Deliver(conn, *inv);
}

void Scheduler::KeepWarm(const catalog::ConfigPtr& fn) {
  if (fn->manifest.concurrency.min_warm <= 0) return;
  Effects fx;
  {
    Lock lock(mu_);
    if (shutting_down_) return;
    auto pool = PoolForLocked(fn, fx);
    ApplyLocked(pool, pool->policy.KeepWarm(Clock::now()), fx);
  }
  Carry(std::move(fx));
}

void Scheduler::RetireVersions(const std::string& function, const std::vector<std::string>& keep) {
  Effects fx;
  {
    Lock lock(mu_);
    std::vector<std::shared_ptr<Pool>> retire;
    if (auto it = pools_.find(std::string_view(function)); it != pools_.end()) {
      for (const auto& pool : it->second) {
        if (std::find(keep.begin(), keep.end(), pool->fn->version) == keep.end()) retire.push_back(pool);
      }
    }
    // Instances between invocations stop now; busy and starting ones stop at their next /next
    // (after serving what is queued).
    const auto now = Clock::now();
    for (auto& pool : retire) ApplyLocked(pool, pool->policy.Retire(now), fx);
  }
  Carry(std::move(fx));
}

Counts Scheduler::CountsFor(const std::string& function) const {
  Counts c;
  Lock lock(mu_);
  if (auto it = pools_.find(std::string_view(function)); it != pools_.end()) {
    for (const auto& pool : it->second) pool->AddCounts(c);
  }
  return c;
}

std::unordered_map<std::string, Counts> Scheduler::AllCounts() const {
  std::unordered_map<std::string, Counts> out;
  Lock lock(mu_);
  for (const auto& [name, versions] : pools_) {
    Counts& c = out[name];
    for (const auto& pool : versions) pool->AddCounts(c);
  }
  return out;
}

size_t Scheduler::LiveInstances() const {
  Lock lock(mu_);
  size_t n = 0;
  for (const auto& [name, versions] : pools_) {
    for (const auto& pool : versions) n += pool->policy.instances();
  }
  return n;
}

void Scheduler::Shutdown() {
  std::vector<ContextPtr> to_fail;
  std::vector<std::shared_ptr<Instance>> instances;
  std::vector<std::unique_ptr<sandbox::Process>> untaken;
  {
    Lock lock(mu_);
    shutting_down_ = true;
    // A launch called back from now on releases its process itself; wait for those under way.
    while (launches_in_flight_ != 0) launches_done_.Wait(mu_);
    // Pools out of the map (replaced after a redeploy) may still hold queued requests.
    std::vector<std::shared_ptr<Pool>> pools;
    for (auto& [name, versions] : pools_) pools.insert(pools.end(), versions.begin(), versions.end());
    for (auto& [id, inst] : instances_) pools.push_back(inst->pool);
    for (auto& pool : pools) {
      for (RequestTicket t : pool->policy.TakeQueue()) {
        if (auto inv = TakeWaitingLocked(*pool, t)) to_fail.push_back(std::move(inv));
      }
    }
    for (auto& [id, inst] : instances_) {
      instances.push_back(inst);
      if (inst->current) to_fail.push_back(inst->TakeCurrentLocked());
      // Launched, but the loop stopped before it could take the process.
      if (inst->launch_result && inst->launch_result->ok()) untaken.push_back(std::move(*inst->launch_result).value());
      inst->launch_result.reset();
      inst->launching = false;
      inst->pool->policy.Forget(inst->id);
    }
  }
  for (auto& inv : to_fail) Finish(*inv, ShuttingDown());
  for (auto& p : untaken) launcher_.Release(std::move(p));
  // The loops have stopped: no loop touches these instances any more.
  for (auto& i : instances) i->Cleanup();
  launcher_.Drain();
  Lock lock(mu_);
  pools_.clear();
  instances_.clear();
  // Timers go while their io_contexts still exist; handlers left queued there hold no timer.
  for (auto& [serial, timer] : pool_timers_) timer->cancel();
  pool_timers_.clear();
}

// ---- Instance (all on its loop) -----------------------------------------------------------------

runtimeapi::PeerPtr Instance::TakeParkedLocked() {
  runtimeapi::PeerPtr conn = std::move(parked);
  if (conn && conn->closed()) conn.reset();
  return conn;
}

void Instance::Deliver(const runtimeapi::PeerPtr& peer, RequestContext& inv) {
  const std::string_view rid = inv.req.request_id;
  // "Root=1-" + the id's first 8 characters + "-" + the id, built on the stack (no allocation per
  // event): our request ids are 36 characters; a longer one is cut at what fits.
  char trace[128];
  size_t n = 0;
  for (std::string_view part : {std::string_view("Root=1-"), rid.substr(0, 8), std::string_view("-"), rid}) {
    part = part.substr(0, sizeof trace - n);
    std::memcpy(trace + n, part.data(), part.size());
    n += part.size();
  }
  const std::string_view trace_id(trace, n);
  runtimeapi::NextEvent ev{rid, inv.deadline_ms_,
                           inv.req.invoked_arn.empty() ? std::string_view(pool->fn->arn)
                                                       : std::string_view(inv.req.invoked_arn),
                           trace_id, inv.req.client_context, inv.req.cognito_identity};
  peer->SendEvent(ev, std::move(inv.req.payload));
}

void Instance::WatchParked(const runtimeapi::PeerPtr& peer) {
  peer->OnClose([weak = weak_from_this(), raw = peer.get()] {
    if (auto self = weak.lock()) self->OnParkedClosed(raw);
  });
}

void Instance::OnParkedClosed(const runtimeapi::RuntimePeer* peer) {
  Scheduler::Lock lock(sched->mu_);
  if (parked.get() != peer) return;  // not parked (any more): nothing depends on it
  parked.reset();
  // An idle instance is taken out of the idle list: no dispatch may pick a connection that is
  // gone. Its keep-alive goes on.
  pool->policy.OnDetached(id);
  // kBusy before delivery: the event waits for the runtime's next /next.
}

void Instance::OnNext(const runtimeapi::PeerPtr& conn) {
  enum class Act { kDispatch, kDeliver, kPark, kReplace, kStop, kRefuseBusy, kRefuseDead } act = Act::kRefuseDead;
  ContextPtr inv;
  runtimeapi::PeerPtr displaced;
  Scheduler::Effects fx;
  {
    Scheduler::Lock lock(sched->mu_);
    const std::optional<InstanceState> state = StateLocked();
    switch (state.value_or(InstanceState::kStarting)) {
      case InstanceState::kStarting:
        if (!state) {  // dead
          act = Act::kRefuseDead;
          break;
        }
        init_ms = MsSince(launched_at);
        [[fallthrough]];
      case InstanceState::kFinishing:
      case InstanceState::kDetached: {
        if (sched->shutting_down_) {
          pool->policy.Forget(id);
          sched->ErasePoolIfUnusedLocked(pool);
          act = Act::kStop;
          break;
        }
        Decisions d = pool->policy.OnReady(Clock::now(), id);
        if (d.dispatch) {  // the oldest queued request
          inv = sched->TakeWaitingLocked(*pool, d.dispatch->request);
          d.dispatch.reset();
          current = inv;
          delivered = false;
          parked = conn;  // Dispatch takes it
          act = Act::kDispatch;
        } else if (!d.stop.empty()) {  // retired, nothing queued
          d.stop.clear();
          act = Act::kStop;
        } else {
          parked = conn;
          act = Act::kPark;
        }
        sched->ApplyLocked(pool, std::move(d), fx);
        break;
      }
      case InstanceState::kIdle:
        displaced = std::exchange(parked, conn);
        act = Act::kReplace;
        break;
      case InstanceState::kBusy:
        if (delivered) {
          act = Act::kRefuseBusy;
          break;
        }
        displaced = std::exchange(parked, conn);
        act = Act::kReplace;
        if (current->started_) {  // Dispatch found no connection: the event goes out now
          parked.reset();
          delivered = true;
          inv = current;
          act = Act::kDeliver;
        }
        break;
    }
  }
  sched->Carry(std::move(fx));
  if (displaced && displaced != conn && !displaced->closed()) {
    displaced->Refuse(http::bhttp::status::forbidden, "InvalidStateTransition",
                      "another connection asked for the next event; this one is replaced", /*close=*/true);
  }
  switch (act) {
    case Act::kDispatch:
      WatchParked(conn);
      sched->Dispatch(shared_from_this(), inv);
      return;
    case Act::kDeliver:
      Deliver(conn, *inv);
      return;
    case Act::kReplace:
      WatchParked(conn);
      return;
    case Act::kPark:
      WatchParked(conn);
      return;
    case Act::kStop:
      Stop();  // first: the runtime must not act on the answer
      conn->Refuse(http::bhttp::status::gone, "InstanceStopped", "this instance has been stopped");
      return;
    case Act::kRefuseBusy:
      conn->Refuse(http::bhttp::status::forbidden, "InvalidStateTransition",
                   "an invocation is still running on this instance; post its response or error before asking "
                   "for the next event");
      return;
    case Act::kRefuseDead:
      conn->Refuse(http::bhttp::status::gone, "InstanceStopped", "this instance has been stopped");
      return;
  }
}

ContextPtr Instance::TakeCurrent(const runtimeapi::PeerPtr& peer, std::string_view rid) {
  ContextPtr inv;
  Scheduler::Effects fx;
  {
    Scheduler::Lock lock(sched->mu_);
    if (current && delivered && current->req.request_id == rid) {
      inv = std::move(current);
      delivered = false;
      // kFinishing: it counts as capacity until its next /next, which the policy waits for at
      // most init_timeout.
      sched->ApplyLocked(pool, pool->policy.OnResponded(Clock::now(), id), fx);
    }
  }
  if (!inv) {
    peer->Refuse(http::bhttp::status::bad_request, "InvalidRequestID", "Invalid request ID");
    return nullptr;
  }
  deadline_timer.cancel();
  sched->Carry(std::move(fx));
  return inv;
}

void Instance::OnResponse(const runtimeapi::PeerPtr& peer, std::string_view rid, std::string&& body) {
  auto inv = TakeCurrent(peer, rid);
  if (!inv) return;
  if (body.size() > runtimeapi::kMaxResponseBytes) {
    std::string msg = "Response payload size (" + std::to_string(body.size()) +
                      " bytes) exceeded maximum allowed payload size (" +
                      std::to_string(runtimeapi::kMaxResponseBytes) + " bytes).";
    EmitLine(LogStream::kPlatform, msg);
    EndInvocation(*inv);
    sched->Finish(*inv, {Outcome::kFunctionError, runtimeapi::ErrorJson("Function.ResponseSizeTooLarge", msg),
                        "Function.ResponseSizeTooLarge"});
    peer->Refuse(http::bhttp::status::payload_too_large, "RequestEntityTooLarge", msg);
    return;
  }
  // Lines printed before the response belong to this invocation, before its END. The pipes'
  // own handlers (ReadPipe) usually have them already, but not always: a channel read that Asio
  // makes speculatively, right after the loop handled the previous frame, can take the response
  // before the pipes' readiness, reported in the same epoll set, has been handled.
  DrainPipes();
  EndInvocation(*inv);
  sched->Finish(*inv, {Outcome::kSuccess, std::move(body), {}});
  peer->Accept();
}

void Instance::OnError(const runtimeapi::PeerPtr& peer, std::string_view rid, std::string&& body,
                       std::string_view error_type) {
  auto inv = TakeCurrent(peer, rid);
  if (!inv) return;
  std::string type = ErrorTypeOf(body, error_type);
  if (body.empty()) body = runtimeapi::ErrorJson(type, "the function failed without a message");
  DrainPipes();
  EmitLine(LogStream::kPlatform, body);
  EndInvocation(*inv);
  sched->Finish(*inv, {Outcome::kFunctionError, std::move(body), std::move(type)});
  peer->Accept();
}

void Instance::OnInitError(const runtimeapi::PeerPtr& peer, std::string&& body, std::string_view error_type) {
  Scheduler::Effects fx;
  std::string type = ErrorTypeOf(body, error_type);
  if (body.empty()) body = runtimeapi::ErrorJson(type, "the runtime failed to initialise");
  {
    Scheduler::Lock lock(sched->mu_);
    if (StateLocked() != InstanceState::kStarting) {
      // As Lambda: init/error is only for the init phase, before the first /next.
      lock.Unlock();
      peer->Refuse(http::bhttp::status::forbidden, "InvalidStateTransition",
                   "init/error is accepted only before the first /next");
      return;
    }
    const InvokeResult failed{Outcome::kFunctionError, body, type};
    sched->ApplyLocked(pool, pool->policy.OnInitError(Clock::now(), id), fx, &failed);
  }
  DrainPipes();
  EmitLine(LogStream::kPlatform, "INIT_REPORT Init Duration: " + Fixed2(MsSince(launched_at)) +
                                     " ms\tPhase: init\tStatus: error\tError Type: " + type);
  EmitLine(LogStream::kPlatform, body);
  sched->Carry(std::move(fx));
  peer->Accept();
  Stop();
}

void Instance::OnStopped(StopReason why, std::vector<ContextPtr> failed) {
  switch (why) {
    case StopReason::kInitTimeout:
      return OnInitTimeout(std::move(failed));
    case StopReason::kKeepAlive:
      EmitLine(LogStream::kPlatform, "nimbus: instance " + std::to_string(id) + " stopped after " +
                                         std::to_string(pool->fn->manifest.keep_alive_s) + " s idle (keep_alive)");
      break;
    case StopReason::kNoNextAfterResponse:
      EmitLine(LogStream::kPlatform, "nimbus: instance " + std::to_string(id) +
                                         " answered but did not ask for its next event within " +
                                         SecondsText(sched->options_.init_timeout) + "; it was stopped");
      break;
    case StopReason::kRetired:
      break;
  }
  Stop();
}

void Instance::OnInitTimeout(std::vector<ContextPtr> failed) {
  DrainPipes();
  const std::string limit = SecondsText(sched->options_.init_timeout);
  std::string msg = "the runtime did not call GET /2018-06-01/runtime/invocation/next within " + limit +
                    " of its start (init timeout), so it was stopped; look at what its start-up code does" +
                    OutputTail();
  EmitLine(LogStream::kPlatform,
           "INIT_REPORT Init Duration: " + Fixed2(MsSince(launched_at)) + " ms\tPhase: init\tStatus: timeout");
  EmitLine(LogStream::kPlatform, "nimbus: " + msg);
  for (auto& inv : failed) {
    sched->Finish(*inv, {Outcome::kFunctionError, runtimeapi::ErrorJson("Runtime.InitError", msg), "Runtime.InitError"});
  }
  Stop();  // a launch still under way is released when it arrives (OnLaunched)
}

void Instance::OnDeadline(const ContextPtr& inv) {
  {
    Scheduler::Lock lock(sched->mu_);
    if (current != inv) return;
    current.reset();
    pool->policy.Forget(id);  // its replacement, if anything waits, starts once the process has ended
    sched->ErasePoolIfUnusedLocked(pool);
  }
  Stop();
  DrainPipes();
  std::string msg = "Task timed out after " + Fixed2(pool->fn->manifest.timeout_s) + " seconds";
  EmitLine(LogStream::kPlatform, inv->req.request_id + " " + msg);
  EndInvocation(*inv);
  sched->Finish(*inv, {Outcome::kTimeout, runtimeapi::ErrorJson("Sandbox.Timedout", msg), "Sandbox.Timedout"});
  // The process exit (OnExit) finishes the clean-up and starts replacements for queued work.
}

void Instance::OnRefused(const std::string& who) {
  if (refusal_logged) return;
  refusal_logged = true;
  // Not attributed to the invocation running now: the connection was not the function's.
  sched->logs_.Append(fn_name(), {EpochMs(), std::string(), LogStream::kPlatform,
                                  "nimbus: refused a Runtime API connection to instance " + std::to_string(id) +
                                      " that does not come from the instance (" + who + ", the instance runs as uid " +
                                      std::to_string(proc ? proc->uid() : -1) +
                                      "); later refusals for this instance are not logged"});
}

void Instance::Stop() {
  if (proc) {
    proc->Kill();
    if (!exit_watch) Cleanup();  // no OnExit will follow
    return;
  }
  bool still_launching;
  {
    Scheduler::Lock lock(sched->mu_);
    still_launching = launching;
  }
  // A launch under way is released when it arrives (OnLaunched); else nothing is left to wait for.
  if (!still_launching) Cleanup();
}

void Instance::OnExit() {
  std::string how = proc ? proc->Reap() : "";
  if (proc && how.empty()) {  // spurious wake-up: keep watching
    exit_watch->async_wait(asio::posix::stream_descriptor::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                             if (!ec) self->OnExit();
                           });
    return;
  }
  DrainPipes();
  bool oom = proc && proc->OomKilled();
  ContextPtr inv;
  Scheduler::Effects fx;
  std::string tail = OutputTail();
  bool never_ready = false;
  {
    Scheduler::Lock lock(sched->mu_);
    // Still starting: it ended on its own before asking for an event (an instance stopped by the
    // daemon has already left its pool).
    never_ready = StateLocked() == InstanceState::kStarting;
    inv = std::move(current);
    delivered = false;
    // Out of its pool if it was not already; a starting one fails the request it was for; the
    // queue gets replacements.
    const InvokeResult failed{
        Outcome::kCrash, runtimeapi::ErrorJson("Runtime.ExitError", "Runtime exited before it was ready: " + how + tail),
        "Runtime.ExitError"};
    sched->ApplyLocked(pool, pool->policy.OnEnded(Clock::now(), id), fx, &failed);
  }
  if (never_ready) {
    EmitLine(LogStream::kPlatform, "INIT_REPORT Init Duration: " + Fixed2(MsSince(launched_at)) +
                                       " ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError");
    EmitLine(LogStream::kPlatform, "nimbus: the runtime exited before it was ready (" + how + ")" + tail);
  }
  if (inv) {
    deadline_timer.cancel();
    std::string type = oom ? "Runtime.OutOfMemory" : "Runtime.ExitError";
    std::string msg = oom ? "Runtime exited: the function used more than its " +
                                std::to_string(pool->fn->manifest.memory_mb) + " MB (memory in function.yaml)"
                          : "RequestId: " + inv->req.request_id + " Error: Runtime exited with error: " + how;
    EmitLine(LogStream::kPlatform, msg);
    if (inv->started_) EndInvocation(*inv);
    sched->Finish(*inv, {oom ? Outcome::kOutOfMemory : Outcome::kCrash, runtimeapi::ErrorJson(type, msg), type});
  }
  sched->Carry(std::move(fx));
  Cleanup();
}

void Instance::Cleanup() {
  if (cleaned_up) return;
  cleaned_up = true;
  boost::system::error_code ec;
  deadline_timer.cancel();
  if (api) api->Close();
  if (exit_watch) exit_watch->close(ec);
  if (out) out->close(ec);
  if (err) err->close(ec);
  log_inv.reset();
  runtimeapi::PeerPtr conn;
  {
    Scheduler::Lock lock(sched->mu_);
    conn = std::move(parked);
    sched->instances_.erase(id);
  }
  // A runtime still waiting in /next (a connection not from the stopped process) is told so.
  if (conn && !conn->closed()) {
    conn->Refuse(http::bhttp::status::gone, "InstanceStopped", "this instance has been stopped", /*close=*/true);
  }
  if (channel) channel->Close();
  if (proc) sched->launcher_.Release(std::move(proc));
}

std::string Instance::OutputTail() const {
  std::string_view tail = err_partial.empty() ? std::string_view(stderr_tail) : std::string_view(err_partial);
  if (tail.size() > 512) tail = tail.substr(tail.size() - 512);
  return tail.empty() ? std::string() : "; last output: " + std::string(tail);
}

void Instance::ReadPipe(bool is_err) {
  // Waits for readability and reads with ::read, so no output is ever held inside a queued
  // Asio completion where DrainPipes() (before END) could not see it.
  auto& s = is_err ? err : out;
  s->async_wait(asio::posix::stream_descriptor::wait_read,
                [self = shared_from_this(), is_err](const boost::system::error_code& ec) {
                  if (ec) return;
                  auto& s = is_err ? self->err : self->out;
                  if (!s || !s->is_open()) return;
                  char buf[8192];
                  for (;;) {
                    ssize_t n = ::read(s->native_handle(), buf, sizeof buf);
                    if (n > 0) {
                      self->Consume(is_err, buf, static_cast<size_t>(n));
                      continue;
                    }
                    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
                    auto& partial = is_err ? self->err_partial : self->out_partial;
                    if (!partial.empty()) {
                      // An unterminated last line is still the last output (OutputTail).
                      if (is_err) {
                        self->stderr_tail = partial.size() > 512 ? partial.substr(partial.size() - 512) : partial;
                      }
                      self->EmitLine(is_err ? LogStream::kStderr : LogStream::kStdout, std::move(partial));
                      partial.clear();
                    }
                    return;
                  }
                  self->ReadPipe(is_err);
                });
}

void Instance::DrainPipes() {
  // Non-blocking reads of whatever is buffered, so lines printed before a response are
  // attributed to that invocation and logged before its END line. One poll() of both pipes
  // first: on a warm invocation they are almost always empty, and a read of each would only
  // say EAGAIN.
  pollfd fds[2];
  nfds_t n = 0;
  bool which[2];
  for (bool is_err : {false, true}) {
    auto& s = is_err ? err : out;
    if (!s || !s->is_open()) continue;
    fds[n] = {s->native_handle(), POLLIN, 0};
    which[n++] = is_err;
  }
  if (n == 0 || ::poll(fds, n, 0) <= 0) return;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    char buf[8192];
    for (;;) {
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) break;
      Consume(which[i], buf, static_cast<size_t>(got));
    }
  }
}

void Instance::Consume(bool is_err, const char* data, size_t n) {
  auto& partial = is_err ? err_partial : out_partial;
  std::string_view chunk(data, n);
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      partial.append(chunk);
      if (partial.size() > 64 * 1024) {  // an endless line is logged in pieces
        EmitLine(is_err ? LogStream::kStderr : LogStream::kStdout, std::move(partial));
        partial.clear();
      }
      break;
    }
    partial.append(chunk.substr(0, nl));
    chunk.remove_prefix(nl + 1);
    if (!partial.empty() && partial.back() == '\r') partial.pop_back();
    if (is_err) {
      stderr_tail = partial.size() > 512 ? partial.substr(partial.size() - 512) : partial;
    }
    EmitLine(is_err ? LogStream::kStderr : LogStream::kStdout, std::move(partial));
    partial.clear();
  }
}

void Instance::EmitLine(LogStream stream, std::string text) {
  if (log_inv) log_inv->AppendLogTail(text);
  sched->logs_.Append(fn_name(), {EpochMs(), log_inv ? log_inv->req.request_id : std::string(), stream,
                                  std::move(text)});
}

void Instance::EmitStart(RequestContext& inv) {
  const std::string& version = pool->fn->version;
  if (inv.req.want_log_tail) inv.AppendLogTail(observability::StartLine(inv.req.request_id, version));
  sched->logs_.AppendStart(fn_name(), EpochMs(), inv.req.request_id, version);
}

void Instance::EndInvocation(RequestContext& inv) {
  RequestContext::Observations& obs = inv.obs_;
  observability::InvocationReport r;
  r.duration_ms = MsSince(obs.started_at);
  r.billed_ms = BilledMs(r.duration_ms);
  r.memory_mb = pool->fn->manifest.memory_mb;
  uint64_t peak = proc ? proc->PeakMemoryBytes() : 0;
  r.max_memory_used_mb = (peak + (1 << 20) - 1) >> 20;
  if (obs.cold) r.init_ms = obs.init_ms;
  obs.duration_ms = r.duration_ms;
  obs.max_memory_used_mb = r.max_memory_used_mb;
  if (inv.req.want_log_tail) {
    inv.AppendLogTail(observability::EndLine(inv.req.request_id));
    inv.AppendLogTail(observability::ReportLine(inv.req.request_id, r));
  }
  sched->logs_.AppendEnd(fn_name(), EpochMs(), inv.req.request_id, r);
  log_inv.reset();
}

}  // namespace nimbus::scheduler
