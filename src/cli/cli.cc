// Dispatch for the `nimbus` CLI: global flags, command and subcommand lookup (`nimbus events ls`),
// top-level help and version, and the helpers every command shares for turning answers into
// messages and exit codes.
#include "cli/cli.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.h"

namespace nimbus::cli {
namespace {

constexpr const char* kVersion = "0.1.0";
constexpr const char* kDefaultEndpoint = "http://127.0.0.1:8080";

void PrintTopLevelHelp(std::ostream& out) {
  out << "usage: nimbus COMMAND [ARGS] [--endpoint URL] [--token TOKEN] [--json] [--help]\n"
         "       nimbus serve [--listen HOST:PORT] ...   (runs the daemon; see `nimbus serve --help`)\n"
         "\n"
         "commands:\n";
  size_t width = 0;
  for (const auto& c : AllCommands()) width = std::max(width, c.spec.name.size());
  for (const auto& c : AllCommands()) {
    out << "  " << c.spec.name << std::string(width - c.spec.name.size() + 3, ' ')
        << c.spec.summary << "\n";
  }
  out << "\n"
         "global flags:\n"
         "  --endpoint URL   the daemon (default: $NIMBUS_ENDPOINT, else http://127.0.0.1:8080)\n"
         "  --token TOKEN    the admin API token (default: $NIMBUS_TOKEN, else the token the daemon\n"
         "                   registered for the endpoint on this machine, else ./.nimbus/admin.token)\n"
         "  --json           print the server's JSON answer as is, one document\n"
         "  --help, -h       help for nimbus or for one command\n"
         "  --version        print the version\n"
         "\n"
         "exit status:\n"
         "  0  ok\n"
         "  1  the server refused the request (4xx/5xx other than 404; 401: a missing or wrong\n"
         "     token), or a local step failed\n"
         "  2  usage error: unknown command or flag, missing or malformed argument\n"
         "  3  not found (404): no such function, version, alias or route\n"
         "  4  invoke: the function returned an error\n"
         "  5  cannot reach the daemon, or it did not answer in time\n"
         "\n"
         "run `nimbus COMMAND --help` for a command's flags.\n";
}

// The group a command belongs to: "events" for "events ls", "" for a one-word command.
std::string GroupOf(const std::string& command_name) {
  size_t space = command_name.find(' ');
  return space == std::string::npos ? "" : command_name.substr(0, space);
}

bool IsGroup(const std::string& word) {
  for (const auto& c : AllCommands()) {
    if (GroupOf(c.spec.name) == word) return true;
  }
  return false;
}

// "ls, dlq, replay or purge"
std::string SubcommandList(const std::string& group) {
  std::vector<std::string> subs;
  for (const auto& c : AllCommands()) {
    if (GroupOf(c.spec.name) == group) subs.push_back(c.spec.name.substr(group.size() + 1));
  }
  std::string text;
  for (size_t i = 0; i < subs.size(); ++i) {
    text += (i == 0 ? "" : i + 1 == subs.size() ? " or " : ", ") + subs[i];
  }
  return text;
}

// `nimbus events --help`: the group's subcommands with their summaries.
void PrintGroupHelp(const std::string& group, std::ostream& out) {
  out << "usage: nimbus " << group << " SUBCOMMAND ARGS... [--endpoint URL] [--token TOKEN] [--json]\n"
      << "\nsubcommands:\n";
  for (const auto& c : AllCommands()) {
    if (GroupOf(c.spec.name) != group) continue;
    out << "  " << UsageLine(c.spec) << "\n      " << c.spec.summary << "\n";
  }
  out << "\nrun `nimbus " << group << " SUBCOMMAND --help` for a subcommand's details.\n";
}

bool IsGlobalFlagWord(const std::string& word) {
  return word == "--json" || word == "--endpoint" || word.rfind("--endpoint=", 0) == 0 || word == "--token" ||
         word.rfind("--token=", 0) == 0;
}

// Says which token a refused admin request carried, so a stale or mistyped one is easy to spot.
void NoteTokenSent(Context& ctx) {
  if (ctx.admin_token) {
    ctx.err << "note: the token sent came from " << ctx.admin_token->source << "\n";
  } else {
    ctx.err << "note: no token was sent: none given with --token or NIMBUS_TOKEN, none registered for "
            << ctx.endpoint.HostPort() << " by a daemon on this machine, and no readable ./.nimbus/admin.token\n";
  }
}

}  // namespace

int ExitCodeForHttpStatus(int http_status) {
  if (http_status >= 200 && http_status < 300) return kExitOk;
  if (http_status == 404) return kExitNotFound;
  return kExitFailed;
}

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> kCommands = {
      {kInitSpec, RunInit},   {kDeploySpec, RunDeploy}, {kInvokeSpec, RunInvoke},
      {kLsSpec, RunLs},       {kInfoSpec, RunInfo},     {kLogsSpec, RunLogs},
      {kAliasSpec, RunAlias}, {kRmSpec, RunRm},
      {kEventsLsSpec, RunEventsLs},         {kEventsDlqSpec, RunEventsDlq},
      {kEventsReplaySpec, RunEventsReplay}, {kEventsPurgeSpec, RunEventsPurge},
  };
  return kCommands;
}

int UsageError(Context& ctx, const CommandSpec& spec, const std::string& message) {
  ctx.err << "error: " << message << "\nusage: " << UsageLine(spec)
          << "\nrun `nimbus " << spec.name << " --help` for details\n";
  return kExitUsage;
}

int ReportTransportError(Context& ctx, const Status& status) {
  ctx.err << "error: " << status.message() << "\n";
  return status.code() == Code::kTooLarge ? kExitFailed : kExitUnreachable;
}

int ReportHttpError(Context& ctx, const HttpResponse& response) {
  std::string message;
  std::string error_type = response.Header("x-amzn-ErrorType");
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(response.body, ec);
  if (!ec && doc.is_object()) {
    const auto& obj = doc.as_object();
    if (auto* m = obj.if_contains("message"); m && m->is_string()) message = m->as_string().c_str();
    if (auto* t = obj.if_contains("errorType"); t && t->is_string()) error_type = t->as_string().c_str();
  }
  if (message.empty()) {
    message = "nimbus answered HTTP " + std::to_string(response.status);
    if (!response.body.empty()) message += ": " + response.body.substr(0, 500);
  }
  ctx.err << "error: " << message;
  if (!error_type.empty()) ctx.err << " (" << error_type << ")";
  ctx.err << "\n";
  if (response.status == 401 && response.Header("WWW-Authenticate").rfind("Bearer", 0) == 0) NoteTokenSent(ctx);
  if (ctx.json && !ec) PrintBody(ctx.out, response.body);
  return ExitCodeForHttpStatus(response.status);
}

int AdminCall(Context& ctx, const HttpRequest& request, HttpResponse* out) {
  Result<HttpResponse> response = ctx.AdminClient().Send(request);
  if (!response.ok()) return ReportTransportError(ctx, response.status());
  if (response->status < 200 || response->status >= 300) return ReportHttpError(ctx, *response);
  *out = std::move(*response);
  return -1;
}

std::optional<boost::json::object> ParseJsonObject(Context& ctx, const std::string& body) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) {
    ctx.err << "error: the daemon's answer is not a JSON object; is --endpoint " << ctx.endpoint.url
            << " a nimbus daemon?\n";
    return std::nullopt;
  }
  return std::move(doc.as_object());
}

int ReportLocalError(Context& ctx, const std::string& message) {
  ctx.err << "error: " << message << "\n";
  return kExitFailed;
}

void PrintBody(std::ostream& out, const std::string& body) {
  out << body;
  if (body.empty() || body.back() != '\n') out << '\n';
  out.flush();
}

std::string JsonText(const boost::json::object& obj, std::string_view key) {
  if (auto* v = obj.if_contains(key)) {
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_int64()) return std::to_string(v->as_int64());
    if (v->is_uint64()) return std::to_string(v->as_uint64());
  }
  return "";
}

std::vector<Route> Routes(const boost::json::object& fn) {
  std::vector<Route> out;
  if (auto* routes = fn.if_contains("routes"); routes && routes->is_array()) {
    for (const auto& r : routes->as_array()) {
      if (!r.is_object()) continue;
      const auto& route = r.as_object();
      const auto* async = route.if_contains("async");
      out.push_back({JsonText(route, "method"), JsonText(route, "path"),
                     async != nullptr && async->is_bool() && async->as_bool()});
    }
  }
  return out;
}

int64_t JsonInt(const boost::json::object& obj, std::string_view key, int64_t fallback) {
  if (auto* v = obj.if_contains(key)) {
    boost::system::error_code ec;
    auto n = v->to_number<int64_t>(ec);
    if (!ec) return n;
  }
  return fallback;
}

std::string FunctionPath(const std::string& name) { return "/v1/functions/" + UrlEncode(name); }

int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
           std::ostream& err, const CliEnvironment& env) {
  // Global flags may come before the command: `nimbus --endpoint URL ls`.
  std::vector<std::string> leading;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--version") {
      out << "nimbus " << kVersion << "\n";
      return kExitOk;
    }
    if (word == "--help" || word == "-h") {
      PrintTopLevelHelp(out);
      return kExitOk;
    }
    if (!IsGlobalFlagWord(word)) break;
    leading.push_back(word);
    if ((word == "--endpoint" || word == "--token") && i + 1 < args.size()) leading.push_back(args[++i]);
  }
  if (i >= args.size()) {
    err << "error: missing command\n";
    PrintTopLevelHelp(err);
    return kExitUsage;
  }
  std::string name = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (name == "help") {
    if (rest.empty()) {
      PrintTopLevelHelp(out);
      return kExitOk;
    }
    // `nimbus help events ls` keeps the subcommand word.
    name = rest[0];
    rest.erase(rest.begin());
    if (rest.size() > 1) rest.resize(1);
    rest.push_back("--help");
  }
  if (name == "version") {
    out << "nimbus " << kVersion << "\n";
    return kExitOk;
  }
  if (IsGroup(name)) {
    // The subcommand is the word right after the group: `nimbus events ls NAME`.
    const bool wants_help = !rest.empty() && (rest[0] == "--help" || rest[0] == "-h");
    if (wants_help) {
      PrintGroupHelp(name, out);
      return kExitOk;
    }
    if (rest.empty() || rest[0].rfind("-", 0) == 0) {
      err << "error: `nimbus " << name << "` needs a subcommand right after it: " << SubcommandList(name) << "\n";
      PrintGroupHelp(name, err);
      return kExitUsage;
    }
    std::string sub = rest[0];
    rest.erase(rest.begin());
    bool known = false;
    for (const auto& c : AllCommands()) known = known || c.spec.name == name + " " + sub;
    if (!known) {
      err << "error: unknown subcommand '" << sub << "' for `nimbus " << name << "`; use "
          << SubcommandList(name) << "\n"
          << "run `nimbus " << name << " --help` for what each does\n";
      return kExitUsage;
    }
    name += " " + sub;
  }
  const Command* command = nullptr;
  for (const auto& c : AllCommands()) {
    if (c.spec.name == name) command = &c;
  }
  if (command == nullptr) {
    err << "error: unknown command '" << name << "'\n"
        << "usage: nimbus COMMAND [ARGS]; run `nimbus --help` for the list of commands\n";
    return kExitUsage;
  }
  rest.insert(rest.begin(), leading.begin(), leading.end());

  Context ctx{in, out, err, env, Endpoint{}, false};
  Result<ParsedArgs> parsed = ParseArgs(command->spec, rest);
  if (!parsed.ok()) return UsageError(ctx, command->spec, parsed.status().message());
  if (parsed->Has("help")) {
    PrintCommandHelp(command->spec, out);
    return kExitOk;
  }
  std::string endpoint_text = parsed->Get("endpoint", env.endpoint.empty() ? kDefaultEndpoint
                                                                           : env.endpoint);
  Result<Endpoint> endpoint = ParseEndpoint(endpoint_text);
  if (!endpoint.ok()) return UsageError(ctx, command->spec, endpoint.status().message());
  ctx.endpoint = *endpoint;
  ctx.json = parsed->Has("json");
  if (parsed->Has("token") && parsed->Get("token").empty()) {
    return UsageError(ctx, command->spec, "--token needs a value; give the token from the daemon's DATA/admin.token");
  }
  ctx.admin_token = ResolveAdminToken(parsed->Get("token"), env, ctx.endpoint);
  return command->run(ctx, *parsed);
}

int RunCli(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  CliEnvironment env;
  if (const char* e = std::getenv("NIMBUS_ENDPOINT")) env.endpoint = e;
  if (const char* s = std::getenv("NIMBUS_SHARE_DIR")) env.share_dir = s;
  if (const char* t = std::getenv("NIMBUS_TOKEN")) env.token = t;
  if (const char* h = std::getenv("HOME")) env.home = h;
  env.local_token_file = std::filesystem::path(".nimbus") / "admin.token";
  std::error_code ec;
  env.exe_path = std::filesystem::read_symlink("/proc/self/exe", ec);
  env.wait_for_next_poll = [] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    return true;
  };
  return RunCli(args, std::cin, std::cout, std::cerr, env);
}

}  // namespace nimbus::cli
