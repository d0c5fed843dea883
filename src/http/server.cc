#include "http/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <array>
#include <cerrno>
#include <cstdio>
#include <exception>

namespace nimbus::http {

namespace {

// One line on stderr (a single write, so lines from several loops do not interleave).
void LogLine(const std::string& line) {
  std::string s = "nimbus: " + line + "\n";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
}

std::string WhatOf(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace

LoopGroup::LoopGroup(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each loop is run by exactly one thread, so Asio can skip locking.
    loops_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*loops_.back()));
  }
}

LoopGroup::~LoopGroup() { Stop(); }

asio::io_context& LoopGroup::next() { return *loops_[rr_.fetch_add(1) % loops_.size()]; }

namespace {
thread_local asio::io_context* current_loop = nullptr;
}

asio::io_context* LoopGroup::Current() { return current_loop; }

void LoopGroup::Start() {
  for (auto& loop : loops_) {
    threads_.emplace_back([l = loop.get()] {
      current_loop = l;
      // The last line of defence: an exception that escaped a handler (a timer, a posted task)
      // is logged and the loop runs on; io_context::run() may be called again after a throw.
      // Handlers that can answer for themselves (a request's handler) catch first.
      for (;;) {
        try {
          l->run();
          return;
        } catch (...) {
          LogLine("an exception escaped a handler on an event loop (" + WhatOf(std::current_exception()) +
                  "); the loop goes on");
        }
      }
    });
  }
}

void LoopGroup::Stop() {
  for (auto& g : guards_) g.reset();
  for (auto& l : loops_) l->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

Connection::Connection(tcp::socket socket, std::shared_ptr<const ServerConfig> config)
    : stream_(std::move(socket)), config_(std::move(config)) {
  config_->open_connections.fetch_add(1);
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) peer_ip_ = ep.address().to_string();
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

Connection::~Connection() { config_->open_connections.fetch_sub(1); }

void Connection::Start() { ReadNext(); }

void Connection::ReadNext() {
  parser_.emplace();
  const ServerOptions& options = config_->options;
  parser_->body_limit(options.body_limit);
  parser_->header_limit(64 * 1024);
  if (options.idle_timeout.count() > 0) {
    stream_.expires_after(options.idle_timeout);
  } else {
    stream_.expires_never();
  }
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
}

void Connection::OnRead(beast::error_code ec, size_t) {
  stream_.expires_never();
  if (ec == bhttp::error::body_limit) {
    awaiting_reply_ = true;
    const auto& too_large = config_->options.body_too_large;
    const unsigned version = parser_->get().version();
    Response res = too_large ? too_large(version, config_->options.body_limit)
                             : Response{bhttp::status::payload_too_large, version};
    if (!too_large) {
      res.set(bhttp::field::content_type, "text/plain");
      res.body() = "request body is larger than this endpoint accepts (" +
                   std::to_string(config_->options.body_limit) + " bytes)\n";
    }
    res.keep_alive(false);
    keep_alive_ = false;
    DoReply(std::move(res));
    return;
  }
  if (ec) {
    Close();
    return;
  }
  Request req = parser_->release();
  keep_alive_ = req.keep_alive();
  head_ = req.method() == bhttp::verb::head;
  const unsigned version = req.version();
  awaiting_reply_ = true;
  try {
    config_->handler(shared_from_this(), std::move(req));
  } catch (...) {
    // The handler boundary: the request gets a 500 (unless the handler had already answered)
    // and the connection closes; the daemon goes on.
    LogLine("a request handler threw (" + WhatOf(std::current_exception()) + "); answered 500");
    if (awaiting_reply_ && !closed_) {
      Response res{bhttp::status::internal_server_error, version};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"message":"internal server error"})";
      keep_alive_ = false;
      DoReply(std::move(res));
    }
    return;
  }
  if (awaiting_reply_ && !closed_) WatchPeer();
}

void Connection::WatchPeer() {
  if (watch_pending_) return;  // the outstanding peek serves this request too
  watch_pending_ = true;
  // A one-byte peek through the reactor rather than async_wait: the peek is queued without a
  // system call (the request's read drained the socket), where async_wait re-arms the
  // descriptor with an epoll_ctl on every request. It completes when the client sends more
  // (a pipelined request, left in the socket to be read after the reply) or goes away.
  stream_.socket().async_receive(
      asio::buffer(&peek_byte_, 1), tcp::socket::message_peek,
      [self = shared_from_this()](beast::error_code ec, size_t) {
        self->watch_pending_ = false;
        if (ec == asio::error::operation_aborted || self->closed_ || !self->awaiting_reply_) return;
        if (ec) self->Close();  // the peer went away (end of file or reset) before its answer
      });
}

void SerializeHead(const Response& res, std::string& out) {
  const unsigned version = res.version();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const unsigned code = res.result_int();
  char digits[4] = {static_cast<char>('0' + code / 100 % 10), static_cast<char>('0' + code / 10 % 10),
                    static_cast<char>('0' + code % 10), ' '};
  out.append(digits, 4);
  std::string_view reason = res.reason();
  if (reason.empty()) reason = bhttp::obsolete_reason(res.result());
  out += reason;
  out += "\r\n";
  for (const auto& field : res) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

void Connection::Reply(Response&& res) {
  // Always hop through the connection's own loop: replies may come from any thread.
  asio::dispatch(stream_.get_executor(),
                 [self = shared_from_this(), r = std::move(res)]() mutable { self->DoReply(std::move(r)); });
}

void Connection::DoReply(Response&& res) {
  if (closed_ || !awaiting_reply_) return;
  awaiting_reply_ = false;
  res_ = std::move(res);
  res_.keep_alive(keep_alive_ && res_.keep_alive());
  res_.chunked(false);  // every body here has a known size: Content-Length, never chunks
  res_.prepare_payload();
  // HEAD gets the headers a GET would get, Content-Length included, and no body (RFC 9110).
  if (head_) res_.body().clear();
  // The head is written by hand and sent with the body in one gathered write: Beast's generic
  // serializer costs several times more per response than the bytes it produces.
  res_head_.clear();
  SerializeHead(res_, res_head_);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(res_head_), asio::buffer(res_.body())};
  asio::async_write(stream_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
    bool again = !ec && self->res_.keep_alive();
    self->res_ = {};
    if (again) {
      self->ReadNext();
    } else {
      self->Close();
    }
  });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  if (on_close_) {
    auto fn = std::move(on_close_);
    fn();
  }
}

struct Listener::Acceptor : std::enable_shared_from_this<Acceptor> {
  Acceptor(asio::io_context& loop, std::shared_ptr<const ServerConfig> c)
      : acceptor(loop), backoff(loop), config(std::move(c)) {}
  void Accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
          ec == asio::error::no_memory) {
        // Out of descriptors: accepting again at once would spin the loop. Try again shortly.
        self->backoff.expires_after(std::chrono::milliseconds(50));
        self->backoff.async_wait([self](beast::error_code wait_ec) {
          if (!wait_ec && self->acceptor.is_open()) self->Accept();
        });
        return;
      }
      if (!ec && self->Admit(socket)) {
        std::make_shared<Connection>(std::move(socket), self->config)->Start();
      }
      self->Accept();
    });
  }
  // Runs the accept filter; a refused (or throwing) check closes the socket unread.
  bool Admit(tcp::socket& socket) {
    const size_t cap = config->options.max_connections;
    if (cap && config->open_connections.load() >= cap) {
      if (!cap_logged.exchange(true)) {
        LogLine("a listener reached its cap of " + std::to_string(cap) + " open connections; new ones are closed");
      }
      beast::error_code ignored;
      socket.close(ignored);
      return false;
    }
    const auto& filter = config->options.accept_filter;
    if (!filter) return true;
    bool ok = false;
    try {
      ok = filter(socket.native_handle());
    } catch (...) {
      LogLine("an accept filter threw (" + WhatOf(std::current_exception()) + "); the connection is closed");
    }
    if (!ok) {
      beast::error_code ignored;
      socket.close(ignored);
    }
    return ok;
  }
  tcp::acceptor acceptor;
  asio::steady_timer backoff;  // re-accepts after running out of descriptors
  std::atomic<bool> cap_logged{false};
  std::shared_ptr<const ServerConfig> config;
};

Listener::Listener(Handler handler, ServerOptions options)
    : config_([&] {
        auto c = std::make_shared<ServerConfig>();
        c->handler = std::move(handler);
        c->options = std::move(options);
        return std::shared_ptr<const ServerConfig>(std::move(c));
      }()) {}

Listener::~Listener() { Close(); }

namespace {

// "ADDR:PORT", an IPv6 address in brackets as in a URL.
std::string HostPort(const tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

}  // namespace

Status Listener::Bind(asio::io_context& loop, const tcp::endpoint& endpoint, bool reuse_port) {
  auto a = std::make_shared<Acceptor>(loop, config_);
  beast::error_code ec;
  a->acceptor.open(endpoint.protocol(), ec);
  if (!ec) a->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    int one = 1;
    if (setsockopt(a->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return Status::Io("setsockopt(SO_REUSEPORT) failed");
    }
  }
  if (!ec) a->acceptor.bind(endpoint, ec);
  if (!ec) a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + HostPort(endpoint) + ": " + ec.message() +
                               "; pick another address with --listen");
  }
  port_ = a->acceptor.local_endpoint().port();
  acceptors_.push_back(a);
  // Start accepting on the acceptor's own loop.
  asio::post(loop, [a] { a->Accept(); });
  return Status::Ok();
}

Status Listener::Listen(LoopGroup& loops, const tcp::endpoint& endpoint) {
  tcp::endpoint ep = endpoint;
  if (loops.size() > 1 && ep.port() != 0) {
    // Every loop binds the port with SO_REUSEPORT, which would also let this listener join a
    // port another process (say, a second daemon) holds with SO_REUSEPORT, and share its
    // connections. A plain bind first fails on any port in use, theirs or anyone's.
    asio::io_context probe_loop;
    tcp::acceptor probe(probe_loop);
    beast::error_code ec;
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec) {
      return Status::Unavailable("cannot listen on " + HostPort(ep) +
                                 ": " + ec.message() + "; pick another address with --listen");
    }
  }
  for (size_t i = 0; i < loops.size(); ++i) {
    NIMBUS_RETURN_IF_ERROR(Bind(loops.loop(i), ep, loops.size() > 1));
    ep.port(port_);  // every loop shares the port the first bind got
  }
  return Status::Ok();
}

Status Listener::Listen(asio::io_context& loop, const tcp::endpoint& endpoint) {
  return Bind(loop, endpoint, false);
}

Status Listener::Adopt(asio::io_context& loop, int listening_fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  int listening = 0;
  socklen_t ilen = sizeof listening;
  if (::getsockname(listening_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) ||
      ::getsockopt(listening_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening) {
    ::close(listening_fd);
    return Status::InvalidArgument("fd " + std::to_string(listening_fd) + " is not a listening TCP socket");
  }
  auto a = std::make_shared<Acceptor>(loop, config_);
  beast::error_code ec;
  a->acceptor.assign(addr.ss_family == AF_INET ? tcp::v4() : tcp::v6(), listening_fd, ec);
  if (ec) {
    ::close(listening_fd);
    return Status::Io("cannot adopt a listening socket: " + ec.message());
  }
  port_ = a->acceptor.local_endpoint(ec).port();
  acceptors_.push_back(a);
  asio::post(loop, [a] { a->Accept(); });
  return Status::Ok();
}

void Listener::Close() {
  for (auto& a : acceptors_) {
    asio::post(a->acceptor.get_executor(), [a] {
      beast::error_code ec;
      a->acceptor.close(ec);
    });
  }
  acceptors_.clear();
}

Response MakeResponse(const Request& req, bhttp::status status, std::string body,
                      std::string_view content_type) {
  Response res{status, req.version()};
  res.keep_alive(req.keep_alive());
  if (!content_type.empty()) res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

}  // namespace nimbus::http
