// Specification of the payload 2.0 mapping. Every event built here is parsed back with
// boost::json (see Event()), so any escaping mistake fails the test that made it.
#include "gateway/apigw_v2.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <random>
#include <string>

namespace nimbus::gateway {
namespace {

namespace json = boost::json;

Request MakeRequest(http::verb method, std::string target,
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    std::string body = "", unsigned version = 11) {
  Request req(method, target, version);
  for (auto& [name, value] : headers) req.insert(name, value);
  req.body() = std::move(body);
  return req;
}

EventContext Ctx() {
  EventContext ctx;
  ctx.request_id = "req-1";
  ctx.source_ip = "192.0.2.7";
  ctx.now_ms = 1583348638390;
  return ctx;
}

// Builds the event and parses it back: every event a test builds must be valid JSON.
json::object Event(const Request& req, const EventContext& ctx) {
  std::string text = BuildEventV2(req, ctx);
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << " in: " << text;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

std::string Str(const json::value& v) { return std::string(v.as_string()); }

TEST(BuildEventV2, WritesEveryFieldOfAFullRequest) {
  Request req = MakeRequest(http::verb::get, "/hello/world%20x?b=2&a=1&a=%20x+y&flag",
                            {{"Host", "api.example.com:8080"},
                             {"User-Agent", "curl/8.0"},
                             {"X-Multi", "one"},
                             {"Cookie", "a=1; b=2 ;;"},
                             {"Accept", "*/*"},
                             {"x-MULTI", "two"},
                             {"cookie", "c=3"}});
  std::vector<std::pair<std::string, std::string>> params = {{"name", "world x"}};
  EventContext ctx = Ctx();
  ctx.route_key = "GET /hello/{name}";
  ctx.path_params = &params;
  json::object e = Event(req, ctx);

  json::value expected = json::parse(R"({
    "version": "2.0",
    "routeKey": "GET /hello/{name}",
    "rawPath": "/hello/world%20x",
    "rawQueryString": "b=2&a=1&a=%20x+y&flag",
    "cookies": ["a=1", "b=2", "c=3"],
    "headers": {"accept": "*/*", "host": "api.example.com:8080", "user-agent": "curl/8.0",
                "x-multi": "one,two"},
    "queryStringParameters": {"a": "1, x y", "b": "2", "flag": ""},
    "pathParameters": {"name": "world x"},
    "requestContext": {
      "accountId": "000000000000",
      "apiId": "nimbus",
      "domainName": "api.example.com:8080",
      "domainPrefix": "api",
      "http": {"method": "GET", "path": "/hello/world%20x", "protocol": "HTTP/1.1",
               "sourceIp": "192.0.2.7", "userAgent": "curl/8.0"},
      "requestId": "req-1",
      "routeKey": "GET /hello/{name}",
      "stage": "$default",
      "time": "04/Mar/2020:19:03:58 +0000",
      "timeEpoch": 1583348638390
    },
    "isBase64Encoded": false
  })");
  EXPECT_EQ(json::value(e), expected) << json::serialize(e);
}

TEST(BuildEventV2, OmitsOptionalFieldsWhenTheRequestHasNone) {
  Request req = MakeRequest(http::verb::post, "/p", {{"Host", "localhost"}});
  json::object e = Event(req, Ctx());
  EXPECT_FALSE(e.contains("cookies"));
  EXPECT_FALSE(e.contains("queryStringParameters"));
  EXPECT_FALSE(e.contains("pathParameters"));
  EXPECT_FALSE(e.contains("body"));  // an empty body is omitted, as API Gateway does
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(false));
  EXPECT_EQ(Str(e.at("rawQueryString")), "");
  EXPECT_EQ(Str(e.at("routeKey")), "$default");
  EXPECT_EQ(Str(e.at("requestContext").at("routeKey")), "$default");
  EXPECT_EQ(Str(e.at("requestContext").at("http").at("userAgent")), "");
  EXPECT_EQ(Str(e.at("requestContext").at("domainPrefix")), "localhost");
}

TEST(BuildEventV2, OmitsEmptyPathParametersAndDefaultsAnEmptyRouteKey) {
  std::vector<std::pair<std::string, std::string>> none;
  EventContext ctx = Ctx();
  ctx.path_params = &none;
  ctx.route_key = "";
  json::object e = Event(MakeRequest(http::verb::get, "/"), ctx);
  EXPECT_FALSE(e.contains("pathParameters"));
  EXPECT_EQ(Str(e.at("routeKey")), "$default");
}

TEST(BuildEventV2, KeepsThePathRawInRawPathAndRequestContext) {
  json::object e = Event(MakeRequest(http::verb::get, "/a%2Fb/c%20d/%E2%98%83?x=%2F"), Ctx());
  EXPECT_EQ(Str(e.at("rawPath")), "/a%2Fb/c%20d/%E2%98%83");
  EXPECT_EQ(Str(e.at("requestContext").at("http").at("path")), "/a%2Fb/c%20d/%E2%98%83");
  EXPECT_EQ(Str(e.at("rawQueryString")), "x=%2F");
  EXPECT_EQ(Str(e.at("queryStringParameters").at("x")), "/");
}

TEST(BuildEventV2, DecodesQueryParametersAndJoinsRepeatedKeys) {
  json::object e = Event(
      MakeRequest(http::verb::get, "/q?tag=a&&tag=b&sum=1%2B1&sp=a+b&=novalue&tag=c&e="), Ctx());
  const json::object& q = e.at("queryStringParameters").as_object();
  EXPECT_EQ(Str(q.at("tag")), "a,b,c");
  EXPECT_EQ(Str(q.at("sum")), "1+1");
  EXPECT_EQ(Str(q.at("sp")), "a b");
  EXPECT_EQ(Str(q.at("e")), "");
  EXPECT_FALSE(q.contains(""));  // a piece without a key carries nothing to name
  EXPECT_EQ(q.size(), 4u);
}

TEST(BuildEventV2, DropsAFragmentFromTheQueryString) {
  json::object e = Event(MakeRequest(http::verb::get, "/q?a=1#frag"), Ctx());
  EXPECT_EQ(Str(e.at("rawQueryString")), "a=1");
  EXPECT_EQ(Str(e.at("queryStringParameters").at("a")), "1");
}

TEST(BuildEventV2, EscapesQueryValuesThatDecodeToControlOrInvalidBytes) {
  json::object e = Event(MakeRequest(http::verb::get, "/q?a=%22%0A%5C&b=%FF"), Ctx());
  EXPECT_EQ(Str(e.at("queryStringParameters").at("a")), "\"\n\\");
  EXPECT_EQ(Str(e.at("queryStringParameters").at("b")), "\xEF\xBF\xBD");
}

TEST(BuildEventV2, PassesAJsonBodyAsText) {
  std::string body = R"({"name": "nimbus", "n": [1, 2]})";
  json::object e = Event(MakeRequest(http::verb::post, "/p",
                                     {{"Content-Type", "application/json; charset=utf-8"}}, body),
                         Ctx());
  EXPECT_EQ(Str(e.at("body")), body);
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(false));
}

TEST(BuildEventV2, Base64EncodesABinaryBody) {
  std::string body("\x00\x01\xff\xfe", 4);
  json::object e = Event(
      MakeRequest(http::verb::put, "/p", {{"Content-Type", "application/octet-stream"}}, body),
      Ctx());
  EXPECT_EQ(Str(e.at("body")), "AAH//g==");
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(true));
  EXPECT_EQ(*Base64Decode(Str(e.at("body"))), body);
}

TEST(BuildEventV2, Base64EncodesTextThatIsNotBinarySafeAsJson) {
  // Declared textual, but not UTF-8: as text it would be mangled, so it travels as base64.
  std::string body = "caf\xe9";
  json::object e =
      Event(MakeRequest(http::verb::post, "/p", {{"Content-Type", "text/plain"}}, body), Ctx());
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(true));
  EXPECT_EQ(*Base64Decode(Str(e.at("body"))), body);
}

TEST(BuildEventV2, TreatsABodyWithoutContentTypeAsTextOnlyWhenItIsUtf8) {
  json::object text = Event(MakeRequest(http::verb::post, "/p", {}, "héllo"), Ctx());
  EXPECT_EQ(text.at("isBase64Encoded"), json::value(false));
  EXPECT_EQ(Str(text.at("body")), "héllo");
  json::object binary = Event(MakeRequest(http::verb::post, "/p", {}, "\x89PNG\r\n"), Ctx());
  EXPECT_EQ(binary.at("isBase64Encoded"), json::value(true));
}

TEST(BuildEventV2, RoundTripsControlCharactersQuotesAndUnicodeInBodiesAndHeaders) {
  std::string body;
  for (int c = 0; c < 0x20; ++c) body.push_back(static_cast<char>(c));
  body += "\"quoted\" back\\slash / \x7f é ☃ 😀 \xe2\x80\xa8 end";
  std::string header = "say \"hi\"\\ é ☃ 😀";
  Request req = MakeRequest(http::verb::post, "/p",
                            {{"Content-Type", "text/plain"}, {"X-Quote", header}}, body);
  req.set("X-Ctl", std::string("a\x01\tb", 4));
  EventContext ctx = Ctx();
  std::vector<std::pair<std::string, std::string>> params = {{"p\"", "v\n\x02"}};
  ctx.path_params = &params;
  json::object e = Event(req, ctx);
  EXPECT_EQ(Str(e.at("body")), body);
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(false));
  EXPECT_EQ(Str(e.at("headers").at("x-quote")), header);
  EXPECT_EQ(Str(e.at("headers").at("x-ctl")), std::string("a\x01\tb", 4));
  EXPECT_EQ(Str(e.at("pathParameters").at("p\"")), "v\n\x02");
}

TEST(BuildEventV2, EscapesSpecialCharactersAtEveryPositionOfALongBody) {
  // The escaper skips plain ASCII eight bytes at a time: put each kind of special
  // character at every offset around those words.
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "é", "😀",
                                  "\x7f"};
  for (const std::string& special : specials) {
    for (size_t at = 0; at < 24; ++at) {
      std::string body(24, 'a');
      body.insert(at, special);
      json::object e = Event(
          MakeRequest(http::verb::post, "/", {{"Content-Type", "text/plain"}}, body), Ctx());
      ASSERT_EQ(e.at("isBase64Encoded"), json::value(false));
      EXPECT_EQ(Str(e.at("body")), body) << "special at " << at;
    }
  }
  std::string bad(24, 'a');
  bad[13] = '\xff';  // not UTF-8: the whole body goes as base64
  json::object e =
      Event(MakeRequest(http::verb::post, "/", {{"Content-Type", "text/plain"}}, bad), Ctx());
  EXPECT_EQ(e.at("isBase64Encoded"), json::value(true));
}

TEST(BuildEventV2, ReplacesInvalidUtf8InHeadersWithTheReplacementCharacter) {
  Request req = MakeRequest(http::verb::get, "/", {{"X-Latin1", "caf\xe9!"},
                                                   {"X-Overlong", "\xc0\xaf"},
                                                   {"X-Surrogate", "\xed\xa0\x80"},
                                                   {"X-Truncated", "\xe2\x98"}});
  json::object e = Event(req, Ctx());
  const json::object& h = e.at("headers").as_object();
  EXPECT_EQ(Str(h.at("x-latin1")), "caf\xEF\xBF\xBD!");
  EXPECT_EQ(Str(h.at("x-overlong")), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Str(h.at("x-surrogate")), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Str(h.at("x-truncated")), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(BuildEventV2, JoinsRepeatedHeadersInOrderWhenThereAreManyHeaders) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (int i = 0; i < 100; ++i) {
    headers.emplace_back("X-H" + std::to_string(i % 40), std::to_string(i));
  }
  json::object e = Event(MakeRequest(http::verb::get, "/", headers), Ctx());
  const json::object& h = e.at("headers").as_object();
  EXPECT_EQ(h.size(), 40u);
  EXPECT_EQ(Str(h.at("x-h0")), "0,40,80");
  EXPECT_EQ(Str(h.at("x-h39")), "39,79");
}

TEST(BuildEventV2, NamesTheRequestProtocolVersion) {
  json::object e = Event(MakeRequest(http::verb::get, "/", {}, "", 10), Ctx());
  EXPECT_EQ(Str(e.at("requestContext").at("http").at("protocol")), "HTTP/1.0");
}

TEST(BuildEventV2, PrefersTheContextDomainAndDerivesItsPrefix) {
  EventContext ctx = Ctx();
  ctx.domain_name = "fns.internal";
  ctx.api_id = "api1";
  ctx.stage = "prod";
  json::object e = Event(MakeRequest(http::verb::get, "/", {{"Host", "other:1"}}), ctx);
  const json::object& rc = e.at("requestContext").as_object();
  EXPECT_EQ(Str(rc.at("domainName")), "fns.internal");
  EXPECT_EQ(Str(rc.at("domainPrefix")), "fns");
  EXPECT_EQ(Str(rc.at("apiId")), "api1");
  EXPECT_EQ(Str(rc.at("stage")), "prod");
  e = Event(MakeRequest(http::verb::get, "/", {{"Host", "[::1]:8080"}}), Ctx());
  EXPECT_EQ(Str(e.at("requestContext").at("domainPrefix")), "[::1]");
}

TEST(BuildEventV2, WritesTimeInCommonLogFormat) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "01/Jan/1970:00:00:00 +0000"},
      {-1, "31/Dec/1969:23:59:59 +0000"},
      {951782400000, "29/Feb/2000:00:00:00 +0000"},
      {1709251199999, "29/Feb/2024:23:59:59 +0000"},
      {4102444800000, "01/Jan/2100:00:00:00 +0000"},
      {253402300799000, "31/Dec/9999:23:59:59 +0000"},
  };
  for (const auto& [ms, want] : cases) {
    EventContext ctx = Ctx();
    ctx.now_ms = ms;
    json::object e = Event(MakeRequest(http::verb::get, "/"), ctx);
    EXPECT_EQ(Str(e.at("requestContext").at("time")), want) << ms;
    EXPECT_EQ(e.at("requestContext").at("timeEpoch").to_number<int64_t>(), ms);
  }
}

TEST(IsTextualContentType, RecognisesTheTextualTypes) {
  for (const char* t : {"text/plain", "TEXT/HTML; charset=utf-8", "application/json",
                        "application/vnd.api+json", "application/xml", "application/atom+xml",
                        "application/javascript", "application/x-www-form-urlencoded",
                        " application/json ;charset=utf-8"}) {
    EXPECT_TRUE(IsTextualContentType(t)) << t;
  }
  for (const char* t : {"", "text/", "application/octet-stream", "image/png",
                        "application/jsonx", "application/+json", "multipart/form-data",
                        "application/zip"}) {
    EXPECT_FALSE(IsTextualContentType(t)) << t;
  }
}

// ---- MapResultV2 ----

std::vector<std::string> All(const Response& res, http::field f) {
  std::vector<std::string> out;
  for (auto it = res.find(f); it != res.end() && it->name() == f; ++it) {
    out.emplace_back(it->value());
  }
  return out;
}

TEST(MapResultV2, ReadsEveryFieldOfAStructuredResult) {
  auto r = MapResultV2(R"({"statusCode": 201,
      "headers": {"X-Text": "v", "X-Int": 5, "X-Float": 1.5, "X-Bool": true, "X-Neg": -3},
      "cookies": ["a=1; Path=/", "b=2"],
      "body": "created",
      "isBase64Encoded": false})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Response& res = *r;
  EXPECT_EQ(res.result_int(), 201u);
  EXPECT_EQ(res.version(), 11u);
  EXPECT_EQ(res["X-Text"], "v");
  EXPECT_EQ(res["X-Int"], "5");
  EXPECT_EQ(res["X-Float"], "1.5");
  EXPECT_EQ(res["X-Bool"], "true");
  EXPECT_EQ(res["X-Neg"], "-3");
  EXPECT_EQ(All(res, http::field::set_cookie), (std::vector<std::string>{"a=1; Path=/", "b=2"}));
  EXPECT_EQ(res.body(), "created");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res[http::field::content_length], "7");
}

TEST(MapResultV2, KeepsTheFunctionsContentType) {
  auto r = MapResultV2(R"({"statusCode": 200, "headers": {"content-type": "text/html"},
                           "body": "<p>hi</p>"})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(All(*r, http::field::content_type), (std::vector<std::string>{"text/html"}));
}

TEST(MapResultV2, DecodesABase64Body) {
  auto r = MapResultV2(R"({"statusCode": 200, "body": "AAH//g==", "isBase64Encoded": true,
                           "headers": {"Content-Type": "image/png"}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body(), std::string("\x00\x01\xff\xfe", 4));
  EXPECT_EQ((*r)[http::field::content_length], "4");
}

TEST(MapResultV2, RefusesABase64BodyThatIsNotBase64) {
  auto r = MapResultV2(R"({"statusCode": 200, "body": "no!", "isBase64Encoded": true})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("base64"), std::string::npos) << r.status().message();
}

TEST(MapResultV2, TreatsMissingAndNullFieldsAsAbsent) {
  auto r = MapResultV2(R"({"statusCode": 200, "headers": null, "cookies": null, "body": null,
                           "isBase64Encoded": null})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body(), "");
  EXPECT_EQ((*r)[http::field::content_length], "0");
  auto bare = MapResultV2(R"({"statusCode": 302, "headers": {"Location": "/x"}})");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->result_int(), 302u);
  EXPECT_EQ((*bare)[http::field::location], "/x");
}

TEST(MapResultV2, TurnsBareJsonValuesIntoA200JsonResponse) {
  for (const char* v : {R"({"message": "hi"})", R"([1, 2, {"a": null}])", R"("hello")", "42",
                        "-1.5e3", "true", "null", "  {\"statusCodeX\": 1}  "}) {
    auto r = MapResultV2(v);
    ASSERT_TRUE(r.ok()) << v << ": " << r.status().message();
    EXPECT_EQ(r->result_int(), 200u) << v;
    EXPECT_EQ((*r)[http::field::content_type], "application/json") << v;
    EXPECT_EQ(r->body(), v);
    EXPECT_EQ((*r)[http::field::content_length], std::to_string(std::string(v).size()));
  }
}

TEST(MapResultV2, AcceptsDeeplyNestedBareValues) {
  std::string deep = std::string(200, '[') + std::string(200, ']');
  auto r = MapResultV2(deep);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body(), deep);
}

TEST(MapResultV2, RefusesInvalidJson) {
  for (const char* v : {"", "   ", "{", "hello", "{\"statusCode\": 200,}", "[1] [2]", "'x'"}) {
    auto r = MapResultV2(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("statusCode"), std::string::npos)
        << "the message should show what a valid result looks like: " << r.status().message();
  }
}

TEST(MapResultV2, RefusesAStatusCodeThatIsNotAnIntegerInRange) {
  for (const char* v : {R"({"statusCode": "200"})", R"({"statusCode": 200.0})",
                        R"({"statusCode": 99})", R"({"statusCode": 600})",
                        R"({"statusCode": -200})", R"({"statusCode": 18446744073709551615})",
                        R"({"statusCode": null})", R"({"statusCode": true})"}) {
    auto r = MapResultV2(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("statusCode"), std::string::npos) << r.status().message();
  }
  auto r = MapResultV2(R"({"statusCode": "200"})");
  EXPECT_NE(r.status().message().find("statusCode is a string"), std::string::npos)
      << r.status().message();
}

TEST(MapResultV2, RefusesFieldsOfTheWrongType) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"statusCode": 200, "headers": []})", "headers is an array"},
      {R"({"statusCode": 200, "headers": {"X": [1]}})", "header 'X' is an array"},
      {R"({"statusCode": 200, "headers": {"X": null}})", "header 'X' is null"},
      {R"({"statusCode": 200, "cookies": "a=1"})", "cookies is a string"},
      {R"({"statusCode": 200, "cookies": [1]})", "a cookie is a number"},
      {R"({"statusCode": 200, "body": {"a": 1}})", "body is an object"},
      {R"({"statusCode": 200, "isBase64Encoded": "true"})", "isBase64Encoded is a string"},
  };
  for (const auto& [v, want] : cases) {
    auto r = MapResultV2(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(want), std::string::npos)
        << v << " -> " << r.status().message();
  }
}

TEST(MapResultV2, RefusesHeadersThatWouldSplitTheResponse) {
  for (const char* v : {R"({"statusCode": 200, "headers": {"X": "a\r\nSet-Cookie: evil=1"}})",
                        R"({"statusCode": 200, "headers": {"X": "a\u0000b"}})",
                        R"({"statusCode": 200, "headers": {"Bad Name": "v"}})",
                        R"({"statusCode": 200, "headers": {"": "v"}})",
                        R"({"statusCode": 200, "headers": {"X\n": "v"}})",
                        R"({"statusCode": 200, "cookies": ["a=1\r\nX: y"]})"}) {
    auto r = MapResultV2(v);
    EXPECT_FALSE(r.ok()) << v;
  }
}

TEST(MapResultV2, ComputesFramingHeadersItself) {
  auto r = MapResultV2(R"({"statusCode": 200, "body": "abc",
      "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close"}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(All(*r, http::field::content_length), (std::vector<std::string>{"3"}));
  EXPECT_EQ(r->count(http::field::transfer_encoding), 0u);
  EXPECT_EQ(r->count(http::field::connection), 0u);
}

TEST(MapResultV2, SendsNoBodyWithStatusesThatForbidOne) {
  for (int status : {204, 304}) {
    auto r = MapResultV2(R"({"statusCode": )" + std::to_string(status) + R"(, "body": "x"})");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->result_int(), static_cast<unsigned>(status));
    EXPECT_EQ(r->body(), "");
    EXPECT_EQ(r->count(http::field::content_length), 0u);
  }
}

TEST(MapResultV2, AnswersInTheRequestsHttpVersion) {
  auto r = MapResultV2(R"({"statusCode": 200, "body": "x"})", 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version(), 10u);
  auto bare = MapResultV2("1", 10);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->version(), 10u);
}

TEST(MapResultV2, HandlesResultsLargerThanItsStackBuffer) {
  std::string big(100000, 'x');
  auto r = MapResultV2(R"({"statusCode": 200, "body": ")" + big + R"("})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body(), big);
}

TEST(MapResultV2, UnescapesJsonStringsInTheBody) {
  auto r = MapResultV2(R"({"statusCode": 200, "body": "a\"b\\c\n\u2603\ud83d\ude00"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body(), "a\"b\\c\n☃😀");
}

// ---- base64 ----

TEST(Base64, MatchesTheRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    auto d = Base64Decode(encoded);
    ASSERT_TRUE(d.ok()) << encoded;
    EXPECT_EQ(*d, plain);
  }
}

TEST(Base64, RoundTripsArbitraryBytesOfEveryLength) {
  std::mt19937 rng(42);
  for (size_t n = 0; n < 300; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    std::string encoded = Base64Encode(bytes);
    EXPECT_EQ(encoded.size() % 4, 0u);
    auto d = Base64Decode(encoded);
    ASSERT_TRUE(d.ok()) << n;
    EXPECT_EQ(*d, bytes) << n;
  }
}

TEST(Base64, AcceptsMissingPaddingAndLineBreaks) {
  EXPECT_EQ(*Base64Decode("Zg"), "f");
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");
  EXPECT_EQ(*Base64Decode("Zm9v\nYmFy\r\n"), "foobar");
}

TEST(Base64, RefusesWhatIsNotBase64) {
  for (const char* bad : {"Zm9v!", "Z", "Zm9vY", "Zg=", "Zg===", "Zm8==", "Zg==Zg==", "Zm9v-_"}) {
    auto d = Base64Decode(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  }
  EXPECT_NE(Base64Decode("ab!c").status().message().find("'!' at offset 2"), std::string::npos)
      << Base64Decode("ab!c").status().message();
}

}  // namespace
}  // namespace nimbus::gateway
