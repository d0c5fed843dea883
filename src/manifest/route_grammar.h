// The route grammar, in one place: what an HTTP route in function.yaml's `http` section may
// say, API Gateway HTTP API style ("GET /hello/{name}", "ANY /hooks/{proxy+}"), parsed into the
// pieces a router compiles. The manifest checks routes with it and the route table
// (catalog/route_table.h) builds its trie from what it returns, so every route the manifest
// accepts is one the table accepts, and two routes the manifest calls the same are the ones
// the table refuses as the same. docs/manifest.md (`http`) describes the grammar for users.
//
// Error messages are predicates without a subject ("must start with '/', e.g. '/hello'"):
// the caller names the method or path it was given, with the position it knows.
//
// Threading: free functions without shared state.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nimbus::manifest {

// The methods a route may name, in this order; ANY, last, matches every method.
inline constexpr std::array<std::string_view, 8> kRouteMethods = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"};
inline constexpr size_t kAnyMethod = kRouteMethods.size() - 1;

inline constexpr size_t kMaxRoutePathLength = 1024;
// The route table captures parameters into a fixed array while it matches, without allocating.
inline constexpr size_t kMaxRouteParams = 16;

// The index of `method` in kRouteMethods, in any letter case. InvalidArgument "is not
// supported; use one of GET, ..., ANY (ANY matches every method)" otherwise.
Result<size_t> ParseRouteMethod(std::string_view method);

struct RouteSegment {
  enum class Kind { kLiteral, kParam, kGreedy };
  Kind kind = Kind::kLiteral;
  // kLiteral: the segment percent-decoded ("a%20b" -> "a b"), since request paths are compared
  // with literals after decoding. kParam, kGreedy: the parameter's name, without braces and '+'.
  std::string text;
  friend bool operator==(const RouteSegment&, const RouteSegment&) = default;
};

// The segments of a route path; "/" (the root) has none. Rules: starts with '/'; every
// segment between single '/'s is non-empty (no "//", no trailing '/'); a segment is either
// literal text (no braces, '?', '#', spaces or control characters; '%XX' escapes are decoded)
// or a whole-segment parameter {name} with name [A-Za-z0-9_]+; a greedy {name+} only as the
// last segment; no parameter name twice; at most kMaxRouteParams parameters and
// kMaxRoutePathLength characters; the first segment is not one nimbus serves itself (fn, v1,
// 2015-03-31, metrics). InvalidArgument saying what is wrong and how to fix it otherwise.
Result<std::vector<RouteSegment>> ParseRoutePath(std::string_view path);

// What a parsed path matches, with parameter names erased and literals decoded
// ("/a/{x}/h%65llo/{rest+}" -> "/a/{}/hello/{+}"): two routes with the same method and shape
// match the same requests, whatever their parameters are called or however their literals
// are escaped. Characters that would read as structure ('%', '/', '{', '}') are re-escaped in
// literals, so a literal never reads as a parameter or a separator.
std::string RouteShape(const std::vector<RouteSegment>& segments);

}  // namespace nimbus::manifest
