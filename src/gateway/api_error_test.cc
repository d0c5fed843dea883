// Status codes become the HTTP statuses and Lambda error types the AWS SDKs expect.
#include "gateway/api_error.h"

#include <gtest/gtest.h>

namespace nimbus::gateway {

namespace {

TEST(HttpStatusFor, MapsEveryCode) {
  EXPECT_EQ(HttpStatusFor(Code::kOk), 200);
  EXPECT_EQ(HttpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(Code::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(Code::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(Code::kTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(Code::kTooManyRequests), 429);
  EXPECT_EQ(HttpStatusFor(Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(Code::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(Code::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(Code::kResourceExhausted), 507);  // a full disk: Insufficient Storage
  EXPECT_EQ(HttpStatusFor(Code::kIo), 500);
  EXPECT_EQ(HttpStatusFor(Code::kInternal), 500);
}

TEST(ApiError, CarriesTheLambdaErrorTypeInTheHeaderAndTheBody) {
  Response res = ApiError(11, true, Status::TooManyRequests("slow down"));
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res["x-amzn-ErrorType"], "TooManyRequestsException");
  EXPECT_EQ(res.body(), R"({"Type":"User","message":"slow down","errorType":"TooManyRequestsException"})");
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
}

}  // namespace
}  // namespace nimbus::gateway
