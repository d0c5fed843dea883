// The `nimbus events` commands: a function's queue of asynchronous events (`ls`), its dead
// letters (`dlq`), sending dead letters back to the queue (`replay`) and dropping queued events
// or dead letters (`purge`), through the admin API's /v1/functions/NAME/events endpoints.
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/format.h"

namespace nimbus::cli {
namespace {

// The daemon answers at most this many events or dead letters per request.
constexpr int64_t kMaxLimit = 10000;

// Error texts longer than this are cut in tables; --json has them whole.
constexpr size_t kErrorCellWidth = 60;

// Validates --limit (1..kMaxLimit) and appends "?limit=N" to target; returns -1 on success,
// else the usage error's exit code.
int AddLimit(Context& ctx, const CommandSpec& spec, const ParsedArgs& args, std::string* target) {
  if (!args.Has("limit")) return -1;
  const std::string limit = args.Get("limit");
  bool digits = !limit.empty() && limit.size() <= 9 &&
                limit.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoll(limit) == 0 || std::stoll(limit) > kMaxLimit) {
    return UsageError(ctx, spec, "bad --limit '" + limit + "'; give a number from 1 to " +
                                     std::to_string(kMaxLimit));
  }
  *target += "?limit=" + std::to_string(std::stoll(limit));
  return -1;
}

// One table cell from free text: line breaks and tabs become spaces, and text longer than
// max_bytes is cut (at a UTF-8 character boundary) and ends with "...". "-" for no text.
std::string Cell(const std::string& text, size_t max_bytes = kErrorCellWidth) {
  if (text.empty()) return "-";
  std::string flat;
  flat.reserve(text.size());
  for (char c : text) flat.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (flat.size() <= max_bytes) return flat;
  size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(flat[cut]) & 0xC0) == 0x80) --cut;
  return flat.substr(0, cut) + "...";
}

const boost::json::array* ArrayField(const boost::json::object& obj, std::string_view key) {
  if (auto* v = obj.if_contains(key); v && v->is_array()) return &v->as_array();
  return nullptr;
}

// GETs `suffix` of the function's events resource with --limit; with --json prints the body
// and returns kExitOk in *code. Else the parsed document, or nullopt with *code set.
std::optional<boost::json::object> FetchListing(Context& ctx, const CommandSpec& spec, const ParsedArgs& args,
                                                const std::string& suffix, int* code) {
  std::string target = FunctionPath(args.positionals[0]) + suffix;
  *code = AddLimit(ctx, spec, args, &target);
  if (*code >= 0) return std::nullopt;
  HttpResponse res;
  *code = AdminCall(ctx, {"GET", target, {}, ""}, &res);
  if (*code >= 0) return std::nullopt;
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
    *code = kExitOk;
    return std::nullopt;
  }
  std::optional<boost::json::object> doc = ParseJsonObject(ctx, res.body);
  *code = doc ? -1 : kExitFailed;
  return doc;
}

}  // namespace

std::string EventCounts(const boost::json::object& counts) {
  return "queued " + std::to_string(JsonInt(counts, "queued")) + ", retrying " +
         std::to_string(JsonInt(counts, "retrying")) + ", in flight " +
         std::to_string(JsonInt(counts, "in_flight")) + ", dead letters " +
         std::to_string(JsonInt(counts, "dead_letters"));
}

const CommandSpec kEventsLsSpec = {
    "events ls",
    "list a function's queued, retrying and running async events",
    {{"NAME", "the function"}},
    {{"limit", "N", "show at most N events (default: 100, at most 10000)"}},
    "Prints the counts, then one row per event: ID, REQUEST ID, STATE (queued, retrying,\n"
    "in_flight), ATTEMPTS (failed attempts so far), ENQUEUED, NEXT ATTEMPT (when retrying) and\n"
    "LAST ERROR (shortened; --json has it whole, with each event's source).",
};

int RunEventsLs(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  int code = -1;
  std::optional<boost::json::object> doc = FetchListing(ctx, kEventsLsSpec, args, "/events", &code);
  if (!doc) return code;
  ctx.out << EventCounts(*doc) << "\n";
  size_t shown = 0;
  if (const boost::json::array* events = ArrayField(*doc, "events"); events && !events->empty()) {
    Table table({"ID", "REQUEST ID", "STATE", "ATTEMPTS", "ENQUEUED", "NEXT ATTEMPT", "LAST ERROR"});
    for (const auto& v : *events) {
      if (!v.is_object()) continue;
      const auto& e = v.as_object();
      table.AddRow({JsonText(e, "id"), JsonText(e, "request_id"), JsonText(e, "state"),
                    JsonText(e, "attempts"), Cell(JsonText(e, "enqueued")),
                    Cell(JsonText(e, "next_attempt")), Cell(JsonText(e, "last_error"))});
      ++shown;
    }
    table.Render(ctx.out);
  }
  const int64_t waiting = JsonInt(*doc, "queued") + JsonInt(*doc, "retrying") + JsonInt(*doc, "in_flight");
  if (static_cast<int64_t>(shown) < waiting) {
    ctx.err << "showing " << shown << " of " << waiting << " events; --limit N shows more (up to "
            << kMaxLimit << ")\n";
  }
  if (JsonInt(*doc, "dead_letters") > 0) {
    ctx.err << "`nimbus events dlq " << name << "` lists the dead letters\n";
  }
  return kExitOk;
}

const CommandSpec kEventsDlqSpec = {
    "events dlq",
    "list a function's dead letters: async events that failed for good",
    {{"NAME", "the function"}},
    {{"limit", "N", "show at most N dead letters (default: 100, at most 10000)"}},
    "One row per dead letter: ID, REQUEST ID, CONDITION (RetriesExhausted, EventAgeExceeded,\n"
    "FunctionNotFound, DestinationNotFound or RecursionLimit), ATTEMPTS, DEAD AT and ERROR\n"
    "(shortened). --json adds each one's original payload and its Lambda destination record.\n"
    "Send dead letters back to the queue with `nimbus events replay`.",
};

int RunEventsDlq(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  int code = -1;
  std::optional<boost::json::object> doc = FetchListing(ctx, kEventsDlqSpec, args, "/events/dlq", &code);
  if (!doc) return code;
  const boost::json::array* letters = ArrayField(*doc, "dead_letters");
  if (letters == nullptr || letters->empty()) {
    ctx.err << "no dead letters for " << name << "\n";
    return kExitOk;
  }
  Table table({"ID", "REQUEST ID", "CONDITION", "ATTEMPTS", "DEAD AT", "ERROR"});
  size_t shown = 0;
  std::string first_id;
  for (const auto& v : *letters) {
    if (!v.is_object()) continue;
    const auto& d = v.as_object();
    if (first_id.empty()) first_id = JsonText(d, "id");
    table.AddRow({JsonText(d, "id"), JsonText(d, "request_id"), JsonText(d, "condition"),
                  JsonText(d, "attempts"), Cell(JsonText(d, "dead_at")), Cell(JsonText(d, "error"))});
    ++shown;
  }
  table.Render(ctx.out);
  const int64_t total = JsonInt(*doc, "total", static_cast<int64_t>(shown));
  if (static_cast<int64_t>(shown) < total) {
    ctx.err << "showing " << shown << " of " << total << " dead letters; --limit N shows more (up to "
            << kMaxLimit << ")\n";
  }
  ctx.err << "replay with `nimbus events replay " << name << " --id " << first_id
          << "` (several: --id 7,9) or `--all`; `nimbus events purge " << name
          << " --dlq` deletes them\n";
  return kExitOk;
}

const CommandSpec kEventsReplaySpec = {
    "events replay",
    "send dead letters back to the queue, their attempts reset",
    {{"NAME", "the function"}},
    {{"id", "ID[,ID...]", "the dead letters to replay, by id (see `nimbus events dlq NAME`)"},
     {"all", "", "replay every dead letter of the function"}},
    "Give exactly one of --id and --all. Prints how many were replayed; ids that are not\n"
    "dead letters of the function (already replayed or purged) are named, and the exit\n"
    "status is then 1.",
};

int RunEventsReplay(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  if (args.Has("id") == args.Has("all")) {
    return UsageError(ctx, kEventsReplaySpec,
                      args.Has("all") ? "give either --id or --all, not both"
                                      : "say which dead letters: --id ID[,ID...] or --all");
  }
  boost::json::object body;
  if (args.Has("all")) {
    body["all"] = true;
  } else {
    const std::string list = args.Get("id");
    boost::json::array ids;
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      const std::string id = list.substr(start, comma - start);
      if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
        return UsageError(ctx, kEventsReplaySpec,
                          "bad --id '" + list + "'; give dead-letter ids from `nimbus events dlq " + name +
                              "`, separated by commas, e.g. --id 7,9");
      }
      ids.push_back(std::stoll(id));
      start = comma + 1;
    }
    body["ids"] = std::move(ids);
  }
  HttpRequest request{"POST", FunctionPath(name) + "/events/replay",
                      {{"Content-Type", "application/json"}}, boost::json::serialize(body)};
  HttpResponse res;
  if (int code = AdminCall(ctx, request, &res); code >= 0) return code;
  std::optional<boost::json::object> doc = ParseJsonObject(ctx, res.body);
  if (!doc) return kExitFailed;
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
  } else {
    ctx.out << "replayed " << JsonInt(*doc, "replayed") << "\n";
  }
  std::vector<std::string> missing;
  if (const boost::json::array* m = ArrayField(*doc, "missing")) {
    for (const auto& v : *m) {
      missing.push_back(v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v));
    }
  }
  if (missing.empty()) return kExitOk;
  std::string list;
  for (const auto& id : missing) list += (list.empty() ? "" : ", ") + id;
  ctx.err << "error: " << name << " has no dead letter with id" << (missing.size() == 1 ? " " : "s ") << list
          << " (already replayed or purged?); `nimbus events dlq " << name << "` lists the ones there are\n";
  return kExitFailed;
}

const CommandSpec kEventsPurgeSpec = {
    "events purge",
    "delete a function's queued and retrying events, or with --dlq its dead letters",
    {{"NAME", "the function"}},
    {{"dlq", "", "delete the dead letters instead of the queued events"}},
    "Without --dlq, events waiting in the queue (queued or retrying) are deleted; events\n"
    "already running finish. Deleted events are not run.",
};

int RunEventsPurge(Context& ctx, const ParsedArgs& args) {
  const std::string& name = args.positionals[0];
  const bool dlq = args.Has("dlq");
  HttpResponse res;
  if (int code = AdminCall(ctx, {"DELETE", FunctionPath(name) + (dlq ? "/events/dlq" : "/events"), {}, ""}, &res);
      code >= 0) {
    return code;
  }
  if (ctx.json) {
    PrintBody(ctx.out, res.body);
    return kExitOk;
  }
  std::optional<boost::json::object> doc = ParseJsonObject(ctx, res.body);
  if (!doc) return kExitFailed;
  ctx.out << "purged " << JsonInt(*doc, "purged") << (dlq ? " dead letters" : " queued events") << "\n";
  return kExitOk;
}

}  // namespace nimbus::cli
