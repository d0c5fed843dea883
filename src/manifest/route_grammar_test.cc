// The route grammar: the API Gateway HTTP API shapes accepted, what each refusal says, and
// the pieces a router compiles from an accepted path.
#include "manifest/route_grammar.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace nimbus::manifest {
namespace {

using ::testing::HasSubstr;
using Kind = RouteSegment::Kind;
using Segments = std::vector<RouteSegment>;

std::string ErrorOf(std::string_view path) {
  Result<Segments> r = ParseRoutePath(path);
  EXPECT_FALSE(r.ok()) << path << " was accepted";
  return r.status().message();
}

bool Accepted(std::string_view path) { return ParseRoutePath(path).ok(); }

std::string ShapeOf(std::string_view path) {
  Result<Segments> r = ParseRoutePath(path);
  EXPECT_TRUE(r.ok()) << path << ": " << r.status().message();
  return r.ok() ? RouteShape(*r) : "";
}

TEST(RoutePath, ApiGatewayShapesAreAccepted) {
  for (const char* p : {"/", "/hello", "/hello/{name}", "/hooks/{proxy+}", "/{proxy+}",
                        "/a/{x}/b/{y}", "/v2/items", "/fnord", "/metrics-v2", "/a.b/c~d/e%20f",
                        "/users/{user_id}/posts/{post_id}"}) {
    EXPECT_TRUE(Accepted(p)) << p << ": " << ParseRoutePath(p).status().message();
  }
}

TEST(RoutePath, ParsesIntoLiteralsParametersAndAGreedyTail) {
  EXPECT_EQ(*ParseRoutePath("/"), Segments{});
  EXPECT_EQ(*ParseRoutePath("/users/{id}/files/{rest+}"),
            (Segments{{Kind::kLiteral, "users"}, {Kind::kParam, "id"}, {Kind::kLiteral, "files"},
                      {Kind::kGreedy, "rest"}}));
}

TEST(RoutePath, LiteralsArePercentDecodedAsRequestPathsAre) {
  EXPECT_EQ(*ParseRoutePath("/hello%20world/h%65llo/a%2Fb/100%"),
            (Segments{{Kind::kLiteral, "hello world"}, {Kind::kLiteral, "hello"},
                      {Kind::kLiteral, "a/b"}, {Kind::kLiteral, "100%"}}));
}

TEST(RoutePath, MustStartWithASlash) {
  EXPECT_EQ(ErrorOf("hello"), "must start with '/', e.g. '/hello'");
  EXPECT_THAT(ErrorOf(""), HasSubstr("must start with '/'"));
}

TEST(RoutePath, EmptySegmentsAreRefused) {
  EXPECT_THAT(ErrorOf("/a//b"), HasSubstr("empty segment ('//')"));
  EXPECT_THAT(ErrorOf("//"), HasSubstr("empty segment ('//')"));
  EXPECT_THAT(ErrorOf("/a/"), HasSubstr("ends with '/'; remove the trailing '/'"));
}

TEST(RoutePath, ParameterNamesAreWordCharacters) {
  EXPECT_THAT(ErrorOf("/a/{na-me}"), HasSubstr("parameter '{na-me}' has a bad name"));
  EXPECT_THAT(ErrorOf("/a/{na.me}"), HasSubstr("has a bad name"));
  EXPECT_THAT(ErrorOf("/a/{}"), HasSubstr("is not a parameter"));
  EXPECT_THAT(ErrorOf("/a/{+}"), HasSubstr("has a bad name"));
}

TEST(RoutePath, AParameterIsAWholeSegment) {
  EXPECT_THAT(ErrorOf("/files/{name}.txt"), HasSubstr("is not a parameter"));
  EXPECT_THAT(ErrorOf("/files/x{name}"), HasSubstr("mixes text and a parameter"));
  EXPECT_THAT(ErrorOf("/a/{b"), HasSubstr("is not a parameter"));
}

TEST(RoutePath, AGreedyParameterMustBeLast) {
  EXPECT_THAT(ErrorOf("/{proxy+}/x"), HasSubstr("must be the last segment"));
}

TEST(RoutePath, AParameterNameMayNotRepeat) {
  EXPECT_THAT(ErrorOf("/{id}/x/{id}"), HasSubstr("'{id}' appears twice"));
  EXPECT_THAT(ErrorOf("/{id}/{id+}"), HasSubstr("'{id}' appears twice"));
}

TEST(RoutePath, QueryStringsAndFragmentsAreNotPartOfAPath) {
  EXPECT_THAT(ErrorOf("/a?b=1"), HasSubstr("leave out the query string"));
  EXPECT_THAT(ErrorOf("/a#top"), HasSubstr("contains '#'"));
}

TEST(RoutePath, SpacesAndControlCharactersAreRefused) {
  EXPECT_THAT(ErrorOf("/a b"), HasSubstr("percent-encode"));
  EXPECT_THAT(ErrorOf("/a\tb"), HasSubstr("percent-encode"));
  EXPECT_THAT(ErrorOf("/a\x7f"), HasSubstr("percent-encode"));
}

TEST(RoutePath, ReservedFirstSegmentsAreRefused) {
  for (const char* p : {"/fn", "/fn/x", "/v1", "/v1/functions", "/2015-03-31/functions", "/metrics",
                        "/metrics/x"}) {
    EXPECT_THAT(ErrorOf(p), HasSubstr("which nimbus serves itself")) << p;
  }
}

TEST(RoutePath, ReservedNamesDeeperInThePathAreFine) {
  EXPECT_TRUE(Accepted("/api/v1/metrics"));
}

TEST(RoutePath, OverlyLongPathsAreRefused) {
  EXPECT_TRUE(Accepted("/" + std::string(kMaxRoutePathLength - 1, 'a')));
  EXPECT_THAT(ErrorOf("/" + std::string(kMaxRoutePathLength, 'a')), HasSubstr("the limit is 1024"));
}

TEST(RoutePath, AtMost16ParametersFitTheRouteTable) {
  std::string path;
  for (size_t i = 0; i < kMaxRouteParams; ++i) path += "/{p" + std::to_string(i) + "}";
  EXPECT_TRUE(Accepted(path));
  EXPECT_EQ(ErrorOf(path + "/{last+}"), "names 17 parameters; the limit is 16");
}

TEST(RouteMethod, AnyLetterCaseOfTheEightMethods) {
  EXPECT_EQ(*ParseRouteMethod("GET"), 0u);
  EXPECT_EQ(*ParseRouteMethod("options"), 6u);
  EXPECT_EQ(*ParseRouteMethod("Any"), kAnyMethod);
  EXPECT_EQ(kRouteMethods[kAnyMethod], "ANY");
}

TEST(RouteMethod, OtherMethodsAreRefusedWithTheList) {
  for (const char* m : {"FETCH", "", "GETS", "GE", "PROPFIND"}) {
    Result<size_t> r = ParseRouteMethod(m);
    ASSERT_FALSE(r.ok()) << m;
    EXPECT_EQ(r.status().message(),
              "is not supported; use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY "
              "(ANY matches every method)");
  }
}

TEST(RouteShape, ErasesParameterNames) {
  EXPECT_EQ(ShapeOf("/a/{x}/b/{rest+}"), "/a/{}/b/{+}");
  EXPECT_EQ(ShapeOf("/a/{y}/b/{p+}"), ShapeOf("/a/{x}/b/{rest+}"));
  EXPECT_NE(ShapeOf("/a/{x}"), ShapeOf("/a/{x+}"));
  EXPECT_EQ(ShapeOf("/plain"), "/plain");
  EXPECT_EQ(ShapeOf("/"), "/");
}

TEST(RouteShape, SpellingsOfOneDecodedLiteralHaveOneShape) {
  EXPECT_EQ(ShapeOf("/h%65llo"), ShapeOf("/hello"));
  EXPECT_EQ(ShapeOf("/a%2fb"), ShapeOf("/a%2Fb"));
}

TEST(RouteShape, ADecodedLiteralNeverReadsAsStructure) {
  EXPECT_NE(ShapeOf("/a%2Fb"), ShapeOf("/a/b"));
  EXPECT_NE(ShapeOf("/%7B%7D"), ShapeOf("/{x}"));
  EXPECT_NE(ShapeOf("/%7B+%7D"), ShapeOf("/{x+}"));
  EXPECT_NE(ShapeOf("/%252F"), ShapeOf("/%2F"));
}

}  // namespace
}  // namespace nimbus::manifest
