// nimbus C++ function SDK: a header-only Lambda Runtime API (2018-06-01) client.
//
// A C++ function is an executable named `bootstrap` (runtime `provided`) whose main() calls
// nimbus::lambda::run(handler). run() fetches events from the per-instance Runtime API named by
// AWS_LAMBDA_RUNTIME_API, calls the handler, and posts its response or error, forever. It needs
// only C++17 and POSIX sockets, so it also works on AWS Lambda's `provided` runtimes.
//
//   #include <nimbus/lambda_runtime.hpp>
//   int main() {
//     nimbus::lambda::run([](const std::string& event, const nimbus::lambda::Context& ctx) {
//       return nimbus::lambda::Response::success("{\"ok\":true}");
//     });
//   }
//
// Every call goes over ONE keep-alive TCP connection with TCP_NODELAY; the request and
// response buffers are reused, so a warm invocation costs two small writes and two reads.
// The HTTP client understands Content-Length, chunked and close-delimited bodies; the nimbus
// daemon always sends Content-Length.
//
// Threading: a Runtime is used by one thread (the one that calls run()); handlers run on it.
#pragma once

#include <arpa/inet.h>
#include <cxxabi.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

namespace nimbus::lambda {

// What the handler learns about the invocation and the function (Lambda's context).
struct Context {
  std::string request_id;        // Lambda-Runtime-Aws-Request-Id
  std::string function_arn;      // Lambda-Runtime-Invoked-Function-Arn
  std::string trace_id;          // Lambda-Runtime-Trace-Id (also exported as _X_AMZN_TRACE_ID)
  std::string client_context;    // Lambda-Runtime-Client-Context, raw JSON, empty when unset
  std::string cognito_identity;  // Lambda-Runtime-Cognito-Identity, raw JSON, empty when unset
  int64_t deadline_ms = 0;       // Unix epoch milliseconds when the invocation times out
  std::string function_name;     // AWS_LAMBDA_FUNCTION_NAME
  std::string function_version;  // AWS_LAMBDA_FUNCTION_VERSION
  int memory_mb = 0;             // AWS_LAMBDA_FUNCTION_MEMORY_SIZE
  std::string log_group_name;    // AWS_LAMBDA_LOG_GROUP_NAME
  std::string log_stream_name;   // AWS_LAMBDA_LOG_STREAM_NAME

  // Milliseconds left before the deadline, never negative.
  int64_t remaining_ms() const {
    using namespace std::chrono;
    int64_t now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    return deadline_ms > now ? deadline_ms - now : 0;
  }
};

// Escapes `s` as the inside of a JSON string (no surrounding quotes).
inline void append_json_escaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
}

// What the handler answers: a success body, or an error Lambda reports to the caller as
// {"errorMessage", "errorType", "stackTrace"} with X-Amz-Function-Error.
class Response {
 public:
  // `body` is sent as is; for JSON results it must be JSON (a JSON string needs its quotes).
  static Response success(std::string body, std::string content_type = "application/json") {
    Response r;
    r.ok_ = true;
    r.body_ = std::move(body);
    r.content_type_ = std::move(content_type);
    return r;
  }

  static Response failure(std::string error_message, std::string error_type) {
    Response r;
    r.ok_ = false;
    r.error_type_ = error_type.empty() ? "Unhandled" : std::move(error_type);
    r.body_.reserve(error_message.size() + r.error_type_.size() + 64);
    r.body_ += "{\"errorMessage\":\"";
    append_json_escaped(r.body_, error_message);
    r.body_ += "\",\"errorType\":\"";
    append_json_escaped(r.body_, r.error_type_);
    r.body_ += "\",\"stackTrace\":[]}";
    r.content_type_ = "application/json";
    return r;
  }

  bool is_success() const { return ok_; }
  const std::string& body() const { return body_; }
  const std::string& content_type() const { return content_type_; }
  const std::string& error_type() const { return error_type_; }  // empty on success

 private:
  bool ok_ = true;
  std::string body_;
  std::string content_type_ = "application/json";
  std::string error_type_;
};

using Handler = std::function<Response(const std::string& event, const Context& context)>;

// One fetched invocation: the event body plus its context.
struct Invocation {
  std::string event;
  Context context;
};

namespace detail {

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string(fallback);
}

inline std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) return name;
  std::string result(out);
  std::free(out);
  return result;
}

// A growable byte buffer that, unlike std::string::resize, never zero-fills the space handed to
// recv(): on the hot path that would be a needless 16+ KB memset per read.
class Buffer {
 public:
  explicit Buffer(size_t capacity) : data_(new char[capacity]), cap_(capacity) {}
  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  std::string_view view() const { return std::string_view(data_.get(), size_); }
  void clear() { size_ = 0; }
  // Room for at least `n` more bytes after size(); returns where they go.
  char* reserve_tail(size_t n) {
    if (cap_ - size_ < n) {
      size_t cap = cap_ * 2 > size_ + n ? cap_ * 2 : size_ + n;
      std::unique_ptr<char[]> grown(new char[cap]);
      std::memcpy(grown.get(), data_.get(), size_);
      data_ = std::move(grown);
      cap_ = cap;
    }
    return data_.get() + size_;
  }
  size_t tail_room() const { return cap_ - size_; }
  void grow(size_t n) { size_ += n; }
  // Drops the first n bytes.
  void consume(size_t n) {
    if (n >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }
  // Removes [from, from + n).
  void erase(size_t from, size_t n) {
    std::memmove(data_.get() + from, data_.get() + from + n, size_ - from - n);
    size_ -= n;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_;
  size_t size_ = 0;
};

inline void flush_logs() {
  // Whatever the handler printed must reach the daemon before the response does, so that it
  // lands in this invocation's log.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

}  // namespace detail

// The Runtime API client. Most functions only need run(); the class is public for functions
// that want to report an init error or drive the loop themselves.
class Runtime {
 public:
  // A parsed HTTP response; body and headers refer into the runtime's reused buffers and stay
  // valid until the next call.
  struct HttpResult {
    int status = 0;
    std::string_view body;
  };

  // Reads AWS_LAMBDA_RUNTIME_API and the function's environment. Does not connect yet.
  Runtime() {
    const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
    address_ = api != nullptr ? api : "";
    function_name_ = detail::env_or("AWS_LAMBDA_FUNCTION_NAME", "");
    function_version_ = detail::env_or("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    memory_mb_ = std::atoi(detail::env_or("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128").c_str());
    log_group_ = detail::env_or("AWS_LAMBDA_LOG_GROUP_NAME", "");
    log_stream_ = detail::env_or("AWS_LAMBDA_LOG_STREAM_NAME", "");
    out_.reserve(1024);
  }
  ~Runtime() { disconnect(); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Empty when the environment is usable, else what is wrong and what to do.
  std::string check_environment() const {
    if (address_.empty()) {
      return "AWS_LAMBDA_RUNTIME_API is not set; this program is started by the nimbus daemon "
             "(runtime: provided), not by hand";
    }
    size_t colon = address_.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address_.size()) {
      return "AWS_LAMBDA_RUNTIME_API must be HOST:PORT, got '" + address_ + "'";
    }
    return {};
  }

  // Blocks until the next event arrives. nullopt when the Runtime API cannot be reached (the
  // reason is in last_error()).
  std::optional<Invocation> next() {
    auto res = request("GET", "/2018-06-01/runtime/invocation/next", {}, {}, {});
    if (!res) return std::nullopt;
    if (res->status != 200) {
      last_error_ = "GET next answered " + std::to_string(res->status) + ": " + std::string(res->body);
      return std::nullopt;
    }
    Invocation inv;
    inv.event.assign(res->body.data(), res->body.size());
    Context& c = inv.context;
    c.request_id = header("Lambda-Runtime-Aws-Request-Id");
    c.function_arn = header("Lambda-Runtime-Invoked-Function-Arn");
    c.trace_id = header("Lambda-Runtime-Trace-Id");
    c.client_context = header("Lambda-Runtime-Client-Context");
    c.cognito_identity = header("Lambda-Runtime-Cognito-Identity");
    c.deadline_ms = std::strtoll(header("Lambda-Runtime-Deadline-Ms").c_str(), nullptr, 10);
    c.function_name = function_name_;
    c.function_version = function_version_;
    c.memory_mb = memory_mb_;
    c.log_group_name = log_group_;
    c.log_stream_name = log_stream_;
    if (!c.trace_id.empty()) {
      ::setenv("_X_AMZN_TRACE_ID", c.trace_id.c_str(), 1);
    } else {
      ::unsetenv("_X_AMZN_TRACE_ID");
    }
    return inv;
  }

  // Posts the handler's outcome for `request_id`. False when the Runtime API is unreachable;
  // a refusal (e.g. 413 for a body over 6 MB) is logged to stderr and returns true, since the
  // runtime can go on serving.
  bool post(const std::string& request_id, const Response& response) {
    detail::flush_logs();
    path_.assign("/2018-06-01/runtime/invocation/");
    path_ += request_id;
    path_ += response.is_success() ? "/response" : "/error";
    auto res = request("POST", path_, response.body(), response.content_type(),
                       response.is_success() ? std::string_view{} : std::string_view(response.error_type()));
    if (!res) return false;
    if (res->status != 202) {
      std::fprintf(stderr, "nimbus runtime: the Runtime API refused the result of %s with %d: %.*s\n",
                   request_id.c_str(), res->status, static_cast<int>(res->body.size()), res->body.data());
    }
    return true;
  }

  // Reports a failure before the first event (bad configuration, missing files); the daemon
  // stops the instance and answers the waiting request with this error. Exit afterwards.
  bool init_error(const std::string& error_message, const std::string& error_type) {
    Response r = Response::failure(error_message, error_type);
    detail::flush_logs();
    return request("POST", "/2018-06-01/runtime/init/error", r.body(), r.content_type(), r.error_type())
        .has_value();
  }

  const std::string& last_error() const { return last_error_; }

  // Value of a header of the last response (case-insensitive name), or "".
  std::string header(std::string_view name) const {
    std::string_view head(in_.data(), head_len_ <= in_.size() ? head_len_ : 0);
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      size_t start = pos + 2;
      size_t end = head.find("\r\n", start);
      std::string_view line = head.substr(start, end == std::string_view::npos ? head.size() - start : end - start);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos && detail::iequals(detail::trim(line.substr(0, colon)), name)) {
        return std::string(detail::trim(line.substr(colon + 1)));
      }
      pos = end;
    }
    return {};
  }

 private:
  // One request/response exchange. A connection that the server closed while idle is reopened
  // once; nullopt (reason in last_error_) when that fails too.
  std::optional<HttpResult> request(std::string_view method, std::string_view path, std::string_view body,
                                    std::string_view content_type, std::string_view error_type) {
    out_.clear();
    out_ += method;
    out_ += ' ';
    out_ += path;
    out_ += " HTTP/1.1\r\nHost: ";
    out_ += address_;
    out_ += "\r\nUser-Agent: nimbus-cpp/1\r\n";
    if (!method.empty() && method[0] == 'P') {
      out_ += "Content-Type: ";
      out_ += content_type.empty() ? std::string_view("application/json") : content_type;
      out_ += "\r\nContent-Length: ";
      out_ += std::to_string(body.size());
      out_ += "\r\n";
    }
    if (!error_type.empty()) {
      out_ += "Lambda-Runtime-Function-Error-Type: ";
      for (char c : error_type) {
        if (c >= 0x20 && c < 0x7f) out_ += c;  // one printable header line
      }
      out_ += "\r\n";
    }
    out_ += "\r\n";
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = false;
      if (fd_ < 0) {
        if (!connect()) return std::nullopt;
        fresh = true;
      }
      if (send_all(body) && read_response()) {
        return HttpResult{status_, std::string_view(in_.data() + body_start_, body_len_)};
      }
      disconnect();
      if (fresh) break;  // a brand-new connection failed: retrying will not help
    }
    return std::nullopt;
  }

  bool connect() {
    std::string problem = check_environment();
    if (!problem.empty()) {
      last_error_ = problem;
      return false;
    }
    size_t colon = address_.rfind(':');
    std::string host = address_.substr(0, colon);
    std::string port = address_.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      last_error_ = "cannot resolve Runtime API address " + address_ + ": " + ::gai_strerror(rc);
      return false;
    }
    int err = 0;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        err = errno;
        continue;
      }
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        // Small request, immediate answer: Nagle plus delayed ACK would add 40 ms.
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd_ = fd;
        break;
      }
      err = errno;
      ::close(fd);
    }
    ::freeaddrinfo(list);
    if (fd_ < 0) {
      last_error_ = "cannot connect to the Runtime API at " + address_ + ": " + std::strerror(err);
      return false;
    }
    in_.clear();
    consumed_ = 0;
    return true;
  }

  void disconnect() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    in_.clear();
    head_len_ = 0;
    consumed_ = 0;
  }

  // Writes the prepared head and `body` with writev, so a request leaves as one segment.
  bool send_all(std::string_view body) {
    iovec iov[2] = {{const_cast<char*>(out_.data()), out_.size()},
                    {const_cast<char*>(body.data()), body.size()}};
    int count = body.empty() ? 1 : 2;
    iovec* cur = iov;
    while (count > 0) {
      ssize_t n = ::writev(fd_, cur, count);
      if (n < 0) {
        if (errno == EINTR) continue;
        last_error_ = std::string("writing to the Runtime API: ") + std::strerror(errno);
        return false;
      }
      size_t left = static_cast<size_t>(n);
      while (count > 0 && left >= cur->iov_len) {
        left -= cur->iov_len;
        ++cur;
        --count;
      }
      if (count > 0) {
        cur->iov_base = static_cast<char*>(cur->iov_base) + left;
        cur->iov_len -= left;
      }
    }
    return true;
  }

  // Appends what the socket has to in_; false at EOF or on error.
  bool fill() {
    size_t room = in_.tail_room() < 16 * 1024 ? 64 * 1024 : in_.tail_room();
    char* dst = in_.reserve_tail(room);
    room = in_.tail_room();
    for (;;) {
      ssize_t n = ::recv(fd_, dst, room, 0);
      if (n > 0) {
        in_.grow(static_cast<size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      last_error_ = n == 0 ? std::string("the Runtime API closed the connection")
                           : std::string("reading from the Runtime API: ") + std::strerror(errno);
      return false;
    }
  }

  // Reads one response into in_: head [0, head_len_), body at body_start_ (chunked bodies are
  // decoded in place). Leftover bytes of a previous response are dropped first.
  bool read_response() {
    in_.consume(consumed_);
    consumed_ = 0;
    head_len_ = 0;
    size_t head_end;
    for (;;) {
      head_end = in_.view().find("\r\n\r\n");
      if (head_end != std::string::npos) break;
      if (in_.size() > 1024 * 1024) {
        last_error_ = "the Runtime API sent a response head over 1 MB";
        return false;
      }
      if (!fill()) return false;
    }
    head_len_ = head_end + 2;  // keep the final CRLF of the last header line
    body_start_ = head_end + 4;
    std::string_view status_line = in_.view().substr(0, in_.view().find("\r\n"));
    size_t sp = status_line.find(' ');
    status_ = sp == std::string_view::npos ? 0 : std::atoi(std::string(status_line.substr(sp + 1, 3)).c_str());
    if (status_ < 100) {
      last_error_ = "malformed status line from the Runtime API";
      return false;
    }
    std::string length = header("Content-Length");
    std::string encoding = header("Transfer-Encoding");
    bool close_after = detail::iequals(header("Connection"), "close");
    if (!length.empty()) {
      body_len_ = static_cast<size_t>(std::strtoull(length.c_str(), nullptr, 10));
      while (in_.size() < body_start_ + body_len_) {
        if (!fill()) return false;
      }
      consumed_ = body_start_ + body_len_;
    } else if (encoding.find("chunked") != std::string::npos) {
      if (!read_chunked()) return false;
    } else if (status_ == 204 || status_ == 304 || status_ < 200) {
      body_len_ = 0;
      consumed_ = body_start_;
    } else {
      while (fill()) {
      }
      body_len_ = in_.size() - body_start_;
      consumed_ = in_.size();
      close_after = true;
    }
    if (close_after) {
      // Keep the parsed response readable; just stop using the socket.
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
    }
    return true;
  }

  static size_t parse_hex(std::string_view s) {
    size_t v = 0;
    for (char c : s) {
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) break;  // chunk extensions (";name=value") or whitespace end the number
      v = v * 16 + static_cast<size_t>(d);
    }
    return v;
  }

  // Decodes a chunked body in place so that it ends up contiguous at body_start_.
  bool read_chunked() {
    size_t write = body_start_;
    size_t read = body_start_;
    for (;;) {
      size_t eol;
      while ((eol = in_.view().find("\r\n", read)) == std::string_view::npos) {
        if (!fill()) return false;
      }
      size_t size = parse_hex(in_.view().substr(read, eol - read));
      read = eol + 2;
      if (size == 0) {
        // Optional trailers, then an empty line.
        for (;;) {
          while ((eol = in_.view().find("\r\n", read)) == std::string_view::npos) {
            if (!fill()) return false;
          }
          bool empty = eol == read;
          read = eol + 2;
          if (empty) break;
        }
        body_len_ = write - body_start_;
        // Leftover bytes after the body belong to nothing (one request in flight); the tail
        // between write and read is garbage from decoding.
        in_.erase(write, read - write);
        consumed_ = write;
        return true;
      }
      while (in_.size() < read + size + 2) {
        if (!fill()) return false;
      }
      std::memmove(in_.data() + write, in_.data() + read, size);
      write += size;
      read += size + 2;
    }
  }

  std::string address_;
  std::string function_name_, function_version_, log_group_, log_stream_;
  int memory_mb_ = 128;
  int fd_ = -1;
  std::string out_;   // request head, reused
  std::string path_;  // request path, reused
  detail::Buffer in_{64 * 1024};  // response bytes, reused
  size_t head_len_ = 0, body_start_ = 0, body_len_ = 0, consumed_ = 0;
  int status_ = 0;
  std::string last_error_;
};

// Runs the handler for every event until the Runtime API goes away. Exceptions thrown by the
// handler become error responses (errorType = the exception's class name, e.g.
// "std::runtime_error"). When the Runtime API cannot be reached the process exits with status
// 1 after a message on stderr: the daemon then replaces the instance.
[[noreturn]] inline void run(const Handler& handler) {
  Runtime runtime;
  std::string problem = runtime.check_environment();
  if (!problem.empty()) {
    std::fprintf(stderr, "nimbus runtime: %s\n", problem.c_str());
    std::exit(2);
  }
  for (;;) {
    std::optional<Invocation> inv = runtime.next();
    if (!inv) {
      std::fprintf(stderr, "nimbus runtime: %s\n", runtime.last_error().c_str());
      std::exit(1);
    }
    std::optional<Response> response;
    try {
      response.emplace(handler(inv->event, inv->context));
    } catch (const std::exception& e) {
      response.emplace(Response::failure(e.what(), detail::demangle(typeid(e).name())));
    } catch (...) {
      response.emplace(Response::failure("the handler threw something that is not a std::exception",
                                         "UnknownException"));
    }
    if (!response->is_success()) {
      std::fprintf(stderr, "ERROR\t%s: %s\n", response->error_type().c_str(), response->body().c_str());
    }
    if (!runtime.post(inv->context.request_id, *response)) {
      std::fprintf(stderr, "nimbus runtime: %s\n", runtime.last_error().c_str());
      std::exit(1);
    }
  }
}

}  // namespace nimbus::lambda
