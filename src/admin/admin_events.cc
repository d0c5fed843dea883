// The admin API's asynchronous-invocation calls (/v1/functions/NAME/events...): list pending
// events, read dead letters, replay and purge. docs/api.md documents them.
#include <boost/json.hpp>
#include <future>

#include "admin/admin_api.h"
#include "common/iso_time.h"
#include "gateway/api_error.h"
#include "http/query.h"

namespace nimbus::admin {

namespace json = boost::json;
namespace bhttp = http::bhttp;

namespace {

http::Response Json(const http::Request& req, bhttp::status status, const json::value& v) {
  return http::MakeResponse(req, status, json::serialize(v));
}

const char* StateName(queue::EventView::State s) {
  switch (s) {
    case queue::EventView::State::kQueued: return "queued";
    case queue::EventView::State::kRetrying: return "retrying";
    case queue::EventView::State::kInFlight: return "in_flight";
  }
  return "queued";
}

// The result of a Delivery call that answers through a callback, waited for here (the
// admin API's blocking pool; the journal answers within one commit).
template <typename T, typename Call>
Result<T> Wait(Call call) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  call([p](Result<T> r) { p->set_value(std::move(r)); });
  return f.get();
}

}  // namespace

json::object AdminApi::EventCounts(const std::string& name) const {
  if (delivery_ == nullptr) return {};
  queue::FunctionCounts c = delivery_->Counts(name);
  return json::object{{"queued", c.queued}, {"retrying", c.retrying}, {"in_flight", c.in_flight}, {"dead_letters", c.dead}};
}

http::Response AdminApi::Events(http::Request& req, const std::string& name, const std::vector<std::string>& parts) {
  if (delivery_ == nullptr || queue_ == nullptr) {
    return gateway::ApiError(req, bhttp::status::service_unavailable, "ServiceException", "the event queue is not running");
  }
  const auto method = req.method();
  const bool known = catalog_.Get()->functions.count(name) > 0;
  size_t limit = 100;
  if (std::string l = http::QueryParam(req.target(), "limit"); !l.empty()) {
    char* end = nullptr;
    unsigned long long v = strtoull(l.c_str(), &end, 10);
    if (*end || v == 0 || v > 10000) {
      return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                            "limit must be a whole number from 1 to 10000");
    }
    limit = static_cast<size_t>(v);
  }
  const queue::FunctionCounts counts = delivery_->Counts(name);
  const bool has_any = counts.queued + counts.retrying + counts.in_flight + counts.dead > 0;
  if (!known && !has_any) return gateway::ApiError(req, catalog_.Get()->Resolve(name, "").status());

  if (parts.size() == 4 && method == bhttp::verb::get) {
    json::array events;
    for (const queue::EventView& v : delivery_->List(name, limit)) {
      json::object o{{"id", v.event.id},
                     {"request_id", v.event.request_id},
                     {"state", StateName(v.state)},
                     {"attempts", v.event.attempts},
                     {"enqueued", IsoTimeMs(v.event.enqueued_ms)},
                     {"source", v.event.source}};
      if (v.state == queue::EventView::State::kRetrying) o["next_attempt"] = IsoTimeMs(v.event.visible_at_ms);
      if (!v.event.last_error.empty()) o["last_error"] = v.event.last_error;
      events.push_back(std::move(o));
    }
    return Json(req, bhttp::status::ok,
                json::object{{"function", name},
                             {"queued", counts.queued},
                             {"retrying", counts.retrying},
                             {"in_flight", counts.in_flight},
                             {"dead_letters", counts.dead},
                             {"events", std::move(events)}});
  }
  if (parts.size() == 4 && method == bhttp::verb::delete_) {
    auto n = Wait<int64_t>([&](auto done) { delivery_->Purge(name, std::move(done)); });
    if (!n.ok()) return gateway::ApiError(req, n.status());
    return Json(req, bhttp::status::ok, json::object{{"purged", *n}});
  }
  if (parts.size() == 5 && parts[4] == "dlq" && method == bhttp::verb::get) {
    auto dead = queue_->DeadLetters(name, limit);
    if (!dead.ok()) return gateway::ApiError(req, dead.status());
    json::array list;
    for (const queue::DeadLetter& d : *dead) {
      boost::system::error_code ec;
      json::value record = json::parse(d.record, ec);
      json::object o{{"id", d.event.id},
                     {"request_id", d.event.request_id},
                     {"condition", d.condition},
                     {"attempts", d.event.attempts},
                     {"enqueued", IsoTimeMs(d.event.enqueued_ms)},
                     {"dead_at", IsoTimeMs(d.dead_at_ms)},
                     {"payload", d.event.payload},
                     {"record", ec ? json::value(d.record) : std::move(record)}};
      if (!d.event.last_error.empty()) o["error"] = d.event.last_error;
      list.push_back(std::move(o));
    }
    return Json(req, bhttp::status::ok,
                json::object{{"function", name}, {"total", counts.dead}, {"dead_letters", std::move(list)}});
  }
  if (parts.size() == 5 && parts[4] == "dlq" && method == bhttp::verb::delete_) {
    auto n = Wait<int64_t>([&](auto done) { delivery_->PurgeDead(name, std::move(done)); });
    if (!n.ok()) return gateway::ApiError(req, n.status());
    return Json(req, bhttp::status::ok, json::object{{"purged", *n}});
  }
  if (parts.size() == 5 && parts[4] == "replay" && method == bhttp::verb::post) {
    if (!known) {
      return gateway::ApiError(req, bhttp::status::not_found, "ResourceNotFoundException",
                            "function '" + name +
                                "' does not exist, so its dead letters would only die again (FunctionNotFound); "
                                "deploy it before replaying them");
    }
    const char* usage = "send {\"ids\": [ID, ...]} or {\"all\": true}";
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec || !body.is_object()) {
      return gateway::ApiError(req, bhttp::status::bad_request, "InvalidRequestContentException",
                            std::string("the body is not a JSON object; ") + usage);
    }
    const json::object& o = body.as_object();
    const bool all = o.contains("all") && o.at("all").is_bool() && o.at("all").as_bool();
    std::vector<int64_t> ids;
    if (const json::value* v = o.if_contains("ids")) {
      if (!v->is_array()) {
        return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                              std::string("ids must be an array of event ids; ") + usage);
      }
      for (const json::value& id : v->as_array()) {
        if (!id.is_int64() || id.as_int64() <= 0) {
          return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                                "ids must be positive whole numbers (the ids `nimbus events dlq` lists)");
        }
        ids.push_back(id.as_int64());
      }
    }
    if (all == !ids.empty()) {
      return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                            std::string("name the dead letters to replay: ") + usage);
    }
    auto r = Wait<queue::ReplayResult>([&](auto done) { delivery_->Replay(name, std::move(ids), std::move(done)); });
    if (!r.ok()) return gateway::ApiError(req, r.status());
    json::array missing;
    for (int64_t id : r->missing) missing.push_back(id);
    return Json(req, bhttp::status::ok, json::object{{"replayed", r->replayed}, {"missing", std::move(missing)}});
  }
  return gateway::ApiError(req, bhttp::status::not_found, "ResourceNotFoundException",
                        "unknown admin API call " + std::string(req.method_string()) + " " + std::string(req.target()) +
                            "; see docs/api.md");
}

}  // namespace nimbus::admin
