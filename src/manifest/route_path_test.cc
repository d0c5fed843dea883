// Route paths: the API Gateway HTTP API shapes accepted, and what each refusal says.
#include "manifest/route_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace nimbus::manifest {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(std::string_view path) {
  Status st = CheckRoutePath(path);
  EXPECT_FALSE(st.ok()) << path << " was accepted";
  return st.message();
}

TEST(RoutePath, ApiGatewayShapesAreAccepted) {
  for (const char* p : {"/", "/hello", "/hello/{name}", "/hooks/{proxy+}", "/{proxy+}",
                        "/a/{x}/b/{y}", "/v2/items", "/fnord", "/metrics-v2", "/a.b/c~d/e%20f",
                        "/users/{user_id}/posts/{post_id}"}) {
    EXPECT_TRUE(CheckRoutePath(p).ok()) << p << ": " << CheckRoutePath(p).message();
  }
}

TEST(RoutePath, MustStartWithASlash) {
  EXPECT_EQ(ErrorOf("hello"), "must start with '/', e.g. '/hello'");
  EXPECT_THAT(ErrorOf(""), HasSubstr("must start with '/'"));
}

TEST(RoutePath, EmptySegmentsAreRefused) {
  EXPECT_THAT(ErrorOf("/a//b"), HasSubstr("empty segment ('//')"));
  EXPECT_THAT(ErrorOf("/a/"), HasSubstr("ends with '/'; remove the trailing '/'"));
}

TEST(RoutePath, ParameterNamesAreWordCharacters) {
  EXPECT_THAT(ErrorOf("/a/{na-me}"), HasSubstr("parameter '{na-me}' has a bad name"));
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
}

TEST(RoutePath, QueryStringsAndFragmentsAreNotPartOfAPath) {
  EXPECT_THAT(ErrorOf("/a?b=1"), HasSubstr("leave out the query string"));
  EXPECT_THAT(ErrorOf("/a#top"), HasSubstr("contains '#'"));
}

TEST(RoutePath, SpacesAreRefused) {
  EXPECT_THAT(ErrorOf("/a b"), HasSubstr("percent-encode"));
}

TEST(RoutePath, ReservedFirstSegmentsAreRefused) {
  for (const char* p : {"/fn", "/fn/x", "/v1", "/v1/functions", "/2015-03-31/functions", "/metrics",
                        "/metrics/x"}) {
    EXPECT_THAT(ErrorOf(p), HasSubstr("which nimbus serves itself")) << p;
  }
}

TEST(RoutePath, ReservedNamesDeeperInThePathAreFine) {
  EXPECT_TRUE(CheckRoutePath("/api/v1/metrics").ok());
}

TEST(RoutePath, OverlyLongPathsAreRefused) {
  EXPECT_THAT(ErrorOf("/" + std::string(1024, 'a')), HasSubstr("the limit is 1024"));
}

TEST(RouteShape, ErasesParameterNames) {
  EXPECT_EQ(RouteShape("/a/{x}/b/{rest+}"), "/a/{}/b/{+}");
  EXPECT_EQ(RouteShape("/a/{y}/b/{p+}"), RouteShape("/a/{x}/b/{rest+}"));
  EXPECT_NE(RouteShape("/a/{x}"), RouteShape("/a/{x+}"));
  EXPECT_EQ(RouteShape("/plain"), "/plain");
}

}  // namespace
}  // namespace nimbus::manifest
