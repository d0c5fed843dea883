// Implementation notes: Beast's tcp_stream applies its timeouts only to asynchronous
// operations, so each Send runs the async connect/write/read on a private io_context and
// blocks in run(). From the caller's side the client is synchronous.
#include "cli/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

namespace nimbus::cli {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string Seconds(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

Status Unreachable(const Endpoint& ep, const std::string& why) {
  return Status::Unavailable("cannot reach nimbus at " + ep.url + ": " + why +
                             "; start it with `nimbus serve` or `make run`, or set --endpoint");
}

std::string DescribeConnectError(const beast::error_code& ec,
                                 std::chrono::milliseconds timeout) {
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == beast::error::timeout) return "no answer to connect within " + Seconds(timeout);
  if (ec == net::error::host_not_found || ec == net::error::host_not_found_try_again)
    return "host not found";
  if (ec == net::error::network_unreachable) return "network unreachable";
  if (ec == net::error::host_unreachable) return "host unreachable";
  return ec.message();
}

}  // namespace

std::string Endpoint::HostPort() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

Result<Endpoint> ParseEndpoint(std::string_view url) {
  const std::string original(url);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad endpoint '" + original + "': " + why +
                                   "; use http://HOST:PORT, e.g. http://127.0.0.1:8080");
  };
  std::string_view rest = url;
  if (size_t scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    std::string_view scheme = rest.substr(0, scheme_end);
    if (!beast::iequals(scheme, "http")) {
      return bad("only plain http:// is supported, not " + std::string(scheme) + "://");
    }
    rest.remove_prefix(scheme_end + 3);
  }
  std::string_view authority = rest;
  std::string_view path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash);
  }
  if (authority.find_first_of("?#@") != std::string_view::npos || path.find_first_of("?#") != std::string_view::npos) {
    return bad("user info, query and fragment are not allowed");
  }
  Endpoint ep;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the IPv6 address");
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected ':PORT' after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      ep.host = std::string(authority.substr(0, colon));
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    } else {
      ep.host = std::string(authority);
    }
  }
  if (ep.host.empty()) return bad("no host");
  if (port.empty()) {
    ep.port = "80";
  } else {
    if (port.size() > 5) return bad("port out of range");
    int value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return bad("port must be a number");
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return bad("port out of range");
    ep.port = std::to_string(value);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  ep.base_path = std::string(path);
  ep.url = "http://" + ep.HostPort() + ep.base_path;
  return ep;
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return "";
}

bool HttpResponse::HasHeader(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

HttpClient::HttpClient(Endpoint endpoint, HttpClientOptions options)
    : endpoint_(std::move(endpoint)), options_(options) {}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, ec);
  if (ec) return Unreachable(endpoint_, DescribeConnectError(ec, options_.connect_timeout));

  beast::tcp_stream stream(ioc);
  stream.expires_after(options_.connect_timeout);
  stream.async_connect(addresses, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  if (ec) return Unreachable(endpoint_, DescribeConnectError(ec, options_.connect_timeout));

  http::request<http::string_body> req;
  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    return Status::Internal("unknown HTTP method '" + request.method + "'");
  }
  req.method(verb);
  req.target(endpoint_.base_path + request.target);
  req.version(11);
  req.set(http::field::host, endpoint_.HostPort());
  req.set(http::field::user_agent, "nimbus-cli");
  if (!options_.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + options_.bearer_token);
  for (const auto& [k, v] : request.headers) req.set(k, v);
  req.body() = request.body;
  req.keep_alive(false);
  req.prepare_payload();

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_body_bytes);
  // One deadline for the whole exchange: a daemon that reads slowly or answers slowly is
  // treated the same.
  stream.expires_after(options_.request_timeout);
  ioc.restart();
  http::async_write(stream, req, [&](const beast::error_code& e, size_t) {
    if (e) {
      ec = e;
      return;
    }
    http::async_read(stream, buffer, parser,
                     [&](const beast::error_code& e2, size_t) { ec = e2; });
  });
  ioc.run();
  if (ec == beast::error::timeout) {
    return Status::DeadlineExceeded("nimbus at " + endpoint_.url + " did not answer within " +
                                    Seconds(options_.request_timeout) +
                                    "; check the daemon's log, or raise the time limit");
  }
  if (ec == http::error::body_limit) {
    return Status::TooLarge("the answer from nimbus at " + endpoint_.url + " is larger than " +
                            std::to_string(options_.max_body_bytes >> 20) +
                            " MB; ask for less (e.g. `--limit`)");
  }
  if (ec) {
    return Unreachable(endpoint_, "the connection failed before an answer (" + ec.message() + ")");
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace nimbus::cli
