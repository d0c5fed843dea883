#include "scheduler/testing/fake_launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <map>
#include <thread>

namespace nimbus::scheduler::fake {

struct ProcState {
  size_t index = 0;
  FakeScript script;
  std::vector<std::string> env;  // what the fake runtime reads
  std::string api;               // host:port of the instance's Runtime API

  std::mutex mu;
  std::condition_variable cv;
  bool kill_requested = false;  // guarded by mu
  bool ended = false;           // guarded by mu
  bool kill_called = false;     // guarded by mu; the scheduler called Process::Kill()
  bool released = false;        // guarded by mu; came back through Launcher::Release()
  bool oom = false;             // guarded by mu
  std::string how;              // guarded by mu; Reap()'s answer once ended
  int sock = -1;                // guarded by mu; closed only by the thread, under mu
  int out_w = -1, err_w = -1;   // write ends; used by the thread, closed when it ends
  int exit_efd = -1;            // eventfd signalled when the thread ends
};

// Work for the launcher's thread: a launch, or (when `release` is set) a release.
struct Task {
  sandbox::LaunchSpec spec;
  sandbox::LaunchDone done;
  std::unique_ptr<sandbox::Process> release;
};

struct Records {
  mutable std::mutex mu;
  FakeScript script;            // guarded by mu
  Status fail;                  // guarded by mu
  bool hold = false;            // guarded by mu
  std::vector<Task> held;       // guarded by mu; launches waiting for ReleaseLaunches()
  std::deque<Task> tasks;       // guarded by mu; for the worker
  bool busy = false;            // guarded by mu; the worker is running a task
  bool stop = false;            // guarded by mu
  std::condition_variable work; // tasks or stop
  std::condition_variable idle; // no task queued or running
  std::vector<sandbox::LaunchSpec> specs;           // guarded by mu
  std::vector<SeenEvent> events;                    // guarded by mu
  std::vector<StrayAnswer> stray;                   // guarded by mu
  std::vector<std::shared_ptr<ProcState>> procs;    // guarded by mu
  size_t destroyed_unreleased = 0;                  // guarded by mu
};

namespace {

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  for (size_t p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
    text.replace(p, from.size(), to);
  }
  return text;
}

// A blocking stream socket with a read buffer: what both fake transports read and write through.
class BlockingStream {
 public:
  explicit BlockingStream(int fd) : fd_(fd) {}
  // Part of an answer already read.
  bool Buffered() const { return !buf_.empty(); }

 protected:
  bool SendAll(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool Fill() {
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  // Takes what comes before the next `delimiter` (and the delimiter); false at end-of-file.
  bool TakeUntil(std::string_view delimiter, std::string& out) {
    size_t end;
    while ((end = buf_.find(delimiter)) == std::string::npos) {
      if (!Fill()) return false;
    }
    out = buf_.substr(0, end);
    buf_.erase(0, end + delimiter.size());
    return true;
  }
  // Reads until buf_ holds `n` bytes; false at end-of-file.
  bool FillTo(size_t n) {
    while (buf_.size() < n) {
      if (!Fill()) return false;
    }
    return true;
  }

  int fd_;
  std::string buf_;
};

// A blocking HTTP/1.1 client on one keep-alive connection: just enough to be a Lambda runtime.
class MiniHttp : public BlockingStream {
 public:
  using BlockingStream::BlockingStream;

  struct Answer {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };

  bool Send(std::string_view method, std::string_view target, std::string_view body,
            std::string_view extra_headers = {}) {
    std::string msg;
    msg.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: runtime\r\n");
    msg.append(extra_headers);
    if (method != "GET") msg.append("Content-Length: " + std::to_string(body.size()) + "\r\n");
    msg.append("\r\n").append(body);
    return SendAll(msg);
  }

  bool Read(Answer& a) {
    std::string head;
    if (!TakeUntil("\r\n\r\n", head)) return false;
    a = {};
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    auto sp = status_line.find(' ');
    if (sp == std::string::npos) return false;
    a.status = std::atoi(status_line.c_str() + sp + 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      pos = e + 2;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      a.headers[name] = value;
    }
    size_t len = a.headers.count("content-length") ? std::strtoull(a.headers["content-length"].c_str(), nullptr, 10) : 0;
    if (!FillTo(len)) return false;
    a.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return true;
  }
};

// The runtime's end of a runtime channel (docs/runtime-channel.md), blocking.
class MiniChannel : public BlockingStream {
 public:
  using BlockingStream::BlockingStream;

  struct Frame {
    char kind = 0;                     // 'E' event, 'X' refusal
    std::vector<std::string> fields;   // the header's fields after the kind
    std::vector<std::string> sections; // E: arn, trace, client context, identity, body; X: type, message
  };

  bool Send(std::string_view bytes) { return SendAll(bytes); }

  bool Read(Frame& f) {
    std::string line;
    if (!TakeUntil("\n", line)) return false;
    f = {};
    std::vector<std::string> parts;
    for (size_t pos = 0;;) {
      size_t sp = line.find(' ', pos);
      parts.push_back(line.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    if (parts.empty() || parts[0].size() != 1) return false;
    f.kind = parts[0][0];
    f.fields.assign(parts.begin() + 1, parts.end());
    size_t first_len = f.kind == 'E' ? 2 : f.kind == 'X' ? 1 : f.fields.size();
    for (size_t i = first_len; i < f.fields.size(); ++i) {
      size_t len = std::strtoull(f.fields[i].c_str(), nullptr, 10);
      if (!FillTo(len)) return false;
      f.sections.push_back(buf_.substr(0, len));
      buf_.erase(0, len);
    }
    return true;
  }
};

std::string ErrorFrame(std::string_view id, std::string_view type, std::string_view body) {
  return "F " + std::string(id) + " " + std::to_string(type.size()) + " " + std::to_string(body.size()) + "\n" +
         std::string(type) + std::string(body);
}

// Writes the lines to a non-blocking pipe in one write, as a runtime flushing a buffered stdout
// does. A full pipe or a closed reader drops the rest (a real process would block or die; a
// test only cares about what it asked the fake to print).
void Print(int fd, const std::vector<std::string>& lines, const std::string& id) {
  if (fd < 0 || lines.empty()) return;
  std::string s;
  for (const auto& l : lines) s += Replace(l, "{id}", id) + "\n";
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

class FakeRuntime {
 public:
  FakeRuntime(std::shared_ptr<ProcState> st, std::shared_ptr<Records> rec) : st_(std::move(st)), rec_(std::move(rec)) {}

  void Run() {
    const FakeScript& s = st_->script;
    if (s.channel) return RunChannel();
    Print(st_->err_w, s.init_stderr_lines, "");
    if (!s.init_stderr_unterminated.empty() && st_->err_w >= 0) {
      (void)!::write(st_->err_w, s.init_stderr_unterminated.data(), s.init_stderr_unterminated.size());
    }
    int fd = Connect();
    if (fd < 0) return End("exit status 1", false);
    http_ = std::make_unique<MiniHttp>(fd);
    if (!Sleep(s.init_delay)) return End("", false);
    if (s.never_ready) {
      Sleep(std::chrono::hours(24));
      return End("", false);
    }
    if (s.exit_at_start) return End("exit status " + std::to_string(s.exit_code), false);
    if (s.init_error) {
      std::string body = "{\"errorMessage\":\"Unable to import module 'app': No module named 'app'\",\"errorType\":\"" +
                         s.init_error_type + "\"}";
      if (http_->Send("POST", "/2018-06-01/runtime/init/error", body,
                      "Lambda-Runtime-Function-Error-Type: " + s.init_error_type + "\r\n")) {
        MiniHttp::Answer a;
        http_->Read(a);
      }
      return End("exit status " + std::to_string(s.exit_code), false);
    }
    for (;;) {
      MiniHttp::Answer ev;
      bool answered = Next(ev);
      if (answered && ev.status != 200) Stray(ev);
      if (!answered || ev.status != 200) {
        if (!s.retry_next || !Reconnect(std::chrono::milliseconds(0))) return End("exit status 1", false);
        continue;
      }
      std::string id = ev.headers["lambda-runtime-aws-request-id"];
      {
        std::lock_guard lock(rec_->mu);
        rec_->events.push_back({st_->index, id, ev.body, ev.headers["lambda-runtime-invoked-function-arn"],
                                ev.headers["lambda-runtime-trace-id"],
                                std::strtoll(ev.headers["lambda-runtime-deadline-ms"].c_str(), nullptr, 10)});
      }
      Print(st_->out_w, s.stdout_lines, id);
      Print(st_->err_w, s.stderr_lines, id);
      if (!Sleep(s.delay)) return End("", false);
      if (s.wrong_id_first) {
        MiniHttp::Answer a;
        if (!http_->Send("POST", "/2018-06-01/runtime/invocation/no-such-request/response", "{}") || !http_->Read(a)) {
          return End("exit status 1", false);
        }
        Stray(a);
      }
      using A = FakeScript::Action;
      switch (s.action) {
        case A::kEcho:
        case A::kError: {
          bool echo = s.action == A::kEcho;
          std::string target = "/2018-06-01/runtime/invocation/" + id + (echo ? "/response" : "/error");
          std::string body = echo ? ev.body : R"({"errorMessage":"boom","errorType":"ValueError"})";
          MiniHttp::Answer a;
          if (!http_->Send("POST", target, body,
                           echo ? std::string_view{} : "Lambda-Runtime-Function-Error-Type: ValueError\r\n") ||
              !http_->Read(a)) {
            return End("exit status 1", false);
          }
          if (a.status != 202) Stray(a);
          if (s.silent_after_answer) {
            Sleep(std::chrono::hours(1));
            return End("", false);
          }
          break;
        }
        case A::kCrash:
          return End(s.oom ? "signal 9 (Killed)" : "exit status " + std::to_string(s.exit_code), s.oom);
        case A::kHang:
          Sleep(std::chrono::hours(1));
          return End("", false);
      }
    }
  }

  // The same script over the runtime channel: the response and the next request go out in one
  // write, and nothing acknowledges them.
  void RunChannel() {
    const FakeScript& s = st_->script;
    Print(st_->err_w, s.init_stderr_lines, "");
    if (!s.init_stderr_unterminated.empty() && st_->err_w >= 0) {
      (void)!::write(st_->err_w, s.init_stderr_unterminated.data(), s.init_stderr_unterminated.size());
    }
    MiniChannel ch(CurrentSock());
    if (!Sleep(s.init_delay)) return End("", false);
    if (s.never_ready) {
      Sleep(std::chrono::hours(24));
      return End("", false);
    }
    if (s.exit_at_start) return End("exit status " + std::to_string(s.exit_code), false);
    if (s.init_error) {
      std::string body = "{\"errorMessage\":\"Unable to import module 'app': No module named 'app'\",\"errorType\":\"" +
                         s.init_error_type + "\"}";
      ch.Send("I " + std::to_string(s.init_error_type.size()) + " " + std::to_string(body.size()) + "\n" +
              s.init_error_type + body);
      return End("exit status " + std::to_string(s.exit_code), false);
    }
    std::string out = "N\n";
    for (;;) {
      if (!ch.Send(out)) return End("exit status 1", false);
      MiniChannel::Frame ev;
      for (;;) {  // refusals are recorded; the next event is what the runtime waits for
        if (!ch.Read(ev)) return End("exit status 1", false);
        if (ev.kind != 'X') break;
        StrayRefusal(ev);
        if (ev.fields[0] == "410") return End("exit status 1", false);
      }
      if (ev.kind != 'E' || ev.fields.size() != 7 || ev.sections.size() != 5) return End("exit status 2", false);
      const std::string& id = ev.fields[0];
      {
        std::lock_guard lock(rec_->mu);
        rec_->events.push_back({st_->index, id, ev.sections[4], ev.sections[0], ev.sections[1],
                                std::strtoll(ev.fields[1].c_str(), nullptr, 10)});
      }
      Print(st_->out_w, s.stdout_lines, id);
      Print(st_->err_w, s.stderr_lines, id);
      if (!Sleep(s.delay)) return End("", false);
      if (s.wrong_id_first) {
        MiniChannel::Frame refusal;
        if (!ch.Send("R no-such-request 2\n{}") || !ch.Read(refusal) || refusal.kind != 'X') {
          return End("exit status 1", false);
        }
        StrayRefusal(refusal);
      }
      using A = FakeScript::Action;
      switch (s.action) {
        case A::kEcho:
          out = "R " + id + " " + std::to_string(ev.sections[4].size()) + "\n" + ev.sections[4];
          break;
        case A::kError:
          out = ErrorFrame(id, "ValueError", R"({"errorMessage":"boom","errorType":"ValueError"})");
          break;
        case A::kCrash:
          return End(s.oom ? "signal 9 (Killed)" : "exit status " + std::to_string(s.exit_code), s.oom);
        case A::kHang:
          Sleep(std::chrono::hours(1));
          return End("", false);
      }
      if (s.silent_after_answer) {
        ch.Send(out);
        Sleep(std::chrono::hours(1));
        return End("", false);
      }
      out += "N\n";
    }
  }

 private:
  void StrayRefusal(const MiniChannel::Frame& x) {
    std::lock_guard lock(rec_->mu);
    rec_->stray.push_back({st_->index, std::atoi(x.fields.empty() ? "0" : x.fields[0].c_str()),
                           x.sections.size() == 2 ? x.sections[0] + ": " + x.sections[1] : std::string()});
  }

  // GET /next until an answer comes; with next_timeout, a /next left unanswered that long is
  // given up and asked again on a new connection after reconnect_after.
  bool Next(MiniHttp::Answer& ev) {
    const FakeScript& s = st_->script;
    for (;;) {
      if (!http_->Send("GET", "/2018-06-01/runtime/invocation/next", {})) return false;
      if (s.next_timeout.count() > 0 && !http_->Buffered()) {
        pollfd p{CurrentSock(), POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(s.next_timeout.count()));
        if (r == 0) {
          if (!Reconnect(s.reconnect_after)) return false;
          continue;
        }
      }
      return http_->Read(ev);
    }
  }

  // Closes the Runtime API connection and opens a new one after `pause`; false when killed.
  bool Reconnect(std::chrono::milliseconds pause) {
    {
      std::lock_guard lock(st_->mu);
      if (st_->sock >= 0) ::close(st_->sock);
      st_->sock = -1;
    }
    if (!Sleep(pause)) return false;
    int fd = Connect();
    if (fd < 0) return false;
    http_ = std::make_unique<MiniHttp>(fd);
    return true;
  }

  void Stray(const MiniHttp::Answer& a) {
    std::lock_guard lock(rec_->mu);
    rec_->stray.push_back({st_->index, a.status, a.body});
  }

  int CurrentSock() {
    std::lock_guard lock(st_->mu);
    return st_->sock;
  }

  int Connect() {
    auto colon = st_->api.rfind(':');
    if (colon == std::string::npos) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(st_->api.c_str() + colon + 1)));
    if (inet_pton(AF_INET, st_->api.substr(0, colon).c_str(), &addr.sin_addr) != 1) return -1;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard lock(st_->mu);
      st_->sock = fd;
      if (st_->kill_requested) return -1;  // End() closes it
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
    return fd;
  }

  // Sleeps unless killed; false when killed.
  template <typename D>
  bool Sleep(D d) {
    std::unique_lock lock(st_->mu);
    st_->cv.wait_for(lock, d, [&] { return st_->kill_requested; });
    return !st_->kill_requested;
  }

  // The "process" ends: an empty `how` means it died of Kill().
  void End(std::string how, bool oom) {
    std::lock_guard lock(st_->mu);
    if (st_->kill_requested) how = "signal 9 (Killed)";
    if (how.empty()) how = "exit status 0";
    st_->how = how;
    st_->oom = oom;
    if (st_->sock >= 0) ::close(st_->sock);
    st_->sock = -1;
    // Output pipes reach EOF before the exit is visible, as with a real process.
    if (st_->out_w >= 0) ::close(st_->out_w);
    if (st_->err_w >= 0) ::close(st_->err_w);
    st_->out_w = st_->err_w = -1;
    st_->ended = true;
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(st_->exit_efd, &one, sizeof one);
    st_->cv.notify_all();
  }

  std::shared_ptr<ProcState> st_;
  std::shared_ptr<Records> rec_;
  std::unique_ptr<MiniHttp> http_;
};

void KillState(ProcState& st) {
  std::lock_guard lock(st.mu);
  if (st.ended) return;
  st.kill_requested = true;
  if (st.sock >= 0) ::shutdown(st.sock, SHUT_RDWR);
  st.cv.notify_all();
}

class FakeProcess : public sandbox::Process {
 public:
  FakeProcess(std::shared_ptr<ProcState> st, std::shared_ptr<Records> rec, int listening, int out_r, int err_r,
              int channel)
      : st_(st), rec_(rec), listening_(listening), out_r_(out_r), err_r_(err_r), channel_(channel) {
    thread_ = std::thread([st, rec] { FakeRuntime(st, rec).Run(); });
  }
  ~FakeProcess() override {
    bool released;
    {
      std::lock_guard lock(st_->mu);
      released = st_->released;
    }
    if (!released) {
      std::lock_guard lock(rec_->mu);
      rec_->destroyed_unreleased++;
    }
    KillState(*st_);  // not Kill(): that records a kill the scheduler asked for
    thread_.join();
    if (listening_ >= 0) ::close(listening_);
    if (channel_ >= 0) ::close(channel_);
    if (out_r_ >= 0) ::close(out_r_);
    if (err_r_ >= 0) ::close(err_r_);
    ::close(st_->exit_efd);
  }
  // On the launcher's thread, just before the launcher destroys it.
  void MarkReleased() {
    std::lock_guard lock(st_->mu);
    st_->released = true;
  }
  int pid() const override { return 100000 + static_cast<int>(st_->index); }
  int exit_fd() const override { return st_->exit_efd; }
  int TakeStdout() override { return std::exchange(out_r_, -1); }
  int TakeStderr() override { return std::exchange(err_r_, -1); }
  int TakeRuntimeApiListener() override { return std::exchange(listening_, -1); }
  int TakeRuntimeChannel() override { return std::exchange(channel_, -1); }
  int uid() const override { return st_->script.uid; }
  bool check_peer_uid() const override { return st_->script.check_peer_uid; }
  void Kill() override {
    {
      std::lock_guard lock(st_->mu);
      st_->kill_called = true;
    }
    KillState(*st_);
  }
  std::string Reap() override {
    std::lock_guard lock(st_->mu);
    return st_->ended ? st_->how : std::string();
  }
  uint64_t PeakMemoryBytes() override { return st_->script.peak_memory_bytes; }
  bool OomKilled() override {
    std::lock_guard lock(st_->mu);
    return st_->ended && st_->oom;
  }

 private:
  std::shared_ptr<ProcState> st_;
  std::shared_ptr<Records> rec_;
  int listening_, out_r_, err_r_, channel_;
  std::thread thread_;
};

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port, as the real launcher makes for
// an instance without its own network namespace.
Result<int> ListenOnLoopback(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Io("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::Io("cannot listen on 127.0.0.1");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// On the worker thread.
void DoLaunch(const std::shared_ptr<Records>& rec, sandbox::LaunchSpec spec, const sandbox::LaunchDone& done) {
  auto st = std::make_shared<ProcState>();
  Status fail;
  {
    std::lock_guard lock(rec->mu);
    fail = rec->fail;
    st->script = rec->script;
  }
  if (!fail.ok()) return done(fail);  // not under the lock: `done` may call back into the launcher
  uint16_t port = 0;
  auto listening = ListenOnLoopback(port);
  if (!listening.ok()) return done(listening.status());
  st->api = "127.0.0.1:" + std::to_string(port);
  st->env = std::move(spec.env);
  st->env.push_back("AWS_LAMBDA_RUNTIME_API=" + st->api);
  st->env.push_back("LAMBDA_TASK_ROOT=" + spec.code_dir);
  st->env.push_back("LAMBDA_RUNTIME_DIR=" + (spec.runtime_dir.empty() ? spec.code_dir : spec.runtime_dir));
  st->exit_efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (st->exit_efd < 0 || (st->script.pipes && (::pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0 ||
                                                ::pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0))) {
    ::close(*listening);
    return done(Status::Io("eventfd or pipe2 failed"));
  }
  int chan[2] = {-1, -1};
  if (st->script.channel) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) != 0) {
      ::close(*listening);
      return done(Status::Io("socketpair failed"));
    }
    st->sock = chan[1];  // the fake's end: Kill() shuts it down, End() closes it
    st->env.push_back("NIMBUS_RUNTIME_FD=4");
  }
  st->out_w = out[1];
  st->err_w = err[1];
  {
    std::lock_guard lock(rec->mu);
    st->index = rec->procs.size();
    rec->procs.push_back(st);
  }
  done(std::unique_ptr<sandbox::Process>(std::make_unique<FakeProcess>(st, rec, *listening, out[0], err[0], chan[0])));
}

// A copy of the process list, so each state's mutex is taken without holding the records' one
// (the fakes take them in the other order).
std::vector<std::shared_ptr<ProcState>> Procs(const Records& rec) {
  std::lock_guard lock(rec.mu);
  return rec.procs;
}

void Work(const std::shared_ptr<Records>& rec) {
  std::unique_lock lock(rec->mu);
  for (;;) {
    rec->work.wait(lock, [&] { return rec->stop || !rec->tasks.empty(); });
    if (rec->tasks.empty()) return;  // stopping, nothing left
    Task t = std::move(rec->tasks.front());
    rec->tasks.pop_front();
    rec->busy = true;
    lock.unlock();
    if (t.release) {
      static_cast<FakeProcess*>(t.release.get())->MarkReleased();
      t.release.reset();  // kills and joins the fake
    } else if (t.done) {
      DoLaunch(rec, std::move(t.spec), t.done);
    }
    t = {};
    lock.lock();
    rec->busy = false;
    if (rec->tasks.empty()) rec->idle.notify_all();
  }
}

}  // namespace

std::string EnvValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& kv : env) {
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      return kv.substr(key.size() + 1);
    }
  }
  return {};
}

bool HasEnv(const std::vector<std::string>& env, std::string_view key) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& kv) {
    return kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=';
  });
}

FakeLauncher::FakeLauncher() : rec_(std::make_shared<Records>()) {
  // The fakes write into pipes whose read end the scheduler may already have closed; in a real
  // process that SIGPIPE would hit the child, here it would hit the test binary.
  std::signal(SIGPIPE, SIG_IGN);
  worker_ = std::thread([rec = rec_] { Work(rec); });
}

FakeLauncher::~FakeLauncher() {
  {
    std::lock_guard lock(rec_->mu);
    rec_->stop = true;
    // Launches nobody will take: dropped without calling `done` (its scheduler is gone).
    rec_->held.clear();
    std::erase_if(rec_->tasks, [](const Task& t) { return !t.release; });
  }
  rec_->work.notify_all();
  worker_.join();
  for (auto& p : Procs(*rec_)) KillState(*p);
}

void FakeLauncher::Launch(sandbox::LaunchSpec spec, sandbox::LaunchDone done) {
  std::lock_guard lock(rec_->mu);
  rec_->specs.push_back(spec);
  Task t{std::move(spec), std::move(done), nullptr};
  if (rec_->hold) {
    rec_->held.push_back(std::move(t));
    return;
  }
  rec_->tasks.push_back(std::move(t));
  rec_->work.notify_all();
}

void FakeLauncher::Release(std::unique_ptr<sandbox::Process> proc) {
  if (!proc) return;
  std::lock_guard lock(rec_->mu);
  rec_->tasks.push_back(Task{{}, {}, std::move(proc)});
  rec_->work.notify_all();
}

void FakeLauncher::Drain() {
  std::unique_lock lock(rec_->mu);
  rec_->idle.wait(lock, [&] { return rec_->tasks.empty() && !rec_->busy; });
}

void FakeLauncher::SetScript(FakeScript script) {
  std::lock_guard lock(rec_->mu);
  rec_->script = std::move(script);
}

void FakeLauncher::FailLaunches(Status st) {
  std::lock_guard lock(rec_->mu);
  rec_->fail = std::move(st);
}

void FakeLauncher::HoldLaunches() {
  std::lock_guard lock(rec_->mu);
  rec_->hold = true;
}

void FakeLauncher::ReleaseLaunches() {
  std::lock_guard lock(rec_->mu);
  rec_->hold = false;
  for (auto& t : rec_->held) rec_->tasks.push_back(std::move(t));
  rec_->held.clear();
  rec_->work.notify_all();
}

size_t FakeLauncher::held_launches() const {
  std::lock_guard lock(rec_->mu);
  return rec_->held.size();
}

size_t FakeLauncher::launches() const {
  std::lock_guard lock(rec_->mu);
  return rec_->procs.size();
}

std::vector<sandbox::LaunchSpec> FakeLauncher::specs() const {
  std::lock_guard lock(rec_->mu);
  return rec_->specs;
}

std::vector<SeenEvent> FakeLauncher::events() const {
  std::lock_guard lock(rec_->mu);
  return rec_->events;
}

std::vector<StrayAnswer> FakeLauncher::stray_answers() const {
  std::lock_guard lock(rec_->mu);
  return rec_->stray;
}

size_t FakeLauncher::destroyed_unreleased() const {
  std::lock_guard lock(rec_->mu);
  return rec_->destroyed_unreleased;
}

static std::shared_ptr<ProcState> ProcAt(const Records& rec, size_t i) {
  std::lock_guard lock(rec.mu);
  return i < rec.procs.size() ? rec.procs[i] : nullptr;
}

std::vector<std::string> FakeLauncher::env(size_t i) const {
  auto p = ProcAt(*rec_, i);
  return p ? p->env : std::vector<std::string>{};
}

std::string FakeLauncher::runtime_api(size_t i) const {
  auto p = ProcAt(*rec_, i);
  return p ? p->api : std::string();
}

bool FakeLauncher::Ended(size_t i) const {
  auto p = ProcAt(*rec_, i);
  if (!p) return false;
  std::lock_guard lock(p->mu);
  return p->ended;
}

bool FakeLauncher::Killed(size_t i) const {
  auto p = ProcAt(*rec_, i);
  if (!p) return false;
  std::lock_guard lock(p->mu);
  return p->kill_called;
}

bool FakeLauncher::Released(size_t i) const {
  auto p = ProcAt(*rec_, i);
  if (!p) return false;
  std::lock_guard lock(p->mu);
  return p->released;
}

size_t FakeLauncher::released() const {
  size_t n = 0;
  for (auto& p : Procs(*rec_)) {
    std::lock_guard lock(p->mu);
    n += p->released;
  }
  return n;
}

bool FakeLauncher::WaitEnded(size_t i, std::chrono::milliseconds limit) const {
  auto p = ProcAt(*rec_, i);
  if (!p) return false;
  std::unique_lock lock(p->mu);
  return p->cv.wait_for(lock, limit, [&] { return p->ended; });
}

}  // namespace nimbus::scheduler::fake
