// Internal to the CLI: the context every command runs with, the shared helpers that turn HTTP
// answers into messages and exit codes, and the command table. Each commands_*.cc file
// defines its commands' specs and run functions.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/flags.h"
#include "cli/http_client.h"
#include "cli/token_lookup.h"
#include "common/status.h"

namespace nimbus::cli {

// Admin calls are quick; a deploy uploads up to 50 MB and waits for the daemon to unpack it.
inline constexpr std::chrono::seconds kAdminTimeout{120};

struct Context {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  const CliEnvironment& env;
  Endpoint endpoint;
  bool json = false;
  std::optional<AdminToken> admin_token;  // nullopt: none found, requests go without one

  // For the Invoke API: no admin token.
  HttpClient Client(std::chrono::milliseconds request_timeout = kAdminTimeout) const {
    HttpClientOptions options;
    options.request_timeout = request_timeout;
    return HttpClient(endpoint, options);
  }

  // For the admin API (/v1): every request carries the admin token, when there is one.
  HttpClient AdminClient() const {
    HttpClientOptions options;
    options.request_timeout = kAdminTimeout;
    if (admin_token) options.bearer_token = admin_token->token;
    return HttpClient(endpoint, options);
  }
};

struct Command {
  CommandSpec spec;
  int (*run)(Context& ctx, const ParsedArgs& args);
};

// The commands in the order `nimbus --help` lists them. A name of two words ("events ls")
// is a subcommand: the first word names the group, typed as `nimbus events ls NAME`.
const std::vector<Command>& AllCommands();

// Prints "error: MESSAGE", the usage line and a pointer to --help; returns kExitUsage.
int UsageError(Context& ctx, const CommandSpec& spec, const std::string& message);

// For a Send that got no answer: prints the message, returns kExitUnreachable (or kExitFailed
// for an answer too large to read).
int ReportTransportError(Context& ctx, const Status& status);

// For a non-2xx answer: prints the error body's message and errorType (or the raw body), and
// in --json mode the body itself on stdout; returns ExitCodeForHttpStatus. A 401 that asks for
// a bearer token (the admin API's) adds a note on which token was sent, or that none was.
int ReportHttpError(Context& ctx, const HttpResponse& response);

// Sends an admin API request (with the token) and handles failure the shared way: on a 2xx
// answer stores it in *out and returns -1; else prints the error and returns the exit code.
int AdminCall(Context& ctx, const HttpRequest& request, HttpResponse* out);

// Parses an answer that must be a JSON object; prints an error and returns nullopt otherwise.
std::optional<boost::json::object> ParseJsonObject(Context& ctx, const std::string& body);

// Prints a local failure ("error: ...") and returns kExitFailed.
int ReportLocalError(Context& ctx, const std::string& message);

// Writes body followed by a newline unless it already ends with one.
void PrintBody(std::ostream& out, const std::string& body);

// Fields of a JSON answer, tolerant of absent or mistyped fields (the daemon may add fields;
// the CLI shows what it understands). JsonText renders strings and integers as text.
std::string JsonText(const boost::json::object& obj, std::string_view key);
int64_t JsonInt(const boost::json::object& obj, std::string_view key, int64_t fallback = 0);

// "queued Q, retrying R, in flight F, dead letters D" from an object with those counts (the
// events answer, or the function document's "events").
std::string EventCounts(const boost::json::object& counts);

// A route of a function document's "routes".
struct Route {
  std::string method;
  std::string path;
  bool async = false;  // answered 202 at once, the function run as a queued event

  // " (async)" after an async route, wherever a route is shown.
  std::string Marker() const { return async ? " (async)" : ""; }
};
std::vector<Route> Routes(const boost::json::object& fn);

// The URL path of a function in the admin API: "/v1/functions/NAME".
std::string FunctionPath(const std::string& name);

// The event for `invoke --payload`: inline JSON, @FILE, or "-" for standard input. The text
// must parse as JSON; InvalidArgument says where it does not and how to quote it.
Result<std::string> ReadPayload(const std::string& flag_value, std::istream& in);

// Command specs and runners, one pair per command.
extern const CommandSpec kInitSpec;
int RunInit(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kDeploySpec;
int RunDeploy(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kInvokeSpec;
int RunInvoke(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kLsSpec;
int RunLs(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kInfoSpec;
int RunInfo(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kRmSpec;
int RunRm(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kAliasSpec;
int RunAlias(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kLogsSpec;
int RunLogs(Context& ctx, const ParsedArgs& args);
// The `events` group (commands_events.cc): its commands are named with two words.
extern const CommandSpec kEventsLsSpec;
int RunEventsLs(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kEventsDlqSpec;
int RunEventsDlq(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kEventsReplaySpec;
int RunEventsReplay(Context& ctx, const ParsedArgs& args);
extern const CommandSpec kEventsPurgeSpec;
int RunEventsPurge(Context& ctx, const ParsedArgs& args);

}  // namespace nimbus::cli
