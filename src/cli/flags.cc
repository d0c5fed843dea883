#include "cli/flags.h"

#include <algorithm>

namespace nimbus::cli {
namespace {

const FlagSpec* FindFlag(const CommandSpec& spec, const std::string& name) {
  for (const auto& f : spec.flags) {
    if (f.name == name) return &f;
  }
  for (const auto& f : GlobalFlags()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"endpoint", "URL",
       "the nimbus daemon to talk to (default: $NIMBUS_ENDPOINT, else http://127.0.0.1:8080)"},
      {"token", "TOKEN",
       "the admin API token (default: $NIMBUS_TOKEN, else the token the daemon registered for the "
       "endpoint on this machine, else ./.nimbus/admin.token)"},
      {"json", "", "print the server's JSON answer as is (one document) instead of text"},
      {"help", "", "show this help"},
  };
  return kFlags;
}

Result<ParsedArgs> ParseArgs(const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs parsed;
  const std::string command = "`nimbus " + spec.name + "`";
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
    if (word == "-h") {
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
      return Status::InvalidArgument("unknown flag '--" + name + "' for " + command);
    }
    if (flag->value_name.empty()) {
      if (has_inline_value) {
        return Status::InvalidArgument("flag '--" + name + "' takes no value");
      }
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument("flag '--" + name + "' needs a value (" +
                                       flag->value_name + ")");
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
    return Status::InvalidArgument("missing " + spec.positionals[parsed.positionals.size()].name +
                                   " for " + command);
  }
  if (parsed.positionals.size() > spec.positionals.size()) {
    return Status::InvalidArgument("unexpected argument '" +
                                   parsed.positionals[spec.positionals.size()] + "' for " +
                                   command);
  }
  for (const auto& f : spec.flags) {
    if (f.required && !parsed.Has(f.name)) {
      return Status::InvalidArgument("missing --" + f.name + " " + f.value_name + " for " +
                                     command);
    }
  }
  return parsed;
}

std::string UsageLine(const CommandSpec& spec) {
  std::string line = "nimbus " + spec.name;
  for (const auto& p : spec.positionals) line += " " + p.name;
  for (const auto& f : spec.flags) {
    std::string text = "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
    line += f.required ? " " + text : " [" + text + "]";
  }
  return line;
}

void PrintCommandHelp(const CommandSpec& spec, std::ostream& out) {
  out << "usage: " << UsageLine(spec) << " [--endpoint URL] [--token TOKEN] [--json]\n\n" << spec.summary << "\n";
  if (!spec.details.empty()) out << "\n" << spec.details << "\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& p : spec.positionals) rows.emplace_back(p.name, p.help);
  std::vector<FlagSpec> all = spec.flags;
  all.insert(all.end(), GlobalFlags().begin(), GlobalFlags().end());
  for (const auto& f : all) {
    rows.emplace_back("--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name), f.help);
  }
  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size());
  out << "\n";
  for (const auto& [left, right] : rows) {
    out << "  " << left << std::string(width - left.size() + 2, ' ') << right << "\n";
  }
}

}  // namespace nimbus::cli
