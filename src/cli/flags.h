// Command-line parsing for the CLI: each command declares its positional arguments and flags
// once (name, value, help), and the same declaration drives parsing, usage lines and --help.
// Flags take "--flag VALUE" or "--flag=VALUE" and may appear before, between or after the
// positional arguments; "--" ends flag parsing.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace nimbus::cli {

struct FlagSpec {
  std::string name;        // without dashes: "payload"
  std::string value_name;  // "" for a boolean flag, else shown in usage: "JSON|@FILE|-"
  std::string help;
  bool required = false;
};

struct PositionalSpec {
  std::string name;  // "NAME"
  std::string help;
};

struct CommandSpec {
  std::string name;     // "invoke"
  std::string summary;  // one line for `nimbus --help`
  std::vector<PositionalSpec> positionals;  // all required, in order
  std::vector<FlagSpec> flags;              // the command's own; global flags are added
  std::string details;                      // extra paragraph(s) for --help, may be empty
};

// The flags every command accepts.
const std::vector<FlagSpec>& GlobalFlags();

struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::string> flags;  // boolean flags map to ""

  bool Has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& fallback = "") const {
    auto it = flags.find(flag);
    return it == flags.end() ? fallback : it->second;
  }
};

// Parses args (the words after the command name). InvalidArgument names the offending word
// and what was expected. "--help"/"-h" is recorded as flag "help" and skips the checks for
// missing arguments, so `nimbus invoke --help` works without a NAME.
Result<ParsedArgs> ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args);

// "nimbus invoke NAME [--payload JSON|@FILE|-] ..." (global flags left out for brevity).
std::string UsageLine(const CommandSpec& spec);

// The full --help text.
void PrintCommandHelp(const CommandSpec& spec, std::ostream& out);

}  // namespace nimbus::cli
