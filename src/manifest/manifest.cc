// The manifest parser: YAML text -> yaml-cpp node tree -> validated Manifest. yaml-cpp keeps
// duplicate keys and accepts any shape, so every map is walked by hand here: each key is
// checked against the keys allowed at that place, each value against its type and range, and
// every problem is reported with the position yaml-cpp recorded for the offending node.
#include "manifest/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "common/function_name.h"
#include "common/json_text.h"
#include "manifest/flow_path_repair.h"
#include "manifest/route_grammar.h"
#include "manifest/schedule.h"
#include "manifest/suggest.h"

namespace nimbus::manifest {
namespace {

constexpr size_t kMaxErrors = 20;
constexpr size_t kMaxEnvironmentBytes = 4096;
constexpr size_t kMaxDescriptionChars = 256;
constexpr size_t kMaxHandlerLength = 128;
constexpr size_t kMaxFilesystems = 5;
constexpr size_t kMaxTimeZoneLength = 64;
constexpr long long kMinEventAgeS = 60;      // Lambda's MaximumEventAgeInSeconds bounds
constexpr long long kMaxEventAgeS = 21600;
// The on_failure destination that means the dead-letter store rather than a function.
constexpr std::string_view kDeadLetters = "dlq";

// Variables the platform sets for every instance (docs/api.md), refused in `environment` the
// way Lambda refuses them: overriding them would break the runtime contract.
const std::set<std::string, std::less<>> kReservedVariables = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"};
constexpr std::string_view kReservedVariablePrefix = "AWS_LAMBDA_";
// nimbus's own variables between the daemon and its runtimes (NIMBUS_RUNTIME_FD, NIMBUS_PRIMED).
constexpr std::string_view kReservedNimbusPrefix = "NIMBUS_";

// Collects located messages: "FILE:LINE:COL: text". Positions come from yaml-cpp (0-based)
// and may need mapping back through the flow-path repair.
class Diagnostics {
 public:
  Diagnostics(std::string_view file, const RepairedText* repair) : file_(file), repair_(repair) {}

  void Add(const YAML::Mark& mark, const std::string& message) {
    ++count_;
    if (lines_.size() >= kMaxErrors) return;
    int line = 0, column = 0;
    if (!mark.is_null() && mark.line >= 0) {
      line = mark.line;
      column = repair_ ? repair_->OriginalColumn(mark.line, mark.column) : mark.column;
    }
    lines_.push_back(file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) +
                     ": " + message);
  }

  bool empty() const { return count_ == 0; }

  Status ToStatus() const {
    std::string m;
    for (const std::string& l : lines_) {
      if (!m.empty()) m += '\n';
      m += l;
    }
    if (count_ > lines_.size()) {
      m += "\n(" + std::to_string(count_ - lines_.size()) + " more problems not shown)";
    }
    return Status::InvalidArgument(m);
  }

 private:
  std::string file_;
  const RepairedText* repair_;
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

std::string Quote(std::string_view s) {
  constexpr size_t kShown = 60;
  if (s.size() > kShown) return "'" + std::string(s.substr(0, kShown)) + "...'";
  return "'" + std::string(s) + "'";
}

// How a value that has the wrong type reads in a message: "got 'lots'", "got a list".
std::string Got(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return "got " + Quote(n.Scalar());
    case YAML::NodeType::Sequence: return "got a list";
    case YAML::NodeType::Map: return "got a mapping";
    default: return "got nothing";
  }
}

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// One key of a mapping, with the node that spells it (for positions).
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// A key as the alias tables compare it: lower-case, without '_' and '-', so Lambda's and SAM's
// spellings ("MaximumRetryAttempts", "dead-letter") find the entry written "maximum_retry_attempts".
std::string AliasForm(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '_' || c == '-') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The key an unknown key most likely meant: its alias, else the nearest allowed key, else "".
std::string Suggest(const std::string& name, const std::vector<std::string>& allowed,
                    const std::map<std::string, std::string>& aliases) {
  if (auto a = aliases.find(name); a != aliases.end()) return a->second;
  const std::string form = AliasForm(name);
  for (const auto& [alias, key] : aliases) {
    if (AliasForm(alias) == form) return key;
  }
  return NearestWord(name, allowed);
}

// The entries of a mapping whose keys are allowed at this place; reports unknown keys (with
// the nearest allowed one), non-scalar keys and duplicate keys. `where` prefixes nested key
// names in messages ("concurrency.").
std::vector<Entry> Entries(Diagnostics& d, const YAML::Node& map, const std::string& where,
                           const std::vector<std::string>& allowed,
                           const std::map<std::string, std::string>& aliases = {}) {
  std::vector<Entry> out;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;
    if (!key.IsScalar()) {
      d.Add(key.Mark(), "a key must be a plain name, " + Got(key) + "; allowed keys" +
                            (where.empty() ? "" : " in " + where.substr(0, where.size() - 1)) +
                            ": " + JoinKeys(allowed));
      continue;
    }
    const std::string& name = key.Scalar();
    auto [first, inserted] = seen.emplace(name, key.Mark());
    if (!inserted) {
      d.Add(key.Mark(), "duplicate key '" + where + name + "' (first set on line " +
                            std::to_string(first->second.line + 1) + "); keep only one of them");
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      const std::string near = Suggest(name, allowed, aliases);
      std::string m = "unknown key '" + where + name + "'; ";
      if (!near.empty()) {
        m += "did you mean '" + near + "'? (allowed: " + JoinKeys(allowed) + ")";
      } else {
        m += "remove it or use one of: " + JoinKeys(allowed);
      }
      d.Add(key.Mark(), m);
      continue;
    }
    out.push_back({name, key, it->second});
  }
  return out;
}

// The text of a scalar value, or a report that the value is missing or not text.
std::optional<std::string> ReadText(Diagnostics& d, const Entry& e, const std::string& what,
                                    const std::string& example) {
  if (e.value.IsScalar()) return e.value.Scalar();
  if (e.value.IsNull()) {
    d.Add(e.key_node.Mark(), what + " has no value; write e.g. '" + example + "'");
  } else {
    d.Add(e.value.Mark(), what + " must be text, " + Got(e.value) + "; write e.g. '" + example +
                              "'");
  }
  return std::nullopt;
}

std::optional<int> ReadInt(Diagnostics& d, const Entry& e, const std::string& what, int lo,
                           int hi, const std::string& unit) {
  std::string range = what + " must be an integer between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + (unit.empty() ? "" : " (" + unit + ")");
  if (e.value.IsNull()) {
    d.Add(e.key_node.Mark(), range + ", got nothing");
    return std::nullopt;
  }
  if (!e.value.IsScalar()) {
    d.Add(e.value.Mark(), range + ", " + Got(e.value));
    return std::nullopt;
  }
  const std::string& s = e.value.Scalar();
  long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < lo || v > hi) {
    d.Add(e.value.Mark(), range + ", " + Got(e.value));
    return std::nullopt;
  }
  return static_cast<int>(v);
}

std::optional<double> ReadNumber(Diagnostics& d, const Entry& e, const std::string& what,
                                 double min, bool min_inclusive, const std::string& unit) {
  std::string rule = what + " must be a number " +
                     (min_inclusive ? "of at least " : "greater than ") +
                     (min == std::floor(min) ? std::to_string(static_cast<long long>(min))
                                             : std::to_string(min)) +
                     (unit.empty() ? "" : " (" + unit + ")");
  if (e.value.IsNull()) {
    d.Add(e.key_node.Mark(), rule + ", got nothing");
    return std::nullopt;
  }
  if (!e.value.IsScalar()) {
    d.Add(e.value.Mark(), rule + ", " + Got(e.value));
    return std::nullopt;
  }
  const std::string& s = e.value.Scalar();
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v) ||
      (min_inclusive ? v < min : v <= min)) {
    d.Add(e.value.Mark(), rule + ", " + Got(e.value));
    return std::nullopt;
  }
  return v;
}

// A mapping value, or a report that it is something else. A key with no value at all counts
// as an empty mapping when `null_is_empty` (an `environment:` whose entries are all
// commented out, say).
bool ExpectMap(Diagnostics& d, const Entry& e, const std::string& what, const std::string& example,
               bool null_is_empty) {
  if (e.value.IsMap()) return true;
  if (e.value.IsNull() && null_is_empty) return false;
  d.Add(e.value.IsNull() ? e.key_node.Mark() : e.value.Mark(),
        what + " must be a mapping, " + Got(e.value) + "; write e.g. '" + example + "'");
  return false;
}

bool IsIdentifier(std::string_view s, bool allow_dollar) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool ok = std::isalpha(c) || c == '_' || (allow_dollar && c == '$') || (i > 0 && std::isdigit(c));
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> SplitAny(std::string_view s, std::string_view seps) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find_first_of(seps, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// python3: module.function, the module a dotted or slashed path of identifiers ("pkg/mod.fn").
bool IsPythonHandler(std::string_view h) {
  size_t dot = h.rfind('.');
  if (dot == std::string_view::npos) return false;
  if (!IsIdentifier(h.substr(dot + 1), false)) return false;
  for (std::string_view part : SplitAny(h.substr(0, dot), "./")) {
    if (!IsIdentifier(part, false)) return false;
  }
  return true;
}

// nodejs: [dir/...]file.export[.nested], the way the Node.js runtime interface client reads it:
// the file name ends at the first '.' after the last '/'.
bool IsNodeHandler(std::string_view h) {
  size_t slash = h.rfind('/');
  std::string_view dirs = slash == std::string_view::npos ? "" : h.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? h : h.substr(slash + 1);
  if (slash != std::string_view::npos) {
    for (std::string_view dir : SplitAny(dirs, "/")) {
      if (dir.empty() || dir == "." || dir == "..") return false;
      for (char c : dir) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
          return false;
        }
      }
    }
  }
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  for (char c : rest.substr(0, dot)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  for (std::string_view part : SplitAny(rest.substr(dot + 1), ".")) {
    if (!IsIdentifier(part, true)) return false;
  }
  return true;
}

// true or false as YAML 1.2 writes them (True and TRUE too), or nullopt.
std::optional<bool> BoolValue(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

const std::vector<std::string> kTopKeys = {
    "name",       "runtime",     "handler",  "memory",            "timeout",     "concurrency",
    "keep_alive", "environment", "http",     "auth",              "rate_limit",  "schedule",
    "async",      "network",     "ephemeral_storage", "filesystems", "build",    "description"};
// Names people bring from Lambda, SAM or serverless.yml that edit distance would not catch.
const std::map<std::string, std::string> kTopAliases = {
    {"env", "environment"},         {"variables", "environment"},   {"routes", "http"},
    {"events", "http"},             {"memory_size", "memory"},      {"memorysize", "memory"},
    {"timeout_seconds", "timeout"}, {"cron", "schedule"},           {"rate", "schedule"},
    {"function", "name"},           {"ratelimit", "rate_limit"},    {"throttle", "rate_limit"},
    {"volumes", "filesystems"},     {"mounts", "filesystems"},      {"file_system", "filesystems"},
    {"tmp", "ephemeral_storage"},   {"storage", "ephemeral_storage"},
    {"networking", "network"},      {"timezone", "schedule"},       {"tz", "schedule"},
    {"dlq", "async"},               {"dead_letter", "async"},       {"dead_letter_queue", "async"},
    {"destinations", "async"},      {"on_success", "async"},        {"on_failure", "async"},
    {"retries", "async"},           {"max_event_age", "async"},     {"asynchronous", "async"},
    {"event_invoke_config", "async"}};
const std::vector<std::string> kRouteKeys = {"method", "path", "async"};
const std::map<std::string, std::string> kRouteAliases = {
    {"verb", "method"}, {"route", "path"}, {"asynchronous", "async"}};
const std::vector<std::string> kScheduleKeys = {"expression", "timezone", "missed"};
const std::map<std::string, std::string> kScheduleAliases = {
    {"expr", "expression"},    {"cron", "expression"},      {"rate", "expression"},
    {"schedule", "expression"}, {"schedule_expression", "expression"},
    {"tz", "timezone"},        {"zone", "timezone"},        {"time_zone", "timezone"},
    {"catch_up", "missed"},    {"misfire", "missed"},       {"missed_policy", "missed"}};
const std::vector<std::string> kAsyncKeys = {"retries", "max_event_age", "on_success",
                                             "on_failure"};
// Lambda's names (MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig's
// OnSuccess and OnFailure; case and '_' do not matter here) and the usual words for them.
const std::map<std::string, std::string> kAsyncAliases = {
    {"retry", "retries"},                       {"max_retries", "retries"},
    {"retry_attempts", "retries"},              {"maximum_retry_attempts", "retries"},
    {"max_retry_attempts", "retries"},          {"max_age", "max_event_age"},
    {"event_age", "max_event_age"},             {"maximum_event_age", "max_event_age"},
    {"maximum_event_age_in_seconds", "max_event_age"},
    {"max_event_age_in_seconds", "max_event_age"}, {"ttl", "max_event_age"},
    {"dlq", "on_failure"},                      {"dead_letter", "on_failure"},
    {"dead_letter_queue", "on_failure"},        {"dead_letter_config", "on_failure"},
    {"failure", "on_failure"},                  {"success", "on_success"}};
const std::vector<std::string> kFilesystemKeys = {"host", "mount", "read_only"};
const std::map<std::string, std::string> kFilesystemAliases = {
    {"source", "host"},  {"src", "host"},        {"path", "mount"},
    {"target", "mount"}, {"readonly", "read_only"}, {"ro", "read_only"}};
const std::vector<std::string> kRuntimes = {"python3", "nodejs", "provided"};

// Builds a Manifest from the root mapping, reporting into `d`.
class ManifestReader {
 public:
  explicit ManifestReader(Diagnostics& d) : d_(d) {}

  Manifest Read(const YAML::Node& root) {
    for (const Entry& e : Entries(d_, root, "", kTopKeys, kTopAliases)) {
      if (e.key == "name") ReadName(e);
      else if (e.key == "runtime") ReadRuntime(e);
      else if (e.key == "handler") ReadHandler(e);
      else if (e.key == "memory") m_.memory_mb = ReadInt(d_, e, "memory", 64, 10240, "MiB").value_or(m_.memory_mb);
      else if (e.key == "timeout") m_.timeout_s = ReadInt(d_, e, "timeout", 1, 900, "seconds").value_or(m_.timeout_s);
      else if (e.key == "keep_alive") m_.keep_alive_s = ReadInt(d_, e, "keep_alive", 1, 86400, "seconds").value_or(m_.keep_alive_s);
      else if (e.key == "concurrency") ReadConcurrency(e);
      else if (e.key == "environment") ReadEnvironment(e);
      else if (e.key == "http") ReadHttp(e);
      else if (e.key == "auth") ReadAuth(e);
      else if (e.key == "rate_limit") ReadRateLimit(e);
      else if (e.key == "schedule") ReadSchedule(e);
      else if (e.key == "async") ReadAsync(e);
      else if (e.key == "network") ReadNetwork(e);
      else if (e.key == "ephemeral_storage") ReadEphemeralStorage(e);
      else if (e.key == "filesystems") ReadFilesystems(e);
      else if (e.key == "build") m_.build = ReadText(d_, e, "build", "build: make").value_or("");
      else if (e.key == "description") ReadDescription(e);
    }
    const YAML::Mark top = root.Mark();
    if (!has_name_) d_.Add(top, "missing required key 'name'; add e.g. 'name: hello'");
    if (!has_runtime_) {
      d_.Add(top, "missing required key 'runtime'; add e.g. 'runtime: python3' (python3, nodejs "
                  "or provided)");
    }
    CheckHandler(top);
    return m_;
  }

 private:
  void ReadName(const Entry& e) {
    has_name_ = true;
    std::optional<std::string> v = ReadText(d_, e, "name", "name: hello");
    if (!v) return;
    if (!IsValidFunctionName(*v)) {
      d_.Add(e.value.Mark(), "name " + Quote(*v) + " is not valid; " + std::string(kFunctionNameRule) +
                                 ", e.g. 'hello-world'");
      return;
    }
    m_.name = *v;
  }

  void ReadRuntime(const Entry& e) {
    has_runtime_ = true;
    std::optional<std::string> v = ReadText(d_, e, "runtime", "runtime: python3");
    if (!v) return;
    if (std::find(kRuntimes.begin(), kRuntimes.end(), *v) != kRuntimes.end()) {
      m_.runtime = *v;
      return;
    }
    std::string m = "runtime " + Quote(*v) + " is not supported; use python3, nodejs or provided";
    // Lambda's versioned names ("python3.12", "nodejs20.x", "provided.al2") map onto ours.
    std::string near;
    for (auto [prefix, runtime] : {std::pair{"python", "python3"}, std::pair{"node", "nodejs"},
                                   std::pair{"provided", "provided"}}) {
      if (v->rfind(prefix, 0) == 0) near = runtime;
    }
    if (near.empty()) near = NearestWord(*v, kRuntimes);
    if (!near.empty()) m += " (did you mean '" + near + "'?)";
    d_.Add(e.value.Mark(), m);
    runtime_invalid_ = true;
  }

  // The handler's form depends on the runtime, which may come later in the file: read the
  // text now, check it in CheckHandler once every key is known.
  void ReadHandler(const Entry& e) {
    handler_ = e;
    m_.handler = ReadText(d_, e, "handler", "handler: app.handler").value_or("");
  }

  void CheckHandler(const YAML::Mark& top) {
    if (runtime_invalid_ || !has_runtime_ || m_.runtime.empty()) return;  // reported already
    const bool python = m_.runtime == "python3", node = m_.runtime == "nodejs";
    const std::string example = python ? "app.handler" : node ? "index.handler" : "bootstrap";
    if (!handler_) {
      if (m_.runtime == "provided") {
        m_.handler = "bootstrap";
      } else {
        d_.Add(top, "missing required key 'handler'; add e.g. 'handler: " + example + "'");
      }
      return;
    }
    if (!handler_->value.IsScalar()) return;  // reported by ReadText
    const std::string& h = m_.handler;
    const YAML::Mark at = handler_->value.Mark();
    if (h.empty()) {
      d_.Add(at, "handler is empty; write e.g. 'handler: " + example + "'");
    } else if (h.size() > kMaxHandlerLength) {
      d_.Add(at, "handler is " + std::to_string(h.size()) + " characters long; the limit is " +
                     std::to_string(kMaxHandlerLength));
    } else if (python && !IsPythonHandler(h)) {
      d_.Add(at, "handler " + Quote(h) + " must be module.function for python3, e.g. "
                 "'app.handler' (function handler in app.py) or 'pkg/mod.main'");
    } else if (node && !IsNodeHandler(h)) {
      d_.Add(at, "handler " + Quote(h) + " must be file.export for nodejs, e.g. "
                 "'index.handler' (export handler of index.js) or 'src/app.main'");
    } else {
      for (char c : h) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          d_.Add(at, "handler contains a control character; remove it");
          break;
        }
      }
    }
  }

  void ReadConcurrency(const Entry& e) {
    const std::string example = "concurrency: {max: 10, min_warm: 0}";
    if (!ExpectMap(d_, e, "concurrency", example, false)) return;
    std::optional<int> max, min_warm;
    const Entry* min_entry = nullptr;
    std::vector<Entry> entries = Entries(d_, e.value, "concurrency.", {"max", "min_warm"});
    for (const Entry& c : entries) {
      if (c.key == "max") {
        max = ReadInt(d_, c, "concurrency.max", 1, 1000, "instances");
        if (max) m_.concurrency.max = *max;
      } else {
        min_entry = &c;
        min_warm = ReadInt(d_, c, "concurrency.min_warm", 0, 1000, "instances");
        if (min_warm) m_.concurrency.min_warm = *min_warm;
      }
    }
    if (min_warm && min_entry && *min_warm > m_.concurrency.max) {
      d_.Add(min_entry->value.Mark(),
             "concurrency.min_warm (" + std::to_string(*min_warm) +
                 ") must not exceed concurrency.max (" + std::to_string(m_.concurrency.max) +
                 "); lower min_warm or raise max");
    }
  }

  void ReadEnvironment(const Entry& e) {
    if (!ExpectMap(d_, e, "environment", "environment: {GREETING: hi}", true)) return;
    size_t total = 0;
    // Variable names are free-form, so this walks the mapping itself instead of using Entries.
    std::map<std::string, YAML::Mark> seen;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
      YAML::Node key = it->first, value = it->second;
      if (!key.IsScalar()) {
        d_.Add(key.Mark(), "an environment variable name must be text, " + Got(key) +
                               "; write e.g. 'GREETING: hi'");
        continue;
      }
      const std::string& name = key.Scalar();
      auto [first, inserted] = seen.emplace(name, key.Mark());
      if (!inserted) {
        d_.Add(key.Mark(), "duplicate environment variable '" + name + "' (first set on line " +
                               std::to_string(first->second.line + 1) +
                               "); keep only one of them");
        continue;
      }
      if (!IsIdentifier(name, false)) {
        d_.Add(key.Mark(), "environment variable name " + Quote(name) +
                               " is not valid; use letters, digits and '_', not starting with a "
                               "digit, e.g. 'MY_SETTING'");
        continue;
      }
      if (kReservedVariables.count(name) != 0 || name.rfind(kReservedVariablePrefix, 0) == 0 ||
          name.rfind(kReservedNimbusPrefix, 0) == 0) {
        d_.Add(key.Mark(), "environment variable '" + name +
                               "' is reserved: nimbus sets it for every instance; choose "
                               "another name");
        continue;
      }
      if (value.IsNull()) {
        d_.Add(key.Mark(), "environment variable '" + name + "' has no value; write " + name +
                               ": \"\" for an empty value");
        continue;
      }
      if (!value.IsScalar()) {
        d_.Add(value.Mark(), "environment variable '" + name +
                                 "' must be text, a number or a boolean, " + Got(value) +
                                 "; quote it to pass structured data, e.g. '{\"a\": 1}'");
        continue;
      }
      const std::string& text = value.Scalar();
      if (text.find('\0') != std::string::npos) {
        d_.Add(value.Mark(), "environment variable '" + name +
                                 "' contains a NUL character, which no process environment can hold");
        continue;
      }
      if (!IsValidUtf8(text)) {
        d_.Add(value.Mark(), "environment variable '" + name + "' is not valid UTF-8 text");
        continue;
      }
      total += name.size() + text.size();
      m_.environment[name] = text;
    }
    if (total > kMaxEnvironmentBytes) {
      d_.Add(e.value.Mark(), "environment is " + std::to_string(total) +
                                 " bytes (names plus values); the limit is 4096 bytes, as on "
                                 "Lambda; put large settings in a file in the package");
    }
  }

  void ReadHttp(const Entry& e) {
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
      d_.Add(e.value.Mark(), "http must be a list of routes, " + Got(e.value) +
                                 "; write e.g. 'http: [{method: GET, path: /hello}]'");
      return;
    }
    struct Seen {
      Route route;
      int line;
    };
    std::map<std::string, Seen> shapes;  // "METHOD shape" -> first route
    for (const YAML::Node& item : e.value) {
      if (!item.IsMap()) {
        d_.Add(item.Mark(), "a route must be a mapping with method and path, " + Got(item) +
                                "; write e.g. '- {method: GET, path: /hello}'");
        continue;
      }
      std::optional<std::string> method;
      std::optional<std::pair<std::string, std::string>> path;  // as written, and its shape
      std::optional<bool> async = false;
      bool has_method = false, has_path = false;
      for (const Entry& r : Entries(d_, item, "http.", kRouteKeys, kRouteAliases)) {
        if (r.key == "method") {
          has_method = true;
          method = ReadMethod(r);
        } else if (r.key == "path") {
          has_path = true;
          path = ReadPath(r);
        } else {
          async = ReadBool(r, "http.async", "async: true");
        }
      }
      if (!has_method) d_.Add(item.Mark(), "route is missing 'method'; add e.g. 'method: GET' (or ANY)");
      if (!has_path) d_.Add(item.Mark(), "route is missing 'path'; add e.g. 'path: /hello'");
      if (!method || !path || !async) continue;
      Route route{*method, path->first, *async};
      std::string shape = route.method + " " + path->second;
      int line = item.Mark().line + 1;
      auto [first, inserted] = shapes.emplace(shape, Seen{route, line});
      if (!inserted) {
        const Route& f = first->second.route;
        std::string m = "route " + route.method + " " + route.path;
        m += f.path == route.path ? " is listed twice (first on line "
                                  : " matches the same requests as " + f.method + " " + f.path +
                                        " (line ";
        m += std::to_string(first->second.line) + "); remove one of them";
        d_.Add(item.Mark(), m);
        continue;
      }
      m_.http.push_back(std::move(route));
    }
  }

  // Method and path follow the route grammar (manifest/route_grammar.h) that the route table
  // compiles too, so a route accepted here is one the gateway can serve.
  std::optional<std::string> ReadMethod(const Entry& r) {
    std::optional<std::string> v = ReadText(d_, r, "http.method", "method: GET");
    if (!v) return std::nullopt;
    Result<size_t> m = ParseRouteMethod(*v);
    if (!m.ok()) {
      d_.Add(r.value.Mark(), "method " + Quote(*v) + " " + m.status().message());
      return std::nullopt;
    }
    // Method names are case-insensitive here; stored upper-case as HTTP sends them.
    return std::string(kRouteMethods[*m]);
  }

  // The path as written, and its shape (RouteShape) for finding duplicates.
  std::optional<std::pair<std::string, std::string>> ReadPath(const Entry& r) {
    std::optional<std::string> v = ReadText(d_, r, "http.path", "path: /hello/{name}");
    if (!v) return std::nullopt;
    Result<std::vector<RouteSegment>> segments = ParseRoutePath(*v);
    if (!segments.ok()) {
      d_.Add(r.value.Mark(), "path " + Quote(*v) + " " + segments.status().message());
      return std::nullopt;
    }
    return std::pair(*v, RouteShape(*segments));
  }

  void ReadAuth(const Entry& e) {
    std::optional<std::string> v = ReadText(d_, e, "auth", "auth: none");
    if (!v) return;
    if (*v == "none") {
      m_.auth = Auth::kNone;
    } else if (*v == "key") {
      m_.auth = Auth::kKey;
      NotSupportedYet(e.value.Mark(), "'auth: key' is not supported yet; remove it or write "
                                      "'auth: none' (API keys arrive with the gateway)");
    } else {
      // `nimbus keys` does not exist yet, so the message does not offer `key` as a fix.
      d_.Add(e.value.Mark(), "auth " + Quote(*v) + " is not supported; use none (public); key "
                             "(callers send an API key) is not supported yet");
    }
  }

  void ReadRateLimit(const Entry& e) {
    const std::string example = "rate_limit: {rps: 100, burst: 200, per: client}";
    if (!ExpectMap(d_, e, "rate_limit", example, false)) return;
    RateLimit rl;
    bool has_rps = false, has_burst = false, ok = true;
    for (const Entry& c : Entries(d_, e.value, "rate_limit.", {"rps", "burst", "per"})) {
      if (c.key == "rps") {
        has_rps = true;
        std::optional<double> v = ReadNumber(d_, c, "rate_limit.rps", 0, false, "requests per second");
        ok = ok && v.has_value();
        rl.rps = v.value_or(0);
      } else if (c.key == "burst") {
        has_burst = true;
        std::optional<double> v = ReadNumber(d_, c, "rate_limit.burst", 1, true, "requests");
        ok = ok && v.has_value();
        rl.burst = v.value_or(0);
      } else {
        std::optional<std::string> v = ReadText(d_, c, "rate_limit.per", "per: client");
        if (v && *v == "client") {
          rl.per = RateLimit::Per::kClient;
        } else if (v && *v == "function") {
          rl.per = RateLimit::Per::kFunction;
        } else {
          ok = false;
          if (v) {
            d_.Add(c.value.Mark(), "rate_limit.per " + Quote(*v) + " is not supported; use client "
                                   "(a limit per caller) or function (one limit shared by all)");
          }
        }
      }
    }
    if (!has_rps) {
      d_.Add(e.value.Mark(), "rate_limit is missing 'rps'; add e.g. 'rps: 100' (requests per second)");
      ok = false;
    }
    if (!ok) return;
    if (!has_burst) rl.burst = std::max(1.0, 2 * rl.rps);
    m_.rate_limit = rl;
    NotSupportedYet(e.key_node.Mark(), "'rate_limit' is not supported yet; remove it (rate limits "
                                       "arrive with the gateway)");
  }

  // Either the expression alone (UTC, missed firings caught up once) or a mapping with
  // expression, timezone and missed.
  void ReadSchedule(const Entry& e) {
    const std::string example = "schedule: rate(5 minutes)";
    if (e.value.IsSequence()) {
      d_.Add(e.value.Mark(), "schedule must be text or a mapping, " + Got(e.value) +
                                 "; write e.g. '" + example + "' or 'schedule: {expression: "
                                 "\"cron(0 9 * * ? *)\", timezone: Europe/Copenhagen}'");
      return;
    }
    if (!e.value.IsMap()) {
      std::optional<std::string> v = ReadText(d_, e, "schedule", example);
      if (v && CheckExpression(e.value.Mark(), "schedule", *v)) m_.schedule = Schedule{*v};
      return;
    }
    Schedule schedule;
    bool has_expression = false, ok = true;
    for (const Entry& c : Entries(d_, e.value, "schedule.", kScheduleKeys, kScheduleAliases)) {
      if (c.key == "expression") {
        has_expression = true;
        std::optional<std::string> v =
            ReadText(d_, c, "schedule.expression", "expression: rate(5 minutes)");
        ok = v && CheckExpression(c.value.Mark(), "schedule.expression", *v) && ok;
        schedule.expression = v.value_or("");
      } else if (c.key == "timezone") {
        std::optional<std::string> v = ReadTimeZone(c);
        ok = ok && v.has_value();
        schedule.timezone = v.value_or("");
      } else {
        std::optional<std::string> v = ReadText(d_, c, "schedule.missed", "missed: skip");
        if (v && *v == "once") {
          schedule.missed = Schedule::Missed::kOnce;
        } else if (v && *v == "skip") {
          schedule.missed = Schedule::Missed::kSkip;
        } else {
          ok = false;
          if (v) {
            d_.Add(c.value.Mark(), "schedule.missed " + Quote(*v) + " is not supported; use once "
                                   "(firings missed while the daemon was down fire once at "
                                   "start-up, the default) or skip (they are not caught up)");
          }
        }
      }
    }
    if (!has_expression) {
      d_.Add(e.value.Mark(), "schedule is missing 'expression'; add e.g. 'expression: rate(5 "
                             "minutes)' or 'expression: \"cron(0 9 * * ? *)\"'");
      return;
    }
    if (ok) m_.schedule = std::move(schedule);
  }

  bool CheckExpression(const YAML::Mark& at, const std::string& what, const std::string& expr) {
    Status st = CheckScheduleExpression(expr);
    if (!st.ok()) d_.Add(at, what + " " + Quote(expr) + ": " + st.message());
    return st.ok();
  }

  // The shape of an IANA zone name ("Europe/Copenhagen", "UTC", "Etc/GMT+1"). Whether the zone
  // exists is the daemon's question, at deploy time, against its own zone database.
  std::optional<std::string> ReadTimeZone(const Entry& c) {
    std::optional<std::string> v =
        ReadText(d_, c, "schedule.timezone", "timezone: Europe/Copenhagen");
    if (!v) return std::nullopt;
    const std::string& z = *v;
    if (z.size() > kMaxTimeZoneLength) {
      d_.Add(c.value.Mark(), "schedule.timezone is " + std::to_string(z.size()) +
                                 " characters long; the limit is " +
                                 std::to_string(kMaxTimeZoneLength) +
                                 ", write an IANA zone name such as 'Europe/Copenhagen'");
      return std::nullopt;
    }
    bool ok = !z.empty() && z.front() != '/' && z.back() != '/' &&
              z.find("..") == std::string::npos;
    for (char c : z) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '+' && c != '-' &&
          c != '/') {
        ok = false;
      }
    }
    if (!ok) {
      d_.Add(c.value.Mark(), "schedule.timezone " + Quote(z) + " is not an IANA time zone name; "
                             "write e.g. 'Europe/Copenhagen', 'America/New_York' or 'UTC' "
                             "(letters, digits, '_', '+' and '-', with '/' between parts)");
      return std::nullopt;
    }
    return z;
  }

  void ReadAsync(const Entry& e) {
    const std::string example = "async: {retries: 1, max_event_age: 3600, on_failure: dlq}";
    if (e.value.IsScalar() && BoolValue(e.value.Scalar())) {
      // `async: true` belongs on a route; say so rather than only "must be a mapping".
      d_.Add(e.value.Mark(), "async must be a mapping of settings for asynchronous invocations, " +
                                 Got(e.value) + "; write e.g. '" + example +
                                 "' (to answer an HTTP route with 202 at once, write 'async: "
                                 "true' in the route)");
      return;
    }
    if (!ExpectMap(d_, e, "async", example, false)) return;
    for (const Entry& c : Entries(d_, e.value, "async.", kAsyncKeys, kAsyncAliases)) {
      if (c.key == "retries") {
        m_.async.retries = ReadInt(d_, c, "async.retries", 0, 2, "retries after a failed attempt")
                               .value_or(m_.async.retries);
      } else if (c.key == "max_event_age") {
        m_.async.max_event_age_s = ReadEventAge(c).value_or(m_.async.max_event_age_s);
      } else if (c.key == "on_success") {
        m_.async.on_success = ReadDestination(c, false).value_or(m_.async.on_success);
      } else {
        m_.async.on_failure = ReadDestination(c, true).value_or(m_.async.on_failure);
      }
    }
  }

  // Whole seconds, or one number with the unit s, m or h ("90s", "30m", "6h").
  std::optional<int> ReadEventAge(const Entry& c) {
    const std::string rule =
        "async.max_event_age must be between " + std::to_string(kMinEventAgeS) + " and " +
        std::to_string(kMaxEventAgeS) + " seconds (1 minute to 6 hours), written as whole "
        "seconds or as a duration such as '90s', '30m' or '6h'";
    if (c.value.IsNull()) {
      d_.Add(c.key_node.Mark(), rule + ", got nothing");
      return std::nullopt;
    }
    if (!c.value.IsScalar()) {
      d_.Add(c.value.Mark(), rule + ", " + Got(c.value));
      return std::nullopt;
    }
    const std::string& s = c.value.Scalar();
    std::string_view digits = s;
    long long unit = 1;
    if (!s.empty() && (s.back() == 's' || s.back() == 'm' || s.back() == 'h')) {
      unit = s.back() == 'h' ? 3600 : s.back() == 'm' ? 60 : 1;
      digits.remove_suffix(1);
    }
    long long v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    const bool number = !digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0])) &&
                        ptr == digits.data() + digits.size();
    if (!number || ec != std::errc() || v > kMaxEventAgeS) {
      d_.Add(c.value.Mark(), rule + ", " + Got(c.value));
      return std::nullopt;
    }
    v *= unit;
    if (v < kMinEventAgeS || v > kMaxEventAgeS) {
      d_.Add(c.value.Mark(), rule + ", " + Got(c.value) +
                                 (unit == 1 ? "" : " (" + std::to_string(v) + " seconds)"));
      return std::nullopt;
    }
    return static_cast<int>(v);
  }

  // on_success: "" or a function name. on_failure: "" or dlq (the dead-letter store) or a
  // function name. Naming this function itself is allowed, as on Lambda.
  std::optional<std::string> ReadDestination(const Entry& c, bool failure) {
    const std::string what = failure ? "async.on_failure" : "async.on_success";
    std::optional<std::string> v =
        ReadText(d_, c, what, failure ? "on_failure: dlq" : "on_success: audit");
    if (!v) return std::nullopt;
    if (v->empty() || IsValidFunctionName(*v)) {
      if (!failure && *v == kDeadLetters) {
        d_.Add(c.value.Mark(), "async.on_success takes a function name; dead letters are for "
                               "failures (write 'on_failure: dlq')");
        return std::nullopt;
      }
      return v;
    }
    d_.Add(c.value.Mark(), what + " " + Quote(*v) + " is not a function name; " +
                               std::string(kFunctionNameRule) + ", e.g. 'audit'" +
                               (failure ? ", or dlq for the dead-letter store" : ""));
    return std::nullopt;
  }

  // A key (or value) the parser reads and validates but nimbus does not act on yet. It is
  // refused rather than accepted and ignored, and only once its value is valid, so a mistyped
  // value still gets its precise error first.
  void NotSupportedYet(const YAML::Mark& at, const std::string& message) { d_.Add(at, message); }

  // The size of the instance's private /tmp, in MiB, with Lambda's bounds.
  void ReadEphemeralStorage(const Entry& e) {
    m_.ephemeral_storage_mb =
        ReadInt(d_, e, "ephemeral_storage", 512, 10240, "MiB").value_or(m_.ephemeral_storage_mb);
  }

  void ReadNetwork(const Entry& e) {
    std::optional<std::string> v = ReadText(d_, e, "network", "network: none");
    if (!v) return;
    if (*v == "egress") {
      m_.network = Network::kEgress;
    } else if (*v == "none") {
      m_.network = Network::kNone;
    } else {
      d_.Add(e.value.Mark(), "network " + Quote(*v) + " is not supported; use egress (outbound "
                             "connections allowed, the default) or none (only the instance's "
                             "own loopback)");
    }
  }

  void ReadFilesystems(const Entry& e) {
    const std::string example = "filesystems: [{host: /srv/shared, mount: /mnt/shared}]";
    if (e.value.IsNull()) return;
    if (!e.value.IsSequence()) {
      d_.Add(e.value.Mark(), "filesystems must be a list of host directories to mount, " +
                                 Got(e.value) + "; write e.g. '" + example + "'");
      return;
    }
    std::map<std::string, int> seen;  // mount path -> line of its first use
    size_t count = 0;
    for (const YAML::Node& item : e.value) {
      if (++count == kMaxFilesystems + 1) {
        d_.Add(item.Mark(), "filesystems has more than " + std::to_string(kMaxFilesystems) +
                                " entries; the limit is " + std::to_string(kMaxFilesystems) +
                                ": share a common parent directory instead");
      }
      if (!item.IsMap()) {
        d_.Add(item.Mark(), "a filesystem must be a mapping with host and mount, " + Got(item) +
                                "; write e.g. '- {host: /srv/shared, mount: /mnt/shared}'");
        continue;
      }
      Filesystem mount;
      bool has_host = false, has_mount = false, ok = true;
      const Entry* mount_entry = nullptr;
      std::vector<Entry> entries =
          Entries(d_, item, "filesystems.", kFilesystemKeys, kFilesystemAliases);
      for (const Entry& f : entries) {
        if (f.key == "host") {
          has_host = true;
          std::optional<std::string> v = ReadHostPath(f);
          ok = ok && v.has_value();
          mount.host = v.value_or("");
        } else if (f.key == "mount") {
          has_mount = true;
          mount_entry = &f;
          std::optional<std::string> v = ReadMountPath(f);
          ok = ok && v.has_value();
          mount.mount = v.value_or("");
        } else {
          std::optional<bool> v = ReadBool(f, "filesystems.read_only", "read_only: true");
          ok = ok && v.has_value();
          mount.read_only = v.value_or(false);
        }
      }
      if (!has_host) {
        d_.Add(item.Mark(), "filesystem is missing 'host'; add e.g. 'host: /srv/shared' (the "
                            "host directory to share)");
      }
      if (!has_mount) {
        d_.Add(item.Mark(), "filesystem is missing 'mount'; add e.g. 'mount: /mnt/shared' "
                            "(where the instance sees it)");
      }
      if (!ok || !has_host || !has_mount) continue;
      auto [first, inserted] = seen.emplace(mount.mount, item.Mark().line + 1);
      if (!inserted) {
        d_.Add(mount_entry->value.Mark(),
               "filesystems.mount " + Quote(mount.mount) + " is used twice (first on line " +
                   std::to_string(first->second) + "); give each filesystem its own mount");
        continue;
      }
      m_.filesystems.push_back(std::move(mount));
    }
  }

  // An absolute, normalised host directory other than '/'. Whether it exists is checked by
  // the daemon at deploy time, on its own machine.
  std::optional<std::string> ReadHostPath(const Entry& f) {
    std::optional<std::string> v = ReadText(d_, f, "filesystems.host", "host: /srv/shared");
    if (!v) return std::nullopt;
    const YAML::Mark at = f.value.Mark();
    const std::string& p = *v;
    for (char c : p) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        d_.Add(at, "filesystems.host contains a control character; remove it");
        return std::nullopt;
      }
    }
    if (p.empty() || p.front() != '/') {
      d_.Add(at, "filesystems.host " + Quote(p) + " must be an absolute path, e.g. "
                 "'/srv/shared'");
      return std::nullopt;
    }
    std::string normal;
    bool climbs = false;
    for (std::string_view part : SplitAny(std::string_view(p).substr(1), "/")) {
      if (part.empty() || part == ".") continue;
      if (part == "..") climbs = true;
      normal += "/" + std::string(part);
    }
    if (climbs) {
      d_.Add(at, "filesystems.host " + Quote(p) + " must not contain '..'; write the "
                 "directory's path without it");
      return std::nullopt;
    }
    if (normal.empty()) {
      d_.Add(at, "filesystems.host '/' would share the host's whole filesystem; name a "
                 "directory, e.g. '/srv/shared'");
      return std::nullopt;
    }
    if (normal != p) {
      d_.Add(at, "filesystems.host " + Quote(p) + " is not in normal form; write " +
                     Quote(normal));
      return std::nullopt;
    }
    return p;
  }

  // /mnt/NAME, NAME from [A-Za-z0-9._-], not '.' or '..'.
  std::optional<std::string> ReadMountPath(const Entry& f) {
    std::optional<std::string> v = ReadText(d_, f, "filesystems.mount", "mount: /mnt/shared");
    if (!v) return std::nullopt;
    constexpr std::string_view kPrefix = "/mnt/";
    const std::string& p = *v;
    bool ok = p.size() > kPrefix.size() && p.compare(0, kPrefix.size(), kPrefix) == 0;
    const std::string name = ok ? p.substr(kPrefix.size()) : "";
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
        ok = false;
      }
    }
    if (name == "." || name == "..") ok = false;
    if (!ok) {
      d_.Add(f.value.Mark(), "filesystems.mount " + Quote(p) + " must be /mnt/NAME, NAME made "
                             "of letters, digits, '.', '_' and '-' (not '.' or '..'), e.g. "
                             "'/mnt/shared'");
      return std::nullopt;
    }
    return p;
  }

  // true or false, as YAML 1.2 writes them (True and TRUE too); yes/no/on/off are refused
  // because YAML 1.1 and 1.2 tools disagree on them.
  std::optional<bool> ReadBool(const Entry& f, const std::string& what,
                               const std::string& example) {
    std::string rule = what + " must be true or false";
    if (f.value.IsNull()) {
      d_.Add(f.key_node.Mark(), rule + ", got nothing; write e.g. '" + example + "'");
      return std::nullopt;
    }
    if (f.value.IsScalar()) {
      if (std::optional<bool> b = BoolValue(f.value.Scalar())) return b;
    }
    d_.Add(f.value.Mark(), rule + ", " + Got(f.value));
    return std::nullopt;
  }

  void ReadDescription(const Entry& e) {
    std::optional<std::string> v = ReadText(d_, e, "description", "description: greets people");
    if (!v) return;
    size_t chars = Utf8Length(*v);
    if (chars > kMaxDescriptionChars) {
      d_.Add(e.value.Mark(), "description is " + std::to_string(chars) +
                                 " characters long; the limit is 256, shorten it");
      return;
    }
    m_.description = *v;
  }

  Diagnostics& d_;
  Manifest m_;
  bool has_name_ = false, has_runtime_ = false, runtime_invalid_ = false;
  std::optional<Entry> handler_;
};

// yaml-cpp's parse of the text, or the located syntax error.
struct Loaded {
  std::vector<YAML::Node> docs;
  std::optional<YAML::ParserException> error;
};

Loaded Load(const std::string& text) {
  Loaded out;
  try {
    out.docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    out.error = e;
  }
  return out;
}

}  // namespace

Result<Manifest> Parse(std::string_view yaml_text, std::string_view file_label) {
  const std::string label(file_label);
  if (yaml_text.size() > kMaxManifestBytes) {
    return Status::InvalidArgument(label + ":1:1: the manifest is " +
                                   std::to_string(yaml_text.size()) +
                                   " bytes; the limit is 1 MiB, a function.yaml needs a few "
                                   "hundred bytes");
  }
  try {
    std::string text(yaml_text);
    Loaded loaded = Load(text);
    std::optional<RepairedText> repair;
    if (loaded.error) {
      repair = QuoteFlowPaths(text);
      Loaded retry = repair ? Load(repair->text) : Loaded{};
      if (!repair || retry.error) {
        // After the repair, the remaining error is the one the user has to fix (the first
        // one may just be an unquoted path the repair handles).
        const YAML::ParserException& e = repair ? *retry.error : *loaded.error;
        Diagnostics d(label, repair ? &*repair : nullptr);
        d.Add(e.mark, "YAML syntax error: " + e.msg +
                          "; check the indentation, quotes and brackets here");
        return d.ToStatus();
      }
      loaded = std::move(retry);
    }
    Diagnostics d(label, repair ? &*repair : nullptr);
    if (loaded.docs.empty() || loaded.docs[0].IsNull()) {
      d.Add(YAML::Mark(), "the manifest is empty; start with e.g. 'name: hello', "
                          "'runtime: python3' and 'handler: app.handler', one per line");
      return d.ToStatus();
    }
    if (loaded.docs.size() > 1) {
      d.Add(loaded.docs[1].Mark(), "a second YAML document starts here; a function.yaml holds "
                                   "one function, so remove the extra '---' and what follows");
      return d.ToStatus();
    }
    const YAML::Node& root = loaded.docs[0];
    if (!root.IsMap()) {
      d.Add(root.Mark(), "the top level must be a mapping of keys such as 'name: hello', " +
                             Got(root));
      return d.ToStatus();
    }
    Manifest m = ManifestReader(d).Read(root);
    if (!d.empty()) return d.ToStatus();
    return m;
  } catch (const std::exception& e) {
    // yaml-cpp documents no throws on the calls made above; this is a safety net so that a
    // surprise stays a value at this boundary.
    return Status::Internal(label + ": unexpected error while reading the manifest: " + e.what());
  }
}

Result<Manifest> ParseFile(const std::filesystem::path& file) {
  const std::string label = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return Status::NotFound(label + ": no such file; a function directory needs a "
                                    "function.yaml (see docs/manifest.md)");
  }
  if (std::filesystem::is_directory(file, ec)) {
    return Status::InvalidArgument(label + ": is a directory; name the function.yaml inside it");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Io(label + ": cannot open the file for reading; check its permissions");
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxManifestBytes) break;  // Parse reports the size
  }
  if (in.bad()) return Status::Io(label + ": reading the file failed");
  return Parse(text, label);
}

}  // namespace nimbus::manifest
