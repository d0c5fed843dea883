// Test helper for handlers that answer through an nhttp::Connection (the front door, the admin
// API): serves one nhttp::Handler on a loopback port with its own loop, and sends it requests
// from the test's thread over fresh blocking connections, so a handler is tested alone with the
// real HTTP core in front of it.
//
// Threading: the handler runs on the server's one loop; Send() blocks the calling thread until
// the answer is read (or the connection closes); SendAsync() runs it on a thread of its own.
#pragma once

#include <future>
#include <stdexcept>
#include <string>

#include "http/server.h"

namespace nimbus::gateway::testing {

namespace nhttp = ::nimbus::http;

class LocalServer {
 public:
  explicit LocalServer(nhttp::Handler handler) : listener_(std::move(handler), nhttp::ServerOptions{}) {
    loops_.Start();
    Status st = listener_.Listen(loops_.loop(0), nhttp::tcp::endpoint(nhttp::asio::ip::address_v4::loopback(), 0));
    if (!st.ok()) throw std::runtime_error("test server: " + st.ToString());
  }
  ~LocalServer() {
    listener_.Close();
    loops_.Stop();
  }

  uint16_t port() const { return listener_.port(); }

  // Sends `req` (Host and Content-Length are filled in) and returns the answer.
  nhttp::Response Send(nhttp::Request req) const {
    nhttp::asio::io_context io;
    nhttp::tcp::socket socket(io);
    socket.connect(nhttp::tcp::endpoint(nhttp::asio::ip::address_v4::loopback(), port()));
    req.set(nhttp::bhttp::field::host, "127.0.0.1:" + std::to_string(port()));
    req.prepare_payload();
    nhttp::bhttp::write(socket, req);
    nhttp::beast::flat_buffer buffer;
    nhttp::Response res;
    nhttp::bhttp::read(socket, buffer, res);
    return res;
  }
  std::future<nhttp::Response> SendAsync(nhttp::Request req) const {
    return std::async(std::launch::async, [this, req = std::move(req)]() mutable { return Send(std::move(req)); });
  }

 private:
  nhttp::LoopGroup loops_{1};
  nhttp::Listener listener_;
};

// A request with `method`, `target` and `body`.
inline nhttp::Request MakeRequest(nhttp::bhttp::verb method, std::string target, std::string body = {}) {
  nhttp::Request req{method, target, 11};
  req.body() = std::move(body);
  return req;
}

}  // namespace nimbus::gateway::testing
