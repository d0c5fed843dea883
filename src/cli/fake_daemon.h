// Test helper: a tiny blocking HTTP server on 127.0.0.1 that plays the nimbus daemon. Each
// connection carries one request; the handler decides the answer, and every request is
// recorded for assertions. Given a token, it guards /v1 the way the daemon does: a request
// without "Authorization: Bearer TOKEN" gets 401 UnauthorizedException with
// "WWW-Authenticate: Bearer" and never reaches the handler.
//
// Threading: the server runs on its own thread; requests() and the handler's captured state
// are guarded by an internal mutex / must be guarded by the test.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/http_client.h"

namespace nimbus::cli::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class FakeDaemon {
 public:
  using Handler = std::function<HttpResponse(const RecordedRequest&)>;

  explicit FakeDaemon(Handler handler, std::string admin_token = "")
      : handler_(std::move(handler)),
        admin_token_(std::move(admin_token)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeDaemon() {
    stopping_ = true;
    // Wake the blocking accept with a throwaway connection.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) continue;
      boost::beast::flat_buffer buffer;
      http::request_parser<http::string_body> parser;
      parser.body_limit(256u << 20);
      http::read(socket, buffer, parser, ec);
      if (ec) continue;
      auto& req = parser.get();
      RecordedRequest rec{std::string(req.method_string()), std::string(req.target()), {}, req.body()};
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        rec.headers[name] = std::string(f.value());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(rec);
      }
      HttpResponse answer = Refused(rec) ? Unauthorized() : handler_(rec);
      http::response<http::string_body> res{static_cast<http::status>(answer.status), 11};
      for (const auto& [k, v] : answer.headers) res.set(k, v);
      res.body() = answer.body;
      res.keep_alive(false);
      res.prepare_payload();
      http::write(socket, res, ec);
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
  }

  bool Refused(const RecordedRequest& rec) const {
    if (admin_token_.empty() || rec.target.rfind("/v1", 0) != 0) return false;
    auto it = rec.headers.find("authorization");
    return it == rec.headers.end() || it->second != "Bearer " + admin_token_;
  }

  static HttpResponse Unauthorized() {
    HttpResponse r;
    r.status = 401;
    r.headers = {{"Content-Type", "application/json"},
                 {"x-amzn-ErrorType", "UnauthorizedException"},
                 {"WWW-Authenticate", "Bearer realm=\"nimbus\""}};
    r.body = R"({"Type":"User","message":"the admin API token in the request is wrong: send the token in )"
             R"(DATA/admin.token","errorType":"UnauthorizedException"})";
    return r;
  }

  Handler handler_;
  const std::string admin_token_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
};

// A JSON answer with the given status.
inline HttpResponse JsonAnswer(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = std::move(body);
  return r;
}

}  // namespace nimbus::cli::testing
