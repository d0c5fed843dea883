#include "cli/flags.h"

#include <algorithm>

namespace nimbus::cli {

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
  return ParseFlags({"nimbus " + spec.name, spec.positionals, {&spec.flags, &GlobalFlags()}}, args);
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
