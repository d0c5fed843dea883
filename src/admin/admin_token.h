// The admin API's bearer token: where it lives (DATA/admin.token, mode 0600, created on the
// first start from 32 random bytes), how a presented token is checked (in constant time), what
// a refused request is told, and how the daemon registers its endpoint so that a CLI on the
// same machine finds the token without flags (the layout is in endpoints/endpoint_registry.h).
//
// Errors: LoadOrCreateToken refuses a token file that others could read or replace
// (FailedPrecondition, with the chmod/chown command that fixes it), one that is a symlink or
// not a regular file, and one without a usable token; I/O failures are kIo. RegisterEndpoint
// fails with kIo or kFailedPrecondition (no $HOME); the daemon treats that as a warning.
//
// Threading: free functions without shared state; safe from any thread. LoadOrCreateToken is
// meant for start-up (it may block on getrandom and fsync).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace nimbus::admin {

// DATA/admin.token
std::filesystem::path TokenFile(const std::filesystem::path& data_dir);

// A token read from an existing file must be at least this long (a generated one is 64 hex
// characters).
inline constexpr size_t kMinTokenLength = 32;

// Reads DATA/admin.token, or creates it when it does not exist: 32 bytes from getrandom() as
// 64 hex characters, written to a temporary file opened with O_EXCL and mode 0600, fsynced,
// and renamed into place (without replacing a file another process created meanwhile; then
// that file's token is used).
Result<std::string> LoadOrCreateToken(const std::filesystem::path& data_dir);

// True when `presented` equals `token`. The time taken depends only on presented.size(), never
// on the token's contents or where the first difference is. An empty token matches nothing.
bool TokenMatches(std::string_view presented, std::string_view token);

enum class AuthCheck {
  kOk,
  kMissing,    // no Authorization header
  kMalformed,  // not "Bearer TOKEN"
  kWrong,      // a bearer token that is not the daemon's
};

// Checks the value of an Authorization header ("" when absent) against the token. The scheme
// is case-insensitive ("Bearer", "bearer"); spaces around the token are ignored.
AuthCheck CheckAuthorization(std::string_view authorization, std::string_view token);

// The message of a 401 answer: what was wrong, where the token is and how to send it.
std::string UnauthorizedMessage(AuthCheck check);

// Writes the absolute path of `token_file` to $HOME/.config/nimbus/endpoints/HOST_PORT
// (directories created 0700, the file 0600, replaced atomically). `host` is the --listen
// address as given, e.g. "127.0.0.1".
Status RegisterEndpoint(std::string_view host, uint16_t port, const std::filesystem::path& token_file);
// The same under an explicit home directory (tests).
Status RegisterEndpoint(const std::filesystem::path& home, std::string_view host, uint16_t port,
                        const std::filesystem::path& token_file);

}  // namespace nimbus::admin
