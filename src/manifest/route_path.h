// Checks of HTTP route paths as a manifest's `http` section writes them, API Gateway HTTP API
// style: "/hello/{name}", "/hooks/{proxy+}".
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace nimbus::manifest {

// Ok, or InvalidArgument whose message says what is wrong and how to fix it (without a file
// location). Rules: starts with '/'; "/" alone is the root; otherwise every segment is
// non-empty; a segment is either literal text (no braces, '?', '#', spaces or control
// characters) or a whole-segment parameter {name} with name [A-Za-z0-9_]+; a greedy {name+}
// only as the last segment; no parameter name twice; at most 1024 characters; the first
// segment must not be one nimbus serves itself (fn, v1, 2015-03-31, metrics).
Status CheckRoutePath(std::string_view path);

// The path with parameter names erased ("/a/{x}/{rest+}" -> "/a/{}/{+}"): two routes with the
// same method and shape match the same requests whatever their parameters are called.
std::string RouteShape(std::string_view path);

}  // namespace nimbus::manifest
