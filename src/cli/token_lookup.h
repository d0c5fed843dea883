// Which admin API token the CLI sends (as `Authorization: Bearer TOKEN` on every /v1 request),
// looked up in this order:
//   1. --token TOKEN
//   2. $NIMBUS_TOKEN
//   3. the token file a daemon on this machine registered for the endpoint's address
//      ($HOME/.config/nimbus/endpoints/HOST_PORT, see endpoint_registry.h)
//   4. ./.nimbus/admin.token (the token of `nimbus serve` started here with its default
//      --data-dir), when readable
// The Invoke API never gets the admin token.
//
// Threading: free functions without shared state; safe from any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cli/cli.h"
#include "cli/http_client.h"

namespace nimbus::cli {

struct AdminToken {
  std::string token;
  // Where it came from, for messages: "--token", "NIMBUS_TOKEN", or the token file's path
  // (with the registration it was found through).
  std::string source;
};

// The token registered for `endpoint` under `home`. A daemon registers the host of its
// --listen address, so besides the endpoint's own host this also tries, for "localhost",
// 127.0.0.1 and ::1, and for any loopback endpoint a daemon listening on 0.0.0.0 or ::.
// Registrations whose token file cannot be read (stale ones) are skipped.
std::optional<AdminToken> FindRegisteredToken(const Endpoint& endpoint, const std::filesystem::path& home);

// The token a daemon on this machine registered for `endpoint_url` (e.g.
// "http://127.0.0.1:8080"), looked up under $HOME; nullopt when there is none or the URL does
// not parse.
std::optional<std::string> FindTokenForEndpoint(std::string_view endpoint_url);

// The whole lookup order above: `flag` is the value of --token ("" when not given); the
// environment supplies NIMBUS_TOKEN, HOME and the ./.nimbus/admin.token path.
std::optional<AdminToken> ResolveAdminToken(const std::string& flag, const CliEnvironment& env,
                                            const Endpoint& endpoint);

}  // namespace nimbus::cli
