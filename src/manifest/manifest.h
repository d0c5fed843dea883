// The function manifest (`function.yaml`): its in-memory form and the parser that validates it.
// Every function directory and every deployed package carries one; the CLI parses it before
// packaging and the admin API parses it again on deploy, so both report the same errors.
// docs/manifest.md is the user-facing reference for every key; keep the two in step.
//
// Errors are Status::InvalidArgument whose message names the file, line and column and says
// how to fix the problem ("FILE:LINE:COL: what is wrong; how to fix it"). When a file has
// several problems, each gets its own line in the message, in document order.
//
// Not supported yet: `auth: key` and `rate_limit` are parsed and validated (a mistyped value
// gets its precise error), then refused with "... is not supported yet; remove it", so no
// manifest is accepted with a promise nimbus does not keep. Their fields below stay for when
// they are supported; a parsed Manifest has them at their defaults.
//
// What the parser checks and what it leaves to the daemon: `schedule.timezone` is checked for
// the shape of an IANA zone name only; whether the zone exists is checked at deploy time on
// the daemon's machine, as `filesystems.host` is. Function names in `async` destinations are
// checked here for the shape of a name only.
//
// Threading: free functions without shared state; safe to call from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::manifest {

struct Route {
  std::string method;  // GET POST PUT PATCH DELETE HEAD OPTIONS or ANY, upper-case
  std::string path;    // e.g. /hello/{name}, /hooks/{proxy+}
  // Answered 202 at once with the request id; the function runs through the durable event
  // queue with the function's `async` settings.
  bool async = false;
  friend bool operator==(const Route&, const Route&) = default;
};

struct RateLimit {
  double rps = 0;
  double burst = 0;
  enum class Per { kClient, kFunction } per = Per::kClient;
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

struct Concurrency {
  int max = 10;
  int min_warm = 0;
  friend bool operator==(const Concurrency&, const Concurrency&) = default;
};

enum class Auth { kNone, kKey };

enum class Network { kEgress, kNone };

// When the daemon invokes the function by itself (docs/manifest.md, "schedule").
struct Schedule {
  std::string expression;          // rate(...) or cron(...), validated
  std::string timezone = "UTC";    // IANA zone name; existence checked by the daemon at deploy
  // Firings missed while the daemon was down: kOnce fires one catch-up invocation at start-up,
  // kSkip fires none.
  enum class Missed { kOnce, kSkip } missed = Missed::kOnce;
  friend bool operator==(const Schedule&, const Schedule&) = default;
};

// Asynchronous invocation settings, as Lambda's function event invoke config; docs/async.md
// says what the daemon does with them.
struct AsyncConfig {
  int retries = 2;                 // 0..2, as Lambda's MaximumRetryAttempts
  int max_event_age_s = 21600;     // 60..21600 seconds, as Lambda's MaximumEventAgeInSeconds
  std::string on_success;          // "" or a function name (same name rules as `name`)
  std::string on_failure;          // "" (= the dead-letter store), "dlq", or a function name
  friend bool operator==(const AsyncConfig&, const AsyncConfig&) = default;
};

// A host directory shared with the function's instances (like Lambda's file system mounts).
struct Filesystem {
  std::string host;        // absolute, normalised, not '/'; the daemon checks it at deploy time
  std::string mount;       // where instances see it: /mnt/NAME, unique per manifest
  bool read_only = false;
  friend bool operator==(const Filesystem&, const Filesystem&) = default;
};

struct Manifest {
  std::string name;                                // [a-zA-Z0-9-_]{1,64}
  std::string runtime;                             // python3 | nodejs | provided
  std::string handler;                             // "bootstrap" when omitted for provided
  int memory_mb = 128;                             // 64..10240
  int timeout_s = 3;                               // 1..900
  Concurrency concurrency;                         // max 1..1000, min_warm 0..max
  int keep_alive_s = 60;                           // 1..86400
  std::map<std::string, std::string> environment;  // names and values, <= 4 KB in total
  std::vector<Route> http;                         // in the order written
  Auth auth = Auth::kNone;                         // key: not supported yet
  std::optional<RateLimit> rate_limit;             // not supported yet; burst max(1, 2*rps)
  std::optional<Schedule> schedule;                // none: invoked only when called
  AsyncConfig async;                               // retries and destinations of async events
  Network network = Network::kEgress;              // egress | none
  std::vector<Filesystem> filesystems;             // host directories under /mnt, at most 5
  int ephemeral_storage_mb = 512;                  // private /tmp, 512..10240 MiB
  std::string build;                               // shell command run before packaging
  std::string description;                         // <= 256 characters
  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// Largest manifest accepted; a function.yaml is a few hundred bytes, so anything near this is
// a mistake (or an attack on the admin API), not a manifest.
inline constexpr size_t kMaxManifestBytes = 1 << 20;

// Parses and validates. file_label is how messages name the file, e.g.
// "examples/hello/function.yaml".
Result<Manifest> Parse(std::string_view yaml_text, std::string_view file_label);

// Same text contract, reading the file; the label is the path. A missing file is NotFound,
// an unreadable one Io.
Result<Manifest> ParseFile(const std::filesystem::path& file);

}  // namespace nimbus::manifest
