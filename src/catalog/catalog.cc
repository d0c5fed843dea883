#include "catalog/catalog.h"

#include <algorithm>

namespace nimbus::catalog {

static bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<ConfigPtr> Snapshot::Resolve(std::string_view name, std::string_view qualifier) const {
  auto it = functions.find(std::string(name));
  if (it == functions.end()) {
    return Status::NotFound("function '" + std::string(name) +
                            "' does not exist; `nimbus ls` lists deployed functions, `nimbus deploy DIR` adds one");
  }
  const FunctionEntry& e = it->second;
  std::string version;
  if (qualifier.empty() || qualifier == "$LATEST") {
    version = e.latest;
  } else if (AllDigits(qualifier)) {
    version = std::string(qualifier);
  } else {
    auto a = e.aliases.find(std::string(qualifier));
    if (a == e.aliases.end()) {
      return Status::NotFound("function '" + std::string(name) + "' has no version or alias '" +
                              std::string(qualifier) + "'; `nimbus info " + std::string(name) +
                              "` lists its versions and aliases");
    }
    version = a->second;
  }
  auto v = e.versions.find(version);
  if (v == e.versions.end()) {
    return Status::NotFound("function '" + std::string(name) + "' has no version " + version + "; `nimbus info " +
                            std::string(name) + "` lists its versions");
  }
  return v->second;
}

Status RebuildRoutes(Snapshot& snap, std::string_view newcomer) {
  RouteTable routes;
  auto add = [&routes](const std::string& name, const FunctionEntry& entry) -> Status {
    auto v = entry.versions.find(entry.latest);
    if (v == entry.versions.end()) return Status::Ok();
    for (const auto& r : v->second->manifest.http) {
      NIMBUS_RETURN_IF_ERROR(routes.Add(r.method, r.path, RouteTarget{name, r.method + " " + r.path, r.async}));
    }
    return Status::Ok();
  };
  for (const auto& [name, entry] : snap.functions) {
    if (name != newcomer) NIMBUS_RETURN_IF_ERROR(add(name, entry));
  }
  if (auto it = snap.functions.find(std::string(newcomer)); it != snap.functions.end()) {
    NIMBUS_RETURN_IF_ERROR(add(it->first, it->second));
  }
  snap.routes = std::make_shared<const RouteTable>(std::move(routes));
  return Status::Ok();
}

}  // namespace nimbus::catalog
