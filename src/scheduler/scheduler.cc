#include "scheduler/scheduler.h"

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
#include <deque>

#include "runtimeapi/runtime_api.h"

namespace nimbus::scheduler {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using observability::LogStream;

namespace {

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string Fixed2(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f", v);
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

constexpr size_t kLogTailBytes = 4096;

}  // namespace

int64_t BilledMs(double duration_ms) { return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(duration_ms))); }

enum class State { kStarting, kIdle, kBusy, kFinishing, kDead };

struct Invocation {
  InvokeRequest req;
  Completion done;
  catalog::ConfigPtr fn;
  std::atomic<bool> completed{false};
  bool queued = false;  // guarded by Scheduler::mu_
  Clock::time_point queue_deadline;  // when a queued request gives up (429)
  // Set on the instance's loop at dispatch:
  Clock::time_point start;
  int64_t deadline_ms = 0;
  bool cold = false;
  double init_ms = 0;
  std::string log;  // when req.want_log_tail
};

struct Pool {
  catalog::ConfigPtr fn;
  std::string key;
  std::vector<std::shared_ptr<Instance>> instances;  // live ones
  std::vector<Instance*> idle;                       // parked in /next; most recent last
  std::deque<std::shared_ptr<Invocation>> queue;     // waiting for an instance, oldest first
  // One timer per pool fails queued requests at their deadline; it lives on one loop and is
  // only touched there (armed by a post, re-armed by its own handler). The Scheduler owns it
  // (queue_timers_), so no handler or pool ever destroys an Asio object on a foreign thread.
  asio::steady_timer* queue_timer = nullptr;
  bool queue_timer_armed = false;  // a wait is pending or posted; the pool stays in pools_
  bool retired = false;
  int Starting() const;
};

struct Instance : runtimeapi::RuntimeApiSink, std::enable_shared_from_this<Instance> {
  Instance(Scheduler* s, std::shared_ptr<Pool> p, uint64_t n, asio::io_context& l)
      : sched(s), pool(std::move(p)), id(n), loop(l), deadline_timer(l), idle_timer(l) {}

  Scheduler* const sched;
  const std::shared_ptr<Pool> pool;
  const uint64_t id;
  asio::io_context& loop;

  // Guarded by sched->mu_:
  State state = State::kStarting;
  std::shared_ptr<Invocation> current;
  http::ConnectionPtr parked;
  uint64_t idle_gen = 0;

  // Owned by `loop`:
  std::unique_ptr<http::Listener> api;
  std::unique_ptr<sandbox::Process> proc;
  std::optional<asio::posix::stream_descriptor> exit_watch, out, err;
  std::string out_partial, err_partial, stderr_tail;
  asio::steady_timer deadline_timer, idle_timer;
  std::shared_ptr<Invocation> log_inv;  // the invocation printed lines belong to
  Clock::time_point launched_at;
  double init_ms = 0;
  bool dispatched_once = false;
  bool cleaned_up = false;

  const std::string& fn_name() const { return pool->fn->name; }

  // RuntimeApiSink (on `loop`):
  void OnNext(const http::ConnectionPtr& conn, http::Request&& req) override;
  void OnResponse(const http::ConnectionPtr& conn, http::Request&& req, std::string_view id) override;
  void OnError(const http::ConnectionPtr& conn, http::Request&& req, std::string_view id) override;
  void OnInitError(const http::ConnectionPtr& conn, http::Request&& req) override;

  // The current invocation if `rid` names it (answering 400 InvalidRequestID otherwise).
  std::shared_ptr<Invocation> TakeCurrent(const http::ConnectionPtr& conn, const http::Request& req,
                                          std::string_view rid);
  void OnIdleExpired(uint64_t gen);
  void OnDeadline(const std::shared_ptr<Invocation>& inv);
  void OnExit();
  void ReadPipe(bool is_err);
  void DrainPipes();
  void Consume(bool is_err, const char* data, size_t n);
  void EmitLine(LogStream stream, std::string text);
  void EndInvocation(const std::shared_ptr<Invocation>& inv);
  void Cleanup();
};

int Pool::Starting() const {
  int n = 0;
  for (auto& i : instances) n += i->state == State::kStarting;
  return n;
}

// ---- Scheduler ---------------------------------------------------------------------------------

Scheduler::Scheduler(http::LoopGroup& loops, sandbox::Launcher& launcher, observability::LogStore& logs,
                     Options options)
    : loops_(loops), launcher_(launcher), logs_(logs), options_(std::move(options)) {}

Scheduler::~Scheduler() = default;

std::shared_ptr<Pool> Scheduler::PoolForLocked(const catalog::ConfigPtr& fn) {
  std::string key = fn->name;
  key.push_back('\n');
  key += fn->version;
  auto& slot = pools_[key];
  if (!slot) {
    slot = std::make_shared<Pool>();
    slot->fn = fn;
    slot->key = std::move(key);
  }
  return slot;
}

std::shared_ptr<Instance> Scheduler::NewInstanceLocked(const std::shared_ptr<Pool>& pool) {
  // A new instance lives on the loop that asked for it when that is one of ours.
  asio::io_context* here = http::LoopGroup::Current();
  auto inst = std::make_shared<Instance>(this, pool, next_instance_id_++, here ? *here : loops_.next());
  pool->instances.push_back(inst);
  return inst;
}

void Scheduler::MaybeStartForQueueLocked(const std::shared_ptr<Pool>& pool,
                                         std::vector<std::shared_ptr<Instance>>& to_launch) {
  if (shutting_down_) return;
  // concurrency.min_warm: instances kept ready before any request, and replaced when they die.
  const size_t min_warm = static_cast<size_t>(pool->fn->manifest.concurrency.min_warm);
  while (!pool->retired && pool->instances.size() < min_warm) to_launch.push_back(NewInstanceLocked(pool));
  const size_t max = static_cast<size_t>(pool->fn->manifest.concurrency.max);
  // Instances that just answered are about to ask /next: they count as capacity on the way.
  size_t starting = static_cast<size_t>(pool->Starting());
  for (auto& i : pool->instances) starting += i->state == State::kFinishing;
  while (pool->instances.size() < max && starting < pool->queue.size()) {
    to_launch.push_back(NewInstanceLocked(pool));
    ++starting;
  }
}

void Scheduler::RemoveInstanceLocked(Instance* inst) {
  auto& pool = inst->pool;
  std::erase(pool->idle, inst);
  std::erase_if(pool->instances, [inst](const std::shared_ptr<Instance>& p) { return p.get() == inst; });
  inst->state = State::kDead;
  ErasePoolIfUnusedLocked(pool);
}

void Scheduler::ErasePoolIfUnusedLocked(const std::shared_ptr<Pool>& pool) {
  if (!pool->instances.empty() || !pool->queue.empty() || pool->queue_timer_armed) return;
  auto it = pools_.find(pool->key);
  if (it != pools_.end() && it->second == pool) pools_.erase(it);
}

void Scheduler::FailFrontLocked(const std::shared_ptr<Pool>& pool, InvokeResult&& result,
                                std::vector<std::pair<std::shared_ptr<Invocation>, InvokeResult>>& to_fail) {
  if (pool->queue.empty()) return;
  auto inv = std::move(pool->queue.front());
  pool->queue.pop_front();
  inv->queued = false;
  to_fail.emplace_back(std::move(inv), std::move(result));
}

void Scheduler::Invoke(const catalog::ConfigPtr& fn, InvokeRequest req, Completion done) {
  auto inv = std::make_shared<Invocation>();
  inv->req = std::move(req);
  inv->done = std::move(done);
  inv->fn = fn;

  Lock lock(mu_);
  if (shutting_down_) {
    lock.unlock();
    Finish(inv, {Outcome::kShutdown, runtimeapi::ErrorJson("ServiceException", "nimbus is shutting down"),
                 "ServiceException"});
    return;
  }
  auto pool = PoolForLocked(fn);
  if (!pool->idle.empty()) {
    // Warm path: the most recently parked instance on the caller's own loop (no cross-thread
    // hop), else the most recently parked one (its caches are the warmest).
    auto pick = pool->idle.end() - 1;
    if (asio::io_context* here = http::LoopGroup::Current(); here && &(*pick)->loop != here) {
      for (auto it = pool->idle.rbegin(); it != pool->idle.rend(); ++it) {
        if (&(*it)->loop == here) {
          pick = std::next(it).base();
          break;
        }
      }
    }
    Instance* raw = *pick;
    pool->idle.erase(pick);
    raw->state = State::kBusy;
    raw->current = inv;
    raw->idle_gen++;
    http::ConnectionPtr conn = std::move(raw->parked);
    std::shared_ptr<Instance> inst = raw->shared_from_this();
    lock.unlock();
    asio::io_context& loop = inst->loop;  // read before `inst` moves into the closure
    asio::post(loop, [this, inst = std::move(inst), conn = std::move(conn), inv = std::move(inv)]() mutable {
      Dispatch(inst, std::move(conn), std::move(inv));
    });
    return;
  }
  const size_t max = static_cast<size_t>(fn->manifest.concurrency.max);
  if (pool->queue.size() >= max * options_.queue_per_slot) {
    lock.unlock();
    Finish(inv, {Outcome::kThrottled,
                 runtimeapi::ErrorJson("TooManyRequestsException",
                                       "function '" + fn->name + "' has " + std::to_string(max) +
                                           " busy instances (concurrency.max) and its queue is full; retry later "
                                           "or raise concurrency.max in function.yaml"),
                 "TooManyRequestsException"});
    return;
  }
  // A queued request waits at most the function's timeout for an instance, then gets a 429.
  // Every entry of a pool has the same timeout, so the queue is ordered by deadline and one
  // timer per pool, armed for the front, serves them all.
  inv->queue_deadline = Clock::now() + std::chrono::seconds(fn->manifest.timeout_s);
  pool->queue.push_back(inv);
  inv->queued = true;
  asio::steady_timer* arm = nullptr;
  if (!pool->queue_timer_armed) {
    pool->queue_timer_armed = true;
    if (!pool->queue_timer) {
      auto& timer = queue_timers_[pool->key];
      if (!timer) {
        asio::io_context* here = http::LoopGroup::Current();
        timer = std::make_unique<asio::steady_timer>(here ? *here : loops_.next());
      }
      pool->queue_timer = timer.get();
    }
    arm = pool->queue_timer;
  }
  std::vector<std::shared_ptr<Instance>> to_launch;
  MaybeStartForQueueLocked(pool, to_launch);
  lock.unlock();

  for (auto& inst : to_launch) asio::post(inst->loop, [this, inst] { Launch(inst); });
  if (arm) asio::post(arm->get_executor(), [this, pool, arm] { ArmQueueTimer(pool, arm); });
}

void Scheduler::ArmQueueTimer(const std::shared_ptr<Pool>& pool, asio::steady_timer* timer) {
  std::vector<std::shared_ptr<Invocation>> expired;
  Clock::time_point next{};
  {
    Lock lock(mu_);
    const auto now = Clock::now();
    while (!pool->queue.empty() && pool->queue.front()->queue_deadline <= now) {
      auto inv = std::move(pool->queue.front());
      pool->queue.pop_front();
      inv->queued = false;
      expired.push_back(std::move(inv));
    }
    if (pool->queue.empty()) {
      pool->queue_timer_armed = false;
      ErasePoolIfUnusedLocked(pool);
    } else {
      next = pool->queue.front()->queue_deadline;
    }
  }
  if (next != Clock::time_point{}) {
    timer->expires_at(next);
    timer->async_wait([this, pool, timer](const boost::system::error_code& ec) {
      if (!ec) ArmQueueTimer(pool, timer);
    });
  }
  for (auto& inv : expired) {
    Finish(inv, {Outcome::kThrottled,
                 runtimeapi::ErrorJson("TooManyRequestsException",
                                       "no instance of '" + inv->fn->name + "' became free within " +
                                           std::to_string(inv->fn->manifest.timeout_s) +
                                           " s (concurrency.max is " +
                                           std::to_string(inv->fn->manifest.concurrency.max) +
                                           "); retry later or raise concurrency.max in function.yaml"),
                 "TooManyRequestsException"});
  }
}

void Scheduler::Finish(const std::shared_ptr<Invocation>& inv, InvokeResult&& result) {
  if (inv->completed.exchange(true)) return;
  result.version = inv->fn->version;
  if (inv->req.want_log_tail) {
    std::string_view log = inv->log;
    if (log.size() > kLogTailBytes) log = log.substr(log.size() - kLogTailBytes);
    result.log_tail = std::string(log);
  }
  auto done = std::move(inv->done);
  done(std::move(result));
}

void Scheduler::Launch(const std::shared_ptr<Instance>& inst) {
  const catalog::FunctionConfig& fn = *inst->pool->fn;
  auto fail = [&](const std::string& why) {
    std::vector<std::pair<std::shared_ptr<Invocation>, InvokeResult>> to_fail;
    std::vector<std::shared_ptr<Instance>> to_launch;
    {
      Lock lock(mu_);
      RemoveInstanceLocked(inst.get());
      FailFrontLocked(inst->pool,
                      {Outcome::kStartFailed, runtimeapi::ErrorJson("Runtime.StartError", why), "Runtime.StartError"},
                      to_fail);
      // The rest of the queue gets its own attempt (and its own StartError), not a late 429.
      MaybeStartForQueueLocked(inst->pool, to_launch);
    }
    for (auto& i : to_launch) asio::post(i->loop, [this, i] { Launch(i); });
    inst->EmitLine(LogStream::kPlatform, "nimbus: could not start an instance: " + why);
    for (auto& [i, r] : to_fail) Finish(i, std::move(r));
    inst->Cleanup();
  };

  inst->api = std::make_unique<http::Listener>(runtimeapi::MakeHandler(inst->weak_from_this()),
                                               http::ServerOptions{16 << 20, std::chrono::seconds(0)});
  Status st = inst->api->Listen(inst->loop, {asio::ip::make_address_v4("127.0.0.1"), 0});
  if (!st.ok()) return fail(st.message());

  sandbox::LaunchSpec spec;
  const auto& m = fn.manifest;
  if (m.runtime == "provided") {
    spec.executable = (fn.code_dir / "bootstrap").string();
  } else {
    spec.executable = options_.runtimes_dir + "/" + m.runtime + "/bootstrap";
  }
  spec.argv = {spec.executable};
  spec.cwd = fn.code_dir.string();
  spec.memory_bytes = static_cast<uint64_t>(m.memory_mb) << 20;
  spec.pids_max = 1024;
  std::string api_addr = "127.0.0.1:" + std::to_string(inst->api->port());
  spec.env = {
      "AWS_LAMBDA_RUNTIME_API=" + api_addr,
      "_HANDLER=" + m.handler,
      "LAMBDA_TASK_ROOT=" + spec.cwd,
      "LAMBDA_RUNTIME_DIR=" + (m.runtime == "provided" ? spec.cwd : options_.runtimes_dir + "/" + m.runtime),
      "AWS_LAMBDA_FUNCTION_NAME=" + fn.name,
      "AWS_LAMBDA_FUNCTION_VERSION=" + fn.version,
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(m.memory_mb),
      "AWS_LAMBDA_FUNCTION_TIMEOUT=" + std::to_string(m.timeout_s),
      "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + fn.name,
      "AWS_LAMBDA_LOG_STREAM_NAME=" + fn.version + "/instance-" + std::to_string(inst->id),
      "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
      "AWS_REGION=local",
      "AWS_DEFAULT_REGION=local",
      "AWS_EXECUTION_ENV=AWS_Lambda_" + m.runtime,
      "TZ=:UTC",
      "LANG=C.UTF-8",
      "PATH=" + options_.path_env,
      "HOME=" + options_.tmp_root,
      "TMPDIR=" + options_.tmp_root,
      "PYTHONUNBUFFERED=1",
  };
  for (const auto& [k, v] : m.environment) spec.env.push_back(k + "=" + v);

  auto proc = launcher_.Launch(spec);
  // Forking the next stem costs about a millisecond: queue it behind what this launch started
  // (the instance's first /next lands on this loop too, usually after it).
  asio::post(inst->loop, [this] { launcher_.Replenish(); });
  if (!proc.ok()) return fail(proc.status().message());
  inst->proc = std::move(proc).value();
  inst->launched_at = Clock::now();

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

void Scheduler::Dispatch(const std::shared_ptr<Instance>& inst, http::ConnectionPtr conn,
                         std::shared_ptr<Invocation> inv) {
  const auto& m = inst->pool->fn->manifest;
  inv->start = Clock::now();
  inv->deadline_ms = EpochMs() + static_cast<int64_t>(m.timeout_s) * 1000;
  if (!inst->dispatched_once) {
    inst->dispatched_once = true;
    inv->cold = true;
    inv->init_ms = inst->init_ms;
  }
  inst->log_inv = inv;
  inst->EmitLine(LogStream::kPlatform,
                 "START RequestId: " + inv->req.request_id + " Version: " + inst->pool->fn->version);

  std::string trace_id = "Root=1-" + inv->req.request_id.substr(0, 8) + "-" + inv->req.request_id;
  runtimeapi::NextEvent ev{inv->req.request_id, inv->deadline_ms,
                           inv->req.invoked_arn.empty() ? std::string_view(inst->pool->fn->arn)
                                                        : std::string_view(inv->req.invoked_arn),
                           trace_id, inv->req.client_context, inv->req.cognito_identity};
  conn->Reply(runtimeapi::NextResponse(11, ev, std::move(inv->req.payload)));

  inst->deadline_timer.expires_after(std::chrono::seconds(m.timeout_s));
  inst->deadline_timer.async_wait([inst, inv](const boost::system::error_code& ec) {
    if (!ec) inst->OnDeadline(inv);
  });
}

void Scheduler::KeepWarm(const catalog::ConfigPtr& fn) {
  if (fn->manifest.concurrency.min_warm <= 0) return;
  std::vector<std::shared_ptr<Instance>> to_launch;
  {
    Lock lock(mu_);
    MaybeStartForQueueLocked(PoolForLocked(fn), to_launch);
  }
  for (auto& inst : to_launch) asio::post(inst->loop, [this, inst] { Launch(inst); });
}

void Scheduler::RetireVersions(const std::string& function, const std::vector<std::string>& keep) {
  std::vector<std::shared_ptr<Instance>> to_kill;
  {
    Lock lock(mu_);
    for (auto& [key, pool] : pools_) {
      if (pool->fn->name != function) continue;
      if (std::find(keep.begin(), keep.end(), pool->fn->version) != keep.end()) continue;
      pool->retired = true;
      for (Instance* i : pool->idle) {
        i->state = State::kDead;
        to_kill.push_back(i->shared_from_this());
      }
      pool->idle.clear();
    }
    for (auto& i : to_kill) RemoveInstanceLocked(i.get());
  }
  for (auto& i : to_kill) {
    asio::post(i->loop, [i] {
      if (i->proc) i->proc->Kill();
    });
  }
}

namespace {
void AddCounts(const Pool& pool, Counts& c) {
  for (const auto& i : pool.instances) {
    switch (i->state) {
      case State::kStarting: c.starting++; break;
      case State::kIdle: c.idle++; break;
      case State::kBusy:
      case State::kFinishing: c.busy++; break;
      case State::kDead: break;
    }
  }
  c.queued += pool.queue.size();
}
}  // namespace

Counts Scheduler::CountsFor(const std::string& function) const {
  Counts c;
  Lock lock(mu_);
  for (const auto& [key, pool] : pools_) {
    if (pool->fn->name == function) AddCounts(*pool, c);
  }
  return c;
}

std::unordered_map<std::string, Counts> Scheduler::AllCounts() const {
  std::unordered_map<std::string, Counts> out;
  Lock lock(mu_);
  for (const auto& [key, pool] : pools_) AddCounts(*pool, out[pool->fn->name]);
  return out;
}

size_t Scheduler::LiveInstances() const {
  Lock lock(mu_);
  size_t n = 0;
  for (const auto& [key, pool] : pools_) n += pool->instances.size();
  return n;
}

void Scheduler::Shutdown() {
  std::vector<std::shared_ptr<Invocation>> queued;
  std::vector<std::shared_ptr<Instance>> instances;
  {
    Lock lock(mu_);
    shutting_down_ = true;
    for (auto& [key, pool] : pools_) {
      for (auto& inv : pool->queue) queued.push_back(inv);
      pool->queue.clear();
      for (auto& i : pool->instances) instances.push_back(i);
    }
  }
  for (auto& inv : queued) {
    Finish(inv, {Outcome::kShutdown, runtimeapi::ErrorJson("ServiceException", "nimbus is shutting down"),
                 "ServiceException"});
  }
  // Called after the loops stopped: no loop touches these processes any more. Destroying a
  // Process kills its group, reaps it and removes its cgroup.
  for (auto& i : instances) {
    i->proc.reset();
    i->Cleanup();
  }
  // Pool::instances and Instance::pool point at each other: break the cycle.
  Lock lock(mu_);
  for (auto& [key, pool] : pools_) {
    pool->instances.clear();
    pool->idle.clear();
  }
  pools_.clear();
  // Timers go while their io_contexts still exist; handlers left queued there hold no timer.
  for (auto& [key, timer] : queue_timers_) timer->cancel();
  queue_timers_.clear();
}

// ---- Instance (all on its loop) -----------------------------------------------------------------

void Instance::OnNext(const http::ConnectionPtr& conn, http::Request&&) {
  std::shared_ptr<Invocation> inv, stale;
  bool stop = false;
  uint64_t gen = 0;
  {
    Scheduler::Lock lock(sched->mu_);
    if (state == State::kDead) return;
    if (state == State::kStarting) init_ms = MsSince(launched_at);
    stale = std::move(current);  // asked for more work without answering the last
    if (!pool->queue.empty()) {
      inv = std::move(pool->queue.front());
      pool->queue.pop_front();
      inv->queued = false;
      state = State::kBusy;
      current = inv;
    } else if (pool->retired || sched->shutting_down_) {
      sched->RemoveInstanceLocked(this);
      stop = true;
    } else {
      state = State::kIdle;
      parked = conn;
      pool->idle.push_back(this);
      gen = ++idle_gen;
    }
  }
  if (stale) {
    deadline_timer.cancel();
    EndInvocation(stale);
    sched->Finish(stale, {Outcome::kFunctionError,
                          runtimeapi::ErrorJson("Runtime.InvalidStateTransition",
                                                "the runtime asked for the next event without answering this one"),
                          "Runtime.InvalidStateTransition"});
  }
  if (inv) {
    sched->Dispatch(shared_from_this(), conn, std::move(inv));
    return;
  }
  if (stop) {
    if (proc) proc->Kill();
    return;
  }
  idle_timer.expires_after(std::chrono::seconds(pool->fn->manifest.keep_alive_s));
  idle_timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
    if (!ec) self->OnIdleExpired(gen);
  });
}

void Instance::OnIdleExpired(uint64_t gen) {
  {
    Scheduler::Lock lock(sched->mu_);
    if (state != State::kIdle || idle_gen != gen) return;
    if (pool->instances.size() <= static_cast<size_t>(pool->fn->manifest.concurrency.min_warm) && !pool->retired) {
      // min_warm keeps this one; look again after another keep-alive period.
      idle_timer.expires_after(std::chrono::seconds(pool->fn->manifest.keep_alive_s));
      idle_timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
        if (!ec) self->OnIdleExpired(gen);
      });
      return;
    }
    parked.reset();
    sched->RemoveInstanceLocked(this);
  }
  EmitLine(LogStream::kPlatform, "nimbus: instance " + std::to_string(id) + " stopped after " +
                                     std::to_string(pool->fn->manifest.keep_alive_s) + " s idle (keep_alive)");
  if (proc) proc->Kill();
}

std::shared_ptr<Invocation> Instance::TakeCurrent(const http::ConnectionPtr& conn, const http::Request& req,
                                                 std::string_view rid) {
  std::shared_ptr<Invocation> inv;
  {
    Scheduler::Lock lock(sched->mu_);
    if (current && current->req.request_id == rid) {
      inv = std::move(current);
      state = State::kFinishing;
    }
  }
  if (!inv) {
    conn->Reply(runtimeapi::ErrorResponse(req, http::bhttp::status::bad_request, "InvalidRequestID",
                                          "Invalid request ID"));
    return nullptr;
  }
  deadline_timer.cancel();
  return inv;
}

void Instance::OnResponse(const http::ConnectionPtr& conn, http::Request&& req, std::string_view rid) {
  auto inv = TakeCurrent(conn, req, rid);
  if (!inv) return;
  if (req.body().size() > runtimeapi::kMaxResponseBytes) {
    std::string msg = "Response payload size (" + std::to_string(req.body().size()) +
                      " bytes) exceeded maximum allowed payload size (" +
                      std::to_string(runtimeapi::kMaxResponseBytes) + " bytes).";
    EmitLine(LogStream::kPlatform, msg);
    EndInvocation(inv);
    sched->Finish(inv, {Outcome::kFunctionError, runtimeapi::ErrorJson("Function.ResponseSizeTooLarge", msg),
                        "Function.ResponseSizeTooLarge"});
    conn->Reply(runtimeapi::ErrorResponse(req, http::bhttp::status::payload_too_large, "RequestEntityTooLarge",
                                          msg));
    return;
  }
  DrainPipes();
  EndInvocation(inv);
  sched->Finish(inv, {Outcome::kSuccess, std::move(req.body()), {}});
  conn->Reply(runtimeapi::Accepted(req));
}

void Instance::OnError(const http::ConnectionPtr& conn, http::Request&& req, std::string_view rid) {
  auto inv = TakeCurrent(conn, req, rid);
  if (!inv) return;
  std::string type = ErrorTypeOf(req.body(), req["Lambda-Runtime-Function-Error-Type"]);
  std::string body = std::move(req.body());
  if (body.empty()) body = runtimeapi::ErrorJson(type, "the function failed without a message");
  DrainPipes();
  EmitLine(LogStream::kPlatform, body);
  EndInvocation(inv);
  sched->Finish(inv, {Outcome::kFunctionError, std::move(body), std::move(type)});
  conn->Reply(runtimeapi::Accepted(req));
}

void Instance::OnInitError(const http::ConnectionPtr& conn, http::Request&& req) {
  std::string type = ErrorTypeOf(req.body(), req["Lambda-Runtime-Function-Error-Type"]);
  std::string body = std::move(req.body());
  if (body.empty()) body = runtimeapi::ErrorJson(type, "the runtime failed to initialise");
  DrainPipes();
  EmitLine(LogStream::kPlatform, "INIT_REPORT Init Duration: " + Fixed2(MsSince(launched_at)) +
                                     " ms\tPhase: init\tStatus: error\tError Type: " + type);
  EmitLine(LogStream::kPlatform, body);
  std::vector<std::pair<std::shared_ptr<Invocation>, InvokeResult>> to_fail;
  {
    Scheduler::Lock lock(sched->mu_);
    if (state == State::kDead) return;
    sched->RemoveInstanceLocked(this);
    sched->FailFrontLocked(pool, {Outcome::kFunctionError, body, type}, to_fail);
  }
  for (auto& [i, r] : to_fail) sched->Finish(i, std::move(r));
  conn->Reply(runtimeapi::Accepted(req));
  if (proc) proc->Kill();
}

void Instance::OnDeadline(const std::shared_ptr<Invocation>& inv) {
  {
    Scheduler::Lock lock(sched->mu_);
    if (current != inv) return;
    current.reset();
    sched->RemoveInstanceLocked(this);
  }
  if (proc) proc->Kill();
  DrainPipes();
  std::string msg = "Task timed out after " + Fixed2(pool->fn->manifest.timeout_s) + " seconds";
  EmitLine(LogStream::kPlatform, inv->req.request_id + " " + msg);
  EndInvocation(inv);
  sched->Finish(inv, {Outcome::kTimeout, runtimeapi::ErrorJson("Sandbox.Timedout", msg), "Sandbox.Timedout"});
  // The process exit (OnExit) finishes the clean-up and starts replacements for queued work.
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
  std::shared_ptr<Invocation> inv;
  std::vector<std::pair<std::shared_ptr<Invocation>, InvokeResult>> to_fail;
  std::vector<std::shared_ptr<Instance>> to_launch;
  std::string tail = stderr_tail.empty() ? "" : "; last output: " + stderr_tail;
  {
    Scheduler::Lock lock(sched->mu_);
    State was = state;
    inv = std::move(current);
    if (was != State::kDead) {
      sched->RemoveInstanceLocked(this);
      if (!inv && was == State::kStarting) {
        sched->FailFrontLocked(
            pool,
            {Outcome::kCrash,
             runtimeapi::ErrorJson("Runtime.ExitError", "Runtime exited before it was ready: " + how + tail),
             "Runtime.ExitError"},
            to_fail);
      }
    }
    parked.reset();
    sched->MaybeStartForQueueLocked(pool, to_launch);
  }
  if (inv) {
    deadline_timer.cancel();
    std::string type = oom ? "Runtime.OutOfMemory" : "Runtime.ExitError";
    std::string msg = oom ? "Runtime exited: the function used more than its " +
                                std::to_string(pool->fn->manifest.memory_mb) + " MB (memory in function.yaml)"
                          : "RequestId: " + inv->req.request_id + " Error: Runtime exited with error: " + how;
    EmitLine(LogStream::kPlatform, msg);
    EndInvocation(inv);
    sched->Finish(inv, {oom ? Outcome::kOutOfMemory : Outcome::kCrash, runtimeapi::ErrorJson(type, msg), type});
  }
  for (auto& [i, r] : to_fail) sched->Finish(i, std::move(r));
  for (auto& i : to_launch) asio::post(i->loop, [s = sched, i] { s->Launch(i); });
  Cleanup();
}

void Instance::Cleanup() {
  if (cleaned_up) return;
  cleaned_up = true;
  boost::system::error_code ec;
  deadline_timer.cancel();
  idle_timer.cancel();
  if (api) api->Close();
  if (exit_watch) exit_watch->close(ec);
  if (out) out->close(ec);
  if (err) err->close(ec);
  log_inv.reset();
  proc.reset();
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
  // attributed to that invocation and logged before its END line.
  for (bool is_err : {false, true}) {
    auto& s = is_err ? err : out;
    if (!s || !s->is_open()) continue;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(s->native_handle(), buf, sizeof buf);
      if (n <= 0) break;
      Consume(is_err, buf, static_cast<size_t>(n));
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
  if (log_inv && log_inv->req.want_log_tail) {
    log_inv->log += text;
    log_inv->log.push_back('\n');
    if (log_inv->log.size() > 4 * kLogTailBytes) log_inv->log.erase(0, log_inv->log.size() - kLogTailBytes);
  }
  sched->logs_.Append(fn_name(), {EpochMs(), log_inv ? log_inv->req.request_id : std::string(), stream,
                                  std::move(text)});
}

void Instance::EndInvocation(const std::shared_ptr<Invocation>& inv) {
  double ms = MsSince(inv->start);
  const auto& m = pool->fn->manifest;
  uint64_t peak = proc ? proc->PeakMemoryBytes() : 0;
  log_inv = inv;
  EmitLine(LogStream::kPlatform, "END RequestId: " + inv->req.request_id);
  std::string report = "REPORT RequestId: " + inv->req.request_id + "\tDuration: " + Fixed2(ms) +
                       " ms\tBilled Duration: " + std::to_string(BilledMs(ms)) +
                       " ms\tMemory Size: " + std::to_string(m.memory_mb) +
                       " MB\tMax Memory Used: " + std::to_string((peak + (1 << 20) - 1) >> 20) + " MB";
  if (inv->cold) report += "\tInit Duration: " + Fixed2(inv->init_ms) + " ms";
  EmitLine(LogStream::kPlatform, std::move(report));
  log_inv.reset();
}

}  // namespace nimbus::scheduler
