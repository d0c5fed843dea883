// nimbus-cli-dev: the CLI alone, for development; the shipped `nimbus` binary dispatches
// `serve` to the daemon and everything else to the same RunCli.
#include "cli/cli.h"

int main(int argc, char** argv) { return nimbus::cli::RunCli(argc, argv); }
