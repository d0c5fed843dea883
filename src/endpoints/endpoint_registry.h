// Endpoint registrations: how a `nimbus` CLI finds the admin token of a daemon on the same
// machine without being told. A daemon listening on HOST:PORT writes the absolute path of its
// token file (DATA/admin.token) into
//
//   $HOME/.config/nimbus/endpoints/HOST_PORT      e.g. ~/.config/nimbus/endpoints/127.0.0.1_8080
//
// (directory 0700, file 0600, one line). Nothing is removed on exit: a stale file is harmless
// (it points at a token the next daemon on that address replaces by registering again).
//
// This is the one definition of that layout. It is a library of its own, linked by both the
// daemon (src/admin, the writer) and the CLI (the reader), and depends only on src/common, so
// the CLI never links daemon code.
//
// Threading: free functions without shared state; safe from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace nimbus::endpoints {

// $HOME from the environment; nullopt when unset or empty.
std::optional<std::filesystem::path> HomeDir();

// HOME/.config/nimbus/endpoints
std::filesystem::path RegistryDir(const std::filesystem::path& home);

// HOME/.config/nimbus/endpoints/HOST_PORT, or nullopt when `host` cannot be a file name
// (empty, "." or "..", or holding '/' or a NUL): such a host is never registered.
std::optional<std::filesystem::path> RegistrationFile(const std::filesystem::path& home, std::string_view host,
                                                      uint16_t port);

// A token file holds one token: visible ASCII (it travels in an HTTP header), optionally
// followed by a newline. Returns the token without trailing whitespace; nullopt when nothing
// is left or the token holds a space, a control character or a non-ASCII byte.
std::optional<std::string> ParseTokenText(std::string_view text);

// ParseTokenText of a file's contents; nullopt also when the file cannot be read.
std::optional<std::string> ReadTokenFile(const std::filesystem::path& path);

}  // namespace nimbus::endpoints
