// A small HTTP/1.1 server core on Boost.Beast shared by the front door (gateway, admin, Invoke
// API) and the per-instance Runtime API listeners.
//
// Errors: a request the handler cannot take (an exception thrown by it) is answered 500 and the
// connection closed; the exception is logged to stderr and the loop goes on. An exception from
// any other handler on a loop (a timer, a posted task) is logged and the loop keeps running, so
// no exception ends the daemon.
//
// Threading: the daemon runs one io_context per core (LoopGroup). A connection lives on the
// loop that accepted it and every handler of that connection runs there. A request is handed to
// a Handler; the handler answers later, from any thread, through the Connection's Reply(), which
// posts to the connection's loop. One request at a time per connection (no pipelining): the next
// request is read only after the reply is written, and keep-alive is honoured. While a request
// waits for its reply, the connection watches its socket, so a peer that goes away is noticed
// (OnClose runs) before the reply is written.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace nimbus::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

// One io_context per thread. Start() spawns the threads; Stop() stops every loop and joins.
class LoopGroup {
 public:
  explicit LoopGroup(size_t threads);
  ~LoopGroup();
  size_t size() const { return loops_.size(); }
  asio::io_context& loop(size_t i) { return *loops_[i % loops_.size()]; }
  // Round-robin pick, for spreading new instances across loops. Thread-safe.
  asio::io_context& next();
  void Start();
  void Stop();
  // The loop the calling thread runs, or nullptr off the loops. Lets work stay on the loop it
  // came from, saving a cross-thread wake-up per hop.
  static asio::io_context* Current();

 private:
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> rr_{0};
};

class Connection;
using ConnectionPtr = std::shared_ptr<Connection>;

// Called on the connection's loop with each request. Must eventually call conn->Reply() exactly
// once (from any thread), unless the connection closes first.
using Handler = std::function<void(const ConnectionPtr& conn, Request&& req)>;

struct ServerOptions {
  uint64_t body_limit = 8 << 20;  // larger bodies get 413 and the connection closes
  // Closed when idle this long between requests (0 = never). Runtime API connections legitimately
  // idle for minutes while parked in /next, so they use 0.
  std::chrono::seconds idle_timeout{0};
  // Called on the acceptor's loop with each accepted socket, before anything is read from it;
  // false (or an exception) closes the socket at once. Empty: every connection is served.
  std::function<bool(int fd)> accept_filter;
  // Connections open at once through this listener beyond which new ones are closed unread
  // (0 = no cap). A Runtime API needs one or two; a cap keeps one instance from spending the
  // daemon's file descriptors.
  size_t max_connections = 0;
  // The answer to a request whose body is over body_limit (the connection closes after it),
  // given the request's HTTP version and the limit. Empty: a plain 413 with a one-line text
  // body. The daemon gives its API listener Lambda's RequestTooLargeException shape.
  std::function<Response(unsigned version, uint64_t limit)> body_too_large;
};

// What a listener's connections share. Connections hold it by shared_ptr, so a connection
// that outlives its Listener (a runtime still connected to a stopped instance) stays valid.
struct ServerConfig {
  Handler handler;
  ServerOptions options;
  mutable std::atomic<size_t> open_connections{0};  // counted by Connection's life
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<const ServerConfig> config);
  ~Connection();
  void Start();
  // Thread-safe. Sends the response for the current request; keep-alive follows the request's.
  // Only the first reply to a request is sent; a later one, or one after the close, is dropped.
  void Reply(Response&& res);
  // Called once, on the connection's loop, when the connection closes: the peer went away (also
  // noticed while a request waits for its reply), an error, or the end of a non-keep-alive
  // exchange. Set it on the connection's loop. Optional.
  void OnClose(std::function<void()> fn) { on_close_ = std::move(fn); }
  asio::any_io_executor executor() { return stream_.get_executor(); }
  const std::string& peer_ip() const { return peer_ip_; }
  bool closed() const { return closed_; }

 private:
  void ReadNext();
  void OnRead(beast::error_code ec, size_t bytes);
  void DoReply(Response&& res);
  // While a request waits for its reply: closes the connection if the peer goes away.
  void WatchPeer();
  void Close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<const ServerConfig> config_;
  bool keep_alive_ = true;
  bool head_ = false;  // the current request is HEAD: its reply carries no body
  bool closed_ = false;
  bool awaiting_reply_ = false;  // a request was read and its reply not yet started
  bool watch_pending_ = false;   // a WatchPeer peek is outstanding
  char peek_byte_ = 0;           // where that peek lands (MSG_PEEK: the byte stays in the socket)
  std::string peer_ip_;
  std::function<void()> on_close_;
  Response res_;           // kept alive for the duration of async_write
  std::string res_head_;   // its status line and header fields, serialised by SerializeHead
};

// Accepts on one endpoint. On a LoopGroup it opens one SO_REUSEPORT acceptor per loop so every
// core accepts its own connections.
class Listener {
 public:
  Listener(Handler handler, ServerOptions options);
  ~Listener();
  // Binds every loop of `loops` to `endpoint` (port 0 = pick one; all loops share it).
  Status Listen(LoopGroup& loops, const tcp::endpoint& endpoint);
  // Binds a single acceptor on one loop.
  Status Listen(asio::io_context& loop, const tcp::endpoint& endpoint);
  // Accepts on a socket someone else created, bound and put in the listening state (for
  // instance, inside another network namespace); the listener takes ownership of the fd and
  // closes it, also when adoption fails (InvalidArgument: not a listening TCP socket).
  Status Adopt(asio::io_context& loop, int listening_fd);
  uint16_t port() const { return port_; }
  // Thread-safe; stops accepting (existing connections continue).
  void Close();

 private:
  struct Acceptor;
  Status Bind(asio::io_context& loop, const tcp::endpoint& endpoint, bool reuse_port);
  std::shared_ptr<const ServerConfig> config_;
  std::vector<std::shared_ptr<Acceptor>> acceptors_;
  uint16_t port_ = 0;
};

// Builds a response with the request's version and keep-alive. Hot path helper.
Response MakeResponse(const Request& req, bhttp::status status, std::string body,
                      std::string_view content_type = "application/json");

// Appends the status line and header fields of `res` (a response whose payload is prepared:
// Content-Length set, not chunked), and the empty line after them, as Beast's serializer would
// write them.
void SerializeHead(const Response& res, std::string& out);


}  // namespace nimbus::http
