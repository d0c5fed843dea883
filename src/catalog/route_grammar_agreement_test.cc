// function.yaml's `http` section and the route table read a route with one grammar
// (manifest/route_grammar.h). Each route text here goes through both: the manifest parser, then
// the route table a deploy builds from the parsed manifest (RebuildRoutes), and the route table
// given the text directly. Both accept it or both refuse it, and an accepted route matches a
// sample request with the same parameters either way.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/route_table.h"
#include "manifest/manifest.h"

namespace nimbus::catalog {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;
using MethodPath = std::pair<std::string, std::string>;

// A YAML double-quoted scalar holding `s` exactly, whatever characters it has.
std::string YamlQuoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static const char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Result<manifest::Manifest> ParseRoutes(const std::vector<MethodPath>& routes) {
  std::string text = "name: f\nruntime: python3\nhandler: app.handler\nhttp:\n";
  for (const auto& [method, path] : routes) {
    text += "  - method: " + YamlQuoted(method) + "\n    path: " + YamlQuoted(path) + "\n";
  }
  return manifest::Parse(text, "f/function.yaml");
}

// The route table a deploy of function 'f' with manifest `m` builds.
Result<std::shared_ptr<const RouteTable>> Deploy(const manifest::Manifest& m) {
  auto cfg = std::make_shared<FunctionConfig>();
  cfg->name = "f";
  cfg->version = "1";
  cfg->manifest = m;
  Snapshot snap;
  snap.functions["f"].latest = "1";
  snap.functions["f"].versions["1"] = cfg;
  NIMBUS_RETURN_IF_ERROR(RebuildRoutes(snap, "f"));
  return snap.routes;
}

// The table given the route texts directly, as function 'f''s; the first refusal otherwise.
Result<std::shared_ptr<const RouteTable>> AddDirectly(const std::vector<MethodPath>& routes) {
  auto t = std::make_shared<RouteTable>();
  for (const auto& [method, path] : routes) {
    NIMBUS_RETURN_IF_ERROR(t->Add(method, path, RouteTarget{"f", ""}));
  }
  return std::shared_ptr<const RouteTable>(std::move(t));
}

// "ROUTE_KEY p=v ..." of a match, or "none".
std::string MatchText(const RouteTable& t, std::string_view method, std::string_view path) {
  auto m = t.Match(method, path);
  if (!m) return "none";
  std::string out = m->target->route_key;
  for (const auto& [k, v] : m->path_params) out += " " + k + "=" + v;
  return out;
}

// Accepted by the manifest and by the table, alone and as a deploy builds it; refused by both
// otherwise. Returns the two tables when accepted.
std::optional<std::pair<std::shared_ptr<const RouteTable>, std::shared_ptr<const RouteTable>>>
CheckAgreement(const std::vector<MethodPath>& routes, std::string_view what) {
  Result<manifest::Manifest> m = ParseRoutes(routes);
  Result<std::shared_ptr<const RouteTable>> direct = AddDirectly(routes);
  EXPECT_EQ(m.ok(), direct.ok()) << what << ": the manifest says '" << m.status().message()
                                 << "', the route table says '" << direct.status().message() << "'";
  if (!m.ok() || !direct.ok()) return std::nullopt;
  Result<std::shared_ptr<const RouteTable>> deployed = Deploy(*m);
  EXPECT_TRUE(deployed.ok()) << what << ": the manifest accepted it, the deploy refused it: "
                             << deployed.status().message();
  if (!deployed.ok()) return std::nullopt;
  return std::pair(*deployed, *direct);
}

struct Case {
  std::string method;
  std::string path;
  // For an accepted route: a request and what it matches ("ROUTE_KEY p=v ..."); "" when the
  // route is refused.
  std::string request_method;
  std::string request_path;
  std::string expected;
};

std::string SixteenParams() {
  std::string p;
  for (size_t i = 0; i < RouteTable::kMaxParams; ++i) p += "/{p" + std::to_string(i) + "}";
  return p;
}

TEST(RouteGrammarAgreement, ManifestAndRouteTableAcceptTheSameRoutesAndMatchAlike) {
  const std::string sixteen = SixteenParams();
  const std::vector<Case> cases = {
      // Accepted, with a request each.
      {"GET", "/", "GET", "/", "GET /"},
      {"get", "/hello", "GET", "/hello", "GET /hello"},
      {"GET", "/hello/{name}", "GET", "/hello/world%20x", "GET /hello/{name} name=world x"},
      {"ANY", "/hooks/{proxy+}", "POST", "/hooks/a/b%2Fc", "ANY /hooks/{proxy+} proxy=a/b/c"},
      {"Options", "/files/{name}", "OPTIONS", "/files/a%2Fb", "OPTIONS /files/{name} name=a/b"},
      {"GET", "/users/{user_id}/posts/{post_id}", "GET", "/users/1/posts/2",
       "GET /users/{user_id}/posts/{post_id} user_id=1 post_id=2"},
      {"ANY", "/{proxy+}", "PROPFIND", "/x", "ANY /{proxy+} proxy=x"},
      {"GET", "/a.b/c~d/e-f_g", "GET", "/a.b/c~d/e-f_g", "GET /a.b/c~d/e-f_g"},
      {"GET", "/hello%20world", "GET", "/hello%20world", "GET /hello%20world"},
      {"GET", "/h%65llo", "GET", "/hello", "GET /h%65llo"},
      {"GET", "/100%", "GET", "/100%", "GET /100%"},
      {"GET", "/caf\xc3\xa9", "GET", "/caf%C3%A9", "GET /caf\xc3\xa9"},
      {"GET", "/api/v1/metrics", "GET", "/api/v1/metrics", "GET /api/v1/metrics"},
      {"GET", "/fnord", "GET", "/fnord", "GET /fnord"},
      {"GET", sixteen, "GET", "/0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15",
       "GET " + sixteen +
           " p0=0 p1=1 p2=2 p3=3 p4=4 p5=5 p6=6 p7=7 p8=8 p9=9 p10=10 p11=11 p12=12 p13=13 "
           "p14=14 p15=15"},
      {"GET", "/" + std::string(1023, 'a'), "GET", "/" + std::string(1023, 'a'),
       "GET /" + std::string(1023, 'a')},
      // Refused by both.
      {"FETCH", "/a"}, {"", "/a"}, {"GET", "hello"}, {"GET", ""}, {"GET", "/a//b"},
      {"GET", "//"}, {"GET", "/a/"}, {"GET", "/a/{"}, {"GET", "/a/{}"}, {"GET", "/a/{+}"},
      {"GET", "/a/x{y}"}, {"GET", "/a/{y}x"}, {"GET", "/{p+}/tail"}, {"GET", "/{a b}"},
      {"GET", "/{a-b}"}, {"GET", "/{a.b}"}, {"GET", "/{x}/{x}"}, {"GET", "/{x}/{x+}"},
      {"GET", "/a?b=1"}, {"GET", "/a#frag"}, {"GET", "/a b"}, {"GET", "/a\tb"},
      {"GET", "/a\x7f"}, {"GET", "/fn"}, {"GET", "/fn/x"}, {"GET", "/v1/functions"},
      {"GET", "/2015-03-31/functions"}, {"GET", "/metrics"}, {"GET", sixteen + "/{last}"},
      {"GET", "/" + std::string(1024, 'a')},
  };
  for (const Case& c : cases) {
    const std::string what = "route '" + c.method + " " + c.path + "'";
    auto tables = CheckAgreement({{c.method, c.path}}, what);
    EXPECT_EQ(tables.has_value(), !c.expected.empty()) << what;
    if (!tables) continue;
    EXPECT_EQ(MatchText(*tables->first, c.request_method, c.request_path), c.expected)
        << what << " deployed from function.yaml";
    EXPECT_EQ(MatchText(*tables->second, c.request_method, c.request_path), c.expected)
        << what << " added to the route table";
  }
}

TEST(RouteGrammarAgreement, TwoRoutesOfOneFunctionConflictInBothOrInNeither) {
  // (An identical route listed twice is left out: function.yaml refuses it as a slip, and the
  // table takes the same route of the same function again as a no-op.)
  const std::vector<std::pair<std::vector<MethodPath>, bool>> cases = {
      {{{"GET", "/a/{x}"}, {"GET", "/a/{y}"}}, false},
      {{{"ANY", "/h/{proxy+}"}, {"ANY", "/h/{rest+}"}}, false},
      {{{"GET", "/h%65llo"}, {"GET", "/hello"}}, false},
      {{{"GET", "/a%2fb"}, {"GET", "/a%2Fb"}}, false},
      {{{"GET", "/a"}, {"ANY", "/a"}}, true},
      {{{"GET", "/a"}, {"POST", "/a"}}, true},
      {{{"GET", "/a/{x}"}, {"GET", "/a/{x+}"}}, true},
      {{{"GET", "/a%2Fb"}, {"GET", "/a/b"}}, true},
      {{{"GET", "/%7Bx%7D"}, {"GET", "/{x}"}}, true},
  };
  for (const auto& [routes, compatible] : cases) {
    const std::string what = routes[0].first + " " + routes[0].second + " with " +
                             routes[1].first + " " + routes[1].second;
    EXPECT_EQ(CheckAgreement(routes, what).has_value(), compatible) << what;
  }
}

TEST(RouteGrammarAgreement, EveryShortPathIsReadAlikeByBoth) {
  // Every path of up to three characters after the leading '/' from characters that mean
  // something to the grammar, the router or YAML.
  const std::string alphabet = "a_{}+/%2F ?-";
  std::vector<std::string> paths = {"/"};
  for (size_t begin = 0, len = 0; len < 3; ++len) {
    size_t end = paths.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : alphabet) paths.push_back(paths[i] + c);
    }
    begin = end;
  }
  size_t accepted = 0;
  for (const std::string& path : paths) {
    auto tables = CheckAgreement({{"GET", path}}, "path '" + path + "'");
    if (!tables) continue;
    ++accepted;
    // A request spelling the route out, parameters filled in, reaches it in both tables.
    std::string request;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '{') {
        size_t close = path.find('}', i);
        request += path[close - 1] == '+' ? "v/w" : "v";
        i = close;
      } else {
        request += path[i];
      }
    }
    std::string deployed = MatchText(*tables->first, "GET", request);
    EXPECT_EQ(deployed.substr(0, 4 + path.size()), "GET " + path) << path << " <- " << request;
    EXPECT_EQ(deployed, MatchText(*tables->second, "GET", request)) << path << " <- " << request;
  }
  // The alphabet reaches both sides of the grammar.
  EXPECT_GT(accepted, 100u);
  EXPECT_LT(accepted, paths.size() / 2);
}

}  // namespace
}  // namespace nimbus::catalog
