#include "queue/delivery.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <boost/json.hpp>

#include "common/iso_time.h"
#include "common/request_id.h"
#include "runtimeapi/runtime_api.h"

namespace nimbus::queue {
namespace {

using scheduler::InvokeResult;
using scheduler::Outcome;
using State = EventView::State;

constexpr int64_t kMaxRetryDelayMs = 15 * 60 * 1000;
constexpr int64_t kKeyExpiryEveryMs = 60 * 1000;
constexpr int kDeadLetterLinesPerSecond = 10;

class RealClock final : public Clock {
 public:
  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

double JitterUnit() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// The payload as JSON when it is JSON, else as a string.
boost::json::value AsJson(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return boost::json::value(text);
  return v;
}

// "Sandbox.Timedout: Task timed out after 3.00 seconds", from the runtime's error document.
std::string ErrorText(const InvokeResult& r) {
  std::string message;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.as_object().if_contains("errorMessage"); m && m->is_string()) message = m->as_string();
  }
  std::string type = r.error_type.empty() ? "Unhandled" : r.error_type;
  if (message.size() > 512) message = message.substr(0, 512) + "...";
  return message.empty() ? type : type + ": " + message;
}

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

int AsyncConcurrency(int concurrency_max) {
  if (concurrency_max <= 1) return 1;
  return concurrency_max - std::max(1, (concurrency_max + 4) / 5);
}

int64_t RetryDelayMs(int64_t base_ms, int attempt, double unit) {
  double delay = static_cast<double>(base_ms) * std::pow(2.0, std::max(0, attempt - 1));
  delay *= 0.8 + 0.4 * unit;
  return std::min<int64_t>(kMaxRetryDelayMs, static_cast<int64_t>(delay));
}

std::string DestinationRecord(const Event& e, const std::string& condition, const InvokeResult* r,
                              const std::string& function_arn, int64_t now_ms, size_t limit) {
  boost::json::object request_context{
      {"requestId", e.request_id},
      {"functionArn", function_arn + ":" + (e.qualifier.empty() ? "$LATEST" : e.qualifier)},
      {"condition", condition},
      {"approximateInvokeCount", e.attempts + (condition == "Success" ? 1 : 0)},
  };
  boost::json::object record{
      {"version", "1.0"},
      {"timestamp", IsoTimeMs(now_ms)},
      {"requestContext", std::move(request_context)},
      {"requestPayload", AsJson(e.payload)},
  };
  if (r != nullptr) {
    boost::json::object response_context{{"statusCode", 200}, {"executedVersion", r->version}};
    if (r->outcome != Outcome::kSuccess) response_context["functionError"] = "Unhandled";
    record["responseContext"] = std::move(response_context);
    record["responsePayload"] = r->body.empty() ? boost::json::value(nullptr) : AsJson(r->body);
  }
  std::string text = boost::json::serialize(record);
  // A record is an event like any other: over the limit, the payloads give way, the response
  // first (the request is in the dead-letter store or with the caller anyway).
  for (const char* field : {"responsePayload", "requestPayload"}) {
    if (text.size() <= limit || !record.contains(field)) continue;
    const size_t size = field == std::string_view("responsePayload") ? r->body.size() : e.payload.size();
    record[field] = "(" + std::to_string(size) + " bytes left out: the destination record would exceed " +
                    std::to_string(limit) + " bytes)";
    text = boost::json::serialize(record);
  }
  return text;
}

Delivery::Delivery(EventQueue& queue, Journal& journal, catalog::Catalog& catalog, InvokeFn invoke,
                   DeliveryOptions options, Clock& clock)
    : queue_(queue),
      journal_(journal),
      catalog_(catalog),
      invoke_(std::move(invoke)),
      options_(options),
      clock_(clock) {}

Delivery::~Delivery() { Stop(); }

Status Delivery::Recover() {
  auto pending = queue_.LoadPending();
  if (!pending.ok()) return pending.status();
  auto dead = queue_.DeadLetterCounts();
  if (!dead.ok()) return dead.status();
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  for (auto& [fn, n] : *dead) fns_[fn].dead = n;
  for (Event& e : *pending) {
    FnState& fs = fns_[e.function];
    fs.events++;  // InsertLocked takes over this reservation
    fs.bytes += e.payload_size;
    reserved_events_++;
    pending_bytes_ += static_cast<size_t>(e.payload_size);
    InsertLocked(std::move(e), now);
  }
  WakeLocked();
  return Status::Ok();
}

void Delivery::Start() {
  MutexLock lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Delivery::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    wake_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Delivery::WakeLocked() {
  dirty_ = true;
  wake_.NotifyOne();
}

Status Delivery::ReserveLocked(const std::string& function, size_t bytes) {
  FnState& fs = fns_[function];
  const size_t events = events_.size() + reserved_events_;
  if (events >= options_.max_pending_events) {
    return Status::TooManyRequests("nimbus holds " + std::to_string(events) +
                                   " pending asynchronous events, its limit; retry once the backlog drains");
  }
  if (pending_bytes_ + bytes > options_.max_pending_bytes) {
    return Status::TooManyRequests("the pending asynchronous events hold " + std::to_string(pending_bytes_) +
                                   " bytes of payloads, nimbus's limit of " + std::to_string(options_.max_pending_bytes) +
                                   "; retry once the backlog drains");
  }
  if (fs.events >= static_cast<int64_t>(options_.max_pending_events / 2) ||
      fs.bytes + static_cast<int64_t>(bytes) > static_cast<int64_t>(options_.max_pending_bytes / 2)) {
    return Status::TooManyRequests("'" + function + "' holds " + std::to_string(fs.events) + " pending events (" +
                                   std::to_string(fs.bytes) +
                                   " bytes), half of nimbus's asynchronous backlog, the most one function may "
                                   "take; retry once it drains");
  }
  fs.events++;
  fs.bytes += static_cast<int64_t>(bytes);
  reserved_events_++;
  pending_bytes_ += bytes;
  return Status::Ok();
}

void Delivery::UnreserveLocked(const std::string& function, size_t bytes) {
  FnState& fs = fns_[function];
  fs.events--;
  fs.bytes -= static_cast<int64_t>(bytes);
  reserved_events_--;
  pending_bytes_ -= std::min(pending_bytes_, bytes);
}

void Delivery::InsertLocked(Event e, int64_t now) {
  const int64_t id = e.id;
  FnState& fs = fns_[e.function];
  reserved_events_--;  // the reservation is now this event
  Pending p;
  p.in_memory = !e.payload.empty() || e.payload_size == 0;
  if (p.in_memory && memory_bytes_ + e.payload.size() > options_.memory_payload_budget) {
    p.in_memory = false;  // durable already: read back when it runs
    e.payload = std::string();
  }
  if (p.in_memory) memory_bytes_ += e.payload.size();
  if (e.visible_at_ms > now) {
    p.state = State::kRetrying;
    fs.retrying++;
    delayed_.emplace(e.visible_at_ms, id);
  } else {
    p.state = State::kQueued;
    fs.ready.push_back(id);
    runnable_.insert(e.function);
  }
  p.event = std::move(e);
  events_[id] = std::move(p);
}

void Delivery::EraseLocked(int64_t id) {
  auto it = events_.find(id);
  if (it == events_.end()) return;
  const Pending& p = it->second;
  const size_t bytes = static_cast<size_t>(p.event.payload_size);
  FnState& fs = fns_[p.event.function];
  fs.events--;
  fs.bytes -= static_cast<int64_t>(bytes);
  pending_bytes_ -= std::min(pending_bytes_, bytes);
  if (p.in_memory) memory_bytes_ -= std::min(memory_bytes_, p.event.payload.size());
  events_.erase(it);
}

void Delivery::Accept(Event e, std::string idempotency_key, AcceptDone done, std::optional<int64_t> schedule_fired_ms) {
  const bool external = e.source == "invoke" || e.source == "http";
  if (external && e.payload.size() > options_.max_payload) {
    // Lambda's words for the same refusal.
    done(Status::TooLarge(std::to_string(e.payload.size()) + " byte payload is too large for the Event invocation type (limit " +
                          std::to_string(options_.max_payload) + " bytes)"));
    return;
  }
  const int64_t now = clock_.NowMs();
  const size_t bytes = e.payload.size();
  e.payload_size = static_cast<int64_t>(bytes);
  const std::string function = e.function;
  {
    MutexLock lock(mu_);
    Status room = ReserveLocked(function, bytes);
    if (!room.ok()) {
      lock.Unlock();
      done(room);
      return;
    }
  }
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kEnqueue;
  e.id = 0;
  e.enqueued_ms = now;
  e.visible_at_ms = 0;
  e.attempts = 0;
  op->event = std::move(e);
  op->idempotency_key = std::move(idempotency_key);
  op->before_ms = now - options_.idempotency_window_ms;
  op->schedule_fired_ms = schedule_fired_ms;
  auto refused = std::make_shared<AcceptDone>(std::move(done));
  bool queued = journal_.Submit(std::move(op), [this, bytes, refused](Status st, Op& op) {
    AcceptDone& done = *refused;
    Accepted a;
    {
      MutexLock lock(mu_);
      if (st.ok() && op.duplicate) stats_.duplicates++;
      if (st.ok() && !op.duplicate) {
        stats_.accepted++;
        a.id = op.event.id;
        a.request_id = op.event.request_id;
        InsertLocked(std::move(op.event), 0);
        WakeLocked();
      } else {
        UnreserveLocked(op.event.function, bytes);
      }
    }
    if (!st.ok()) return done(st);
    if (op.duplicate) {
      a.duplicate = true;
      a.request_id = op.event.request_id;
    }
    done(std::move(a));
  });
  if (!queued) {
    {
      MutexLock lock(mu_);
      UnreserveLocked(function, bytes);
    }
    (*refused)(Status::Unavailable("nimbus is shutting down; send the event again once it is back"));
  }
}

FunctionCounts Delivery::Counts(const std::string& function) const {
  MutexLock lock(mu_);
  FunctionCounts c;
  auto it = fns_.find(function);
  if (it == fns_.end()) return c;
  c.queued = static_cast<int64_t>(it->second.ready.size());
  c.retrying = it->second.retrying;
  c.in_flight = it->second.in_flight;
  c.dead = it->second.dead;
  return c;
}

std::map<std::string, FunctionCounts> Delivery::AllCounts() const {
  MutexLock lock(mu_);
  std::map<std::string, FunctionCounts> out;
  for (const auto& [fn, fs] : fns_) {
    out[fn] = {static_cast<int64_t>(fs.ready.size()), fs.retrying, fs.in_flight, fs.dead};
  }
  return out;
}

DeliveryStats Delivery::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

std::vector<EventView> Delivery::List(const std::string& function, size_t limit) const {
  MutexLock lock(mu_);
  std::vector<EventView> out;
  for (const auto& [id, p] : events_) {
    if (out.size() >= limit) break;
    if (p.event.function != function) continue;
    EventView v;
    v.event = p.event;
    v.event.payload.clear();
    v.state = p.state;
    out.push_back(std::move(v));
  }
  return out;
}

void Delivery::Replay(const std::string& function, std::vector<int64_t> ids,
                      std::function<void(Result<ReplayResult>)> done) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kReplay;
  op->function = function;
  op->ids = std::move(ids);
  op->now_ms = clock_.NowMs();
  auto cb = std::make_shared<std::function<void(Result<ReplayResult>)>>(std::move(done));
  bool queued = journal_.Submit(std::move(op), [this, cb](Status st, Op& op) {
    auto& done = *cb;
    if (!st.ok()) return done(st);
    ReplayResult r;
    r.replayed = static_cast<int64_t>(op.replayed.size());
    r.missing = op.missing;
    {
      MutexLock lock(mu_);
      FnState& fs = fns_[op.function];
      fs.dead = std::max<int64_t>(0, fs.dead - r.replayed);
      for (Event& e : op.replayed) {
        // Replayed events come back without asking for room: they were accepted once already.
        fs.events++;
        fs.bytes += e.payload_size;
        reserved_events_++;
        pending_bytes_ += static_cast<size_t>(e.payload_size);
        InsertLocked(std::move(e), 0);
      }
      WakeLocked();
    }
    done(std::move(r));
  });
  if (!queued) (*cb)(Status::Unavailable("nimbus is shutting down"));
}

void Delivery::Purge(const std::string& function, std::function<void(Result<int64_t>)> done) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kDelete;
  bool queued = true;
  std::function<void(Result<int64_t>)> refused;
  {
    MutexLock lock(mu_);
    auto fit = fns_.find(function);
    if (fit != fns_.end()) {
      for (int64_t id : fit->second.ready) op->ids.push_back(id);
      fit->second.ready.clear();
      runnable_.erase(function);
      for (auto it = delayed_.begin(); it != delayed_.end();) {
        auto e = events_.find(it->second);
        if (e != events_.end() && e->second.event.function == function) {
          op->ids.push_back(it->second);
          it = delayed_.erase(it);
        } else {
          ++it;
        }
      }
      fit->second.retrying = 0;
      for (int64_t id : op->ids) EraseLocked(id);
    }
    // Submitted under the lock: a completion of one of these events cannot be journaled
    // before it (it is no longer in memory, so none will be).
    auto cb = std::make_shared<std::function<void(Result<int64_t>)>>(std::move(done));
    queued = journal_.Submit(std::move(op), [cb](Status st, Op& op) {
      if (!st.ok()) return (*cb)(st);
      (*cb)(static_cast<int64_t>(op.ids.size()));
    });
    if (!queued) refused = std::move(*cb);
  }
  if (refused) refused(Status::Unavailable("nimbus is shutting down"));
}

void Delivery::PurgeDead(const std::string& function, std::function<void(Result<int64_t>)> done) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kPurgeDead;
  op->function = function;
  auto cb = std::make_shared<std::function<void(Result<int64_t>)>>(std::move(done));
  bool queued = journal_.Submit(std::move(op), [this, cb](Status st, Op& op) {
    if (!st.ok()) return (*cb)(st);
    {
      MutexLock lock(mu_);
      FnState& fs = fns_[op.function];
      fs.dead = std::max<int64_t>(0, fs.dead - op.affected);
    }
    (*cb)(op.affected);
  });
  if (!queued) (*cb)(Status::Unavailable("nimbus is shutting down"));
}

void Delivery::Run() {
  MutexLock lock(mu_);
  while (!stopping_) {
    dirty_ = false;
    std::vector<Dispatch> work = CollectLocked(clock_.NowMs());
    if (!work.empty()) {
      lock.Unlock();
      RunDispatches(work);
      lock.Lock();
      continue;
    }
    if (dirty_ || stopping_) continue;
    if (delayed_.empty()) {
      wake_.WaitFor(mu_, std::chrono::milliseconds(kKeyExpiryEveryMs));
    } else {
      int64_t wait_ms = std::max<int64_t>(1, delayed_.begin()->first - clock_.NowMs());
      wake_.WaitFor(mu_, std::chrono::milliseconds(std::min(wait_ms, kKeyExpiryEveryMs)));
    }
  }
}

void Delivery::PumpOnce() {
  std::vector<Dispatch> work;
  {
    MutexLock lock(mu_);
    work = CollectLocked(clock_.NowMs());
  }
  RunDispatches(work);
}

void Delivery::RunDispatches(std::vector<Dispatch>& work) {
  for (Dispatch& d : work) {
    const int64_t id = d.id;
    catalog::ConfigPtr cfg = d.cfg;
    if (d.load) {
      auto payload = queue_.LoadPayload(id);
      if (!payload.ok()) {
        // Counted as a failed attempt: retried, then dead-lettered with this reason.
        InvokeResult r;
        r.outcome = Outcome::kStartFailed;
        r.error_type = "Nimbus.QueueReadError";
        r.body = runtimeapi::ErrorJson("Nimbus.QueueReadError",
                                       "cannot read the event from the queue: " + payload.status().message());
        OnResult(id, cfg, std::move(r));
        continue;
      }
      d.req.payload = std::move(payload).value();
      // Kept with the event while it runs, so its result (a destination record, a dead
      // letter) never reads the disk on the instance's loop; let go again if it must wait.
      MutexLock lock(mu_);
      if (auto it = events_.find(id); it != events_.end() && !it->second.in_memory) {
        it->second.event.payload = d.req.payload;
        it->second.in_memory = true;
        memory_bytes_ += d.req.payload.size();
      }
    }
    invoke_(d.cfg, std::move(d.req), [this, id, cfg](InvokeResult&& r) { OnResult(id, cfg, std::move(r)); });
  }
}

std::vector<Delivery::Dispatch> Delivery::CollectLocked(int64_t now) {
  if (now >= next_key_expiry_ms_) {
    next_key_expiry_ms_ = now + kKeyExpiryEveryMs;
    auto op = std::make_unique<Op>();
    op->kind = Op::Kind::kExpireKeys;
    op->before_ms = now - options_.idempotency_window_ms;
    (void)journal_.Submit(std::move(op), [](Status, Op&) {});
  }
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    int64_t id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = events_.find(id);
    if (it == events_.end() || it->second.state != State::kRetrying) continue;
    it->second.state = State::kQueued;
    FnState& fs = fns_[it->second.event.function];
    fs.retrying--;
    fs.ready.push_back(id);
    runnable_.insert(it->second.event.function);
  }

  std::vector<Dispatch> out;
  catalog::SnapshotPtr snap = catalog_.Get();
  for (auto fit = runnable_.begin(); fit != runnable_.end();) {
    const std::string& fn = *fit;
    FnState& fs = fns_[fn];
    while (!fs.ready.empty()) {
      auto it = events_.find(fs.ready.front());
      if (it == events_.end()) {
        fs.ready.pop_front();
        continue;
      }
      Pending& p = it->second;
      auto cfg = snap->Resolve(fn, p.event.qualifier);
      if (!cfg.ok()) {
        fs.ready.pop_front();
        p.event.last_error = "ResourceNotFoundException: " + cfg.status().message();
        DeadLetterLocked(p, "FunctionNotFound", RecordLocked(p, "FunctionNotFound", nullptr, catalog::FunctionArn(fn), now),
                         now);
        continue;
      }
      const manifest::AsyncConfig& async = (*cfg)->manifest.async;
      if (now - p.event.enqueued_ms > int64_t{async.max_event_age_s} * 1000) {
        fs.ready.pop_front();
        FailForGoodLocked(p, "EventAgeExceeded", nullptr, *cfg, now);
        continue;
      }
      if (fs.in_flight >= AsyncConcurrency((*cfg)->manifest.concurrency.max)) break;
      fs.ready.pop_front();
      fs.in_flight++;
      p.state = State::kInFlight;
      Dispatch d;
      d.cfg = *cfg;
      d.id = p.event.id;
      d.req.request_id = p.event.request_id;
      if (p.in_memory) {
        d.req.payload = p.event.payload;
      } else {
        d.load = true;
      }
      d.req.invoked_arn = (*cfg)->arn;
      if (!p.event.qualifier.empty()) d.req.invoked_arn += ":" + p.event.qualifier;
      out.push_back(std::move(d));
    }
    if (fs.ready.empty()) {
      fit = runnable_.erase(fit);
    } else {
      ++fit;
    }
  }
  return out;
}

void Delivery::OnResult(int64_t id, const catalog::ConfigPtr& cfg, InvokeResult&& r) {
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  auto it = events_.find(id);
  if (it == events_.end()) return;
  Pending& p = it->second;
  FnState& fs = fns_[p.event.function];
  fs.in_flight--;
  runnable_.insert(p.event.function);  // a slot is free
  WakeLocked();

  if (r.outcome == Outcome::kShutdown) {
    // Interrupted, not failed: it stays pending in the journal and runs again after the
    // restart; until then it waits at the front.
    p.state = State::kQueued;
    fs.ready.push_front(id);
    return;
  }
  if (r.outcome == Outcome::kSuccess) {
    stats_.succeeded++;
    std::optional<Event> next;
    const std::string& to = cfg->manifest.async.on_success;
    if (!to.empty()) {
      std::string record = RecordLocked(p, "Success", &r, cfg->arn, now);
      auto dest = DestinationEventLocked(p, to, record);
      if (!dest.ok()) {
        p.event.last_error = dest.status().message();
        p.event.attempts++;
        DeadLetterLocked(p, dest.status().code() == Code::kNotFound ? "DestinationNotFound" : "RecursionLimit",
                         std::move(record), now);
        return;
      }
      next = std::move(dest).value();
    }
    CompleteLocked(id, std::move(next));
    return;
  }
  stats_.failed++;
  p.event.attempts++;
  p.event.last_error = ErrorText(r);
  const manifest::AsyncConfig& async = cfg->manifest.async;
  const bool too_old = now - p.event.enqueued_ms > int64_t{async.max_event_age_s} * 1000;
  if (p.event.attempts > async.retries || too_old) {
    FailForGoodLocked(p, too_old ? "EventAgeExceeded" : "RetriesExhausted", &r, cfg, now);
    return;
  }
  p.state = State::kRetrying;
  if (p.in_memory && memory_bytes_ > options_.memory_payload_budget) {
    memory_bytes_ -= std::min(memory_bytes_, p.event.payload.size());
    p.event.payload = std::string();  // durable: read back for the next attempt
    p.in_memory = false;
  }
  p.event.visible_at_ms = now + RetryDelayMs(options_.retry_base_ms, p.event.attempts, JitterUnit());
  fs.retrying++;
  delayed_.emplace(p.event.visible_at_ms, id);
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kRetry;
  op->id = id;
  op->event.attempts = p.event.attempts;
  op->event.visible_at_ms = p.event.visible_at_ms;
  op->event.last_error = p.event.last_error;
  (void)journal_.Submit(std::move(op), [](Status, Op&) {});
}

Result<Event> Delivery::DestinationEventLocked(const Pending& p, const std::string& to, std::string record) {
  if (p.event.depth + 1 > options_.max_depth) {
    return Status::FailedPrecondition("destination chain deeper than " + std::to_string(options_.max_depth) +
                                      " hops; not delivered to '" + to + "'");
  }
  if (!catalog_.Get()->Resolve(to, "").ok()) {
    return Status::NotFound("destination function '" + to + "' does not exist");
  }
  Event e;
  e.request_id = NewRequestId();
  e.function = to;
  e.payload = std::move(record);
  e.source = "destination";
  e.depth = p.event.depth + 1;
  e.enqueued_ms = clock_.NowMs();
  return e;
}

void Delivery::FailForGoodLocked(Pending& p, const std::string& condition, const InvokeResult* r,
                                 const catalog::ConfigPtr& cfg, int64_t now) {
  std::string record = RecordLocked(p, condition, r, cfg->arn, now);
  if (condition == "EventAgeExceeded" && p.event.last_error.empty()) {
    p.event.last_error = "EventAgeExceeded: older than async.max_event_age (" +
                         std::to_string(cfg->manifest.async.max_event_age_s) + " s)";
  }
  const std::string& to = cfg->manifest.async.on_failure;
  if (to.empty() || to == "dlq") {
    DeadLetterLocked(p, condition, std::move(record), now);
    return;
  }
  auto dest = DestinationEventLocked(p, to, record);
  if (!dest.ok()) {
    p.event.last_error += "; " + dest.status().message();
    DeadLetterLocked(p, dest.status().code() == Code::kNotFound ? "DestinationNotFound" : "RecursionLimit",
                     std::move(record), now);
    return;
  }
  CompleteLocked(p.event.id, std::move(dest).value());
}

std::string Delivery::RecordLocked(const Pending& p, const std::string& condition, const InvokeResult* r,
                                   const std::string& function_arn, int64_t now) {
  if (p.in_memory) return DestinationRecord(p.event, condition, r, function_arn, now, options_.max_payload);
  // The payload was left on disk: read it back. Only for an event that did not run (expired,
  // function gone, payload unreadable), on the delivery thread: a dispatched event keeps its
  // payload while it runs, so no instance loop ever waits here for the disk.
  Event e = p.event;
  auto payload = queue_.LoadPayload(e.id);
  e.payload = payload.ok() ? std::move(payload).value() : std::string("(payload unreadable: ") + payload.status().message() + ")";
  return DestinationRecord(e, condition, r, function_arn, now, options_.max_payload);
}

void Delivery::CompleteLocked(int64_t id, std::optional<Event> next) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kComplete;
  op->id = id;
  if (next) {
    op->next_event = true;
    op->event = std::move(*next);
    op->event.payload_size = static_cast<int64_t>(op->event.payload.size());
    // A destination record takes room without asking: refusing it would lose the outcome.
    FnState& fs = fns_[op->event.function];
    fs.events++;
    fs.bytes += op->event.payload_size;
    reserved_events_++;
    pending_bytes_ += op->event.payload.size();
  }
  EraseLocked(id);
  const size_t bytes = op->event.payload.size();
  const bool has_next = op->next_event;
  const std::string to = op->event.function;
  bool queued = journal_.Submit(std::move(op), [this, bytes](Status st, Op& op) {
    if (!op.next_event) return;
    MutexLock lock(mu_);
    if (!st.ok()) {  // the original stays pending in the journal: it runs again after a restart
      UnreserveLocked(op.event.function, bytes);
      return;
    }
    InsertLocked(std::move(op.event), 0);
    WakeLocked();
  });
  if (!queued && has_next) UnreserveLocked(to, bytes);  // shutting down: the original stays pending
}

void Delivery::DeadLetterLocked(Pending& p, const std::string& condition, std::string record, int64_t now) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kDeadLetter;
  op->dead_letter.event = p.event;
  op->dead_letter.dead_at_ms = now;
  op->dead_letter.condition = condition;
  op->dead_letter.record = std::move(record);
  fns_[p.event.function].dead++;
  stats_.dead_lettered++;
  // One line per dead letter, at most kDeadLetterLinesPerSecond a second; the rest are counted.
  const int64_t second = now / 1000;
  if (second != log_second_) {
    if (unlogged_dead_ > 0) {
      std::fprintf(stderr, "nimbus: %lld more events dead-lettered without a line of their own (`nimbus events dlq`)\n",
                   static_cast<long long>(unlogged_dead_));
    }
    log_second_ = second;
    logged_this_second_ = 0;
    unlogged_dead_ = 0;
  }
  if (logged_this_second_ < kDeadLetterLinesPerSecond) {
    logged_this_second_++;
    std::fprintf(stderr, "nimbus: event %s of '%s' dead-lettered (%s after %d attempt%s: %s)\n",
                 p.event.request_id.c_str(), p.event.function.c_str(), condition.c_str(), p.event.attempts,
                 p.event.attempts == 1 ? "" : "s", p.event.last_error.c_str());
  } else {
    unlogged_dead_++;
  }
  EraseLocked(p.event.id);  // p is gone from here on
  (void)journal_.Submit(std::move(op), [](Status, Op&) {});
}

}  // namespace nimbus::queue
