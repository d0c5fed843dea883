// `nimbus serve`: wires the libraries into a running node. This file only owns start-up order
// and shutdown order; the flags are in serve_flags.h, every behaviour in the role libraries.
#pragma once

#include <filesystem>
#include <string>

#include "daemon/serve_flags.h"

namespace nimbus::daemon {

// Runs until SIGTERM or SIGINT. Returns the process exit code.
int Serve(const ServeOptions& options);

// <dir of this executable>/share/nimbus, or $NIMBUS_SHARE_DIR.
std::string DefaultShareDir();

// The directory of the running executable (nimbus-init sits beside nimbus).
std::filesystem::path DefaultExecutableDir();

}  // namespace nimbus::daemon
