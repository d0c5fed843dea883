// The Lambda Runtime API (2018-06-01) as nimbus serves it to one instance. This file is the
// protocol boundary: it parses the instance's requests into calls on a RuntimeApiSink and builds
// byte-compatible answers (paths, status codes, headers and error bodies as AWS's Runtime API
// and its emulator send them). It knows nothing about scheduling.
//
// Threading: the handler runs on the loop that owns the instance's listener; sinks are called
// there, and may answer later from any thread through Connection::Reply.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "http/server.h"

namespace nimbus::runtimeapi {

// Largest response or error body a function may post (Lambda's synchronous limit).
inline constexpr size_t kMaxResponseBytes = 6 * 1024 * 1024;

class RuntimeApiSink {
 public:
  virtual ~RuntimeApiSink() = default;
  // GET /runtime/invocation/next: answer with NextResponse() when an event is available.
  virtual void OnNext(const http::ConnectionPtr& conn, http::Request&& req) = 0;
  // POST /runtime/invocation/{id}/response
  virtual void OnResponse(const http::ConnectionPtr& conn, http::Request&& req, std::string_view id) = 0;
  // POST /runtime/invocation/{id}/error; error_type from Lambda-Runtime-Function-Error-Type.
  virtual void OnError(const http::ConnectionPtr& conn, http::Request&& req, std::string_view id) = 0;
  // POST /runtime/init/error
  virtual void OnInitError(const http::ConnectionPtr& conn, http::Request&& req) = 0;
};

// Routes Runtime API requests to `sink` (held weakly: a stopped instance answers 410).
http::Handler MakeHandler(std::weak_ptr<RuntimeApiSink> sink);

struct NextEvent {
  std::string_view request_id;
  int64_t deadline_ms = 0;  // epoch milliseconds
  std::string_view function_arn;
  std::string_view trace_id;
  std::string_view client_context;    // omitted when empty
  std::string_view cognito_identity;  // omitted when empty
};
// 200 with the event as body and Lambda's Lambda-Runtime-* headers.
http::Response NextResponse(unsigned version, const NextEvent& ev, std::string body);
// 202 {"status":"OK"}
http::Response Accepted(const http::Request& req);
// Lambda's error answers: 400 InvalidRequestID, 413 RequestEntityTooLarge, 403 InvalidStateTransition, ...
http::Response ErrorResponse(const http::Request& req, http::bhttp::status status, std::string_view error_type,
                             std::string_view message);
// The same for a connection whose request is no longer at hand (a /next parked earlier); the
// connection closes after it.
http::Response ErrorResponse(http::bhttp::status status, std::string_view error_type, std::string_view message);

// {"errorMessage": ..., "errorType": ...} with JSON escaping; used for platform-made errors.
std::string ErrorJson(std::string_view error_type, std::string_view message);

}  // namespace nimbus::runtimeapi
