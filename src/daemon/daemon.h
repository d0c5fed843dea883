// `nimbus serve`: wires the libraries into a running node. This file only owns start-up order,
// shutdown order and the flags; every behaviour lives in the role libraries.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace nimbus::daemon {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = ".nimbus";
  std::string share_dir;  // <share>/runtimes/...; default: next to the executable
  size_t threads = 0;     // event loops; 0 = one per core
  bool sandbox = true;    // confine instances; false only with --insecure-no-sandbox
  int init_timeout_s = 10;  // a runtime's start-up, up to its first /next
  // Asynchronous invocations (docs/async.md).
  size_t async_max_payload = 256 * 1024;     // largest Event payload
  int64_t async_retry_base_ms = 60'000;      // the first retry's wait; later ones double
  int64_t idempotency_window_ms = 3'600'000; // how long an idempotency key is remembered
};

// "250ms", "30s", "5m", "1h" or a bare number of seconds, in milliseconds; nullopt if malformed.
std::optional<int64_t> ParseDurationMs(std::string_view text);

// Parses `nimbus serve` flags. Returns std::nullopt to go on serving, or the exit code to leave
// with (0 after --help, 2 for a usage error, which it has printed).
std::optional<int> ParseServeFlags(int argc, char** argv, ServeOptions& out);

// Runs until SIGTERM or SIGINT. Returns the process exit code.
int Serve(const ServeOptions& options);

// <dir of this executable>/share/nimbus, or $NIMBUS_SHARE_DIR.
std::string DefaultShareDir();

// The directory of the running executable (nimbus-init sits beside nimbus).
std::filesystem::path DefaultExecutableDir();

}  // namespace nimbus::daemon
