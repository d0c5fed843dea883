// `nimbus invoke NAME`: calls the Lambda Invoke API and prints the function's answer.
#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/idempotency_key.h"
#include "cli/format.h"

namespace nimbus::cli {
namespace {

// A little over Lambda's largest function timeout (15 minutes), so the daemon, which enforces
// the function's own timeout, always answers first.
constexpr double kDefaultInvokeTimeoutSeconds = 910;

// Set by the daemon on the 202 for a repeat of an idempotency key it has already queued.
constexpr const char* kIdempotentReplayHeader = "X-Nimbus-Idempotent-Replay";

}  // namespace

Result<std::string> ReadPayload(const std::string& flag_value, std::istream& in) {
  std::string text;
  std::string source;
  if (flag_value == "-") {
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
    source = "standard input";
  } else if (!flag_value.empty() && flag_value[0] == '@') {
    const std::string path = flag_value.substr(1);
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      return Status::InvalidArgument("cannot read payload file '" + path +
                                     "'; check the path after '@'");
    }
    std::ostringstream buf;
    buf << f.rdbuf();
    text = buf.str();
    source = "payload file '" + path + "'";
  } else {
    text = flag_value;
    source = "--payload";
  }
  boost::system::error_code ec;
  boost::json::parser parser;
  size_t used = parser.write(text.data(), text.size(), ec);
  if (ec) {
    std::string hint = source == "--payload"
                           ? "; quote it for the shell, e.g. --payload '{\"name\": \"world\"}', or "
                             "pass a file with --payload @event.json"
                           : "; fix the JSON";
    return Status::InvalidArgument(source + " is not valid JSON (" + ec.message() +
                                   " at byte " + std::to_string(used) + ")" + hint);
  }
  return text;
}

const CommandSpec kInvokeSpec = {
    "invoke",
    "call a function and print its answer",
    {{"NAME", "the function to call"}},
    {{"payload", "JSON|@FILE|-", "the event: inline JSON, a file, or - for stdin (default: {})"},
     {"qualifier", "Q", "a version or alias to call instead of $LATEST"},
     {"type", "RequestResponse|Event|DryRun",
      "wait for the answer (default), queue an event (202), or only check the function exists"},
     {"idempotency-key", "KEY",
      "with --type Event: a repeat with the same KEY (within the daemon's window) is queued once; "
      "1-256 visible ASCII characters, no spaces"},
     {"log", "", "print the end of the invocation's log to stderr"},
     {"timeout", "SECONDS", "give up waiting for the daemon after this long (default: 910)"}},
    "Prints the function's answer on stdout. If the function failed (an exception, a timeout,\n"
    "a crash), the error document is printed and the exit status is 4.\n"
    "With --type Event, prints the request id of the queued event, or that the idempotency key\n"
    "was already queued and nothing new was; --json prints {\"request_id\": ..., \"duplicate\": ...}.",
};

int RunInvoke(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  const std::string type = args.Get("type", "RequestResponse");
  if (type != "RequestResponse" && type != "Event" && type != "DryRun") {
    return UsageError(ctx, kInvokeSpec,
                      "bad --type '" + type + "'; use RequestResponse, Event or DryRun");
  }
  if (args.Has("idempotency-key") && type != "Event") {
    return UsageError(ctx, kInvokeSpec, "--idempotency-key applies to --type Event");
  }
  if (args.Has("idempotency-key") && !IsValidIdempotencyKey(args.Get("idempotency-key"))) {
    return UsageError(ctx, kInvokeSpec,
                      "--idempotency-key wants 1-256 visible ASCII characters (letters, digits, punctuation; "
                      "no spaces)");
  }
  double timeout_s = kDefaultInvokeTimeoutSeconds;
  if (args.Has("timeout")) {
    const std::string t = args.Get("timeout");
    char* end = nullptr;
    timeout_s = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0' || !std::isfinite(timeout_s) || timeout_s <= 0) {
      return UsageError(ctx, kInvokeSpec,
                        "bad --timeout '" + t + "'; give a positive number of seconds, e.g. 30");
    }
  }
  std::string payload = "{}";
  if (args.Has("payload")) {
    Result<std::string> p = ReadPayload(args.Get("payload"), ctx.in);
    if (!p.ok()) return UsageError(ctx, kInvokeSpec, p.status().message());
    payload = std::move(*p);
  }

  HttpRequest request;
  request.method = "POST";
  request.target = "/2015-03-31/functions/" + UrlEncode(name) + "/invocations";
  if (args.Has("qualifier")) request.target += "?Qualifier=" + UrlEncode(args.Get("qualifier"));
  request.headers = {{"Content-Type", "application/json"}, {"X-Amz-Invocation-Type", type}};
  if (args.Has("log")) request.headers.emplace_back("X-Amz-Log-Type", "Tail");
  if (args.Has("idempotency-key")) {
    request.headers.emplace_back("X-Nimbus-Idempotency-Key", args.Get("idempotency-key"));
  }
  request.body = std::move(payload);

  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_s * 1000)));
  Result<HttpResponse> response = ctx.Client(timeout).Send(request);
  if (!response.ok()) return ReportTransportError(ctx, response.status());
  const HttpResponse& res = *response;
  if (res.status < 200 || res.status >= 300) return ReportHttpError(ctx, res);

  if (args.Has("log")) {
    std::string encoded = res.Header("X-Amz-Log-Result");
    if (std::optional<std::string> log = DecodeBase64(encoded); log && !log->empty()) {
      ctx.err << *log;
      if (log->back() != '\n') ctx.err << '\n';
    } else if (!encoded.empty()) {
      ctx.err << "warning: the daemon's X-Amz-Log-Result is not base64; log not shown\n";
    }
    ctx.err.flush();
  }

  if (res.HasHeader("X-Amz-Function-Error")) {
    PrintBody(ctx.out, res.body);
    std::string summary;
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(res.body, ec);
    if (!ec && doc.is_object()) {
      summary = JsonText(doc.as_object(), "errorType");
      std::string message = JsonText(doc.as_object(), "errorMessage");
      if (!message.empty()) summary += (summary.empty() ? "" : ": ") + message;
    }
    ctx.err << "error: function " << name << " failed (" << res.Header("X-Amz-Function-Error")
            << ")" << (summary.empty() ? "" : ": " + summary) << "\n";
    return kExitFunctionError;
  }

  if (type == "Event") {
    const std::string request_id = res.Header("x-amzn-RequestId");
    // The daemon's 202 has an empty body: what there is to say is in its headers.
    const bool duplicate = boost::algorithm::iequals(res.Header(kIdempotentReplayHeader), "true");
    if (ctx.json) {
      PrintBody(ctx.out, boost::json::serialize(boost::json::object{{"request_id", request_id},
                                                                    {"duplicate", duplicate}}));
      return kExitOk;
    }
    const std::string id_note = request_id.empty() ? "" : " (request id " + request_id + ")";
    if (duplicate) {
      ctx.out << "an event with this idempotency key was already queued for " << name << id_note
              << "; nothing new was queued\n";
    } else {
      ctx.out << "queued an event for " << name << id_note << "\n";
    }
    return kExitOk;
  }
  if (type == "RequestResponse" || ctx.json) {
    if (type == "RequestResponse" || !res.body.empty()) PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  ctx.out << "dry run ok: " << name << (args.Has("qualifier") ? ":" + args.Get("qualifier") : std::string())
          << " exists and may be invoked\n";
  return kExitOk;
}

}  // namespace nimbus::cli
