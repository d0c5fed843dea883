// The commands that read and change the function registry through the admin API:
// `ls`, `info`, `rm` and `alias`.
#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/format.h"

namespace nimbus::cli {
namespace {

std::string Instances(const boost::json::object& fn) {
  const boost::json::object* inst = nullptr;
  if (auto* v = fn.if_contains("instances"); v && v->is_object()) inst = &v->as_object();
  if (inst == nullptr) return "-";
  return std::to_string(JsonInt(*inst, "busy")) + "/" + std::to_string(JsonInt(*inst, "idle"));
}

}  // namespace

const CommandSpec kLsSpec = {
    "ls",
    "list deployed functions",
    {},
    {},
    "Columns: NAME RUNTIME VERSION ($LATEST) MEMORY TIMEOUT ROUTES INSTANCES (busy/idle), and\n"
    "NEXT FIRING (UTC) when a function has a schedule. A route marked (async) answers 202 at\n"
    "once and runs the function as a queued event (`nimbus events ls NAME`).",
};

int RunLs(Context& ctx, const ParsedArgs& args) {
  HttpResponse res;
  if (int code = AdminCall(ctx, {"GET", "/v1/functions", {}, ""}, &res); code >= 0) return code;
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  std::optional<boost::json::object> doc = ParseJsonObject(ctx, res.body);
  if (!doc) return kExitFailed;
  const boost::json::array* functions = nullptr;
  if (auto* v = doc->if_contains("functions"); v && v->is_array()) functions = &v->as_array();
  if (functions == nullptr || functions->empty()) {
    ctx.err << "no functions deployed; create one with `nimbus init hello --runtime python3` "
               "and deploy it with `nimbus deploy hello`\n";
    return kExitOk;
  }
  // The NEXT FIRING column only appears when some function has a schedule.
  bool any_schedule = false;
  for (const auto& v : *functions) {
    if (v.is_object() && !JsonText(v.as_object(), "next_firing").empty()) any_schedule = true;
  }
  std::vector<std::string> header = {"NAME", "RUNTIME", "VERSION", "MEMORY", "TIMEOUT", "ROUTES", "INSTANCES"};
  if (any_schedule) header.push_back("NEXT FIRING");
  Table table(header);
  for (const auto& v : *functions) {
    if (!v.is_object()) continue;
    const auto& fn = v.as_object();
    std::string routes;
    for (const Route& r : Routes(fn)) {
      routes += (routes.empty() ? "" : ",") + r.method + " " + r.path + r.Marker();
    }
    std::vector<std::string> row = {JsonText(fn, "name"), JsonText(fn, "runtime"), JsonText(fn, "version"),
                                    JsonText(fn, "memory") + " MB", JsonText(fn, "timeout") + " s",
                                    routes.empty() ? "-" : routes, Instances(fn)};
    if (any_schedule) {
      const std::string next = JsonText(fn, "next_firing");
      row.push_back(next.empty() ? "-" : next);
    }
    table.AddRow(std::move(row));
  }
  table.Render(ctx.out);
  return kExitOk;
}

const CommandSpec kInfoSpec = {
    "info",
    "show one function: versions, aliases, routes, URLs, async settings, schedule",
    {{"NAME", "the function"}},
    {},
    "A route marked (async) answers 202 at once and runs the function as a queued event.",
};

int RunInfo(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  HttpResponse res;
  if (int code = AdminCall(ctx, {"GET", FunctionPath(name), {}, ""}, &res); code >= 0) return code;
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  std::optional<boost::json::object> doc = ParseJsonObject(ctx, res.body);
  if (!doc) return kExitFailed;
  const auto& fn = *doc;

  Table t({"", ""});  // two aligned columns: label, value
  auto row = [&](const std::string& label, const std::string& value) { t.AddRow({label, value}); };
  row("name:", JsonText(fn, "name"));
  row("runtime:", JsonText(fn, "runtime") + " (handler " + JsonText(fn, "handler") + ")");
  row("version:", JsonText(fn, "version") + " ($LATEST)");
  std::string versions;
  if (auto* v = fn.if_contains("versions"); v && v->is_array()) {
    for (const auto& e : v->as_array()) {
      std::string text = e.is_string() ? std::string(e.as_string()) : boost::json::serialize(e);
      versions += (versions.empty() ? "" : ", ") + text;
    }
  }
  row("versions:", versions.empty() ? "-" : versions);
  std::string aliases;
  if (auto* v = fn.if_contains("aliases"); v && v->is_object()) {
    for (const auto& [alias, target] : v->as_object()) {
      std::string text = target.is_string() ? std::string(target.as_string()) : boost::json::serialize(target);
      aliases += (aliases.empty() ? "" : ", ") + std::string(alias) + " -> " + text;
    }
  }
  row("aliases:", aliases.empty() ? "-" : aliases);
  if (auto* sb = fn.if_contains("sandbox"); sb && sb->is_bool() && !sb->as_bool()) {
    ctx.err << "warning: the daemon runs with --insecure-no-sandbox: this function runs unconfined, as the "
               "daemon's user, with the host's files and network\n";
    row("sandbox:", "OFF (--insecure-no-sandbox)");
  }
  row("memory:", JsonText(fn, "memory") + " MB");
  row("timeout:", JsonText(fn, "timeout") + " s");
  row("keep_alive:", JsonText(fn, "keep_alive") + " s");
  if (auto* c = fn.if_contains("concurrency"); c && c->is_object()) {
    row("concurrency:", "max " + JsonText(c->as_object(), "max") + ", min_warm " +
                            JsonText(c->as_object(), "min_warm"));
  }
  if (auto* v = fn.if_contains("instances"); v && v->is_object()) {
    row("instances:", JsonText(v->as_object(), "busy") + " busy, " +
                          JsonText(v->as_object(), "idle") + " idle");
  }
  if (auto* v = fn.if_contains("async"); v && v->is_object()) {
    const auto& async = v->as_object();
    row("async:", "retries " + JsonText(async, "retries") + ", max event age " +
                      JsonText(async, "max_event_age") + " s");
    if (std::string dest = JsonText(async, "on_success"); !dest.empty()) row("on_success:", dest);
    if (std::string dest = JsonText(async, "on_failure"); !dest.empty()) row("on_failure:", dest);
  }
  if (auto* v = fn.if_contains("schedule"); v && v->is_object()) {
    const auto& schedule = v->as_object();
    std::string text = JsonText(schedule, "expression");
    if (std::string tz = JsonText(schedule, "timezone"); !tz.empty()) text += ", timezone " + tz;
    if (std::string missed = JsonText(schedule, "missed"); !missed.empty()) text += ", missed firings: " + missed;
    row("schedule:", text);
    const std::string next = JsonText(schedule, "next_firing");
    row("", next.empty() ? "no next firing: the expression names no future time" : "next firing " + next);
  }
  if (auto* v = fn.if_contains("events"); v && v->is_object()) {
    std::string text = EventCounts(v->as_object());
    if (JsonInt(v->as_object(), "dead_letters") > 0) text += " (`nimbus events dlq " + name + "`)";
    row("events:", text);
  }
  row("code:", FormatSize(static_cast<uint64_t>(std::max<int64_t>(0, JsonInt(fn, "code_size")))) +
                   ", sha256 " + JsonText(fn, "code_sha256"));
  if (int64_t ms = JsonInt(fn, "last_modified_ms", -1); ms >= 0) row("modified:", FormatTimeMs(ms));
  auto routes = Routes(fn);
  if (routes.empty()) row("routes:", "-");
  for (size_t i = 0; i < routes.size(); ++i) {
    row(i == 0 ? "routes:" : "", routes[i].method + " " + routes[i].path + routes[i].Marker());
  }
  row("urls:", ctx.endpoint.url + "/fn/" + name);
  for (const Route& r : routes) row("", r.method + " " + ctx.endpoint.url + r.path + r.Marker());
  std::ostringstream rendered;
  t.Render(rendered);
  // Drop the empty header line the two-column table starts with.
  std::string text = rendered.str();
  ctx.out << text.substr(text.find('\n') + 1);
  return kExitOk;
}

const CommandSpec kRmSpec = {
    "rm",
    "delete a function, its versions and aliases",
    {{"NAME", "the function"}},
    {},
    "Running instances finish their in-flight requests, then stop.",
};

int RunRm(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  HttpResponse res;
  if (int code = AdminCall(ctx, {"DELETE", FunctionPath(name), {}, ""}, &res); code >= 0) return code;
  if (ctx.json) {
    if (!res.body.empty()) PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  ctx.out << "removed " << name << "\n";
  return kExitOk;
}

const CommandSpec kAliasSpec = {
    "alias",
    "point an alias (e.g. live) at a version",
    {{"NAME", "the function"}, {"ALIAS", "the alias name"}, {"VERSION", "the version it points at"}},
    {},
    "Invoke an alias with `nimbus invoke NAME --qualifier ALIAS` or over HTTP at /fn/NAME:ALIAS.",
};

int RunAlias(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  const std::string& alias = args.positionals[1];
  const std::string& version = args.positionals[2];
  boost::json::object body;
  body["version"] = version;
  HttpRequest request{"PUT", FunctionPath(name) + "/aliases/" + UrlEncode(alias),
                      {{"Content-Type", "application/json"}}, boost::json::serialize(body)};
  HttpResponse res;
  if (int code = AdminCall(ctx, request, &res); code >= 0) return code;
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  ctx.out << name << ":" << alias << " -> version " << version << "\n";
  return kExitOk;
}

}  // namespace nimbus::cli
