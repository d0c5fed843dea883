// Command-line parsing for the CLI: each command declares its positional arguments and flags
// once (name, value, help), and the same declaration drives parsing, usage lines and --help.
// The parsing itself, and its syntax, is the one flag parser in common/flags.h, shared with
// `nimbus serve`; this file adds the flags every command accepts and the CLI's usage and help.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/status.h"

namespace nimbus::cli {

using nimbus::FlagSpec;
using nimbus::ParsedArgs;
using nimbus::PositionalSpec;

struct CommandSpec {
  std::string name;     // "invoke"
  std::string summary;  // one line for `nimbus --help`
  std::vector<PositionalSpec> positionals;  // all required, in order
  std::vector<FlagSpec> flags;              // the command's own; global flags are added
  std::string details;                      // extra paragraph(s) for --help, may be empty
};

// The flags every command accepts.
const std::vector<FlagSpec>& GlobalFlags();

// Parses args (the words after the command name) with the command's own flags and the global
// ones (common/flags.h's ParseFlags). InvalidArgument names the offending word and what was
// expected. "--help"/"-h" is recorded as flag "help" and skips the checks for missing
// arguments, so `nimbus invoke --help` works without a NAME.
Result<ParsedArgs> ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args);

// "nimbus invoke NAME [--payload JSON|@FILE|-] ..." (global flags left out for brevity).
std::string UsageLine(const CommandSpec& spec);

// The full --help text.
void PrintCommandHelp(const CommandSpec& spec, std::ostream& out);

}  // namespace nimbus::cli
