// The benchmark's "limit": the least work a server can do to answer HTTP/1.1 on loopback.
//
// One thread, one epoll loop, non-blocking sockets, keep-alive, and a fixed 5-byte "hello"
// answer to every request. No routing, no header parsing beyond finding where a request ends.
// bench/run measures every other system (nginx, workerd, nimbus) against this one in the same
// run, so whatever time this server takes is the cost of the kernel's loopback path plus the
// load generator, not of any server design.
//
// Usage: limit [--host 127.0.0.1] [--port N]    (port 0 picks a free one)
// Prints "listening HOST:PORT" on stdout once it accepts connections; stops on SIGTERM/SIGINT.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
constexpr std::string_view kResponseClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    "Connection: close\r\n\r\nhello";

struct Conn {
  std::string in;
  std::string out;
  bool close_after_write = false;
  bool want_write = false;
};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Finds Content-Length and whether the client asked to close, in a complete header block.
void ScanHeaders(std::string_view head, size_t* content_length, bool* close) {
  *content_length = 0;
  bool http10 = head.find("HTTP/1.0\r\n") != std::string_view::npos &&
                head.find("HTTP/1.0\r\n") < head.find("\r\n") + 2;
  bool keep_alive_header = false;
  *close = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    size_t start = pos + 2;
    size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(start, end - start);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (IEquals(name, "content-length")) {
        *content_length = std::strtoull(std::string(value).c_str(), nullptr, 10);
      } else if (IEquals(name, "connection")) {
        if (IEquals(value, "close")) *close = true;
        if (IEquals(value, "keep-alive")) keep_alive_header = true;
      }
    }
    pos = end;
  }
  if (http10 && !keep_alive_header) *close = true;
}

// Consumes every complete request in c.in and queues one answer per request (pipelining works).
void ParseRequests(Conn& c) {
  size_t consumed = 0;
  while (true) {
    std::string_view rest(c.in.data() + consumed, c.in.size() - consumed);
    size_t end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    size_t content_length = 0;
    bool close = false;
    ScanHeaders(rest.substr(0, end + 2), &content_length, &close);
    size_t total = end + 4 + content_length;
    if (rest.size() < total) break;
    consumed += total;
    c.out.append(close ? kResponseClose : kResponse);
    if (close) {
      c.close_after_write = true;
      break;
    }
  }
  c.in.erase(0, consumed);
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (a == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else {
      std::fprintf(stderr, "usage: limit [--host 127.0.0.1] [--port N]\n");
      return 2;
    }
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    std::fprintf(stderr, "limit: '%s' is not an IPv4 address; pass --host 127.0.0.1\n", host);
    return 2;
  }
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 4096) != 0) {
    std::fprintf(stderr, "limit: cannot listen on %s:%d: %s; pick another --port\n", host, port,
                 std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening %s:%d\n", host, ntohs(addr.sin_port));
  std::fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  epoll_event events[256];
  char buf[16384];

  auto close_conn = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  };
  // Writes what is queued; returns false when the connection is gone.
  auto flush = [&](int fd, Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = write(fd, c.out.data(), c.out.size());
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.want_write) {
          epoll_event e{};
          e.events = EPOLLIN | EPOLLOUT;
          e.data.fd = fd;
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
          c.want_write = true;
        }
        return true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
    if (c.want_write) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
      c.want_write = false;
    }
    return !c.close_after_write;
  };

  while (!g_stop) {
    int n = epoll_wait(ep, events, 256, 500);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        while (true) {
          int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &e);
          conns.emplace(cfd, Conn{});
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      bool alive = true;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) alive = false;
      if (alive && (events[i].events & EPOLLIN)) {
        while (true) {
          ssize_t r = read(fd, buf, sizeof buf);
          if (r > 0) {
            c.in.append(buf, static_cast<size_t>(r));
            if (static_cast<size_t>(r) < sizeof buf) break;
          } else if (r == 0) {
            alive = false;
            break;
          } else if (errno == EINTR) {
            continue;
          } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) alive = false;
            break;
          }
        }
        if (alive && !c.close_after_write) ParseRequests(c);
      }
      if (alive) alive = flush(fd, c);
      if (!alive) close_conn(fd);
    }
  }
  return 0;
}
