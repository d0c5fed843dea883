#include "manifest/route_grammar.h"

#include "common/percent.h"

namespace nimbus::manifest {
namespace {

// First segments the daemon answers itself (docs/api.md); a route there would be unreachable
// or would shadow the admin API, the Invoke API, the per-function URLs or the metrics.
constexpr std::string_view kReservedFirstSegments[] = {"fn", "v1", "2015-03-31", "metrics"};

bool IsParamNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

char UpperAscii(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

Status Bad(std::string m) { return Status::InvalidArgument(std::move(m)); }

// A literal segment: refuses what cannot stand in one, decodes the rest.
Status ParseLiteral(std::string_view seg, bool first, RouteSegment& out) {
  for (char c : seg) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '{' || c == '}') {
      return Bad("segment '" + std::string(seg) +
                 "' mixes text and a parameter; a parameter must be a whole segment, e.g. "
                 "'/files/{name}'");
    }
    if (c == '?' || c == '#') {
      return Bad(std::string("contains '") + c +
                 "'; a route matches the path only, so leave out the query string and fragment");
    }
    if (u <= 0x20 || u == 0x7f) {
      return Bad("contains a space or control character; percent-encode it (e.g. '%20') or "
                 "remove it");
    }
  }
  if (first) {
    for (std::string_view reserved : kReservedFirstSegments) {
      if (seg == reserved) {
        return Bad("is under '/" + std::string(reserved) +
                   "', which nimbus serves itself; choose another first segment (every "
                   "function is also reachable at /fn/NAME without a route)");
      }
    }
  }
  out.kind = RouteSegment::Kind::kLiteral;
  AppendPercentDecoded(out.text, seg);
  return Status::Ok();
}

// A segment that starts with '{': a whole-segment {name} or, when last, {name+}.
Status ParseParam(std::string_view seg, bool last, RouteSegment& out) {
  if (seg.back() != '}' || seg.size() < 3) {
    return Bad("segment '" + std::string(seg) +
               "' is not a parameter: a parameter is a whole segment like '{name}' or "
               "'{proxy+}'");
  }
  std::string_view name = seg.substr(1, seg.size() - 2);
  bool greedy = name.back() == '+';
  if (greedy) name.remove_suffix(1);
  bool valid = !name.empty();
  for (char c : name) valid = valid && IsParamNameChar(c);
  if (!valid) {
    return Bad("parameter '" + std::string(seg) +
               "' has a bad name; use letters, digits and '_', e.g. '{name}'");
  }
  if (greedy && !last) {
    return Bad("greedy parameter '" + std::string(seg) +
               "' must be the last segment, e.g. '/hooks/{proxy+}'");
  }
  out.kind = greedy ? RouteSegment::Kind::kGreedy : RouteSegment::Kind::kParam;
  out.text = name;
  return Status::Ok();
}

}  // namespace

Result<size_t> ParseRouteMethod(std::string_view method) {
  for (size_t i = 0; i < kRouteMethods.size(); ++i) {
    std::string_view m = kRouteMethods[i];
    bool same = m.size() == method.size();
    for (size_t j = 0; same && j < m.size(); ++j) same = UpperAscii(method[j]) == m[j];
    if (same) return i;
  }
  std::string list;
  for (std::string_view m : kRouteMethods) {
    if (!list.empty()) list += ", ";
    list += m;
  }
  return Bad("is not supported; use one of " + list + " (ANY matches every method)");
}

Result<std::vector<RouteSegment>> ParseRoutePath(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return Bad("must start with '/', e.g. '/" + std::string(path) + "'");
  }
  if (path.size() > kMaxRoutePathLength) {
    return Bad("is " + std::to_string(path.size()) + " characters long; the limit is " +
               std::to_string(kMaxRoutePathLength));
  }
  std::vector<RouteSegment> segments;
  if (path == "/") return segments;
  size_t params = 0;
  size_t start = 1;  // past the leading '/'
  while (true) {
    size_t slash = path.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string_view seg = path.substr(start, last ? std::string_view::npos : slash - start);
    if (seg.empty()) {
      return Bad(last ? "ends with '/'; remove the trailing '/'"
                      : "has an empty segment ('//'); remove the extra '/'");
    }
    RouteSegment s;
    if (seg.front() == '{') {
      NIMBUS_RETURN_IF_ERROR(ParseParam(seg, last, s));
      for (const RouteSegment& earlier : segments) {
        if (earlier.kind != RouteSegment::Kind::kLiteral && earlier.text == s.text) {
          return Bad("parameter '{" + s.text + "}' appears twice; rename one of them");
        }
      }
      ++params;
    } else {
      NIMBUS_RETURN_IF_ERROR(ParseLiteral(seg, segments.empty(), s));
    }
    segments.push_back(std::move(s));
    if (last) break;
    start = slash + 1;
  }
  if (params > kMaxRouteParams) {
    return Bad("names " + std::to_string(params) + " parameters; the limit is " +
               std::to_string(kMaxRouteParams));
  }
  return segments;
}

std::string RouteShape(const std::vector<RouteSegment>& segments) {
  if (segments.empty()) return "/";
  std::string out;
  for (const RouteSegment& s : segments) {
    out += '/';
    switch (s.kind) {
      case RouteSegment::Kind::kParam: out += "{}"; break;
      case RouteSegment::Kind::kGreedy: out += "{+}"; break;
      case RouteSegment::Kind::kLiteral:
        for (char c : s.text) {
          switch (c) {
            case '%': out += "%25"; break;
            case '/': out += "%2F"; break;
            case '{': out += "%7B"; break;
            case '}': out += "%7D"; break;
            default: out += c;
          }
        }
        break;
    }
  }
  return out;
}

}  // namespace nimbus::manifest
