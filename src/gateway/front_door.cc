#include "gateway/front_door.h"

#include <cstdio>

#include <boost/json.hpp>
#include <chrono>

#include "gateway/apigw_v2.h"
#include "common/idempotency_key.h"
#include "common/iso_time.h"
#include "common/json_check.h"
#include "common/json_text.h"
#include "common/percent.h"
#include "common/request_id.h"
#include "gateway/api_error.h"
#include "http/query.h"

namespace nimbus::gateway {

namespace bhttp = ::nimbus::http::bhttp;
using scheduler::Outcome;

namespace {

::nimbus::http::Response GatewayError(unsigned version, bool keep_alive, bhttp::status status, std::string_view message,
                            std::string_view error_type, std::string_view request_id) {
  ::nimbus::http::Response res{status, version};
  res.keep_alive(keep_alive);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = "{\"message\":";
  AppendJsonString(res.body(), message);
  res.body() += "}";
  if (!error_type.empty()) res.set("x-amzn-ErrorType", error_type);
  if (!request_id.empty()) res.set("apigw-requestid", request_id);
  return res;
}

// "name", "name:qualifier" or a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
void SplitFunctionRef(std::string_view ref, std::string_view& name, std::string_view& qualifier) {
  if (ref.substr(0, 4) == "arn:") {
    auto pos = ref.find(":function:");
    if (pos != std::string_view::npos) ref = ref.substr(pos + 10);
  }
  auto colon = ref.find(':');
  name = ref.substr(0, colon);
  qualifier = colon == std::string_view::npos ? std::string_view() : ref.substr(colon + 1);
}

queue::Event AsyncEvent(const catalog::FunctionConfig& cfg, std::string_view qualifier, std::string request_id,
                        std::string payload, const char* source) {
  queue::Event e;
  e.request_id = std::move(request_id);
  e.function = cfg.name;
  e.qualifier = std::string(qualifier);
  e.payload = std::move(payload);
  e.source = source;
  return e;
}

constexpr std::string_view kBadKey =
    "X-Nimbus-Idempotency-Key wants 1-256 visible ASCII characters (letters, digits, punctuation; no spaces)";

std::string IdempotencyKey(const ::nimbus::http::Request& req) {
  return std::string(req[kIdempotencyKeyHeader]);
}

// A synchronous invocation that came over HTTP: its context holds the client's connection and
// what its answer must repeat (HTTP version, keep-alive), and answers through the connection
// (Connection::Reply, from whichever thread finishes the invocation).
class HttpContext : public scheduler::RequestContext {
 public:
  HttpContext(catalog::ConfigPtr fn, scheduler::InvokeRequest req, Clock::time_point received_at,
              ::nimbus::http::ConnectionPtr conn, unsigned version, bool keep_alive)
      : RequestContext(std::move(fn), std::move(req), received_at),
        conn_(std::move(conn)),
        version_(version),
        keep_alive_(keep_alive) {}

 protected:
  const ::nimbus::http::ConnectionPtr conn_;
  const unsigned version_;
  const bool keep_alive_;
};

// The HTTP trigger: the result read as API Gateway reads payload format 2.0, failures in API
// Gateway's error shape.
class TriggerContext final : public HttpContext {
 public:
  using HttpContext::HttpContext;

 private:
  void Complete(scheduler::InvokeResult&& r) override {
    const std::string& request_id = req.request_id;
    ::nimbus::http::Response res;
    switch (r.outcome) {
      case Outcome::kSuccess: {
        auto mapped = MapResultV2(r.body, version_);
        if (mapped.ok()) {
          res = std::move(mapped).value();
          res.keep_alive(keep_alive_);
          res.set("apigw-requestid", request_id);
        } else {
          res = GatewayError(version_, keep_alive_, bhttp::status::bad_gateway, "Internal Server Error",
                             "Function.MalformedResponse", request_id);
        }
        break;
      }
      case Outcome::kTimeout:
        res = GatewayError(version_, keep_alive_, bhttp::status::gateway_timeout, "Endpoint request timed out",
                           r.error_type, request_id);
        break;
      case Outcome::kThrottled:
        res = GatewayError(version_, keep_alive_, bhttp::status::too_many_requests, "Too Many Requests", r.error_type,
                           request_id);
        break;
      case Outcome::kShutdown:
        res = GatewayError(version_, keep_alive_, bhttp::status::service_unavailable, "Service Unavailable",
                           r.error_type, request_id);
        break;
      default:
        res = GatewayError(version_, keep_alive_, bhttp::status::bad_gateway, "Internal Server Error", r.error_type,
                           request_id);
    }
    conn_->Reply(std::move(res));
  }
};

// The Lambda Invoke API: 200 with the function's response or its error document, as Lambda
// answers; 429 and 503 in Lambda's shapes.
class InvokeApiContext final : public HttpContext {
 public:
  using HttpContext::HttpContext;

 private:
  void Complete(scheduler::InvokeResult&& r) override {
    ::nimbus::http::Response res{bhttp::status::ok, version_};
    res.keep_alive(keep_alive_);
    res.set(bhttp::field::content_type, "application/json");
    res.set("x-amzn-RequestId", req.request_id);
    res.set("X-Amz-Executed-Version", r.version);
    if (std::string_view tail = log_tail(); !tail.empty()) res.set("X-Amz-Log-Result", Base64Encode(tail));
    switch (r.outcome) {
      case Outcome::kSuccess:
        res.body() = std::move(r.body);
        break;
      case Outcome::kThrottled:
        res.result(bhttp::status::too_many_requests);
        res.set("x-amzn-ErrorType", "TooManyRequestsException");
        {
          boost::system::error_code ec;
          auto v = boost::json::parse(r.body, ec);
          std::string msg = "Rate Exceeded.";
          if (!ec && v.is_object() && v.as_object().contains("errorMessage"))
            msg = std::string(v.as_object().at("errorMessage").as_string());
          boost::json::object o{{"Type", "User"},
                                {"message", msg},
                                {"Reason", "ReservedFunctionConcurrentInvocationLimitExceeded"}};
          res.body() = boost::json::serialize(o);
        }
        break;
      case Outcome::kShutdown:
        res.result(bhttp::status::service_unavailable);
        res.set("x-amzn-ErrorType", "ServiceException");
        res.body() = R"({"Type":"Service","message":"nimbus is shutting down; retry"})";
        break;
      default:
        // Function errors, timeouts, crashes: 200 with the error document, as Lambda answers.
        res.set("X-Amz-Function-Error", "Unhandled");
        res.body() = std::move(r.body);
    }
    conn_->Reply(std::move(res));
  }
};

}  // namespace

FrontDoor::FrontDoor(catalog::Catalog& catalog, scheduler::Invoker& invoker, queue::Delivery& delivery,
                     ::nimbus::http::Handler admin, std::function<std::string()> metrics)
    : catalog_(catalog),
      invoker_(invoker),
      delivery_(delivery),
      admin_(std::move(admin)),
      metrics_(std::move(metrics)) {}

void FrontDoor::Handle(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req) {
  // The HTTP core calls this as soon as it has parsed the request: its receive time.
  const Clock::time_point received_at = Clock::now();
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));

  if (path.substr(0, 4) == "/fn/") return HandleFn(conn, std::move(req), path.substr(4), received_at);
  if (path.substr(0, 22) == "/2015-03-31/functions/") {
    return HandleInvokeApi(conn, std::move(req), path.substr(22), received_at);
  }
  if (path == "/v1" || path.substr(0, 4) == "/v1/") return admin_(conn, std::move(req));
  if (path == "/metrics") {
    conn->Reply(::nimbus::http::MakeResponse(req, bhttp::status::ok, metrics_(), "text/plain; version=0.0.4; charset=utf-8"));
    return;
  }

  auto snap = catalog_.Get();
  auto match = snap->routes->Match(req.method_string(), path);
  if (!match) {
    conn->Reply(GatewayError(req.version(), req.keep_alive(), bhttp::status::not_found, "Not Found",
                             "ResourceNotFoundException", {}));
    return;
  }
  // `snap` keeps the route's strings alive through the call.
  HandleTrigger(conn, std::move(req), received_at, match->target->function, {}, match->target->route_key,
                std::move(match->path_params), match->target->async);
}

void FrontDoor::HandleFn(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req,
                         std::string_view rest, Clock::time_point received_at) {
  // /fn/NAME[:QUALIFIER][/PROXY...]
  auto slash = rest.find('/');
  std::string_view ref = rest.substr(0, slash);
  std::string_view name, qualifier;
  SplitFunctionRef(ref, name, qualifier);
  std::vector<std::pair<std::string, std::string>> params;
  std::string route_key;
  if (slash == std::string_view::npos) {
    route_key = "ANY /fn/" + std::string(ref);
  } else {
    route_key = "ANY /fn/" + std::string(ref) + "/{proxy+}";
    params.emplace_back("proxy", ::nimbus::PercentDecode(rest.substr(slash + 1)));
  }
  std::string n(name), q(qualifier);
  HandleTrigger(conn, std::move(req), received_at, n, q, route_key, std::move(params));
}

void FrontDoor::HandleTrigger(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req,
                              Clock::time_point received_at, std::string_view name, std::string_view qualifier,
                              std::string_view route_key, std::vector<std::pair<std::string, std::string>> params,
                              bool async) {
  auto cfg = catalog_.Get()->Resolve(name, qualifier);
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  if (!cfg.ok()) {
    conn->Reply(GatewayError(version, keep_alive, bhttp::status::not_found, "Not Found", "ResourceNotFoundException",
                             {}));
    return;
  }
  if (req.body().size() > kMaxInvokePayload) {
    conn->Reply(GatewayError(version, keep_alive, bhttp::status::payload_too_large, "Request Entity Too Large",
                             "RequestTooLargeException", {}));
    return;
  }
  std::string request_id = NewRequestId();
  EventContext ev;
  ev.route_key = route_key;
  ev.path_params = params.empty() ? nullptr : &params;
  ev.request_id = request_id;
  ev.source_ip = conn->peer_ip();
  ev.now_ms = EpochMs();
  ev.domain_name = req[bhttp::field::host];
  scheduler::InvokeRequest ir;
  ir.payload = BuildEventV2(req, ev);
  if (async) {
    std::string key = IdempotencyKey(req);
    if (!key.empty() && !IsValidIdempotencyKey(key)) {
      conn->Reply(GatewayError(version, keep_alive, bhttp::status::bad_request, kBadKey, "BadRequestException",
                               request_id));
      return;
    }
    auto reply = [conn, version, keep_alive](Result<queue::Accepted> r) {
      if (!r.ok()) {
        const Status& st = r.status();
        auto status = bhttp::status::service_unavailable;
        std::string_view type = "ServiceException";
        if (st.code() == Code::kTooLarge) {
          status = bhttp::status::payload_too_large;
          type = "RequestEntityTooLargeException";
        } else if (st.code() == Code::kTooManyRequests) {
          status = bhttp::status::too_many_requests;
          type = "TooManyRequestsException";
        }
        conn->Reply(GatewayError(version, keep_alive, status, st.message(), type, {}));
        return;
      }
      ::nimbus::http::Response res{bhttp::status::accepted, version};
      res.keep_alive(keep_alive);
      res.set(bhttp::field::content_type, "application/json");
      res.set("apigw-requestid", r->request_id);
      if (r->duplicate) res.set("X-Nimbus-Idempotent-Replay", "true");
      res.body() = "{\"requestId\":\"" + r->request_id + "\"}";
      conn->Reply(std::move(res));
    };
    delivery_.Accept(AsyncEvent(**cfg, qualifier, std::move(request_id), std::move(ir.payload), "http"),
                     std::move(key), std::move(reply));
    return;
  }
  ir.request_id = std::move(request_id);
  invoker_.Invoke(
      std::make_shared<TriggerContext>(std::move(cfg).value(), std::move(ir), received_at, conn, version, keep_alive));
}

void FrontDoor::HandleInvokeApi(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req,
                                std::string_view rest, Clock::time_point received_at) {
  // {name}/invocations
  constexpr std::string_view kSuffix = "/invocations";
  if (rest.size() <= kSuffix.size() || rest.substr(rest.size() - kSuffix.size()) != kSuffix) {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::not_found, "ResourceNotFoundException",
                               "unknown Lambda API path; nimbus serves POST /2015-03-31/functions/{name}/invocations"));
    return;
  }
  if (req.method() != bhttp::verb::post) {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::method_not_allowed, "InvalidRequestContentException",
                               "invoke with POST"));
    return;
  }
  std::string ref = ::nimbus::PercentDecode(rest.substr(0, rest.size() - kSuffix.size()));
  std::string_view name, qualifier;
  SplitFunctionRef(ref, name, qualifier);
  std::string query_qualifier = ::nimbus::http::QueryParam(req.target(), "Qualifier");
  if (!query_qualifier.empty()) qualifier = query_qualifier;

  auto cfg = catalog_.Get()->Resolve(name, qualifier);
  if (!cfg.ok()) {
    conn->Reply(::nimbus::gateway::ApiError(req, cfg.status()));
    return;
  }
  if (req.body().size() > kMaxInvokePayload) {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::payload_too_large, "RequestTooLargeException",
                               "Request must be smaller than 6291456 bytes for the InvokeFunction operation"));
    return;
  }
  std::string_view type = req["X-Amz-Invocation-Type"];
  if (type.empty()) type = "RequestResponse";
  if (type != "RequestResponse" && type != "Event" && type != "DryRun") {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                               "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun"));
    return;
  }
  std::string idempotency_key = IdempotencyKey(req);
  if (!idempotency_key.empty() && type != "Event") {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                                         "X-Nimbus-Idempotency-Key applies to asynchronous invocations only "
                                         "(X-Amz-Invocation-Type: Event)"));
    return;
  }
  if (!idempotency_key.empty() && !IsValidIdempotencyKey(idempotency_key)) {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException", kBadKey));
    return;
  }
  if (req.body().empty()) req.body() = "{}";
  if (std::string why; !IsJson(req.body(), &why)) {
    conn->Reply(::nimbus::gateway::ApiError(req, bhttp::status::bad_request, "InvalidRequestContentException",
                                         "Could not parse request body into json: " + why));
    return;
  }
  const std::string& version_name = (*cfg)->version;
  if (type == "DryRun") {
    ::nimbus::http::Response res{bhttp::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.set("X-Amz-Executed-Version", version_name);
    conn->Reply(std::move(res));
    return;
  }

  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  if (type == "Event") {
    delivery_.Accept(AsyncEvent(**cfg, qualifier, NewRequestId(), std::move(req.body()), "invoke"),
                     std::move(idempotency_key), [conn, version, keep_alive](Result<queue::Accepted> r) {
      if (!r.ok()) {
        // Lambda answers an oversized Event payload with RequestEntityTooLargeException.
        conn->Reply(r.status().code() == Code::kTooLarge
                        ? ::nimbus::gateway::ApiError(version, keep_alive, bhttp::status::payload_too_large,
                                                   "RequestEntityTooLargeException", r.status().message())
                        : ::nimbus::gateway::ApiError(version, keep_alive, r.status()));
        return;
      }
      ::nimbus::http::Response res{bhttp::status::accepted, version};
      res.keep_alive(keep_alive);
      res.set("x-amzn-RequestId", r->request_id);
      if (r->duplicate) res.set("X-Nimbus-Idempotent-Replay", "true");
      conn->Reply(std::move(res));
    });
    return;
  }
  scheduler::InvokeRequest ir;
  ir.request_id = NewRequestId();
  ir.payload = std::move(req.body());
  ir.client_context = std::string(req["X-Amz-Client-Context"]);
  ir.want_log_tail = req["X-Amz-Log-Type"] == "Tail";
  const std::string& arn = (*cfg)->arn;
  ir.invoked_arn.reserve(arn.size() + (qualifier.empty() ? 0 : 1 + qualifier.size()));
  ir.invoked_arn = arn;
  if (!qualifier.empty()) ir.invoked_arn.append(":").append(qualifier);
  invoker_.Invoke(
      std::make_shared<InvokeApiContext>(std::move(cfg).value(), std::move(ir), received_at, conn, version, keep_alive));
}

}  // namespace nimbus::gateway
