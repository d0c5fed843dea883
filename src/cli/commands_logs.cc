// `nimbus logs NAME`: prints a function's captured log lines, and with --follow keeps polling
// the admin API once a second, printing only lines not shown before.
#include <boost/json.hpp>
#include <map>
#include <tuple>

#include "cli/commands.h"
#include "cli/format.h"

namespace nimbus::cli {
namespace {

struct LogLine {
  int64_t time_ms = 0;
  std::string request_id;
  std::string stream;
  std::string text;
  boost::json::object raw;
};

using LineKey = std::tuple<std::string, std::string, std::string>;  // request_id, stream, text

// Decides which lines of a poll are new. Each poll returns the newest lines oldest first, so
// the window overlaps the previous one; lines older than the newest millisecond already
// printed are old, and at that millisecond identical lines are told apart by how many times
// each was already seen. Lines that scroll past between two polls (more than a poll's limit
// in one second) are not recovered.
class NewLineFilter {
 public:
  std::vector<const LogLine*> Filter(const std::vector<LogLine>& lines) {
    std::vector<const LogLine*> fresh;
    std::map<LineKey, int> seen_now;
    int64_t newest = last_ms_;
    for (const auto& line : lines) {
      if (line.time_ms < last_ms_) continue;
      if (line.time_ms == last_ms_) {
        LineKey key{line.request_id, line.stream, line.text};
        int index = seen_now[key]++;
        auto it = printed_at_last_.find(key);
        if (it != printed_at_last_.end() && index < it->second) continue;
      }
      fresh.push_back(&line);
      newest = std::max(newest, line.time_ms);
    }
    std::map<LineKey, int> at_newest;
    for (const auto& line : lines) {
      if (line.time_ms == newest) ++at_newest[{line.request_id, line.stream, line.text}];
    }
    if (newest == last_ms_) {
      for (const auto& [key, count] : printed_at_last_) {
        at_newest[key] = std::max(at_newest[key], count);
      }
    }
    last_ms_ = newest;
    printed_at_last_ = std::move(at_newest);
    return fresh;
  }

 private:
  int64_t last_ms_ = INT64_MIN;
  std::map<LineKey, int> printed_at_last_;
};

// Fetches one window; returns -1 and fills *lines on success, else the exit code.
int Fetch(Context& ctx, const std::string& target, std::vector<LogLine>* lines, std::string* body) {
  Result<HttpResponse> response = ctx.AdminClient().Send({"GET", target, {}, ""});
  if (!response.ok()) return ReportTransportError(ctx, response.status());
  if (response->status < 200 || response->status >= 300) return ReportHttpError(ctx, *response);
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(response->body, ec);
  const boost::json::array* array = nullptr;
  if (!ec && doc.is_object()) {
    if (auto* v = doc.as_object().if_contains("lines"); v && v->is_array()) array = &v->as_array();
  }
  if (array == nullptr) {
    ctx.err << "error: the daemon's answer has no \"lines\" array; is --endpoint "
            << ctx.endpoint.url << " a nimbus daemon?\n";
    return kExitFailed;
  }
  lines->clear();
  for (const auto& v : *array) {
    if (!v.is_object()) continue;
    const auto& o = v.as_object();
    lines->push_back({JsonInt(o, "time_ms"), JsonText(o, "request_id"), JsonText(o, "stream"),
                      JsonText(o, "text"), o});
  }
  *body = std::move(response->body);
  return -1;
}

void PrintLine(Context& ctx, const LogLine& line) {
  if (ctx.json) {
    ctx.out << boost::json::serialize(line.raw) << "\n";
    return;
  }
  std::string text = line.text;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  ctx.out << FormatTimeMs(line.time_ms) << " " << (line.request_id.empty() ? "-" : line.request_id)
          << " " << text << "\n";
}

}  // namespace

const CommandSpec kLogsSpec = {
    "logs",
    "print a function's log lines",
    {{"NAME", "the function"}},
    {{"limit", "N", "at most the N newest lines (default: 1000)"},
     {"request-id", "ID", "only the lines of one invocation"},
     {"follow", "", "keep printing new lines as they arrive (Ctrl-C stops)"}},
    "Lines print as `TIME REQUEST_ID text`, oldest first, including the platform's START, END\n"
    "and REPORT lines. With --json the server's answer is printed as is; with --json --follow,\n"
    "one JSON object per line.",
};

int RunLogs(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  std::string query;
  if (args.Has("limit")) {
    const std::string limit = args.Get("limit");
    bool digits = !limit.empty() && limit.size() <= 9 &&
                  limit.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(limit) == 0) {
      return UsageError(ctx, kLogsSpec, "bad --limit '" + limit + "'; give a positive number");
    }
    query += "limit=" + limit;
  }
  if (args.Has("request-id")) {
    query += std::string(query.empty() ? "" : "&") + "request_id=" + UrlEncode(args.Get("request-id"));
  }
  const std::string base = FunctionPath(name) + "/logs";
  std::vector<LogLine> lines;
  std::string body;
  if (int code = Fetch(ctx, base + (query.empty() ? "" : "?" + query), &lines, &body); code >= 0) {
    return code;
  }
  const bool follow = args.Has("follow");
  if (ctx.json && !follow) {
    PrintBody(ctx.out, body);
    return kExitOk;
  }
  NewLineFilter filter;
  for (const LogLine* line : filter.Filter(lines)) PrintLine(ctx, *line);
  ctx.out.flush();
  if (!follow) return kExitOk;

  // Later polls ask for the default window; --limit only bounds the backlog shown first.
  std::string follow_query = "limit=1000";
  if (args.Has("request-id")) follow_query += "&request_id=" + UrlEncode(args.Get("request-id"));
  while (ctx.env.wait_for_next_poll && ctx.env.wait_for_next_poll()) {
    if (int code = Fetch(ctx, base + "?" + follow_query, &lines, &body); code >= 0) return code;
    for (const LogLine* line : filter.Filter(lines)) PrintLine(ctx, *line);
    ctx.out.flush();
  }
  return kExitOk;
}

}  // namespace nimbus::cli
