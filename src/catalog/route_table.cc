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

constexpr std::array<std::string_view, 8> kMethodNames = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"};

// Exact (case-sensitive) method lookup used on the request path; -1 for other methods.
int MethodIndex(std::string_view m) {
  for (size_t i = 0; i + 1 < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == m) return static_cast<int>(i);
  }
  return -1;
}

// One pattern segment, parsed.
struct PatternSegment {
  enum Kind { kLiteral, kParam, kGreedy } kind;
  std::string_view text;  // the literal, or the parameter name
};

Status BadPattern(std::string_view pattern, std::string_view why) {
  std::string m = "route path '";
  m.append(pattern).append("' is not valid: ").append(why);
  m.append("; write it like /hello/{name} or /hooks/{proxy+} in function.yaml");
  return Status::InvalidArgument(std::move(m));
}

Status ParsePattern(std::string_view pattern, std::vector<PatternSegment>& out) {
  if (pattern.empty() || pattern.front() != '/') {
    return BadPattern(pattern, "it must start with '/'");
  }
  std::string_view rest = pattern.substr(1);
  if (rest.empty()) return Status::Ok();  // "/": the root
  while (true) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    bool has_brace = seg.find_first_of("{}") != std::string_view::npos;
    if (seg.empty() && !last) {
      return BadPattern(pattern, "it has an empty segment ('//')");
    }
    if (!has_brace) {
      if (seg.find_first_of("?#") != std::string_view::npos) {
        return BadPattern(pattern, "'?' and '#' cannot appear in a path");
      }
      // A trailing empty segment ("/hello/") is a literal: it only matches '/hello/'.
      out.push_back({PatternSegment::kLiteral, seg});
    } else {
      if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}') {
        return BadPattern(pattern, "a parameter must be a whole segment, like {name}");
      }
      std::string_view name = seg.substr(1, seg.size() - 2);
      bool greedy = name.back() == '+';
      if (greedy) name.remove_suffix(1);
      if (name.empty()) return BadPattern(pattern, "a parameter needs a name");
      for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
          return BadPattern(pattern, "parameter names may use letters, digits, '_', '-' and '.'");
        }
      }
      if (greedy && !last) {
        return BadPattern(pattern, "a greedy parameter {name+} must be the last segment");
      }
      for (const PatternSegment& s : out) {
        if (s.kind != PatternSegment::kLiteral && s.text == name) {
          return BadPattern(pattern, "it names the parameter '" + std::string(name) + "' twice");
        }
      }
      out.push_back({greedy ? PatternSegment::kGreedy : PatternSegment::kParam, name});
    }
    if (last) break;
    rest = rest.substr(slash + 1);
  }
  size_t params = 0;
  for (const PatternSegment& s : out) params += s.kind != PatternSegment::kLiteral;
  if (params > RouteTable::kMaxParams) {
    return BadPattern(pattern, "it has more than 16 parameters");
  }
  return Status::Ok();
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
  std::string upper(method);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  int m = -1;
  for (size_t i = 0; i < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == upper) m = static_cast<int>(i);
  }
  if (m < 0) {
    return Status::InvalidArgument(
        "route method '" + std::string(method) +
        "' is not supported; use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY");
  }
  std::vector<PatternSegment> segments;
  NIMBUS_RETURN_IF_ERROR(ParsePattern(path_pattern, segments));

  std::string route_key = upper;
  route_key.push_back(' ');
  route_key.append(path_pattern);
  if (target.route_key.empty()) target.route_key = route_key;

  Node* node = root_.get();
  bool greedy = false;
  std::vector<std::string> names;
  for (const PatternSegment& s : segments) {
    switch (s.kind) {
      case PatternSegment::kLiteral:
        node = node->LiteralChild(s.text);
        break;
      case PatternSegment::kParam:
        if (!node->param) node->param = std::make_unique<Node>();
        node = node->param.get();
        names.emplace_back(s.text);
        break;
      case PatternSegment::kGreedy:
        greedy = true;  // always last: stays on this node
        names.emplace_back(s.text);
        break;
    }
  }
  const Route*& slot = greedy ? node->greedy[m] : node->here[m];
  if (slot != nullptr) {
    const RouteTarget& owner = slot->target;
    if (owner.function == target.function && owner.route_key == target.route_key &&
        slot->param_names == names) {
      return Status::Ok();  // the same route again
    }
    std::string msg = "route " + route_key;
    if (slot->param_names != names) {
      msg += " matches the same requests as " + owner.route_key + ", which";
    }
    msg += " already belongs to function '" + owner.function + "'; change the path in " +
           "function.yaml or remove '" + owner.function + "'";
    return Status::AlreadyExists(std::move(msg));
  }
  auto route = std::make_unique<Route>();
  route->target = std::move(target);
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
