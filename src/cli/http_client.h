// A small synchronous HTTP/1.1 client for the CLI: one request per connection to the nimbus
// daemon, plain http:// only (the daemon listens on loopback or a private network; TLS belongs
// in front of it). Connect and request timeouts are bounded so a stuck daemon never hangs the
// terminal.
//
// Threading: an HttpClient holds no connection between calls; each Send owns its own
// io_context, so one client may be used from one thread at a time and separate clients from
// separate threads.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nimbus::cli {

// Where the daemon listens, parsed from --endpoint / NIMBUS_ENDPOINT.
struct Endpoint {
  std::string host;       // "127.0.0.1", "localhost", "::1" (without brackets)
  std::string port;       // "8080"
  std::string base_path;  // "" or a prefix such as "/nimbus" (no trailing slash)
  std::string url;        // normalised: "http://127.0.0.1:8080" plus base_path

  // host:port as the Host header and messages spell it (IPv6 in brackets).
  std::string HostPort() const;
};

// Accepts "http://host[:port][/prefix]" and the bare "host:port". https:// and other schemes
// are InvalidArgument with a message that says what is accepted.
Result<Endpoint> ParseEndpoint(std::string_view url);

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query, e.g. "/v1/functions/hello"; base_path is prepended
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Case-insensitive header lookup; "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  // From the first byte sent to the last byte received.
  std::chrono::milliseconds request_timeout{60000};
  // Largest response body accepted (invoke answers are at most 6 MB; logs can be larger).
  size_t max_body_bytes = 64u << 20;
  // Sent as "Authorization: Bearer TOKEN" on every request when not empty.
  std::string bearer_token;
};

class HttpClient {
 public:
  explicit HttpClient(Endpoint endpoint, HttpClientOptions options = {});

  // Any HTTP status is a successful Send; a non-ok Status means no answer was received:
  // Unavailable when the daemon cannot be reached (refused, unknown host, connect timeout,
  // connection dropped), DeadlineExceeded when it accepted the request but did not answer
  // within request_timeout. Messages name the endpoint and say what to do.
  Result<HttpResponse> Send(const HttpRequest& request) const;

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  HttpClientOptions options_;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters pass).
std::string UrlEncode(std::string_view s);

}  // namespace nimbus::cli
