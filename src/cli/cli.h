// The `nimbus` command-line client: every subcommand except `serve` (which the top-level main
// hands to the daemon). It talks to the daemon's admin and Invoke APIs (docs/api.md) over
// HTTP; docs/cli.md is the user-facing reference and lists the exit codes below.
//
// Threading: RunCli is called once per process from main; the testable overload keeps no
// global state, so tests may call it repeatedly (not concurrently with changing cwd).
#pragma once

#include <filesystem>
#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace nimbus::cli {

// Exit statuses, stable for scripts.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,         // the server refused (4xx/5xx other than 404, 401 for a missing or
                           // wrong token included), or a local step failed
  kExitUsage = 2,          // unknown command or flag, missing or malformed argument
  kExitNotFound = 3,       // the function, version, alias or route does not exist (404)
  kExitFunctionError = 4,  // `invoke`: the function ran and returned an error
  kExitUnreachable = 5,    // no answer from the daemon (not running, wrong --endpoint, timeout)
};

// The exit status for an HTTP answer: 2xx -> 0, 404 -> 3, any other -> 1.
int ExitCodeForHttpStatus(int http_status);

// What the CLI reads from its surroundings, injectable for tests.
struct CliEnvironment {
  std::string endpoint;             // $NIMBUS_ENDPOINT, "" when unset
  std::string token;                // $NIMBUS_TOKEN, "" when unset
  std::filesystem::path home;       // $HOME, where daemons register their tokens; "" to skip
  // The last place the admin token is looked for: ./.nimbus/admin.token for the real CLI;
  // "" (tests) to skip. See token_lookup.h for the whole order.
  std::filesystem::path local_token_file;
  std::string share_dir;            // $NIMBUS_SHARE_DIR, "" when unset
  std::filesystem::path exe_path;   // /proc/self/exe, for finding share/nimbus beside it
  // `logs --follow` calls this between polls; it sleeps a second and returns true, and a test
  // returns false to stop following.
  std::function<bool()> wait_for_next_poll;
};

// argv[0] is the program name; argv[1] the command.
int RunCli(int argc, char** argv);

// args excludes the program name.
int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
           std::ostream& err, const CliEnvironment& env);

}  // namespace nimbus::cli
