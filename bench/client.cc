// The benchmark's own measuring tool: latency clients and the /proc readers bench/run needs.
//
// wrk gives throughput, but its tail figures are distorted on a small shared machine (its
// latency correction inflates every percentile after one stall), and wrk2 is not packaged.
// So latency is measured here, with plain blocking keep-alive connections:
//   closed  one request at a time on one connection; every latency recorded
//   open    a fixed arrival rate spread over several connections; each latency is measured
//           from the request's *scheduled* send time, so a stall that delays later sends is
//           charged to them (no coordinated omission), as wrk2 does
//   first   one request on a fresh connection (cold start after deploy, wake from zero)
//   spawn   fork+exec a server, time from fork to its first HTTP response, then stop it
//   async-latency  Event invocations one at a time: from the 202's arrival to the function's
//           own record of its execution start (bench/async)
//   drain   polls a function's asynchronous backlog until it is empty (bench/async)
// and the helpers bench/run uses to read the machine:
//   freeport, wait URL, cpu PID..., tree PID..., mem ROOT [--env K=V], rss PID, envpids K=V,
//   deploy-many BASEURL --prefix P --from I --to J   (admin API PUT of generated zips)
// Every result is one line of key=value pairs on stdout; problems go to stderr.
// Only loopback targets are accepted: this tool is for load on the local machine.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void SleepUntilNs(int64_t t) {
  timespec ts{static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "client: %s\n", msg.c_str());
  std::exit(2);
}

struct Url {
  std::string host;
  int port = 80;
  std::string path = "/";
};

Url ParseUrl(const std::string& s) {
  const std::string prefix = "http://";
  if (s.rfind(prefix, 0) != 0) Die("url '" + s + "' must start with http://");
  std::string rest = s.substr(prefix.size());
  Url u;
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  size_t colon = hostport.rfind(':');
  u.host = hostport.substr(0, colon);
  if (colon != std::string::npos) u.port = std::atoi(hostport.c_str() + colon + 1);
  if (u.host == "localhost") u.host = "127.0.0.1";
  in_addr a{};
  if (inet_pton(AF_INET, u.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
    Die("url '" + s + "' is not on loopback; the benchmark only loads 127.0.0.0/8");
  return u;
}

std::string BuildRequest(const Url& u, const std::string& method, const std::string& body,
                         const std::string& content_type = "application/json",
                         const std::string& extra_headers = "") {
  std::string r = method + " " + u.path + " HTTP/1.1\r\nHost: " + u.host + ":" +
                  std::to_string(u.port) + "\r\nUser-Agent: nimbus-bench\r\n" + extra_headers;
  if (!body.empty() || method == "POST" || method == "PUT") {
    r += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n";
  }
  // The admin API wants its token; bench/run exports it for the daemon it started.
  if (u.path.rfind("/v1/", 0) == 0) {
    if (const char* token = getenv("NIMBUS_TOKEN"); token && *token) {
      r += "Authorization: Bearer " + std::string(token) + "\r\n";
    }
  }
  r += "\r\n";
  r += body;
  return r;
}

bool IStartsWith(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

// One blocking keep-alive HTTP/1.1 connection. Not thread-safe; one per thread.
class Conn {
 public:
  ~Conn() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool connected() const { return fd_ >= 0; }

  // Returns 0 or the errno of the failure.
  int Connect(const Url& u) {
    Close();
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(u.port));
    inet_pton(AF_INET, u.host.c_str(), &a.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      Close();
      return e;
    }
    return 0;
  }

  // Sends one request, reads the whole answer. Returns the status, or -1 on a broken
  // connection or timeout (the connection is then closed). head_out gets the status line and
  // headers.
  int RoundTrip(const std::string& req, int64_t deadline_ns, std::string* body_out = nullptr,
                std::string* head_out = nullptr) {
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail();
      off += static_cast<size_t>(n);
    }
    // Headers.
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline_ns)) return Fail();
    }
    std::string_view head(buf_.data(), head_end + 2);
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return Fail();
    if (head_out) head_out->assign(head);
    int status = std::atoi(std::string(head.substr(9, 3)).c_str());
    int64_t content_length = -1;
    bool chunked = false, close_after = head.substr(0, 8) == "HTTP/1.0";
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      size_t end = head.find("\r\n", pos + 2);
      std::string_view line = head.substr(pos + 2, end - pos - 2);
      if (IStartsWith(line, "content-length:"))
        content_length = std::atoll(std::string(line.substr(15)).c_str());
      else if (IStartsWith(line, "transfer-encoding:") &&
               line.find("chunked") != std::string_view::npos)
        chunked = true;
      else if (IStartsWith(line, "connection:")) {
        std::string v(line.substr(11));
        for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (v.find("close") != std::string::npos) close_after = true;
        if (v.find("keep-alive") != std::string::npos) close_after = false;
      }
      pos = end;
    }
    size_t body_start = head_end + 4;
    std::string body;
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
      content_length = 0;
    }
    if (chunked) {
      size_t p = body_start;
      while (true) {
        size_t eol;
        while ((eol = buf_.find("\r\n", p)) == std::string::npos)
          if (!Fill(deadline_ns)) return Fail();
        size_t size = std::strtoull(buf_.c_str() + p, nullptr, 16);
        p = eol + 2;
        if (size == 0) {
          // Trailers end with an empty line.
          size_t trailer_end;
          while ((trailer_end = buf_.find("\r\n", p)) == std::string::npos)
            if (!Fill(deadline_ns)) return Fail();
          while (trailer_end != p) {
            p = trailer_end + 2;
            while ((trailer_end = buf_.find("\r\n", p)) == std::string::npos)
              if (!Fill(deadline_ns)) return Fail();
          }
          p = trailer_end + 2;
          break;
        }
        while (buf_.size() < p + size + 2)
          if (!Fill(deadline_ns)) return Fail();
        if (body_out) body.append(buf_, p, size);
        p += size + 2;
      }
      buf_.erase(0, p);
    } else if (content_length >= 0) {
      while (buf_.size() < body_start + static_cast<size_t>(content_length))
        if (!Fill(deadline_ns)) return Fail();
      if (body_out) body = buf_.substr(body_start, static_cast<size_t>(content_length));
      buf_.erase(0, body_start + static_cast<size_t>(content_length));
    } else {
      while (Fill(deadline_ns)) {
      }
      if (body_out) body = buf_.substr(body_start);
      close_after = true;
    }
    if (body_out) *body_out = std::move(body);
    if (close_after) Close();
    return status;
  }

 private:
  int Fail() {
    Close();
    return -1;
  }
  bool Fill(int64_t deadline_ns) {
    char tmp[16384];
    while (true) {
      int64_t left_ms = (deadline_ns - NowNs()) / 1000000;
      if (left_ms < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms + 1, 1 << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }
  int fd_ = -1;
  std::string buf_;
};

struct Options {
  std::string method = "GET";
  std::string body;
  long n = 10000;
  long warmup = 200;
  double seconds = 5;
  double max_seconds = 60;
  double rate = 1000;
  int connections = 4;
  int64_t timeout_ms = 10000;
  std::string env;
  std::string log = "/dev/null";
  std::string prefix = "bench-fn-";
  long from = 0, to = 0;
  std::string dir;         // async-latency: where the function writes its start records
  std::string events_url;  // async-latency: GET /v1/functions/NAME/events
  long gap_ms = 5;
  long poll_ms = 10;
  std::vector<std::string> positional;
  std::vector<std::string> command;  // after "--"
};

Options ParseOptions(int argc, char** argv, int first) {
  Options o;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--") {
      for (++i; i < argc; ++i) o.command.push_back(argv[i]);
      break;
    } else if (a == "--method") o.method = next();
    else if (a == "--body") o.body = next();
    else if (a == "-n") o.n = std::atol(next().c_str());
    else if (a == "--warmup") o.warmup = std::atol(next().c_str());
    else if (a == "--seconds") o.seconds = std::atof(next().c_str());
    else if (a == "--max-seconds") o.max_seconds = std::atof(next().c_str());
    else if (a == "--rate") o.rate = std::atof(next().c_str());
    else if (a == "--connections") o.connections = std::atoi(next().c_str());
    else if (a == "--timeout-ms") o.timeout_ms = std::atoll(next().c_str());
    else if (a == "--env") o.env = next();
    else if (a == "--log") o.log = next();
    else if (a == "--prefix") o.prefix = next();
    else if (a == "--from") o.from = std::atol(next().c_str());
    else if (a == "--to") o.to = std::atol(next().c_str());
    else if (a == "--dir") o.dir = next();
    else if (a == "--events") o.events_url = next();
    else if (a == "--gap-ms") o.gap_ms = std::atol(next().c_str());
    else if (a == "--poll-ms") o.poll_ms = std::atol(next().c_str());
    else if (a.size() > 1 && a[0] == '-') Die("unknown option " + a);
    else o.positional.push_back(a);
  }
  return o;
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t idx = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  if (idx > 0) --idx;
  return static_cast<double>(sorted[std::min(idx, sorted.size() - 1)]) / 1000.0;
}

void PrintStats(std::vector<int64_t> lat_ns, long errors, double seconds,
                const std::string& extra = "") {
  std::sort(lat_ns.begin(), lat_ns.end());
  double sum = 0;
  for (auto v : lat_ns) sum += static_cast<double>(v);
  double mean = lat_ns.empty() ? 0 : sum / static_cast<double>(lat_ns.size()) / 1000.0;
  std::printf(
      "n=%zu errors=%ld seconds=%.3f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
      "max_us=%.1f mean_us=%.1f%s\n",
      lat_ns.size(), errors, seconds, Percentile(lat_ns, 0.5), Percentile(lat_ns, 0.9),
      Percentile(lat_ns, 0.99), Percentile(lat_ns, 0.999),
      lat_ns.empty() ? 0.0 : static_cast<double>(lat_ns.back()) / 1000.0, mean, extra.c_str());
}

bool Ok(int status) { return status >= 200 && status < 300; }

// ---- closed loop ------------------------------------------------------------------------

int CmdClosed(const Options& o) {
  if (o.positional.size() != 1) Die("usage: closed URL [-n N] [--warmup W] [--method M] [--body B]");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, o.method, o.body);
  Conn c;
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(o.n));
  long errors = 0, consecutive = 0;
  int64_t start = NowNs();
  int64_t stop_at = start + static_cast<int64_t>(o.max_seconds * 1e9);
  int64_t measure_start = 0;
  for (long i = 0; i < o.warmup + o.n; ++i) {
    if (i == o.warmup) measure_start = NowNs();
    if (NowNs() > stop_at) break;
    if (!c.connected() && c.Connect(u) != 0) {
      ++errors;
      if (++consecutive > 100) Die("cannot connect to " + o.positional[0]);
      usleep(1000);
      continue;
    }
    int64_t t0 = NowNs();
    int status = c.RoundTrip(req, t0 + o.timeout_ms * 1000000);
    int64_t t1 = NowNs();
    if (!Ok(status)) {
      ++errors;
      if (++consecutive > 100)
        Die("100 failed requests in a row to " + o.positional[0] + " (last status " +
            std::to_string(status) + ")");
      continue;
    }
    consecutive = 0;
    if (i >= o.warmup) lat.push_back(t1 - t0);
  }
  if (measure_start == 0) measure_start = NowNs();
  PrintStats(std::move(lat), errors, static_cast<double>(NowNs() - measure_start) / 1e9);
  return 0;
}

// ---- open loop --------------------------------------------------------------------------

int CmdOpen(const Options& o) {
  if (o.positional.size() != 1) Die("usage: open URL --rate R [--connections C] [--seconds S]");
  if (o.rate <= 0 || o.connections <= 0) Die("--rate and --connections must be positive");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, o.method, o.body);
  const int C = o.connections;
  const double period_ns = 1e9 / o.rate;            // between any two sends
  const double conn_period_ns = period_ns * C;      // between two sends on one connection
  // Warm each connection first so connection setup is not measured.
  std::vector<Conn> conns(static_cast<size_t>(C));
  for (auto& c : conns) {
    if (c.Connect(u) != 0) Die("cannot connect to " + o.positional[0]);
    c.RoundTrip(req, NowNs() + o.timeout_ms * 1000000);
  }
  const int64_t start = NowNs() + 20000000;  // 20 ms for the threads to get going
  const int64_t end = start + static_cast<int64_t>(o.seconds * 1e9);
  // A server that falls behind is not waited for forever: sends scheduled before `end` but
  // still unsent 2 s after it are counted as unsent, so the run stays bounded.
  const int64_t give_up = end + 2000000000;
  std::vector<std::vector<int64_t>> lats(static_cast<size_t>(C));
  std::vector<long> errors(static_cast<size_t>(C)), unsent(static_cast<size_t>(C));
  std::vector<std::thread> threads;
  for (int t = 0; t < C; ++t) {
    threads.emplace_back([&, t] {
      Conn& c = conns[static_cast<size_t>(t)];
      auto& lat = lats[static_cast<size_t>(t)];
      for (long k = 0;; ++k) {
        int64_t sched = start + static_cast<int64_t>(period_ns * t + conn_period_ns * k);
        if (sched >= end) break;
        if (NowNs() > give_up) {
          unsent[static_cast<size_t>(t)] +=
              1 + static_cast<long>((end - sched) / conn_period_ns);
          break;
        }
        SleepUntilNs(sched);
        if (!c.connected() && c.Connect(u) != 0) {
          ++errors[static_cast<size_t>(t)];
          continue;
        }
        int status = c.RoundTrip(req, NowNs() + o.timeout_ms * 1000000);
        int64_t done = NowNs();
        if (!Ok(status)) {
          ++errors[static_cast<size_t>(t)];
          continue;
        }
        lat.push_back(done - sched);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int64_t> all;
  long err = 0, miss = 0;
  for (int t = 0; t < C; ++t) {
    all.insert(all.end(), lats[static_cast<size_t>(t)].begin(), lats[static_cast<size_t>(t)].end());
    err += errors[static_cast<size_t>(t)];
    miss += unsent[static_cast<size_t>(t)];
  }
  double secs = static_cast<double>(NowNs() - start) / 1e9;
  char extra[160];
  std::snprintf(extra, sizeof extra, " rate=%.0f connections=%d unsent=%ld achieved_rps=%.0f",
                o.rate, C, miss, static_cast<double>(all.size()) / secs);
  PrintStats(std::move(all), err, secs, extra);
  return 0;
}

// ---- single requests, readiness, spawn -------------------------------------------------

int CmdFirst(const Options& o) {
  if (o.positional.size() != 1) Die("usage: first URL [--method M] [--body B]");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, o.method, o.body);
  Conn c;
  int64_t t0 = NowNs();
  if (int e = c.Connect(u); e != 0) Die("cannot connect to " + o.positional[0] + ": " + strerror(e));
  std::string body;
  int status = c.RoundTrip(req, t0 + o.timeout_ms * 1000000, &body);
  int64_t t1 = NowNs();
  if (status < 0) {
    std::fprintf(stderr, "client: %s closed the connection or timed out without answering\n",
                 o.positional[0].c_str());
  } else if (!Ok(status)) {
    std::fprintf(stderr, "client: %s answered %d: %.300s\n", o.positional[0].c_str(), status,
                 body.c_str());
  }
  std::printf("us=%.1f status=%d\n", static_cast<double>(t1 - t0) / 1000.0, status);
  return Ok(status) ? 0 : 1;
}

int CmdWait(const Options& o) {
  if (o.positional.size() != 1) Die("usage: wait URL [--timeout-ms T]");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, "GET", "");
  int64_t deadline = NowNs() + o.timeout_ms * 1000000;
  while (NowNs() < deadline) {
    Conn c;
    if (c.Connect(u) == 0) {
      int status = c.RoundTrip(req, std::min(deadline, NowNs() + 2000000000));
      if (status > 0) {
        std::printf("status=%d\n", status);
        return 0;
      }
    }
    usleep(20000);
  }
  std::fprintf(stderr, "client: %s did not answer within %" PRId64 " ms\n",
               o.positional[0].c_str(), o.timeout_ms);
  return 1;
}

pid_t g_child = -1;
void KillChild(int sig) {
  if (g_child > 0) kill(g_child, SIGKILL);
  _exit(128 + sig);
}

// Stops a child: SIGTERM, then SIGKILL if it is still there after 3 s.
void StopChild(pid_t pid) {
  kill(pid, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

int CmdSpawn(const Options& o) {
  if (o.positional.size() != 1 || o.command.empty())
    Die("usage: spawn URL [--timeout-ms T] [--log FILE] -- COMMAND ARGS...");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, "GET", "");
  signal(SIGINT, KillChild);
  signal(SIGTERM, KillChild);
  int64_t t0 = NowNs();
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    int fd = open(o.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& s : o.command) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  g_child = pid;
  int64_t deadline = t0 + o.timeout_ms * 1000000;
  int status = -1;
  int64_t t1 = 0;
  while (NowNs() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      g_child = -1;
      Die("'" + o.command[0] + "' exited before answering; see " + o.log);
    }
    Conn c;
    if (c.Connect(u) == 0) {
      status = c.RoundTrip(req, deadline);
      if (status > 0) {
        t1 = NowNs();
        break;
      }
    }
    usleep(200);
  }
  StopChild(pid);
  g_child = -1;
  if (t1 == 0) {
    std::fprintf(stderr, "client: '%s' did not answer within %" PRId64 " ms\n",
                 o.command[0].c_str(), o.timeout_ms);
    return 1;
  }
  std::printf("us=%.1f status=%d\n", static_cast<double>(t1 - t0) / 1000.0, status);
  return 0;
}

int CmdFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Die("cannot bind a port");
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("%d\n", ntohs(a.sin_port));
  close(fd);
  return 0;
}

// ---- asynchronous invocations -----------------------------------------------------------

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The value of header `name` (lower case, colon included) in a response head, or "".
std::string HeaderValue(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    size_t end = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, end - pos - 2);
    if (IStartsWith(line, name)) {
      std::string_view v = line.substr(name.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return std::string(v);
    }
    pos = end;
  }
  return "";
}

// The number after "key": in a JSON text, or -1. Enough for the flat counts the events
// endpoint answers with, which come before its list of events.
long long JsonCount(const std::string& body, const std::string& key) {
  size_t p = body.find("\"" + key + "\":");
  if (p == std::string::npos) return -1;
  return std::strtoll(body.c_str() + p + key.size() + 3, nullptr, 10);
}

// A function's asynchronous backlog as GET /v1/functions/NAME/events reports it.
struct Backlog {
  long long queued = -1, retrying = -1, in_flight = -1, dead = -1;
  bool ok() const { return queued >= 0 && retrying >= 0 && in_flight >= 0; }
  long long pending() const { return queued + retrying + in_flight; }
};

Backlog GetBacklog(Conn& c, const Url& u, const std::string& req, int64_t timeout_ms) {
  Backlog b;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!c.connected() && c.Connect(u) != 0) continue;
    std::string body;
    int status = c.RoundTrip(req, NowNs() + timeout_ms * 1000000, &body);
    if (status < 0) continue;  // a closed keep-alive connection: once more on a new one
    if (status != 200) {
      std::fprintf(stderr, "client: GET %s answered %d: %.300s\n", u.path.c_str(), status,
                   body.c_str());
      return b;
    }
    b.queued = JsonCount(body, "queued");
    b.retrying = JsonCount(body, "retrying");
    b.in_flight = JsonCount(body, "in_flight");
    b.dead = JsonCount(body, "dead_letters");
    return b;
  }
  return b;
}

// Waits until DIR/ID exists (the function renames its start record into place, which the
// inotify watch `ino` on DIR reports as IN_MOVED_TO) and reads the nanoseconds it holds.
bool WaitStartRecord(int ino, const std::string& dir, const std::string& id, int64_t deadline_ns,
                     int64_t* start_ns) {
  const std::string path = dir + "/" + id;
  auto read_record = [&]() {
    std::ifstream f(path);
    long long v = 0;
    if (!(f >> v)) return false;
    *start_ns = v;
    return true;
  };
  if (read_record()) return true;
  alignas(inotify_event) char buf[16384];
  while (true) {
    int64_t left_ms = (deadline_ns - NowNs()) / 1000000;
    if (left_ms < 0) return read_record();
    pollfd p{ino, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left_ms + 1));
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    ssize_t n = read(ino, buf, sizeof buf);
    if (n <= 0) continue;
    for (char* q = buf; q < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(q);
      if (ev->len > 0 && id == ev->name) return read_record();
      q += sizeof(inotify_event) + ev->len;
    }
  }
}

// 202-to-execution-start latency, one event at a time on an idle function. For each event:
// send it, take the wall clock when the 202 has arrived, wait for the function's start
// record (the wall clock at its handler's entry, written under its request id in --dir),
// then wait until the function's backlog is empty (the event completed) and --gap-ms more,
// so the next event again finds the function idle. The latency is start minus 202 arrival:
// negative when the function began before the 202 reached this client. Both clocks are
// CLOCK_REALTIME of the same machine.
int CmdAsyncLatency(const Options& o) {
  if (o.positional.size() != 1 || o.dir.empty() || o.events_url.empty())
    Die("usage: async-latency INVOKE_URL --events EVENTS_URL --dir DIR [-n N] [--warmup W] "
        "[--gap-ms G] [--max-seconds S]");
  Url u = ParseUrl(o.positional[0]);
  Url ev = ParseUrl(o.events_url);
  std::string req = BuildRequest(u, "POST", o.body.empty() ? "{}" : o.body, "application/json",
                                 "X-Amz-Invocation-Type: Event\r\n");
  std::string ev_req = BuildRequest(ev, "GET", "");
  int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0 || inotify_add_watch(ino, o.dir.c_str(), IN_MOVED_TO) < 0)
    Die("cannot watch " + o.dir + ": " + strerror(errno));
  Conn c, ce;
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(o.n));
  long errors = 0, consecutive = 0, negative = 0;
  const int64_t t_begin = NowNs();
  const int64_t stop_at = t_begin + static_cast<int64_t>(o.max_seconds * 1e9);
  int64_t measure_start = 0;
  auto failed = [&](const std::string& why) {
    ++errors;
    std::fprintf(stderr, "client: async-latency: %s\n", why.c_str());
    if (++consecutive > 3) Die("async-latency: 4 failures in a row; last: " + why);
  };
  for (long i = 0; i < o.warmup + o.n; ++i) {
    if (i == o.warmup) measure_start = NowNs();
    if (NowNs() > stop_at) break;
    if (!c.connected() && c.Connect(u) != 0) {
      failed("cannot connect to " + o.positional[0]);
      continue;
    }
    std::string head, body;
    int status = c.RoundTrip(req, NowNs() + o.timeout_ms * 1000000, &body, &head);
    const int64_t accepted_ns = RealtimeNs();
    if (status != 202) {
      failed("the Event invocation answered " + std::to_string(status) + ": " + body.substr(0, 300));
      continue;
    }
    const std::string id = HeaderValue(head, "x-amzn-requestid:");
    if (id.empty() || id.find('/') != std::string::npos || id[0] == '.') {
      failed("the 202 carried no usable x-amzn-RequestId header");
      continue;
    }
    int64_t start_ns = 0;
    if (!WaitStartRecord(ino, o.dir, id, NowNs() + o.timeout_ms * 1000000, &start_ns)) {
      failed("no start record " + o.dir + "/" + id + " within " + std::to_string(o.timeout_ms) +
             " ms of the 202");
      continue;
    }
    unlink((o.dir + "/" + id).c_str());
    if (i >= o.warmup) {
      lat.push_back(start_ns - accepted_ns);
      if (start_ns < accepted_ns) ++negative;
    }
    const int64_t idle_deadline = NowNs() + o.timeout_ms * 1000000;
    while (true) {
      Backlog b = GetBacklog(ce, ev, ev_req, o.timeout_ms);
      if (!b.ok()) Die("cannot read the backlog from " + o.events_url);
      if (b.pending() == 0) break;
      if (NowNs() > idle_deadline) Die("the event " + id + " did not complete within the timeout");
      usleep(200);
    }
    consecutive = 0;
    if (o.gap_ms > 0) usleep(static_cast<useconds_t>(o.gap_ms * 1000));
  }
  if (measure_start == 0) measure_start = NowNs();
  int64_t min_ns = lat.empty() ? 0 : *std::min_element(lat.begin(), lat.end());
  char extra[96];
  std::snprintf(extra, sizeof extra, " min_us=%.1f negative=%ld", static_cast<double>(min_ns) / 1000.0,
                negative);
  PrintStats(std::move(lat), errors, static_cast<double>(NowNs() - measure_start) / 1e9, extra);
  close(ino);
  return 0;
}

// Polls a function's backlog (GET /v1/functions/NAME/events) every --poll-ms until queued +
// retrying + in_flight is 0, or --timeout-ms. Started right after a load ends, its first
// reading is the backlog the load left; seconds runs from the start of this command.
int CmdDrain(const Options& o) {
  if (o.positional.size() != 1) Die("usage: drain EVENTS_URL [--timeout-ms T] [--poll-ms P]");
  Url u = ParseUrl(o.positional[0]);
  std::string req = BuildRequest(u, "GET", "");
  Conn c;
  const int64_t t0 = NowNs();
  const int64_t deadline = t0 + o.timeout_ms * 1000000;
  long long backlog = -1, peak = 0;
  long polls = 0;
  Backlog b;
  while (true) {
    b = GetBacklog(c, u, req, 10000);
    ++polls;
    if (!b.ok()) Die("cannot read the backlog from " + o.positional[0]);
    if (backlog < 0) backlog = b.pending();
    peak = std::max(peak, b.pending());
    if (b.pending() == 0 || NowNs() > deadline) break;
    SleepUntilNs(NowNs() + o.poll_ms * 1000000);
  }
  std::printf("backlog=%lld peak=%lld left=%lld dead=%lld drained=%d seconds=%.3f polls=%ld\n",
              backlog, peak, b.pending(), b.dead, b.pending() == 0 ? 1 : 0,
              static_cast<double>(NowNs() - t0) / 1e9, polls);
  return 0;
}

// ---- /proc readers ----------------------------------------------------------------------

struct ProcStat {
  pid_t ppid = 0;
  long long ticks = 0;      // utime + stime + cutime + cstime
  long long own_ticks = 0;  // utime + stime: the process's own threads only
  long long rss_pages = 0;
};

bool ReadProcStat(pid_t pid, ProcStat* out) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return false;
  size_t rp = s.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream in(s.substr(rp + 2));
  std::vector<std::string> t;
  std::string tok;
  while (in >> tok) t.push_back(tok);
  if (t.size() < 22) return false;
  out->ppid = std::atoi(t[1].c_str());
  out->ticks = std::atoll(t[11].c_str()) + std::atoll(t[12].c_str()) +
               std::atoll(t[13].c_str()) + std::atoll(t[14].c_str());
  out->own_ticks = std::atoll(t[11].c_str()) + std::atoll(t[12].c_str());
  out->rss_pages = std::atoll(t[21].c_str());
  return true;
}

std::map<pid_t, ProcStat> AllProcs() {
  std::map<pid_t, ProcStat> m;
  DIR* d = opendir("/proc");
  if (!d) return m;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t pid = std::atoi(e->d_name);
    ProcStat ps;
    if (ReadProcStat(pid, &ps)) m[pid] = ps;
  }
  closedir(d);
  return m;
}

// The roots and every process below them.
std::set<pid_t> Tree(const std::map<pid_t, ProcStat>& procs, const std::vector<pid_t>& roots) {
  std::multimap<pid_t, pid_t> children;
  for (auto& [pid, ps] : procs) children.emplace(ps.ppid, pid);
  std::set<pid_t> seen;
  std::vector<pid_t> todo;
  for (pid_t r : roots)
    if (procs.count(r)) todo.push_back(r);
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) todo.push_back(it->second);
  }
  return seen;
}

std::vector<pid_t> PidArgs(const Options& o) {
  std::vector<pid_t> pids;
  for (auto& s : o.positional) pids.push_back(std::atoi(s.c_str()));
  return pids;
}

long long MachineBusyTicks() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long long user, nice, sys, idle, iowait, irq, softirq, steal;
  f >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal;
  return user + nice + sys + irq + softirq + steal;
}

// CPU used so far by the process trees under the given pids (threads and reaped children
// included), by the first pid's own threads alone (root_ticks: for nimbus, the daemon
// without its instances), and by the whole machine, in clock ticks. bench/run takes the
// difference of two snapshots around a load.
int CmdCpu(const Options& o) {
  auto procs = AllProcs();
  auto pids = PidArgs(o);
  long long server = 0;
  auto tree = Tree(procs, pids);
  for (pid_t p : tree) server += procs[p].ticks;
  long long root = pids.empty() || !procs.count(pids[0]) ? 0 : procs[pids[0]].own_ticks;
  std::printf("server_ticks=%lld root_ticks=%lld machine_ticks=%lld procs=%zu clk_tck=%ld "
              "now_ns=%" PRId64 "\n",
              server, root, MachineBusyTicks(), tree.size(), sysconf(_SC_CLK_TCK), NowNs());
  return 0;
}

int CmdTree(const Options& o) {
  auto procs = AllProcs();
  for (pid_t p : Tree(procs, PidArgs(o))) std::printf("%d\n", p);
  return 0;
}

long long StatusKb(pid_t pid, const std::string& key, const std::string& file = "status") {
  std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size());
  return 0;
}

bool EnvHas(pid_t pid, const std::string& entry) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string e;
  while (std::getline(f, e, '\0'))
    if (e == entry) return true;
  return false;
}

// Processes (other than this one) whose environment holds KEY=VALUE.
int CmdEnvPids(const Options& o) {
  if (o.positional.size() != 1) Die("usage: envpids KEY=VALUE");
  for (auto& [pid, ps] : AllProcs())
    if (pid != getpid() && EnvHas(pid, o.positional[0])) std::printf("%d\n", pid);
  return 0;
}

int CmdRss(const Options& o) {
  if (o.positional.size() != 1) Die("usage: rss PID");
  pid_t pid = std::atoi(o.positional[0].c_str());
  std::printf("rss_kb=%lld pss_kb=%lld\n", StatusKb(pid, "VmRSS:"),
              StatusKb(pid, "Pss:", "smaps_rollup"));
  return 0;
}

// Memory of the processes below ROOT (ROOT itself excluded). With --env K=V only the
// processes whose environment holds that entry; "instances" counts the topmost of them.
int CmdMem(const Options& o) {
  if (o.positional.size() != 1) Die("usage: mem ROOT [--env KEY=VALUE]");
  pid_t root = std::atoi(o.positional[0].c_str());
  auto procs = AllProcs();
  auto tree = Tree(procs, {root});
  tree.erase(root);
  std::set<pid_t> matched;
  for (pid_t p : tree)
    if (o.env.empty() || EnvHas(p, o.env)) matched.insert(p);
  long long rss = 0, pss = 0;
  size_t instances = 0;
  for (pid_t p : matched) {
    rss += StatusKb(p, "VmRSS:");
    pss += StatusKb(p, "Pss:", "smaps_rollup");
    if (!matched.count(procs[p].ppid)) ++instances;
  }
  std::printf("instances=%zu procs=%zu rss_kb=%lld pss_kb=%lld\n", instances, matched.size(),
              rss, pss);
  return 0;
}

// ---- deploy-many: admin API PUT of small generated zips ----------------------------------

uint32_t Crc32(const std::string& s) {
  static uint32_t table[256];
  static bool init = false;
  if (!init) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    init = true;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void Put16(std::string& o, uint16_t v) {
  o.push_back(static_cast<char>(v & 0xFF));
  o.push_back(static_cast<char>(v >> 8));
}
void Put32(std::string& o, uint32_t v) {
  Put16(o, static_cast<uint16_t>(v & 0xFFFF));
  Put16(o, static_cast<uint16_t>(v >> 16));
}

// A zip of stored (uncompressed) regular files, mode 0644.
std::string Zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  for (auto& [name, data] : files) {
    uint32_t crc = Crc32(data), offset = static_cast<uint32_t>(out.size());
    auto common = [&](std::string& o) {
      Put16(o, 20);  // version needed
      Put16(o, 0);   // flags
      Put16(o, 0);   // stored
      Put16(o, 0);   // time
      Put16(o, 0x21);  // 1980-01-01
      Put32(o, crc);
      Put32(o, static_cast<uint32_t>(data.size()));
      Put32(o, static_cast<uint32_t>(data.size()));
      Put16(o, static_cast<uint16_t>(name.size()));
      Put16(o, 0);  // extra
    };
    Put32(out, 0x04034b50);
    common(out);
    out += name;
    out += data;
    Put32(central, 0x02014b50);
    Put16(central, (3 << 8) | 20);  // made by unix
    common(central);
    Put16(central, 0);  // comment
    Put16(central, 0);  // disk
    Put16(central, 0);  // internal attributes
    Put32(central, 0100644u << 16);
    Put32(central, offset);
    central += name;
  }
  uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out += central;
  Put32(out, 0x06054b50);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, static_cast<uint16_t>(files.size()));
  Put16(out, static_cast<uint16_t>(files.size()));
  Put32(out, static_cast<uint32_t>(central.size()));
  Put32(out, cd_offset);
  Put16(out, 0);
  return out;
}

int CmdDeployMany(const Options& o) {
  if (o.positional.size() != 1) Die("usage: deploy-many BASEURL --prefix P --from I --to J");
  Url base = ParseUrl(o.positional[0]);
  Conn c;
  long ok = 0, errors = 0;
  int64_t t0 = NowNs();
  std::string first_error;
  for (long i = o.from; i < o.to; ++i) {
    std::string name = o.prefix + std::to_string(i);
    std::string yaml = "name: " + name + "\nruntime: python3\nhandler: app.handler\n";
    std::string app = "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"hello\"}\n";
    std::string zip = Zip({{"function.yaml", yaml}, {"app.py", app}});
    Url u = base;
    u.path = "/v1/functions/" + name;
    std::string req = BuildRequest(u, "PUT", zip, "application/zip");
    int status = -1;
    std::string body;
    for (int attempt = 0; attempt < 2 && status < 0; ++attempt) {
      if (!c.connected() && c.Connect(u) != 0) continue;
      status = c.RoundTrip(req, NowNs() + o.timeout_ms * 1000000, &body);
    }
    if (status == 200 || status == 201) {
      ++ok;
    } else {
      ++errors;
      if (first_error.empty())
        first_error = name + ": status " + std::to_string(status) + " " + body.substr(0, 300);
      if (errors > 20) break;
    }
  }
  if (!first_error.empty()) std::fprintf(stderr, "client: deploy failed: %s\n", first_error.c_str());
  std::printf("deployed=%ld errors=%ld seconds=%.3f\n", ok, errors,
              static_cast<double>(NowNs() - t0) / 1e9);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: client closed|open|first|wait|spawn|async-latency|drain|freeport|cpu|tree|mem|"
                 "rss|envpids|deploy-many ...\n(see the comment at the top of bench/client.cc)\n");
    return 2;
  }
  std::string cmd = argv[1];
  Options o = ParseOptions(argc, argv, 2);
  if (cmd == "closed") return CmdClosed(o);
  if (cmd == "open") return CmdOpen(o);
  if (cmd == "first") return CmdFirst(o);
  if (cmd == "wait") return CmdWait(o);
  if (cmd == "spawn") return CmdSpawn(o);
  if (cmd == "freeport") return CmdFreePort();
  if (cmd == "cpu") return CmdCpu(o);
  if (cmd == "tree") return CmdTree(o);
  if (cmd == "mem") return CmdMem(o);
  if (cmd == "rss") return CmdRss(o);
  if (cmd == "envpids") return CmdEnvPids(o);
  if (cmd == "deploy-many") return CmdDeployMany(o);
  if (cmd == "async-latency") return CmdAsyncLatency(o);
  if (cmd == "drain") return CmdDrain(o);
  Die("unknown command '" + cmd + "'");
}
