// The flags of `nimbus serve`: ServeOptions with their defaults, the flag declarations, the
// --help text, and the parsing of each value, all on the one flag parser (common/flags.h) the
// CLI uses too. Every flag is documented in `nimbus serve --help`; docs/running.md lists them.
//
// Errors: a usage error (unknown flag, missing value, a value out of range, an argument that is
// not a flag) is InvalidArgument with a message that names the flag and says what it wants;
// ParseServeFlags prints it with a pointer to `nimbus serve --help` and exit status 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/flags.h"
#include "common/status.h"

namespace nimbus::daemon {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = ".nimbus";
  std::string share_dir;  // <share>/runtimes/...; default: next to the executable
  size_t threads = 0;     // event loops; 0 = one per core
  bool sandbox = true;    // confine instances; false only with --insecure-no-sandbox
  int init_timeout_s = 10;  // a runtime's start-up, up to its first /next
  size_t primed_per_runtime = 2;  // primed python3 and nodejs instances kept (docs/sandbox.md)
  // Asynchronous invocations (docs/async.md).
  size_t async_max_payload = 256 * 1024;     // largest Event payload
  int64_t async_retry_base_ms = 60'000;      // the first retry's wait; later ones double
  int64_t idempotency_window_ms = 3'600'000; // how long an idempotency key is remembered
};

// --listen's ADDR:PORT: an IPv4 address, or an IPv6 one in brackets (as in a URL), and a decimal
// port up to 65535 without leading zeros (0: any free port). `host` is the address without
// brackets. nullopt if malformed.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
std::optional<ListenAddress> ParseListen(std::string_view text);

// "250ms", "30s", "5m", "1h" or a bare number of seconds, in milliseconds; nullopt if malformed.
std::optional<int64_t> ParseDurationMs(std::string_view text);

// The flags `nimbus serve` accepts, "help" included.
const std::vector<FlagSpec>& ServeFlags();

// The text `nimbus serve --help` prints.
const std::string& ServeHelp();

struct ServeArgs {
  ServeOptions options;
  bool help = false;  // --help or -h was given: print ServeHelp() and exit 0
};

// Parses the words after `nimbus serve`. InvalidArgument names the flag or word at fault and
// what it wants; an unknown flag gets a "did you mean" when one is close.
Result<ServeArgs> ParseServeArgs(const std::vector<std::string>& args);

// Parses the words after `nimbus serve` into `options`. Returns std::nullopt to go on serving,
// or the exit code to leave with: 0 after printing the help to `out`, 2 after printing a usage
// error and a pointer to `nimbus serve --help` to `err`.
std::optional<int> ParseServeFlags(const std::vector<std::string>& args, ServeOptions& options, std::ostream& out,
                                   std::ostream& err);

}  // namespace nimbus::daemon
