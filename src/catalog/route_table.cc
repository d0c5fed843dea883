// Segment trie behind RouteTable. Each node holds its literal children in a vector sorted by
// segment (binary search; route tables are small and this keeps lookups cache-friendly), at
// most one {param} child shared by all parameter names at that position, and the routes that
// end at the node or continue with {proxy+} from it. Matching walks depth first in
// precedence order (literal, then param, then greedy) and backtracks on a dead end, so the
// first route found is the most specific one.
#include "catalog/route_table.h"

#include "common/percent.h"

#include <algorithm>

namespace nimbus::catalog {
namespace {

using manifest::kRouteMethods;
using manifest::RouteSegment;

// Exact (case-sensitive) method lookup used on the request path; -1 for other methods.
int MethodIndex(std::string_view m) {
  for (size_t i = 0; i < manifest::kAnyMethod; ++i) {
    if (kRouteMethods[i] == m) return static_cast<int>(i);
  }
  return -1;
}

// The grammar's messages are predicates; this names the route they are about. Routes reach
// the table from function.yaml, whose parser has refused the same mistakes already.
Status BadRoute(std::string_view what, std::string_view text, const Status& why) {
  std::string m = "route ";
  m.append(what).append(" '").append(text).append("' in function.yaml ").append(why.message());
  return Status::InvalidArgument(std::move(m));
}

// Compares a raw request segment with a literal, decoding %XX in the segment on the fly, so
// /h%65llo reaches the literal 'hello' without an allocation. Returns <0, 0, >0 like memcmp.
int CompareDecoded(std::string_view raw, std::string_view literal) {
  size_t i = 0, j = 0;
  while (i < raw.size() && j < literal.size()) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    size_t step = 1;
    if (c == '%' && i + 2 < raw.size()) {
      int hi = HexDigitValue(raw[i + 1]), lo = HexDigitValue(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        c = static_cast<unsigned char>(hi * 16 + lo);
        step = 3;
      }
    }
    unsigned char l = static_cast<unsigned char>(literal[j]);
    if (c != l) return c < l ? -1 : 1;
    i += step;
    ++j;
  }
  bool raw_done = i >= raw.size(), lit_done = j >= literal.size();
  if (raw_done && lit_done) return 0;
  return raw_done ? -1 : 1;
}

}  // namespace

struct RouteTable::Node {
  // Sorted by segment text.
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
  std::unique_ptr<Node> param;
  Endpoints here{};    // routes that end at this node
  Endpoints greedy{};  // routes that end with {proxy+} right after this node

  const Node* FindLiteral(std::string_view raw_segment) const {
    size_t lo = 0, hi = literals.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      int c = CompareDecoded(raw_segment, literals[mid].first);
      if (c == 0) return literals[mid].second.get();
      if (c < 0) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return nullptr;
  }

  Node* LiteralChild(std::string_view segment) {
    auto it = std::lower_bound(
        literals.begin(), literals.end(), segment,
        [](const auto& entry, std::string_view s) { return std::string_view(entry.first) < s; });
    if (it != literals.end() && it->first == segment) return it->second.get();
    it = literals.emplace(it, std::string(segment), std::make_unique<Node>());
    return it->second.get();
  }
};

// State of one Match call: the method, and the raw values captured on the current path.
struct RouteTable::Walk {
  int method;
  std::array<std::string_view, kMaxParams> captures;  // raw (still encoded) values
  size_t count = 0;
};

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;

Status RouteTable::Add(std::string_view method, std::string_view path_pattern, RouteTarget target) {
  Result<size_t> m = manifest::ParseRouteMethod(method);
  if (!m.ok()) return BadRoute("method", method, m.status());
  Result<std::vector<RouteSegment>> segments = manifest::ParseRoutePath(path_pattern);
  if (!segments.ok()) return BadRoute("path", path_pattern, segments.status());

  std::string route_key(kRouteMethods[*m]);
  route_key.push_back(' ');
  route_key.append(path_pattern);
  if (target.route_key.empty()) target.route_key = route_key;

  Node* node = root_.get();
  bool greedy = false;
  std::vector<std::string> names;
  for (RouteSegment& s : *segments) {
    switch (s.kind) {
      case RouteSegment::Kind::kLiteral:
        node = node->LiteralChild(s.text);  // decoded, as FindLiteral compares
        break;
      case RouteSegment::Kind::kParam:
        if (!node->param) node->param = std::make_unique<Node>();
        node = node->param.get();
        names.push_back(std::move(s.text));
        break;
      case RouteSegment::Kind::kGreedy:
        greedy = true;  // always last: stays on this node
        names.push_back(std::move(s.text));
        break;
    }
  }
  const Route*& slot = greedy ? node->greedy[*m] : node->here[*m];
  if (slot != nullptr) {
    const RouteTarget& owner = slot->target;
    if (owner.function == target.function && owner.route_key == target.route_key &&
        slot->key == route_key) {
      return Status::Ok();  // the same route again
    }
    // Another spelling of the same route: other parameter names, or other escapes of the
    // same literal (/h%65llo and /hello).
    std::string msg = "route " + route_key;
    if (slot->key != route_key) msg += " matches the same requests as " + slot->key + ", which";
    msg += " already belongs to function '" + owner.function + "'; change the path in " +
           "function.yaml or remove '" + owner.function + "'";
    return Status::AlreadyExists(std::move(msg));
  }
  auto route = std::make_unique<Route>();
  route->target = std::move(target);
  route->key = std::move(route_key);
  route->param_names = std::move(names);
  slot = route.get();
  routes_.push_back(std::move(route));
  return Status::Ok();
}

const RouteTable::Route* RouteTable::Pick(const Endpoints& e, int method) {
  if (method >= 0 && e[method] != nullptr) return e[method];
  return e[kAny];
}

// rest: the unconsumed path after a '/', end: no segment is left at all (the path ended at
// the previous segment, without a trailing slash). The recursion is never deeper than the
// longest pattern, whatever the request path.
const RouteTable::Route* RouteTable::Descend(const Node& node, std::string_view rest, bool end,
                                             Walk& w) {
  if (end) return Pick(node.here, w.method);
  size_t slash = rest.find('/');
  std::string_view seg = rest.substr(0, slash);
  bool next_end = slash == std::string_view::npos;
  std::string_view next_rest = next_end ? std::string_view() : rest.substr(slash + 1);

  if (const Node* child = node.FindLiteral(seg)) {
    if (const Route* r = Descend(*child, next_rest, next_end, w)) return r;
  }
  if (node.param && !seg.empty() && w.count < kMaxParams) {
    w.captures[w.count++] = seg;
    if (const Route* r = Descend(*node.param, next_rest, next_end, w)) return r;
    --w.count;
  }
  // {proxy+} needs at least one character after the slash, as in API Gateway.
  if (!rest.empty() && w.count < kMaxParams) {
    if (const Route* r = Pick(node.greedy, w.method)) {
      w.captures[w.count++] = rest;
      return r;
    }
  }
  return nullptr;
}

std::optional<RouteMatch> RouteTable::Match(std::string_view method, std::string_view path) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  Walk w;
  w.method = MethodIndex(method);
  std::string_view rest = path.substr(1);
  const Route* r = Descend(*root_, rest, rest.empty(), w);
  if (r == nullptr) return std::nullopt;
  RouteMatch match;
  match.target = &r->target;
  match.path_params.reserve(w.count);
  for (size_t i = 0; i < w.count && i < r->param_names.size(); ++i) {
    std::string value;
    value.reserve(w.captures[i].size());
    AppendPercentDecoded(value, w.captures[i]);
    match.path_params.emplace_back(r->param_names[i], std::move(value));
  }
  return match;
}

}  // namespace nimbus::catalog
