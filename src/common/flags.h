// The one command-line flag parser of nimbus: the CLI's commands (cli/flags.h) and `nimbus serve`
// (daemon/serve_flags.h) each declare their positional arguments and flags once, as FlagSpec and
// PositionalSpec values, and parse with ParseFlags. The callers turn the words into typed values
// and print usage and help in their own layout.
//
// Syntax: "--flag VALUE" and "--flag=VALUE" are the same; a flag with a value takes the next
// word even when that word starts with a dash ("--payload -"); flags may appear before, between
// or after the positional arguments; "--" ends the flags; "-h" is "--help". Single-dash flags
// other than "-h" are refused, and so is a flag given twice.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus {

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

struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::string> flags;  // boolean flags map to ""

  bool Has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& fallback = "") const {
    auto it = flags.find(flag);
    return it == flags.end() ? fallback : it->second;
  }
};

// What ParseFlags accepts: `command` names the command in messages ("nimbus invoke"); the
// positionals are all required, in order; a flag is looked up in each list of `flag_lists` in
// turn (a command's own flags, then flags every command shares). "-h" is recorded as flag
// "help", which is accepted only when one of the lists declares it. `unknown_flag_hint`, when
// set, is given the unknown flag's name (without dashes) and returns text to append to the
// message, e.g. " (did you mean --listen?)", or "".
struct ArgsSpec {
  std::string command;
  std::vector<PositionalSpec> positionals;
  std::vector<const std::vector<FlagSpec>*> flag_lists;  // not owned; outlive the ArgsSpec
  std::function<std::string(std::string_view name)> unknown_flag_hint;
};

// Parses args (the words after the command name). InvalidArgument names the offending word
// and what was expected: "unknown flag '--paylod' for `nimbus invoke`", "flag '--limit' needs
// a value (N)", "missing NAME for `nimbus invoke`". "--help"/"-h" skips the checks for missing
// positionals and required flags, so `nimbus invoke --help` works without a NAME.
Result<ParsedArgs> ParseFlags(const ArgsSpec& spec, const std::vector<std::string>& args);

// The declared flag `name` (without dashes), or nullptr.
const FlagSpec* FindFlag(const ArgsSpec& spec, std::string_view name);

}  // namespace nimbus
