// The Lambda Runtime API (2018-06-01) as nimbus serves it to one instance. This file is the
// protocol boundary: it turns a runtime's calls into calls on a RuntimeApiSink and answers them
// through a RuntimePeer, byte-compatible over HTTP (paths, status codes, headers and error bodies
// as AWS's Runtime API and its emulator send them). The same calls also arrive on the runtime
// channel (channel.h). It knows nothing about scheduling.
//
// Threading: the HTTP handler runs on the loop that owns the instance's listener; sinks are
// called there and answer through the peer on that loop (an HTTP peer may also answer from any
// thread: Connection::Reply is thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http/server.h"

namespace nimbus::runtimeapi {

// Largest response or error body a function may post (Lambda's synchronous limit).
inline constexpr size_t kMaxResponseBytes = 6 * 1024 * 1024;

struct NextEvent {
  std::string_view request_id;
  int64_t deadline_ms = 0;  // epoch milliseconds
  std::string_view function_arn;
  std::string_view trace_id;
  std::string_view client_context;    // omitted when empty
  std::string_view cognito_identity;  // omitted when empty
};

// One runtime call's way back to the runtime: an HTTP Runtime API request (on its connection),
// or the instance's runtime channel (docs/runtime-channel.md). The sink answers every call
// through it, whichever transport the call came on.
//
// Threading: used on the loop that owns the transport (the instance's loop).
class RuntimePeer {
 public:
  virtual ~RuntimePeer() = default;
  // The transport is gone: nothing sent now reaches the runtime.
  virtual bool closed() const = 0;
  // Called once, on the loop, when the transport closes. One callback; a later call replaces it.
  virtual void OnClose(std::function<void()> fn) = 0;
  // The answer to a next call: the event.
  virtual void SendEvent(const NextEvent& ev, std::string body) = 0;
  // The answer to a response, error or init error that was taken (HTTP: 202; the channel sends
  // nothing).
  virtual void Accept() = 0;
  // Refuses the call with Lambda's error answer. `close`: the transport closes after it (a
  // parked next answered long after it was asked).
  virtual void Refuse(http::bhttp::status status, std::string_view error_type, std::string_view message,
                      bool close = false) = 0;
};
using PeerPtr = std::shared_ptr<RuntimePeer>;

class RuntimeApiSink {
 public:
  virtual ~RuntimeApiSink() = default;
  // next (GET /runtime/invocation/next): answer with SendEvent when an event is available.
  virtual void OnNext(const PeerPtr& peer) = 0;
  // The response of invocation `id`.
  virtual void OnResponse(const PeerPtr& peer, std::string_view id, std::string&& body) = 0;
  // The error of invocation `id`; `error_type` is Lambda-Runtime-Function-Error-Type, may be empty.
  virtual void OnError(const PeerPtr& peer, std::string_view id, std::string&& body, std::string_view error_type) = 0;
  // An init error, before the first next.
  virtual void OnInitError(const PeerPtr& peer, std::string&& body, std::string_view error_type) = 0;
};

// Routes HTTP Runtime API requests to `sink` (held weakly: a stopped instance answers 410).
http::Handler MakeHandler(std::weak_ptr<RuntimeApiSink> sink);

// 200 with the event as body and Lambda's Lambda-Runtime-* headers.
http::Response NextResponse(unsigned version, const NextEvent& ev, std::string body);
// Lambda's error answers: 400 InvalidRequestID, 413 RequestEntityTooLarge, 403 InvalidStateTransition, ...
http::Response ErrorResponse(const http::Request& req, http::bhttp::status status, std::string_view error_type,
                             std::string_view message);

// {"errorMessage": ..., "errorType": ...} with JSON escaping; used for platform-made errors.
std::string ErrorJson(std::string_view error_type, std::string_view message);

}  // namespace nimbus::runtimeapi
