// `nimbus serve`: wires the libraries into a running node. This file only owns start-up order,
// shutdown order and the flags; every behaviour lives in the role libraries.
#pragma once

#include <optional>
#include <string>

namespace nimbus::daemon {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = ".nimbus";
  std::string share_dir;  // <share>/runtimes/...; default: next to the executable
  size_t threads = 0;     // event loops; 0 = one per core
  bool cgroups = true;    // enforce memory/pids limits with cgroups when available
};

// Parses `nimbus serve` flags. Returns std::nullopt to go on serving, or the exit code to leave
// with (0 after --help, 2 for a usage error, which it has printed).
std::optional<int> ParseServeFlags(int argc, char** argv, ServeOptions& out);

// Runs until SIGTERM or SIGINT. Returns the process exit code.
int Serve(const ServeOptions& options);

// <dir of this executable>/share/nimbus, or $NIMBUS_SHARE_DIR.
std::string DefaultShareDir();

}  // namespace nimbus::daemon
