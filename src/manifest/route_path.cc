#include "manifest/route_path.h"

#include <set>
#include <vector>

namespace nimbus::manifest {
namespace {

constexpr size_t kMaxPathLength = 1024;

// First segments the daemon answers itself (docs/api.md); a route there would be unreachable
// or would shadow the admin API, the Invoke API, the per-function URLs or the metrics.
constexpr std::string_view kReservedFirstSegments[] = {"fn", "v1", "2015-03-31", "metrics"};

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;  // past the leading '/'
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

bool IsParamNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

Status Bad(std::string m) { return Status::InvalidArgument(std::move(m)); }

}  // namespace

Status CheckRoutePath(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return Bad("must start with '/', e.g. '/" + std::string(path) + "'");
  }
  if (path.size() > kMaxPathLength) {
    return Bad("is " + std::to_string(path.size()) + " characters long; the limit is " +
               std::to_string(kMaxPathLength));
  }
  if (path == "/") return Status::Ok();
  std::vector<std::string_view> segments = Segments(path);
  std::set<std::string_view> params;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string_view seg = segments[i];
    bool last = i + 1 == segments.size();
    if (seg.empty()) {
      return Bad(last ? "ends with '/'; remove the trailing '/'"
                      : "has an empty segment ('//'); remove the extra '/'");
    }
    if (seg.front() == '{') {
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
      if (!params.insert(name).second) {
        return Bad("parameter '{" + std::string(name) + "}' appears twice; rename one of them");
      }
      continue;
    }
    for (char c : seg) {
      unsigned char u = static_cast<unsigned char>(c);
      if (c == '{' || c == '}') {
        return Bad("segment '" + std::string(seg) +
                   "' mixes text and a parameter; a parameter must be a whole segment, e.g. "
                   "'/files/{name}'");
      }
      if (c == '?' || c == '#') {
        return Bad(std::string("contains '") + c +
                   "'; a route matches the path only, so leave out the query string and "
                   "fragment");
      }
      if (u <= 0x20 || u == 0x7f) {
        return Bad("contains a space or control character; percent-encode it (e.g. '%20') or "
                   "remove it");
      }
    }
    if (i == 0) {
      for (std::string_view reserved : kReservedFirstSegments) {
        if (seg == reserved) {
          return Bad("is under '/" + std::string(reserved) +
                     "', which nimbus serves itself; choose another first segment (every "
                     "function is also reachable at /fn/NAME without a route)");
        }
      }
    }
  }
  return Status::Ok();
}

std::string RouteShape(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '{') {
      size_t close = path.find('}', i);
      if (close == std::string_view::npos) break;
      out += path[close - 1] == '+' ? "{+}" : "{}";
      i = close + 1;
    } else {
      out += path[i++];
    }
  }
  out += path.substr(i);
  return out;
}

}  // namespace nimbus::manifest
