#include "admin/admin_api.h"

#include "sandbox/jail.h"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/stat.h>

#include "admin/admin_token.h"
#include "common/function_name.h"
#include "common/iso_time.h"
#include "common/percent.h"
#include "gateway/api_error.h"
#include "http/query.h"
#include "manifest/manifest.h"

namespace nimbus::admin {

namespace json = boost::json;
namespace bhttp = http::bhttp;

namespace {

http::Response Json(const http::Request& req, bhttp::status status, const json::value& v) {
  return http::MakeResponse(req, status, json::serialize(v));
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    parts.push_back(PercentDecode(path.substr(0, slash)));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return parts;
}

Result<std::string> ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

AdminApi::AdminApi(store::Store& store, package::CodeStore& code, catalog::Catalog& catalog,
                   scheduler::Invoker& invoker, observability::LogStore& logs, boost::asio::thread_pool& blocking,
                   std::string admin_token)
    : store_(store), code_(code), catalog_(catalog), invoker_(invoker), logs_(logs), blocking_(blocking),
      admin_token_(std::move(admin_token)) {}

Status AdminApi::LoadFunction(catalog::Snapshot& snap, const std::string& name) {
  auto rec = store_.GetFunction(name);
  if (!rec.ok()) return rec.status();
  auto versions = store_.ListVersions(name);
  if (!versions.ok()) return versions.status();
  auto aliases = store_.ListAliases(name);
  if (!aliases.ok()) return aliases.status();
  catalog::FunctionEntry entry;
  entry.latest = rec->latest_version;
  for (const auto& v : *versions) {
    auto m = manifest::Parse(v.manifest_yaml, name + "/function.yaml (version " + v.version + ")");
    if (!m.ok()) return m.status();
    auto cfg = std::make_shared<catalog::FunctionConfig>();
    cfg->name = name;
    cfg->version = v.version;
    cfg->code_sha256 = v.code_sha256;
    cfg->code_dir = code_.DirFor(v.code_sha256);
    std::error_code ec;
    cfg->code_size = std::filesystem::file_size(code_.ZipFor(v.code_sha256), ec);
    if (ec) cfg->code_size = 0;
    cfg->manifest = std::move(m).value();
    cfg->arn = catalog::FunctionArn(name);
    cfg->last_modified_ms = v.created_ms;
    entry.versions[v.version] = std::move(cfg);
  }
  for (const auto& a : *aliases) entry.aliases[a.name] = a.version;
  snap.functions[name] = std::move(entry);
  return Status::Ok();
}

Status AdminApi::Load() {
  auto snap = std::make_shared<catalog::Snapshot>();
  auto fns = store_.ListFunctions();
  if (!fns.ok()) return fns.status();
  for (const auto& f : *fns) NIMBUS_RETURN_IF_ERROR(LoadFunction(*snap, f.name));
  NIMBUS_RETURN_IF_ERROR(catalog::RebuildRoutes(*snap));
  catalog_.Set(snap);
  for (const auto& [name, entry] : snap->functions) {
    invoker_.KeepWarm(entry.versions.at(entry.latest));
  }
  return Status::Ok();
}

void AdminApi::Handle(const http::ConnectionPtr& conn, http::Request&& req) {
  // Authentication first: an unauthenticated request learns nothing, not even which calls exist.
  if (AuthCheck check = CheckAuthorization(req[bhttp::field::authorization], admin_token_); check != AuthCheck::kOk) {
    http::Response res =
        gateway::ApiError(req, bhttp::status::unauthorized, "UnauthorizedException", UnauthorizedMessage(check));
    res.set(bhttp::field::www_authenticate,
            check == AuthCheck::kWrong ? "Bearer realm=\"nimbus\", error=\"invalid_token\"" : "Bearer realm=\"nimbus\"");
    conn->Reply(std::move(res));
    return;
  }
  // Reads of the catalog snapshot are cheap and stay on the loop; writes and the event calls
  // (the journal, the dead-letter store) go to the blocking pool.
  const bool events_call = std::string_view(req.target()).find("/events") != std::string_view::npos;
  if ((req.method() == bhttp::verb::get || req.method() == bhttp::verb::head) && !events_call) {
    conn->Reply(Route(req));
    return;
  }
  boost::asio::post(blocking_, [this, conn, req = std::move(req)]() mutable { conn->Reply(Route(req)); });
}

http::Response AdminApi::Route(http::Request& req) {
  std::string_view target = req.target();
  auto parts = SplitPath(target.substr(0, target.find('?')));
  // parts[0] == "v1"
  const auto method = req.method();
  if (parts.size() >= 2 && parts[1] == "functions") {
    if (parts.size() == 2 && method == bhttp::verb::get) {
      auto snap = catalog_.Get();
      const auto counts = invoker_.AllCounts();  // one pass, not one per function
      json::array list;
      for (const auto& [name, e] : snap->functions) {
        auto c = counts.find(name);
        list.push_back(Document(*snap, name, c == counts.end() ? scheduler::Counts{} : c->second));
      }
      return Json(req, bhttp::status::ok, json::object{{"functions", std::move(list)}});
    }
    if (parts.size() >= 3) {
      const std::string& name = parts[2];
      // InvalidArgument: 400 InvalidParameterValueException.
      if (Status st = CheckFunctionName(name); !st.ok()) return gateway::ApiError(req, st);
      if (parts.size() == 3) {
        if (method == bhttp::verb::put) return Deploy(req, name);
        if (method == bhttp::verb::delete_) return Delete(req, name);
        if (method == bhttp::verb::get) {
          auto snap = catalog_.Get();
          if (!snap->functions.count(name)) return gateway::ApiError(req, snap->Resolve(name, "").status());
          return Json(req, bhttp::status::ok, Document(*snap, name, invoker_.CountsFor(name)));
        }
      }
      if (parts.size() == 4 && parts[3] == "logs" && method == bhttp::verb::get) return Logs(req, name);
      if (parts.size() >= 4 && parts[3] == "events") return Events(req, name, parts);
      if (parts.size() == 5 && parts[3] == "aliases") {
        if (method == bhttp::verb::put) return PutAlias(req, name, parts[4]);
        if (method == bhttp::verb::delete_) return DeleteAlias(req, name, parts[4]);
      }
    }
  }
  return gateway::ApiError(req, bhttp::status::not_found, "ResourceNotFoundException",
                        "unknown admin API call " + std::string(req.method_string()) + " " + std::string(target) +
                            "; see docs/api.md");
}

void AdminApi::CollectGarbage(const std::string& sha256) {
  auto refs = store_.ReferencedCode();
  if (!refs.ok()) return;
  if (std::find(refs->begin(), refs->end(), sha256) != refs->end()) return;
  (void)code_.Remove(sha256);
}

void AdminApi::Publish(std::shared_ptr<catalog::Snapshot> snap, const std::string& name) {
  std::vector<std::string> keep;
  std::vector<catalog::ConfigPtr> warm;
  auto it = snap->functions.find(name);
  if (it != snap->functions.end()) {
    keep.push_back(it->second.latest);
    for (const auto& [a, v] : it->second.aliases) keep.push_back(v);
    for (const auto& v : keep) {
      if (auto c = it->second.versions.find(v); c != it->second.versions.end()) warm.push_back(c->second);
    }
  }
  catalog_.Set(std::move(snap));
  if (trigger_ != nullptr) trigger_->Sync();
  invoker_.RetireVersions(name, keep);
  for (const auto& cfg : warm) invoker_.KeepWarm(cfg);
}

Status AdminApi::CheckHostNeeds(const manifest::Manifest& m) const {
  if (!sandboxed_ && m.network == manifest::Network::kNone) {
    return Status::InvalidArgument(
        "function.yaml: 'network: none' needs the sandbox, and this daemon runs with --insecure-no-sandbox; "
        "remove the key or restart nimbus without that flag");
  }
  if (!sandboxed_ && !m.filesystems.empty()) {
    return Status::InvalidArgument(
        "function.yaml: 'filesystems' needs the sandbox, and this daemon runs with --insecure-no-sandbox; "
        "remove the key or restart nimbus without that flag");
  }
  for (const auto& f : m.filesystems) {
    auto real = sandbox::CheckShareableHostDir(f.host, protected_dirs_);
    if (!real.ok()) return Status::InvalidArgument("function.yaml: filesystems: " + real.status().message());
  }
  if (m.schedule) {
    auto parsed = schedule::ParseManifestSchedule(*m.schedule);
    if (!parsed.ok()) return Status::InvalidArgument("function.yaml: schedule: " + parsed.status().message());
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (!parsed->NextAfter(now, now)) {
      return Status::InvalidArgument("function.yaml: schedule: '" + m.schedule->expression +
                                     "' never fires from now on (its dates are past or do not exist, before 2200); "
                                     "fix its day, month or year fields");
    }
  }
  return Status::Ok();
}

http::Response AdminApi::Deploy(http::Request& req, const std::string& name) {
  std::lock_guard lock(write_mu_);
  std::string zip = std::move(req.body());
  if (zip.empty()) {
    return gateway::ApiError(req, bhttp::status::bad_request, "InvalidPackageException",
                          "the request has no body; send the zip package (`nimbus deploy DIR` does)");
  }
  package::Limits limits;
  auto entry = code_.Put(zip, limits);
  if (!entry.ok()) {
    const Status& st = entry.status();
    switch (st.code()) {
      case Code::kTooLarge:
        return gateway::ApiError(req, bhttp::status::payload_too_large, "CodeStorageExceededException", st.message());
      case Code::kInvalidArgument:
        return gateway::ApiError(req, bhttp::status::bad_request, "InvalidPackageException", st.message());
      case Code::kResourceExhausted:
        // A full disk is the server's problem, not the package's: 507, and the message names the disk.
        return gateway::ApiError(req, bhttp::status::insufficient_storage, "ServiceException", st.message());
      default:
        return gateway::ApiError(req, bhttp::status::internal_server_error, "ServiceException", st.message());
    }
  }
  const std::string sha = entry->sha256;
  auto fail = [&](bhttp::status status, std::string_view type, const std::string& message) {
    CollectGarbage(sha);
    return gateway::ApiError(req, status, type, message);
  };

  auto text = ReadFile(entry->dir / "function.yaml");
  if (!text.ok()) {
    return fail(bhttp::status::bad_request, "InvalidPackageException",
                "the package has no function.yaml at its root; zip the function directory itself (`nimbus deploy "
                "DIR` does), not its parent");
  }
  auto m = manifest::Parse(*text, "function.yaml");
  if (!m.ok()) return fail(bhttp::status::bad_request, "InvalidParameterValueException", m.status().message());
  if (m->name != name) {
    return fail(bhttp::status::bad_request, "InvalidParameterValueException",
                "function.yaml names the function '" + m->name + "' but it was deployed as '" + name +
                    "'; deploy it as '" + m->name + "' or change name: in function.yaml");
  }
  if (Status st = CheckHostNeeds(*m); !st.ok()) {
    return fail(bhttp::status::bad_request, "InvalidParameterValueException", st.message());
  }
  if (m->runtime == "provided") {
    struct stat st {};
    auto boot = entry->dir / "bootstrap";
    if (stat(boot.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail(bhttp::status::bad_request, "InvalidPackageException",
                  "runtime 'provided' needs an executable file named 'bootstrap' at the package root; none was found");
    }
    if (!(st.st_mode & 0111)) {
      return fail(bhttp::status::bad_request, "InvalidPackageException",
                  "'bootstrap' is not executable; run `chmod +x bootstrap` and deploy again");
    }
  }

  // Check routes against the other functions before anything is written.
  auto current = catalog_.Get();
  auto snap = std::make_shared<catalog::Snapshot>(*current);
  {
    auto probe = std::make_shared<catalog::FunctionConfig>();
    probe->name = name;
    probe->version = "pending";
    probe->manifest = *m;
    auto& e = snap->functions[name];
    e.versions["pending"] = probe;
    std::string prev = e.latest;
    e.latest = "pending";
    Status routes = catalog::RebuildRoutes(*snap, name);
    if (!routes.ok()) return fail(bhttp::status::conflict, "ResourceConflictException", routes.message());
    e.versions.erase("pending");
    e.latest = prev;
    if (e.versions.empty()) snap->functions.erase(name);
  }

  bool created = false;
  bool existed = current->functions.count(name) > 0;
  auto published = store_.Publish(name, sha, *text, &created);
  if (!published.ok()) return fail(bhttp::status::internal_server_error, "ServiceException", published.status().message());
  Status st = LoadFunction(*snap, name);
  if (!st.ok()) return gateway::ApiError(req, st);
  st = catalog::RebuildRoutes(*snap);
  if (!st.ok()) return gateway::ApiError(req, st);
  json::object doc = Document(*snap, name, invoker_.CountsFor(name));
  doc["created"] = created;
  Publish(std::move(snap), name);
  return Json(req, existed ? bhttp::status::ok : bhttp::status::created, doc);
}

http::Response AdminApi::Delete(http::Request& req, const std::string& name) {
  std::lock_guard lock(write_mu_);
  auto current = catalog_.Get();
  auto it = current->functions.find(name);
  if (it == current->functions.end()) return gateway::ApiError(req, current->Resolve(name, "").status());
  std::vector<std::string> shas;
  for (const auto& [v, cfg] : it->second.versions) shas.push_back(cfg->code_sha256);
  Status st = store_.DeleteFunction(name);
  if (!st.ok()) return gateway::ApiError(req, st);
  auto snap = std::make_shared<catalog::Snapshot>(*current);
  snap->functions.erase(name);
  st = catalog::RebuildRoutes(*snap);
  if (!st.ok()) return gateway::ApiError(req, st);
  Publish(std::move(snap), name);
  for (const auto& sha : shas) CollectGarbage(sha);
  http::Response res{bhttp::status::no_content, req.version()};
  res.keep_alive(req.keep_alive());
  return res;
}

http::Response AdminApi::PutAlias(http::Request& req, const std::string& name, const std::string& alias) {
  std::lock_guard lock(write_mu_);
  json::error_code ec;
  auto body = json::parse(req.body(), ec);
  if (ec || !body.is_object() || !body.as_object().contains("version")) {
    return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                          "send {\"version\": \"N\"} to point an alias at version N");
  }
  const auto& v = body.as_object().at("version");
  std::string version = v.is_string() ? std::string(v.as_string()) : v.is_int64() ? std::to_string(v.as_int64()) : "";
  Status st = store_.PutAlias(name, alias, version);
  if (!st.ok()) return gateway::ApiError(req, st);
  auto snap = std::make_shared<catalog::Snapshot>(*catalog_.Get());
  st = LoadFunction(*snap, name);
  if (!st.ok()) return gateway::ApiError(req, st);
  Publish(std::move(snap), name);
  return Json(req, bhttp::status::ok, json::object{{"name", alias}, {"version", version}});
}

http::Response AdminApi::DeleteAlias(http::Request& req, const std::string& name, const std::string& alias) {
  std::lock_guard lock(write_mu_);
  Status st = store_.DeleteAlias(name, alias);
  if (!st.ok()) return gateway::ApiError(req, st);
  auto snap = std::make_shared<catalog::Snapshot>(*catalog_.Get());
  st = LoadFunction(*snap, name);
  if (!st.ok()) return gateway::ApiError(req, st);
  Publish(std::move(snap), name);
  http::Response res{bhttp::status::no_content, req.version()};
  res.keep_alive(req.keep_alive());
  return res;
}

http::Response AdminApi::Logs(http::Request& req, const std::string& name) {
  auto snap = catalog_.Get();
  if (!snap->functions.count(name)) return gateway::ApiError(req, snap->Resolve(name, "").status());
  size_t limit = 1000;
  std::string l = http::QueryParam(req.target(), "limit");
  if (!l.empty()) {
    char* end = nullptr;
    unsigned long long v = strtoull(l.c_str(), &end, 10);
    if (*end || v == 0) {
      return gateway::ApiError(req, bhttp::status::bad_request, "InvalidParameterValueException",
                            "limit must be a positive whole number");
    }
    limit = static_cast<size_t>(std::min<unsigned long long>(v, 100000));
  }
  std::string rid = http::QueryParam(req.target(), "request_id");
  json::array lines;
  for (auto& line : logs_.Tail(name, limit, rid)) {
    lines.push_back(json::object{{"time_ms", line.time_ms},
                                 {"request_id", line.request_id},
                                 {"stream", observability::LogStreamName(line.stream)},
                                 {"text", line.text}});
  }
  return Json(req, bhttp::status::ok, json::object{{"lines", std::move(lines)}});
}

json::object AdminApi::Document(const catalog::Snapshot& snap, const std::string& name,
                                 const scheduler::Counts& counts) const {
  const auto& e = snap.functions.at(name);
  const auto& cfg = *e.versions.at(e.latest);
  const auto& m = cfg.manifest;
  json::array routes, versions;
  for (const auto& r : m.http) {
    json::object route{{"method", r.method}, {"path", r.path}};
    if (r.async) route["async"] = true;
    routes.push_back(std::move(route));
  }
  std::vector<long long> numbers;
  for (const auto& [v, c] : e.versions) numbers.push_back(std::stoll(v));
  std::sort(numbers.begin(), numbers.end());  // "10" after "9", not after "1"
  for (long long v : numbers) versions.push_back(json::value(std::to_string(v)));
  json::object aliases;
  for (const auto& [a, v] : e.aliases) aliases[a] = v;
  json::object env;
  for (const auto& [k, v] : m.environment) env[k] = v;
  json::object doc{
      {"name", name},
      {"runtime", m.runtime},
      {"handler", m.handler},
      {"description", m.description},
      {"memory", m.memory_mb},
      {"timeout", m.timeout_s},
      {"keep_alive", m.keep_alive_s},
      {"concurrency", json::object{{"max", m.concurrency.max}, {"min_warm", m.concurrency.min_warm}}},
      {"environment", std::move(env)},
      {"version", cfg.version},
      {"code_sha256", cfg.code_sha256},
      {"code_size", cfg.code_size},
      {"routes", std::move(routes)},
      {"versions", std::move(versions)},
      {"aliases", std::move(aliases)},
      {"instances",
       json::object{{"busy", counts.busy}, {"idle", counts.idle}, {"starting", counts.starting},
                    {"queued", counts.queued}}},
      {"arn", cfg.arn},
      {"last_modified_ms", cfg.last_modified_ms},
      {"network", m.network == manifest::Network::kNone ? "none" : "egress"},
      {"ephemeral_storage", m.ephemeral_storage_mb},
      {"sandbox", sandboxed_},
      {"async", json::object{{"retries", m.async.retries},
                             {"max_event_age", m.async.max_event_age_s},
                             {"on_success", m.async.on_success},
                             {"on_failure", m.async.on_failure}}},
      {"events", EventCounts(name)},
  };
  if (m.schedule) {
    const std::optional<int64_t> next = trigger_ ? trigger_->NextFiring(name) : std::nullopt;
    const json::value next_firing = next ? json::value(IsoTimeMs(next.value_or(0))) : json::value(nullptr);
    doc["schedule"] = json::object{
        {"expression", m.schedule->expression},
        {"timezone", m.schedule->timezone},
        {"missed", m.schedule->missed == manifest::Schedule::Missed::kSkip ? "skip" : "once"},
        {"next_firing", next_firing},
    };
    if (next) doc["next_firing"] = next_firing;
  }
  return doc;
}

}  // namespace nimbus::admin
