// The catalog through its seam: snapshots as a deploy builds them, resolved as the front door
// and the admin API resolve them, and published while readers hold older ones.
#include "catalog/catalog.h"

#include <gtest/gtest.h>

namespace nimbus::catalog {
namespace {

ConfigPtr Version(const std::string& name, const std::string& version,
                  std::vector<std::pair<std::string, std::string>> routes = {}) {
  auto c = std::make_shared<FunctionConfig>();
  c->name = name;
  c->version = version;
  c->arn = FunctionArn(name);
  for (auto& [method, path] : routes) {
    manifest::Route r;
    r.method = method;
    r.path = path;
    c->manifest.http.push_back(r);
  }
  return c;
}

// hello: versions 1, 2 (latest 2), alias "live" -> 1.
Snapshot HelloSnapshot() {
  Snapshot snap;
  FunctionEntry& e = snap.functions["hello"];
  e.versions["1"] = Version("hello", "1", {{"GET", "/hello"}});
  e.versions["2"] = Version("hello", "2", {{"GET", "/hello/{name}"}});
  e.latest = "2";
  e.aliases["live"] = "1";
  return snap;
}

TEST(CatalogTest, AQualifierResolvesToLatestAVersionOrAnAlias) {
  Snapshot snap = HelloSnapshot();
  for (auto [qualifier, want] : std::vector<std::pair<std::string, std::string>>{
           {"", "2"}, {"$LATEST", "2"}, {"1", "1"}, {"2", "2"}, {"live", "1"}}) {
    auto r = snap.Resolve("hello", qualifier);
    ASSERT_TRUE(r.ok()) << qualifier << ": " << r.status().message();
    EXPECT_EQ((*r)->version, want) << qualifier;
  }
}

TEST(CatalogTest, WhatDoesNotExistIsNotFoundWithAMessageSayingWhatToDo) {
  Snapshot snap = HelloSnapshot();
  auto missing_fn = snap.Resolve("nope", "");
  ASSERT_FALSE(missing_fn.ok());
  EXPECT_EQ(missing_fn.status().code(), Code::kNotFound);
  EXPECT_NE(missing_fn.status().message().find("function 'nope' does not exist"), std::string::npos);
  EXPECT_NE(missing_fn.status().message().find("nimbus ls"), std::string::npos);

  auto missing_version = snap.Resolve("hello", "7");
  ASSERT_FALSE(missing_version.ok());
  EXPECT_EQ(missing_version.status().code(), Code::kNotFound);
  EXPECT_NE(missing_version.status().message().find("has no version 7"), std::string::npos);

  auto missing_alias = snap.Resolve("hello", "canary");
  ASSERT_FALSE(missing_alias.ok());
  EXPECT_NE(missing_alias.status().message().find("no version or alias 'canary'"), std::string::npos);
  EXPECT_NE(missing_alias.status().message().find("nimbus info hello"), std::string::npos);
}

TEST(CatalogTest, RoutesComeFromEachFunctionsLatestVersionOnly) {
  Snapshot snap = HelloSnapshot();
  ASSERT_TRUE(RebuildRoutes(snap).ok());
  EXPECT_EQ(snap.routes->size(), 1u);
  auto m = snap.routes->Match("GET", "/hello/ada");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->target->function, "hello");
  EXPECT_FALSE(snap.routes->Match("GET", "/hello").has_value());  // version 1's route is gone
}

TEST(CatalogTest, ARouteConflictNamesTheFunctionThatAlreadyOwnsIt) {
  Snapshot snap = HelloSnapshot();
  FunctionEntry& other = snap.functions["aaa-newcomer"];
  other.versions["1"] = Version("aaa-newcomer", "1", {{"GET", "/hello/{who}"}});
  other.latest = "1";
  // Sorted by name the newcomer would come first; it is added last, so the message blames it.
  Status st = RebuildRoutes(snap, "aaa-newcomer");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("hello"), std::string::npos) << st.message();
}

TEST(CatalogTest, APublishedSnapshotReplacesTheOldOneWhileReadersKeepWhatTheyHold) {
  Catalog catalog;
  EXPECT_TRUE(catalog.Get()->functions.empty());
  auto first = std::make_shared<const Snapshot>(HelloSnapshot());
  catalog.Set(first);
  SnapshotPtr held = catalog.Get();
  EXPECT_EQ(held, first);

  auto second = std::make_shared<Snapshot>(HelloSnapshot());
  second->functions.erase("hello");
  catalog.Set(second);
  EXPECT_TRUE(catalog.Get()->functions.empty());
  ASSERT_TRUE(held->Resolve("hello", "live").ok());  // the reader's snapshot is intact
}

}  // namespace
}  // namespace nimbus::catalog
