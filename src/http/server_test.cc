// The hand-written response head is byte for byte what Beast's serializer writes.
#include "http/server.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

namespace nimbus::http {
namespace {

// One request over a fresh blocking connection; everything the server sends until it closes.
std::string Exchange(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string OverTheLimit(uint16_t port) {
  return Exchange(port, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
}

class BodyLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { loops_.Start(); }
  void TearDown() override { loops_.Stop(); }
  uint16_t Serve(ServerOptions options) {
    listener_ = std::make_unique<Listener>(
        [](const ConnectionPtr& c, Request&& r) { c->Reply(MakeResponse(r, bhttp::status::ok, "fine")); },
        std::move(options));
    EXPECT_TRUE(listener_->Listen(loops_.loop(0), {asio::ip::make_address("127.0.0.1"), 0}).ok());
    return listener_->port();
  }
  LoopGroup loops_{1};
  std::unique_ptr<Listener> listener_;
};

TEST_F(BodyLimitTest, ABodyOverTheLimitGetsAPlain413AndTheConnectionCloses) {
  uint16_t port = Serve(ServerOptions{16, std::chrono::seconds(0)});
  std::string answer = OverTheLimit(port);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("request body is larger than this endpoint accepts (16 bytes)"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("errorType"), std::string::npos) << "the HTTP core knows no Lambda shapes: " << answer;
}

TEST_F(BodyLimitTest, TheListenersOwnerShapesThe413) {
  ServerOptions options{16, std::chrono::seconds(0)};
  options.body_too_large = [](unsigned version, uint64_t limit) {
    Response res{bhttp::status::payload_too_large, version};
    res.set("x-test", std::to_string(limit));
    res.body() = "custom";
    return res;
  };
  std::string answer = OverTheLimit(Serve(std::move(options)));
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("x-test: 16\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\r\n\r\ncustom"), std::string::npos) << answer;
}

TEST_F(BodyLimitTest, ABodyWithinTheLimitIsServed) {
  uint16_t port = Serve(ServerOptions{16, std::chrono::seconds(0)});
  std::string answer =
      Exchange(port, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
}

// A listener on several loops binds each with SO_REUSEPORT; it must still refuse a port that is
// taken, including by another listener (a second daemon) that shares it the same way.
TEST(ListenerPort, AListenerOnSeveralLoopsRefusesAPortAnotherListenerHolds) {
  LoopGroup loops(2);
  auto handler = [](const ConnectionPtr& c, Request&& r) { c->Reply(MakeResponse(r, bhttp::status::ok, "one")); };
  Listener first(handler, ServerOptions{});
  ASSERT_TRUE(first.Listen(loops, {asio::ip::make_address("127.0.0.1"), 0}).ok());
  const uint16_t port = first.port();

  Listener second(handler, ServerOptions{});
  Status st = second.Listen(loops, {asio::ip::make_address("127.0.0.1"), port});
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--listen"), std::string::npos) << st.message();
}

TEST(ListenerPort, AListenerOnSeveralLoopsRefusesAPortAPlainSocketHoldsWithReusePort) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  int one = 1;
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);

  LoopGroup loops(2);
  Listener l([](const ConnectionPtr& c, Request&& r) { c->Reply(MakeResponse(r, bhttp::status::ok, "x")); },
             ServerOptions{});
  EXPECT_EQ(l.Listen(loops, {asio::ip::make_address("127.0.0.1"), ntohs(a.sin_port)}).code(), Code::kUnavailable);
  close(fd);
}

}  // namespace
}  // namespace nimbus::http
