#include "common/flags.h"

namespace nimbus {

const FlagSpec* FindFlag(const ArgsSpec& spec, std::string_view name) {
  for (const std::vector<FlagSpec>* list : spec.flag_lists) {
    for (const FlagSpec& f : *list) {
      if (f.name == name) return &f;
    }
  }
  return nullptr;
}

Result<ParsedArgs> ParseFlags(const ArgsSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs parsed;
  const std::string command = "`" + spec.command + "`";
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (flags_done || word.size() < 2 || word[0] != '-' || word == "-") {
      parsed.positionals.push_back(word);
      continue;
    }
    if (word == "--") {
      flags_done = true;
      continue;
    }
    if (word == "-h" && FindFlag(spec, "help") != nullptr) {
      parsed.flags["help"] = "";
      continue;
    }
    if (word.rfind("--", 0) != 0) {
      return Status::InvalidArgument("unknown flag '" + word + "' for " + command +
                                     " (flags are spelled --name)");
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const FlagSpec* flag = FindFlag(spec, name);
    if (flag == nullptr) {
      std::string hint = spec.unknown_flag_hint ? spec.unknown_flag_hint(name) : "";
      return Status::InvalidArgument("unknown flag '--" + name + "' for " + command + hint);
    }
    if (flag->value_name.empty()) {
      if (has_inline_value) {
        return Status::InvalidArgument("flag '--" + name + "' takes no value");
      }
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument("flag '--" + name + "' needs a value (" + flag->value_name + ")");
      }
      value = args[++i];
    }
    if (parsed.flags.count(name) > 0) {
      return Status::InvalidArgument("flag '--" + name + "' given twice");
    }
    parsed.flags[name] = value;
  }
  if (parsed.Has("help")) return parsed;
  if (parsed.positionals.size() < spec.positionals.size()) {
    return Status::InvalidArgument("missing " + spec.positionals[parsed.positionals.size()].name + " for " +
                                   command);
  }
  if (parsed.positionals.size() > spec.positionals.size()) {
    return Status::InvalidArgument("unexpected argument '" + parsed.positionals[spec.positionals.size()] +
                                   "' for " + command);
  }
  for (const std::vector<FlagSpec>* list : spec.flag_lists) {
    for (const FlagSpec& f : *list) {
      if (f.required && !parsed.Has(f.name)) {
        return Status::InvalidArgument("missing --" + f.name + " " + f.value_name + " for " + command);
      }
    }
  }
  return parsed;
}

}  // namespace nimbus
