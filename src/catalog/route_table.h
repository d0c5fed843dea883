// The gateway's router: maps an HTTP method and request path onto the function that owns the
// route, the way API Gateway HTTP APIs pick a route. Routes are written as in function.yaml
// ("GET /hello/{name}", "ANY /hooks/{proxy+}"); the most specific route wins:
//   1. path first, segment by segment from the left: a literal segment beats {param}, which
//      beats {proxy+} (so /a/b/c prefers /a/b/{x} over /a/{x}/c over /{proxy+});
//   2. at the same path, a route for the request's method beats an ANY route.
// HEAD requests do not fall back to GET routes, and '/hello/' is a different path from
// '/hello' (both as API Gateway does). docs/http-events.md describes this for users.
//
// Threading: a RouteTable is built by one thread (Add), then published as a
// shared_ptr<const RouteTable>; after that it is never mutated and Match may run on any
// number of threads at once without locks (Match touches no mutable state).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/percent.h"
#include "common/status.h"
#include "manifest/route_grammar.h"

namespace nimbus::catalog {

struct RouteTarget {
  std::string function;
  // "GET /hello/{name}" as API Gateway writes it; "ANY /hooks/{proxy+}". Add fills it in
  // from the method and pattern when it is left empty.
  std::string route_key;
  // `async: true` in the manifest: answered 202 at once, run through the event queue.
  bool async = false;
};

struct RouteMatch {
  // Points into the RouteTable that produced the match: valid while that table lives.
  const RouteTarget* target = nullptr;
  // Parameter name -> percent-decoded value, in the order the pattern names them. A
  // {param} value never contains a '/' that separated segments (an encoded %2F decodes to
  // '/' inside the value). For {proxy+} the value is the rest of the path, decoded, without
  // its leading slash.
  std::vector<std::pair<std::string, std::string>> path_params;
};

class RouteTable {
 public:
  // A pattern may name at most this many parameters (a fixed bound keeps Match free of
  // allocations while it backtracks); the route grammar refuses more.
  static constexpr size_t kMaxParams = manifest::kMaxRouteParams;

  RouteTable();
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // method and path_pattern as function.yaml writes them, checked and parsed by the route
  // grammar (manifest/route_grammar.h): one of the eight methods in any letter case; a path
  // of literals (matched after percent-decoding), "{name}" and a final "{name+}".
  // Errors: InvalidArgument for a malformed method or pattern; AlreadyExists when another
  // function already owns the route, including a pattern that differs only in parameter
  // names (/a/{x} vs /a/{y}). Adding the identical route for the same function again is a
  // no-op; the same function adding /a/{x} and /a/{y} for one method is refused too,
  // since only one of them could ever match.
  Status Add(std::string_view method, std::string_view path_pattern, RouteTarget target);

  // method: the request method as sent (case-sensitive, as HTTP methods are); methods other
  // than the seven above match ANY routes only. path: the request path without the query
  // string, still percent-encoded. nullopt when no route matches.
  std::optional<RouteMatch> Match(std::string_view method, std::string_view path) const;

  size_t size() const { return routes_.size(); }

 private:
  static constexpr int kAny = static_cast<int>(manifest::kAnyMethod);
  static constexpr int kMethods = static_cast<int>(manifest::kRouteMethods.size());

  struct Route {
    RouteTarget target;
    std::string key;                       // "GET /a/{x}": the method upper-case, the path as given
    std::vector<std::string> param_names;  // in pattern order, the greedy one last
  };
  // Routes that end at one node: indexed by method, kAny last.
  using Endpoints = std::array<const Route*, kMethods>;
  struct Node;
  struct Walk;

  static const Route* Pick(const Endpoints& e, int method);
  static const Route* Descend(const Node& node, std::string_view rest, bool end, Walk& w);

  std::unique_ptr<Node> root_;
  // Owns every route; Node endpoints and RouteMatch::target point into these.
  std::vector<std::unique_ptr<Route>> routes_;
};


}  // namespace nimbus::catalog
