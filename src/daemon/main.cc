// The nimbus executable: `nimbus serve ...` runs the daemon, every other command is the CLI.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) {
    nimbus::daemon::ServeOptions options;
    std::vector<std::string> args(argv + 2, argv + argc);
    if (auto exit_code = nimbus::daemon::ParseServeFlags(args, options, std::cout, std::cerr)) return *exit_code;
    return nimbus::daemon::Serve(options);
  }
  return nimbus::cli::RunCli(argc, argv);
}
