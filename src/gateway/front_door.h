// The front door: the one handler behind nimbus's public listener. It routes by path to the
// admin API (/v1), the Lambda Invoke API (/2015-03-31), /metrics, the HTTP trigger (/fn/NAME and
// manifest routes), turns HTTP requests into invocations and invocation results back into HTTP.
//
// Asynchronous invocations (Invoke with X-Amz-Invocation-Type: Event, routes marked `async`) go
// to the Delivery engine and are answered 202 only once the event is durable.
//
// It depends on the scheduler only through scheduler::Invoker (the daemon passes the Scheduler;
// front_door_test.cc passes a scripted fake).
//
// A synchronous invocation is one scheduler::RequestContext, made here when the request has been
// read and checked: the context's subclass (front_door.cc) holds the connection, the HTTP
// version and keep-alive, and turns the result into the answer when the scheduler finishes it.
//
// Threading: Handle() runs on the loop of the connection; it reads the catalog snapshot without
// locks and hands work to the invoker or the delivery engine, whose completions reply through
// the connection (from an instance loop, the journal's thread, or at once on the caller's).
#pragma once

#include <functional>
#include <string>

#include "catalog/catalog.h"
#include "http/server.h"
#include "queue/delivery.h"
#include "scheduler/invoker.h"

namespace nimbus::gateway {

// Largest request payload for a synchronous invocation (Lambda's limit).
inline constexpr size_t kMaxInvokePayload = 6 * 1024 * 1024;


class FrontDoor {
 public:
  FrontDoor(catalog::Catalog& catalog, scheduler::Invoker& invoker, queue::Delivery& delivery,
            ::nimbus::http::Handler admin, std::function<std::string()> metrics);
  void Handle(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req);

 private:
  using Clock = scheduler::RequestContext::Clock;
  // Each takes the time Handle() received the request; a synchronous invocation's context
  // (scheduler::RequestContext) starts from it.
  void HandleTrigger(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req,
                     Clock::time_point received_at, std::string_view name, std::string_view qualifier,
                     std::string_view route_key, std::vector<std::pair<std::string, std::string>> params,
                     bool async = false);
  void HandleFn(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req, std::string_view path,
                Clock::time_point received_at);
  void HandleInvokeApi(const ::nimbus::http::ConnectionPtr& conn, ::nimbus::http::Request&& req, std::string_view path,
                       Clock::time_point received_at);

  catalog::Catalog& catalog_;
  scheduler::Invoker& invoker_;
  queue::Delivery& delivery_;
  ::nimbus::http::Handler admin_;
  std::function<std::string()> metrics_;
};

}  // namespace nimbus::gateway
