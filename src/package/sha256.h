// SHA-256 of a byte string as lowercase hex: the content address of code packages
// (<data>/packages/<sha>.zip, <data>/code/<sha>/) and the `code_sha256` of a version.
#pragma once

#include <string>
#include <string_view>

namespace nimbus::package {

// 64 lowercase hex digits. Pure function; safe from any thread.
std::string Sha256Hex(std::string_view bytes);

// True when `s` looks like what Sha256Hex returns (64 lowercase hex digits). Used to keep a
// caller-supplied hash from ever naming a path outside the code store.
bool IsSha256Hex(std::string_view s);

}  // namespace nimbus::package
