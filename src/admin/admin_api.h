// The admin API (/v1): deploy, list, inspect and delete functions, aliases, and read logs. It
// owns the write path of the catalog: every change goes to the Store first, then a new catalog
// Snapshot is published and the scheduler (through scheduler::Invoker) retires instances of
// versions nothing points at and keeps the versions still pointed at warm.
// Every request must carry the daemon's admin token as "Authorization: Bearer TOKEN"
// (admin_token.h); others get 401 UnauthorizedException before anything else is looked at.
//
// Threading: Handle() runs on a connection's loop and moves every blocking step (unzipping,
// SQLite, filesystem) to the `blocking` pool; replies go back through Connection::Reply.
// Writes are serialised by write_mu_. The token is fixed at construction.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <boost/json/value.hpp>
#include <mutex>
#include <string>

#include "catalog/catalog.h"
#include "http/server.h"
#include "observability/log_store.h"
#include "package/package.h"
#include "queue/delivery.h"
#include "schedule/trigger.h"
#include "scheduler/invoker.h"
#include "store/store.h"

namespace nimbus::admin {

class AdminApi {
 public:
  // `admin_token` is the bearer token every request must present (LoadOrCreateToken); an
  // empty token refuses every request.
  AdminApi(store::Store& store, package::CodeStore& code, catalog::Catalog& catalog, scheduler::Invoker& invoker,
           observability::LogStore& logs, boost::asio::thread_pool& blocking, std::string admin_token);

  // Builds the catalog from the store (at start-up; blocking).
  Status Load();

  void Handle(const http::ConnectionPtr& conn, http::Request&& req);

  // False when the daemon runs with --insecure-no-sandbox: deploys needing the sandbox
  // (`network: none`, `filesystems`) are refused, and documents say the sandbox is off. Set
  // before serving.
  void set_sandboxed(bool on) { sandboxed_ = on; }
  // Directories no `filesystems` entry may contain or be inside (sandbox::CheckShareableHostDir).
  void set_protected_dirs(std::vector<std::string> dirs) { protected_dirs_ = std::move(dirs); }
  // The asynchronous side: events calls, event counts and schedules in documents, and the
  // trigger told of every deploy and delete. Set before serving; without them those calls
  // answer 503.
  void set_async(queue::Delivery* delivery, queue::EventQueue* queue, schedule::Trigger* trigger) {
    delivery_ = delivery;
    queue_ = queue;
    trigger_ = trigger;
  }

 private:
  http::Response Route(http::Request& req);
  http::Response Deploy(http::Request& req, const std::string& name);
  http::Response Delete(http::Request& req, const std::string& name);
  http::Response PutAlias(http::Request& req, const std::string& name, const std::string& alias);
  http::Response DeleteAlias(http::Request& req, const std::string& name, const std::string& alias);
  http::Response Logs(http::Request& req, const std::string& name);
  // /v1/functions/NAME/events[/dlq|/replay] (admin_events.cc). Blocking: on the pool only.
  http::Response Events(http::Request& req, const std::string& name, const std::vector<std::string>& parts);
  boost::json::object EventCounts(const std::string& name) const;
  boost::json::object Document(const catalog::Snapshot& snap, const std::string& name,
                               const scheduler::Counts& counts) const;
  // What a manifest needs of this host: the sandbox for `network: none` and `filesystems`, and
  // each `filesystems` host directory.
  Status CheckHostNeeds(const manifest::Manifest& m) const;
  // Reads one function's versions and aliases from the store into `snap`.
  Status LoadFunction(catalog::Snapshot& snap, const std::string& name);
  void CollectGarbage(const std::string& sha256);
  void Publish(std::shared_ptr<catalog::Snapshot> snap, const std::string& name);

  store::Store& store_;
  package::CodeStore& code_;
  catalog::Catalog& catalog_;
  scheduler::Invoker& invoker_;
  observability::LogStore& logs_;
  boost::asio::thread_pool& blocking_;
  const std::string admin_token_;
  bool sandboxed_ = true;
  std::vector<std::string> protected_dirs_;
  queue::Delivery* delivery_ = nullptr;
  queue::EventQueue* queue_ = nullptr;
  schedule::Trigger* trigger_ = nullptr;
  std::mutex write_mu_;  // one deploy/delete/alias change at a time
};

}  // namespace nimbus::admin
