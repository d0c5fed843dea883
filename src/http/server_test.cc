// The hand-written response head is byte for byte what Beast's serializer writes.
#include "http/server.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nimbus::http {
namespace {

std::string ByBeast(Response res) {
  std::ostringstream out;
  out << res;
  return out.str();
}

std::string ByHand(const Response& res) {
  std::string out;
  SerializeHead(res, out);
  return out + res.body();
}

TEST(SerializeHead, WritesWhatBeastWritesForEveryShapeOfResponse) {
  std::vector<Response> cases;
  {
    Response r{bhttp::status::ok, 11};
    r.set(bhttp::field::content_type, "application/json");
    r.set("x-amzn-RequestId", "abc");
    r.body() = "{\"ok\":true}";
    cases.push_back(r);
  }
  {
    Response r{bhttp::status::accepted, 11};
    r.keep_alive(false);
    cases.push_back(r);
  }
  {
    Response r{bhttp::status::not_found, 10};
    r.keep_alive(true);
    r.body() = "nope";
    cases.push_back(r);
  }
  {
    Response r{bhttp::status::no_content, 11};
    r.set("X-Amz-Executed-Version", "3");
    cases.push_back(r);
  }
  {
    Response r{static_cast<bhttp::status>(599), 11};  // no standard reason
    r.body() = std::string("bin\0ary", 7);
    cases.push_back(r);
  }
  {
    Response r{bhttp::status::ok, 11};
    r.reason("Fine Thanks");
    r.insert("Set-Cookie", "a=1");
    r.insert("Set-Cookie", "b=2");
    r.body() = "x";
    cases.push_back(r);
  }
  for (Response& r : cases) {
    r.prepare_payload();
    EXPECT_EQ(ByHand(r), ByBeast(r));
  }
}

}  // namespace
}  // namespace nimbus::http
