#include "runtimeapi/runtime_api.h"

#include "common/json_text.h"

namespace nimbus::runtimeapi {
namespace {

constexpr std::string_view kPrefix = "/2018-06-01/runtime/";

http::Response JsonResponse(http::bhttp::status status, unsigned version, bool keep_alive, std::string body) {
  http::Response res{status, version};
  res.keep_alive(keep_alive);
  res.set(http::bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

// One HTTP Runtime API request: its answer goes on its connection, with its HTTP version and
// keep-alive.
class HttpPeer final : public RuntimePeer {
 public:
  HttpPeer(http::ConnectionPtr conn, const http::Request& req)
      : conn_(std::move(conn)), version_(req.version()), keep_alive_(req.keep_alive()) {}

  bool closed() const override { return conn_->closed(); }
  void OnClose(std::function<void()> fn) override { conn_->OnClose(std::move(fn)); }
  void SendEvent(const NextEvent& ev, std::string body) override {
    conn_->Reply(NextResponse(version_, ev, std::move(body)));
  }
  void Accept() override {
    conn_->Reply(JsonResponse(http::bhttp::status::accepted, version_, keep_alive_, R"({"status":"OK"})"));
  }
  void Refuse(http::bhttp::status status, std::string_view error_type, std::string_view message,
              bool close) override {
    conn_->Reply(JsonResponse(status, version_, keep_alive_ && !close, ErrorJson(error_type, message)));
  }

 private:
  const http::ConnectionPtr conn_;
  const unsigned version_;
  const bool keep_alive_;
};

void Route(const std::weak_ptr<RuntimeApiSink>& weak, const http::ConnectionPtr& conn, http::Request&& req) {
  auto sink = weak.lock();
  if (!sink) {
    conn->Reply(ErrorResponse(req, http::bhttp::status::gone, "InstanceStopped", "this instance has been stopped"));
    return;
  }
  std::string_view target = req.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (target.substr(0, kPrefix.size()) != kPrefix) {
    conn->Reply(ErrorResponse(req, http::bhttp::status::not_found, "NotFound", "unknown Runtime API path"));
    return;
  }
  std::string_view rest = target.substr(kPrefix.size());
  const auto method = req.method();
  if (rest == "invocation/next") {
    if (method != http::bhttp::verb::get) {
      conn->Reply(ErrorResponse(req, http::bhttp::status::method_not_allowed, "MethodNotAllowed", "use GET"));
      return;
    }
    sink->OnNext(std::make_shared<HttpPeer>(conn, req));
    return;
  }
  if (rest == "init/error") {
    if (method != http::bhttp::verb::post) {
      conn->Reply(ErrorResponse(req, http::bhttp::status::method_not_allowed, "MethodNotAllowed", "use POST"));
      return;
    }
    std::string type(req["Lambda-Runtime-Function-Error-Type"]);
    sink->OnInitError(std::make_shared<HttpPeer>(conn, req), std::move(req.body()), type);
    return;
  }
  constexpr std::string_view kInv = "invocation/";
  if (rest.substr(0, kInv.size()) == kInv && method == http::bhttp::verb::post) {
    std::string_view tail = rest.substr(kInv.size());
    auto slash = tail.find('/');
    if (slash != std::string_view::npos && slash > 0) {
      std::string id(tail.substr(0, slash));
      std::string_view what = tail.substr(slash + 1);
      if (what == "response") {
        sink->OnResponse(std::make_shared<HttpPeer>(conn, req), id, std::move(req.body()));
        return;
      }
      if (what == "error") {
        std::string type(req["Lambda-Runtime-Function-Error-Type"]);
        sink->OnError(std::make_shared<HttpPeer>(conn, req), id, std::move(req.body()), type);
        return;
      }
    }
  }
  conn->Reply(ErrorResponse(req, http::bhttp::status::not_found, "NotFound", "unknown Runtime API path"));
}

}  // namespace

http::Handler MakeHandler(std::weak_ptr<RuntimeApiSink> sink) {
  return [sink = std::move(sink)](const http::ConnectionPtr& conn, http::Request&& req) {
    Route(sink, conn, std::move(req));
  };
}

http::Response NextResponse(unsigned version, const NextEvent& ev, std::string body) {
  http::Response res{http::bhttp::status::ok, version};
  res.set(http::bhttp::field::content_type, "application/json");
  res.set("Lambda-Runtime-Aws-Request-Id", ev.request_id);
  res.set("Lambda-Runtime-Deadline-Ms", std::to_string(ev.deadline_ms));
  res.set("Lambda-Runtime-Invoked-Function-Arn", ev.function_arn);
  res.set("Lambda-Runtime-Trace-Id", ev.trace_id);
  if (!ev.client_context.empty()) res.set("Lambda-Runtime-Client-Context", ev.client_context);
  if (!ev.cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", ev.cognito_identity);
  res.body() = std::move(body);
  return res;
}

std::string ErrorJson(std::string_view error_type, std::string_view message) {
  std::string out = "{\"errorMessage\":";
  AppendJsonString(out, message);
  out += ",\"errorType\":";
  AppendJsonString(out, error_type);
  out += "}";
  return out;
}

http::Response ErrorResponse(const http::Request& req, http::bhttp::status status, std::string_view error_type,
                             std::string_view message) {
  return JsonResponse(status, req.version(), req.keep_alive(), ErrorJson(error_type, message));
}

}  // namespace nimbus::runtimeapi
