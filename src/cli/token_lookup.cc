#include "cli/token_lookup.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "endpoints/endpoint_registry.h"

namespace nimbus::cli {
namespace {

bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::optional<AdminToken> FindRegisteredToken(const Endpoint& endpoint, const std::filesystem::path& home) {
  if (home.empty()) return std::nullopt;
  int port = 0;
  for (char c : endpoint.port) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
    if (port > 65535) return std::nullopt;
  }
  std::vector<std::string> hosts = {endpoint.host};
  if (endpoint.host == "localhost") {
    hosts.push_back("127.0.0.1");
    hosts.push_back("::1");
  }
  if (IsLoopback(endpoint.host)) {
    hosts.push_back("0.0.0.0");
    hosts.push_back("::");
  }
  for (const auto& host : hosts) {
    auto registration = endpoints::RegistrationFile(home, host, static_cast<uint16_t>(port));
    if (!registration) continue;
    std::ifstream in(*registration, std::ios::binary);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    const std::filesystem::path token_file = Trimmed(text.str());
    if (token_file.empty()) continue;
    if (auto token = endpoints::ReadTokenFile(token_file)) {
      return AdminToken{*token, token_file.string() + " (registered in " + registration->string() + ")"};
    }
  }
  return std::nullopt;
}

std::optional<std::string> FindTokenForEndpoint(std::string_view endpoint_url) {
  auto endpoint = ParseEndpoint(endpoint_url);
  auto home = endpoints::HomeDir();
  if (!endpoint.ok() || !home) return std::nullopt;
  auto found = FindRegisteredToken(*endpoint, *home);
  if (!found) return std::nullopt;
  return found->token;
}

std::optional<AdminToken> ResolveAdminToken(const std::string& flag, const CliEnvironment& env,
                                            const Endpoint& endpoint) {
  if (!flag.empty()) return AdminToken{flag, "--token"};
  if (!env.token.empty()) return AdminToken{env.token, "NIMBUS_TOKEN"};
  if (auto registered = FindRegisteredToken(endpoint, env.home)) return registered;
  if (!env.local_token_file.empty()) {
    if (auto token = endpoints::ReadTokenFile(env.local_token_file)) {
      return AdminToken{*token, env.local_token_file.string()};
    }
  }
  return std::nullopt;
}

}  // namespace nimbus::cli
