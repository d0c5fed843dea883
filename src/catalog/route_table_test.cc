// Specification of route matching: precedence, parameters, conflicts, pattern validation.
#include "catalog/route_table.h"

#include <gtest/gtest.h>

#include <string>

namespace nimbus::catalog {
namespace {

RouteTarget To(std::string function) { return RouteTarget{std::move(function), ""}; }

// Adds a route and fails the test when the table refuses it.
void MustAdd(RouteTable& t, std::string_view method, std::string_view pattern,
             std::string function) {
  Status s = t.Add(method, pattern, To(std::move(function)));
  ASSERT_TRUE(s.ok()) << method << " " << pattern << ": " << s.message();
}

// "function route_key" of the match, or "none".
std::string Winner(const RouteTable& t, std::string_view method, std::string_view path) {
  auto m = t.Match(method, path);
  if (!m) return "none";
  return m->target->function + " " + m->target->route_key;
}

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(RouteTable, MatchesALiteralRouteAndFillsInItsRouteKey) {
  RouteTable t;
  MustAdd(t, "GET", "/hello", "f");
  EXPECT_EQ(Winner(t, "GET", "/hello"), "f GET /hello");
  EXPECT_EQ(Winner(t, "GET", "/hello/x"), "none");
  EXPECT_EQ(Winner(t, "GET", "/hell"), "none");
  EXPECT_EQ(Winner(t, "GET", "/"), "none");
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTable, KeepsARouteKeyTheCallerGave) {
  RouteTable t;
  ASSERT_TRUE(t.Add("get", "/a", RouteTarget{"f", "custom"}).ok());
  EXPECT_EQ(Winner(t, "GET", "/a"), "f custom");
}

TEST(RouteTable, RootRouteMatchesOnlySlash) {
  RouteTable t;
  MustAdd(t, "GET", "/", "root");
  EXPECT_EQ(Winner(t, "GET", "/"), "root GET /");
  EXPECT_EQ(Winner(t, "GET", "//"), "none");
  EXPECT_EQ(Winner(t, "GET", "/x"), "none");
  EXPECT_EQ(Winner(t, "GET", ""), "none");
  EXPECT_EQ(Winner(t, "GET", "*"), "none");
}

TEST(RouteTable, LiteralSegmentBeatsParameter) {
  RouteTable t;
  MustAdd(t, "GET", "/users/{id}", "param");
  MustAdd(t, "GET", "/users/me", "literal");
  EXPECT_EQ(Winner(t, "GET", "/users/me"), "literal GET /users/me");
  EXPECT_EQ(Winner(t, "GET", "/users/42"), "param GET /users/{id}");
}

TEST(RouteTable, ParameterBeatsGreedy) {
  RouteTable t;
  MustAdd(t, "GET", "/users/{proxy+}", "greedy");
  MustAdd(t, "GET", "/users/{id}", "param");
  EXPECT_EQ(Winner(t, "GET", "/users/42"), "param GET /users/{id}");
  EXPECT_EQ(Winner(t, "GET", "/users/42/posts"), "greedy GET /users/{proxy+}");
}

TEST(RouteTable, MethodRouteBeatsAnyOnTheSamePath) {
  RouteTable t;
  MustAdd(t, "ANY", "/items", "any");
  MustAdd(t, "POST", "/items", "post");
  EXPECT_EQ(Winner(t, "POST", "/items"), "post POST /items");
  EXPECT_EQ(Winner(t, "GET", "/items"), "any ANY /items");
  EXPECT_EQ(Winner(t, "PROPFIND", "/items"), "any ANY /items");
}

TEST(RouteTable, MethodRouteBeatsAnyForGreedyRoutesToo) {
  RouteTable t;
  MustAdd(t, "ANY", "/{proxy+}", "any");
  MustAdd(t, "GET", "/{proxy+}", "get");
  EXPECT_EQ(Winner(t, "GET", "/a/b"), "get GET /{proxy+}");
  EXPECT_EQ(Winner(t, "DELETE", "/a/b"), "any ANY /{proxy+}");
}

TEST(RouteTable, AMoreSpecificPathBeatsAMethodMatchOnALessSpecificOne) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}", "param-get");
  MustAdd(t, "ANY", "/a/b", "literal-any");
  EXPECT_EQ(Winner(t, "GET", "/a/b"), "literal-any ANY /a/b");
}

TEST(RouteTable, FollowsTheAwsDocumentationExample) {
  // The example of route precedence in API Gateway's developer guide.
  RouteTable t;
  MustAdd(t, "GET", "/pets/dog/1", "a");
  MustAdd(t, "GET", "/pets/dog/{id}", "b");
  MustAdd(t, "GET", "/pets/{proxy+}", "c");
  MustAdd(t, "ANY", "/{proxy+}", "d");
  EXPECT_EQ(Winner(t, "GET", "/pets/dog/1"), "a GET /pets/dog/1");
  EXPECT_EQ(Winner(t, "GET", "/pets/dog/2"), "b GET /pets/dog/{id}");
  EXPECT_EQ(Winner(t, "GET", "/pets/cat/1"), "c GET /pets/{proxy+}");
  EXPECT_EQ(Winner(t, "POST", "/pets/cat/1"), "d ANY /{proxy+}");
}

TEST(RouteTable, BacktracksFromALiteralDeadEndToAParameter) {
  RouteTable t;
  MustAdd(t, "GET", "/a/b", "literal");
  MustAdd(t, "GET", "/{x}/b/c", "param");
  EXPECT_EQ(Winner(t, "GET", "/a/b/c"), "param GET /{x}/b/c");
  auto m = t.Match("GET", "/a/b/c");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->path_params, (Params{{"x", "a"}}));
}

TEST(RouteTable, BacktracksWhenOnlyAnotherMethodEndsOnTheLiteralPath) {
  RouteTable t;
  MustAdd(t, "POST", "/a/b", "post-literal");
  MustAdd(t, "GET", "/a/{x}", "get-param");
  EXPECT_EQ(Winner(t, "GET", "/a/b"), "get-param GET /a/{x}");
  EXPECT_EQ(Winner(t, "POST", "/a/b"), "post-literal POST /a/b");
}

TEST(RouteTable, BacktracksFromAParameterDeadEndToGreedy) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}/c", "param");
  MustAdd(t, "GET", "/a/{rest+}", "greedy");
  EXPECT_EQ(Winner(t, "GET", "/a/b/c"), "param GET /a/{x}/c");
  auto m = t.Match("GET", "/a/b/d");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target->function, "greedy");
  EXPECT_EQ(m->path_params, (Params{{"rest", "b/d"}}));
}

TEST(RouteTable, BacktrackingDropsCapturesOfAbandonedBranches) {
  RouteTable t;
  MustAdd(t, "GET", "/{a}/{b}/x", "deep");
  MustAdd(t, "GET", "/{c}/{proxy+}", "shallow");
  auto m = t.Match("GET", "/1/2/y");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target->function, "shallow");
  EXPECT_EQ(m->path_params, (Params{{"c", "1"}, {"proxy", "2/y"}}));
}

TEST(RouteTable, ParametersWithDifferentNamesAtOnePositionKeepTheirOwnNames) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}/b", "one");
  MustAdd(t, "GET", "/a/{y}/c", "two");
  auto m1 = t.Match("GET", "/a/1/b");
  auto m2 = t.Match("GET", "/a/2/c");
  ASSERT_TRUE(m1 && m2);
  EXPECT_EQ(m1->path_params, (Params{{"x", "1"}}));
  EXPECT_EQ(m2->path_params, (Params{{"y", "2"}}));
}

TEST(RouteTable, PercentDecodesParametersButAnEncodedSlashStaysInsideItsSegment) {
  RouteTable t;
  MustAdd(t, "GET", "/files/{name}/{version}", "f");
  auto m = t.Match("GET", "/files/a%20b%2Fc/v%31+x");
  ASSERT_TRUE(m);
  // '+' is a literal plus in a path; only query strings read it as a space.
  EXPECT_EQ(m->path_params, (Params{{"name", "a b/c"}, {"version", "v1+x"}}));
}

TEST(RouteTable, KeepsMalformedPercentEscapesAsTheyAre) {
  RouteTable t;
  MustAdd(t, "GET", "/{x}", "f");
  auto m = t.Match("GET", "/100%-%zz%4");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->path_params, (Params{{"x", "100%-%zz%4"}}));
}

TEST(RouteTable, MatchesLiteralSegmentsAfterDecodingThem) {
  RouteTable t;
  MustAdd(t, "GET", "/hello", "g");
  EXPECT_EQ(Winner(t, "GET", "/h%65llo"), "g GET /hello");
  EXPECT_EQ(Winner(t, "GET", "/h%65llo%"), "none");
}

TEST(RouteTable, AnEncodedLiteralInThePatternMatchesRequestsSpellingItEitherWay) {
  // function.yaml cannot hold a space in a path; it is written %20, and requests send %20.
  RouteTable t;
  MustAdd(t, "GET", "/hello%20world/a%2Fb", "f");
  EXPECT_EQ(Winner(t, "GET", "/hello%20world/a%2Fb"), "f GET /hello%20world/a%2Fb");
  EXPECT_EQ(Winner(t, "GET", "/hello%20world/a%2fb"), "f GET /hello%20world/a%2Fb");
  EXPECT_EQ(Winner(t, "GET", "/hello%2520world/a%2Fb"), "none");
  EXPECT_EQ(Winner(t, "GET", "/hello%20world/a/b"), "none");  // a real '/' separates segments
}

TEST(RouteTable, GreedyParameterTakesTheDecodedRestOfThePath) {
  RouteTable t;
  MustAdd(t, "ANY", "/hooks/{proxy+}", "hooks");
  auto m = t.Match("POST", "/hooks/github/push%20event/x/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->target->route_key, "ANY /hooks/{proxy+}");
  EXPECT_EQ(m->path_params, (Params{{"proxy", "github/push event/x/"}}));
}

TEST(RouteTable, GreedyParameterNeedsAtLeastOneCharacter) {
  RouteTable t;
  MustAdd(t, "ANY", "/hooks/{proxy+}", "hooks");
  MustAdd(t, "ANY", "/{proxy+}", "all");
  EXPECT_EQ(Winner(t, "GET", "/hooks"), "all ANY /{proxy+}");
  EXPECT_EQ(Winner(t, "GET", "/hooks/"), "all ANY /{proxy+}");
  EXPECT_EQ(Winner(t, "GET", "/hooks/x"), "hooks ANY /hooks/{proxy+}");
  // As in API Gateway, /{proxy+} does not catch the root path.
  EXPECT_EQ(Winner(t, "GET", "/"), "none");
}

TEST(RouteTable, TrailingSlashIsADifferentPathThatNoRouteDeclares) {
  RouteTable t;
  MustAdd(t, "GET", "/hello", "bare");
  EXPECT_EQ(Winner(t, "GET", "/hello/"), "none");
  Status s = t.Add("GET", "/hello/", To("slash"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "route path '/hello/' in function.yaml ends with '/'; remove the trailing '/'");
}

TEST(RouteTable, ParameterDoesNotMatchAnEmptySegment) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}", "f");
  EXPECT_EQ(Winner(t, "GET", "/a/"), "none");
  EXPECT_EQ(Winner(t, "GET", "/a/1"), "f GET /a/{x}");
}

TEST(RouteTable, HeadDoesNotFallBackToGet) {
  RouteTable t;
  MustAdd(t, "GET", "/a", "f");
  EXPECT_EQ(Winner(t, "HEAD", "/a"), "none");
}

TEST(RouteTable, RequestMethodsAreCaseSensitive) {
  RouteTable t;
  MustAdd(t, "get", "/a", "f");  // the manifest's letter case does not matter
  EXPECT_EQ(Winner(t, "GET", "/a"), "f GET /a");
  EXPECT_EQ(Winner(t, "get", "/a"), "none");
}

TEST(RouteTable, RefusesARouteOwnedByAnotherFunction) {
  RouteTable t;
  MustAdd(t, "GET", "/hello/{name}", "x");
  Status s = t.Add("GET", "/hello/{name}", To("y"));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "route GET /hello/{name} already belongs to function 'x'; change the path in "
            "function.yaml or remove 'x'");
  EXPECT_EQ(Winner(t, "GET", "/hello/a"), "x GET /hello/{name}");
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTable, RefusesAPatternThatDiffersOnlyInParameterNames) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}", "x");
  MustAdd(t, "ANY", "/h/{proxy+}", "x");
  Status s = t.Add("GET", "/a/{y}", To("y"));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_NE(s.message().find("GET /a/{y} matches the same requests as GET /a/{x}"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(t.Add("ANY", "/h/{rest+}", To("y")).code(), Code::kAlreadyExists);
  // Even for the same function: only one of the two could ever match.
  EXPECT_EQ(t.Add("GET", "/a/{z}", To("x")).code(), Code::kAlreadyExists);
}

TEST(RouteTable, RefusesAnotherSpellingOfAnEncodedLiteral) {
  RouteTable t;
  MustAdd(t, "GET", "/h%65llo", "x");
  Status s = t.Add("GET", "/hello", To("x"));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "route GET /hello matches the same requests as GET /h%65llo, which already belongs "
            "to function 'x'; change the path in function.yaml or remove 'x'");
}

TEST(RouteTable, AcceptsTheSameRouteTwiceFromTheSameFunction) {
  RouteTable t;
  MustAdd(t, "GET", "/a/{x}", "x");
  MustAdd(t, "GET", "/a/{x}", "x");
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTable, OtherMethodsOnTheSamePathDoNotConflict) {
  RouteTable t;
  MustAdd(t, "GET", "/a", "x");
  MustAdd(t, "POST", "/a", "y");
  MustAdd(t, "ANY", "/a", "z");
  EXPECT_EQ(Winner(t, "GET", "/a"), "x GET /a");
  EXPECT_EQ(Winner(t, "POST", "/a"), "y POST /a");
  EXPECT_EQ(Winner(t, "PUT", "/a"), "z ANY /a");
}

TEST(RouteTable, RefusesMalformedMethodsAndPatterns) {
  RouteTable t;
  Status method = t.Add("FETCH", "/a", To("f"));
  EXPECT_EQ(method.code(), Code::kInvalidArgument);
  EXPECT_EQ(method.message(),
            "route method 'FETCH' in function.yaml is not supported; use one of GET, POST, PUT, "
            "PATCH, DELETE, HEAD, OPTIONS, ANY (ANY matches every method)");
  const char* bad[] = {"",          "a/b",      "/a//b",    "/a/{",        "/a/{}",
                       "/a/{+}",    "/a/x{y}",  "/a/{y}x",  "/{p+}/tail",  "/{a b}",
                       "/{x}/{x}",  "/a?b=1",   "/a#frag",  "/a/",         "/a b",
                       "/{a-b}",    "/{a.b}",   "/fn/x",    "/metrics"};
  for (const char* p : bad) {
    Status s = t.Add("GET", p, To("f"));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << "pattern '" << p << "'";
    EXPECT_NE(s.message().find("function.yaml"), std::string::npos) << s.message();
  }
  EXPECT_EQ(t.size(), 0u);
}

TEST(RouteTable, RefusesMoreParametersThanItCanCapture) {
  RouteTable t;
  std::string ok, too_many;
  for (size_t i = 0; i < RouteTable::kMaxParams; ++i) ok += "/{p" + std::to_string(i) + "}";
  too_many = ok + "/{last}";
  MustAdd(t, "GET", ok, "f");
  EXPECT_EQ(t.Add("GET", too_many, To("f")).code(), Code::kInvalidArgument);
  std::string path;
  for (size_t i = 0; i < RouteTable::kMaxParams; ++i) path += "/" + std::to_string(i);
  auto m = t.Match("GET", path);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->path_params.size(), RouteTable::kMaxParams);
  EXPECT_EQ(m->path_params.back(), (std::pair<std::string, std::string>{"p15", "15"}));
}

TEST(RouteTable, FindsEachOfManyRoutes) {
  RouteTable t;
  for (int i = 0; i < 500; ++i) {
    std::string n = std::to_string(i);
    MustAdd(t, "GET", "/svc" + n + "/items/{id}", "f" + n);
    MustAdd(t, "POST", "/svc" + n + "/items", "f" + n);
  }
  MustAdd(t, "ANY", "/{proxy+}", "fallback");
  EXPECT_EQ(t.size(), 1001u);
  for (int i = 0; i < 500; ++i) {
    std::string n = std::to_string(i);
    auto m = t.Match("GET", "/svc" + n + "/items/abc" + n);
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(m->target->function, "f" + n);
    EXPECT_EQ(m->path_params, (Params{{"id", "abc" + n}}));
    EXPECT_EQ(Winner(t, "POST", "/svc" + n + "/items"), "f" + n + " POST /svc" + n + "/items");
  }
  EXPECT_EQ(Winner(t, "GET", "/svc1/items"), "fallback ANY /{proxy+}");
  EXPECT_EQ(Winner(t, "GET", "/svc500/items/1"), "fallback ANY /{proxy+}");
}

TEST(RouteTable, MatchSurvivesMovingTheTable) {
  RouteTable t;
  MustAdd(t, "GET", "/a", "f");
  RouteTable moved = std::move(t);
  EXPECT_EQ(Winner(moved, "GET", "/a"), "f GET /a");
}

TEST(PercentDecode, DecodesEscapesAndOptionallyPlus) {
  EXPECT_EQ(PercentDecode("a%20b+c%2b%2F"), "a b+c+/");
  EXPECT_EQ(PercentDecode("a%20b+c", true), "a b c");
  EXPECT_EQ(PercentDecode("%"), "%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%41"), "A");
  EXPECT_EQ(PercentDecode("%g1"), "%g1");
  EXPECT_EQ(PercentDecode("%00"), std::string(1, '\0'));
}

}  // namespace
}  // namespace nimbus::catalog
