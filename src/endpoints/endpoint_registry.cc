#include "endpoints/endpoint_registry.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace nimbus::endpoints {

std::optional<std::filesystem::path> HomeDir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return std::nullopt;
  return std::filesystem::path(home);
}

std::filesystem::path RegistryDir(const std::filesystem::path& home) {
  return home / ".config" / "nimbus" / "endpoints";
}

std::optional<std::filesystem::path> RegistrationFile(const std::filesystem::path& home, std::string_view host,
                                                      uint16_t port) {
  if (host.empty() || host == "." || host == ".." || host.find('/') != std::string_view::npos ||
      host.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return RegistryDir(home) / (std::string(host) + "_" + std::to_string(port));
}

std::optional<std::string> ParseTokenText(std::string_view text) {
  std::string token(text);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ' ||
                            token.back() == '\t')) {
    token.pop_back();
  }
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return std::nullopt;  // only visible ASCII fits in a header
  }
  return token;
}

std::optional<std::string> ReadTokenFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return ParseTokenText(text.str());
}

}  // namespace nimbus::endpoints
