#include "cli/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include "cli/fake_daemon.h"

namespace nimbus::cli {
namespace {

TEST(ParseEndpoint, ReadsHostAndPortFromAnHttpUrl) {
  auto ep = ParseEndpoint("http://127.0.0.1:8080");
  ASSERT_TRUE(ep.ok()) << ep.status().message();
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, "8080");
  EXPECT_EQ(ep->base_path, "");
  EXPECT_EQ(ep->url, "http://127.0.0.1:8080");
}

TEST(ParseEndpoint, DefaultsToPort80AndDropsATrailingSlash) {
  auto ep = ParseEndpoint("http://nimbus.internal/");
  ASSERT_TRUE(ep.ok()) << ep.status().message();
  EXPECT_EQ(ep->port, "80");
  EXPECT_EQ(ep->url, "http://nimbus.internal:80");
}

TEST(ParseEndpoint, AcceptsABareHostPortAndAPathPrefix) {
  auto ep = ParseEndpoint("localhost:9000/nimbus/");
  ASSERT_TRUE(ep.ok()) << ep.status().message();
  EXPECT_EQ(ep->host, "localhost");
  EXPECT_EQ(ep->base_path, "/nimbus");
  EXPECT_EQ(ep->url, "http://localhost:9000/nimbus");
}

TEST(ParseEndpoint, KeepsIpv6AddressesInBrackets) {
  auto ep = ParseEndpoint("http://[::1]:8080");
  ASSERT_TRUE(ep.ok()) << ep.status().message();
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->HostPort(), "[::1]:8080");
}

TEST(ParseEndpoint, ReadsTheSchemeInAnyLetterCase) {
  auto ep = ParseEndpoint("HTTP://127.0.0.1:8080");
  ASSERT_TRUE(ep.ok()) << ep.status().message();
  EXPECT_EQ(ep->url, "http://127.0.0.1:8080");
  EXPECT_FALSE(ParseEndpoint("HTTPS://127.0.0.1:8080").ok());
}

TEST(HttpResponse, FindsHeadersInAnyLetterCase) {
  HttpResponse res;
  res.headers = {{"Content-Type", "application/json"}, {"x-amz-function-error", "Unhandled"}};
  EXPECT_EQ(res.Header("content-type"), "application/json");
  EXPECT_EQ(res.Header("X-Amz-Function-Error"), "Unhandled");
  EXPECT_TRUE(res.HasHeader("CONTENT-TYPE"));
  EXPECT_FALSE(res.HasHeader("Content-Length"));
  EXPECT_EQ(res.Header("Content-Typ"), "");
}

TEST(ParseEndpoint, RejectsHttpsWithAMessageSayingWhatWorks) {
  auto ep = ParseEndpoint("https://example.com");
  ASSERT_FALSE(ep.ok());
  EXPECT_NE(ep.status().message().find("only plain http://"), std::string::npos);
  EXPECT_NE(ep.status().message().find("http://HOST:PORT"), std::string::npos);
}

TEST(ParseEndpoint, RejectsBadPorts) {
  EXPECT_FALSE(ParseEndpoint("http://h:0").ok());
  EXPECT_FALSE(ParseEndpoint("http://h:65536").ok());
  EXPECT_FALSE(ParseEndpoint("http://h:80a").ok());
  EXPECT_FALSE(ParseEndpoint("http://h:").ok());
  EXPECT_FALSE(ParseEndpoint("http://:80").ok());
}

TEST(UrlEncode, KeepsUnreservedCharactersAndEscapesTheRest) {
  EXPECT_EQ(UrlEncode("hello-world_1.~"), "hello-world_1.~");
  EXPECT_EQ(UrlEncode("a/b c:d"), "a%2Fb%20c%3Ad");
}

// A port nothing listens on: bind an ephemeral one, then release it.
std::string ClosedPortUrl() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::string url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  a.close();
  return url;
}

TEST(HttpClient, ReportsARefusedConnectionAsUnavailableWithTheEndpointAndAFix) {
  HttpClient client(*ParseEndpoint(ClosedPortUrl()));
  auto res = client.Send({"GET", "/v1/functions", {}, ""});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_NE(res.status().message().find("connection refused"), std::string::npos);
  EXPECT_NE(res.status().message().find("nimbus serve"), std::string::npos);
}

TEST(HttpClient, SendsMethodTargetHeadersAndBodyAndReadsTheAnswer) {
  testing::FakeDaemon daemon([](const testing::RecordedRequest&) {
    HttpResponse r;
    r.status = 201;
    r.headers = {{"X-Thing", "yes"}};
    r.body = "made";
    return r;
  });
  HttpClient client(*ParseEndpoint(daemon.url() + "/prefix"));
  auto res = client.Send({"PUT", "/v1/functions/x", {{"Content-Type", "application/zip"}}, "PK.."});
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->Header("x-thing"), "yes");
  EXPECT_EQ(res->body, "made");
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/prefix/v1/functions/x");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/zip");
  EXPECT_EQ(reqs[0].body, "PK..");
}

TEST(HttpClient, GivesUpWhenTheDaemonDoesNotAnswerInTime) {
  testing::FakeDaemon daemon([](const testing::RecordedRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    return testing::JsonAnswer(200, "{}");
  });
  HttpClientOptions options;
  options.request_timeout = std::chrono::milliseconds(100);
  HttpClient client(*ParseEndpoint(daemon.url()), options);
  auto res = client.Send({"GET", "/v1/functions", {}, ""});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kDeadlineExceeded);
  EXPECT_NE(res.status().message().find("did not answer within 100 ms"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::cli
