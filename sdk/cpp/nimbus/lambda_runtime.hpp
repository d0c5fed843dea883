// nimbus C++ function SDK: a header-only client of nimbus's runtime channel and of the Lambda
// Runtime API (2018-06-01).
//
// A C++ function is an executable named `bootstrap` (runtime `provided`) whose main() calls
// nimbus::lambda::run(handler). run() fetches events from the daemon, calls the handler, and
// sends back its response or error, forever. It needs only C++17 and POSIX sockets, so it also
// works on AWS Lambda's `provided` runtimes.
//
//   #include <nimbus/lambda_runtime.hpp>
//   int main() {
//     nimbus::lambda::run([](const std::string& event, const nimbus::lambda::Context& ctx) {
//       return nimbus::lambda::Response::success("{\"ok\":true}");
//     });
//   }
//
// Two transports carry the same invocations:
// - the runtime channel (docs/runtime-channel.md), when NIMBUS_RUNTIME_FD names an inherited
//   socket, as under nimbus: the daemon writes an `E` frame, the SDK answers with its `R` (or
//   `F`) frame and the next `N` in ONE sendmsg, and nothing is acknowledged, so a warm
//   invocation costs one read and one write;
// - otherwise the HTTP Runtime API named by AWS_LAMBDA_RUNTIME_API, as on Lambda, over ONE
//   keep-alive TCP connection with TCP_NODELAY: two small writes and two reads per invocation.
//   The HTTP client understands Content-Length, chunked and close-delimited bodies; the nimbus
//   daemon always sends Content-Length.
// Either way the buffers are reused and reads block (no polling).
//
// Threading: a Runtime is used by one thread (the one that calls run()); handlers run on it.
#pragma once

#include <arpa/inet.h>
#include <cxxabi.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
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
#include <vector>

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

// The runtime channel's fd when NIMBUS_RUNTIME_FD names an open socket, else -1 (use HTTP).
inline int channel_fd_from_env() {
  const char* value = std::getenv("NIMBUS_RUNTIME_FD");
  if (value == nullptr || *value < '0' || *value > '9') return -1;
  const char* end = value + std::strlen(value);
  int fd = -1;
  auto [stop, ec] = std::from_chars(value, end, fd);
  if (ec != std::errc() || stop != end || fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return -1;
  return fd;
}

// A frame header's decimal field, or -1 when it is not one (from_chars alone would stop at the
// first non-digit and take a prefix).
inline int64_t parse_frame_number(std::string_view s) {
  int64_t v = -1;
  if (s.empty() || s.size() > 18 || s[0] < '0' || s[0] > '9') return -1;
  auto [stop, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || stop != s.data() + s.size()) return -1;
  return v;
}

inline void append_number(std::string& out, size_t n) {
  char digits[24];
  auto [stop, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, static_cast<size_t>(stop - digits));
}

// The _X_AMZN_TRACE_ID environment entry, set for each invocation without setenv(): glibc's
// setenv() keeps every value it was ever given (in a search tree it walks on each call), so one
// call per invocation, each with a new trace id, would grow the instance's memory and the cost
// of the call without bound. This entry is one buffer rewritten in place and put in the
// environment with putenv() each time (cheap, and right again after a handler unset, replaced
// or cleared it); a longer trace id than it holds gets a buffer twice the size (the old one is
// kept, since a getenv() result may still point into it). Not thread-safe, like setenv().
class TraceIdEntry {
 public:
  void set(const std::string& value) {
    const size_t need = kPrefix.size() + value.size() + 1;
    if (need > cap_) {
      size_t cap = cap_ == 0 ? 256 : cap_;
      while (cap < need) cap *= 2;
      auto fresh = std::make_unique<char[]>(cap);
      std::memcpy(fresh.get(), kPrefix.data(), kPrefix.size());
      if (buf_) old_.push_back(std::move(buf_));
      buf_ = std::move(fresh);
      cap_ = cap;
    }
    std::memcpy(buf_.get() + kPrefix.size(), value.data(), value.size());
    buf_[kPrefix.size() + value.size()] = '\0';
    ::putenv(buf_.get());
  }
  void clear() { ::unsetenv("_X_AMZN_TRACE_ID"); }

 private:
  static constexpr std::string_view kPrefix = "_X_AMZN_TRACE_ID=";
  std::unique_ptr<char[]> buf_;
  std::vector<std::unique_ptr<char[]>> old_;
  size_t cap_ = 0;
};

inline void flush_logs() {
  // Whatever the handler printed must reach the daemon before the response does, so that it
  // lands in this invocation's log.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

}  // namespace detail

// The client of the daemon: the runtime channel when the environment names one, else the HTTP
// Runtime API. Most functions only need run(); the class is public for functions that want to
// report an init error or drive the loop themselves.
class Runtime {
 public:
  // A parsed HTTP response; body and headers refer into the runtime's reused buffers and stay
  // valid until the next call.
  struct HttpResult {
    int status = 0;
    std::string_view body;
  };

  // Reads NIMBUS_RUNTIME_FD, AWS_LAMBDA_RUNTIME_API and the function's environment. Does not
  // connect to the Runtime API yet.
  Runtime() {
    const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
    address_ = api != nullptr ? api : "";
    int channel = detail::channel_fd_from_env();
    if (channel >= 0) {
      // Programs the handler starts must not inherit the channel.
      ::fcntl(channel, F_SETFD, FD_CLOEXEC);
      fd_ = channel;
      channel_ = true;
    }
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
    if (channel_) return {};
    if (address_.empty()) {
      return "AWS_LAMBDA_RUNTIME_API is not set; this program is started by the nimbus daemon "
             "(runtime: provided), not by hand";
    }
    sockaddr_storage addr{};
    if (parse_address(address_, addr) == 0) {
      return "AWS_LAMBDA_RUNTIME_API must be a numeric IP:PORT (as 127.0.0.1:9001), got '" + address_ + "'";
    }
    return {};
  }

  // Parses a numeric "IPv4:PORT" or "[IPv6]:PORT" (Lambda's and nimbus's are 127.0.0.1:PORT)
  // into `addr`; returns its length, or 0 when `address` is not one. Done here rather than by
  // getaddrinfo, so a statically linked bootstrap (the fastest to start) needs no NSS.
  static socklen_t parse_address(const std::string& address, sockaddr_storage& addr) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return 0;
    std::string host = address.substr(0, colon);
    std::string_view port_text = std::string_view(address).substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) return 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(port));
      return sizeof *v4;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(port));
      return sizeof *v6;
    }
    return 0;
  }

  // True when this client uses the runtime channel rather than the HTTP Runtime API.
  bool uses_channel() const { return channel_; }

  // True once the daemon has stopped the instance: it closed the runtime channel or refused with
  // 410. next() then returns nullopt, and run() exits with status 0.
  bool stopped() const { return stopped_; }

  // Blocks until the next event arrives. nullopt when the daemon cannot be reached or has
  // stopped the instance (stopped(); the reason is in last_error()).
  std::optional<Invocation> next() {
    if (channel_) return next_from_channel();
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
    finish_context(c);
    return inv;
  }

  // Sends the handler's outcome for `request_id`. False when the daemon is unreachable; a
  // refusal (e.g. 413 for a body over 6 MB) is logged to stderr and returns true, since the
  // runtime can go on serving. Over the channel the outcome leaves together with the request
  // for the next event, and a refusal arrives (and is logged) in the next call to next().
  bool post(const std::string& request_id, const Response& response) {
    detail::flush_logs();
    if (channel_) {
      out_.clear();
      if (response.is_success()) {
        out_ += "R ";
        out_ += request_id;
      } else {
        out_ += "F ";
        out_ += request_id;
        out_ += ' ';
        detail::append_number(out_, printable_length(response.error_type()));
      }
      out_ += ' ';
      detail::append_number(out_, response.body().size());
      out_ += '\n';
      if (!response.is_success()) append_printable(out_, response.error_type());
      owe_next_ = false;
      return send_all(response.body(), "N\n");
    }
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
    if (channel_) {
      out_.assign("I ");
      detail::append_number(out_, printable_length(r.error_type()));
      out_ += ' ';
      detail::append_number(out_, r.body().size());
      out_ += '\n';
      append_printable(out_, r.error_type());
      return send_all(r.body(), {});
    }
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
  static constexpr size_t kMaxHeaderLine = 256;        // bytes before a frame header's '\n'
  static constexpr int64_t kMaxSection = 16 << 20;     // bytes in one section of a frame

  std::string peer() const { return channel_ ? "the runtime channel" : "the Runtime API"; }

  // Error types travel as an HTTP header value, which must be one printable line; the channel
  // carries the same bytes.
  static bool printable(char c) { return c >= 0x20 && c < 0x7f; }
  static size_t printable_length(std::string_view s) {
    size_t n = 0;
    for (char c : s) n += printable(c) ? 1 : 0;
    return n;
  }
  static void append_printable(std::string& out, std::string_view s) {
    for (char c : s) {
      if (printable(c)) out += c;
    }
  }

  // The per-function fields of a context, and the trace id in the environment.
  void finish_context(Context& c) {
    c.function_name = function_name_;
    c.function_version = function_version_;
    c.memory_mb = memory_mb_;
    c.log_group_name = log_group_;
    c.log_stream_name = log_stream_;
    if (!c.trace_id.empty()) {
      trace_env_.set(c.trace_id);
    } else {
      trace_env_.clear();
    }
  }

  void protocol_error(const std::string& what) {
    last_error_ = "protocol error on the runtime channel: " + what;
  }

  // Reads frames from the channel until an event arrives; refusals are logged on the way
  // (docs/runtime-channel.md). The first call first asks for an event with a lone N; later
  // ones do not, since post() sent the N with the result. Bytes past the event stay in in_ for
  // the next call, so frames may arrive split over reads or several in one read.
  std::optional<Invocation> next_from_channel() {
    if (owe_next_) {
      out_.assign("N\n");
      if (!send_all({}, {})) return std::nullopt;
    }
    // Called again without a post() in between, next() asks again (and the daemon refuses).
    owe_next_ = true;
    for (;;) {
      in_.consume(consumed_);
      consumed_ = 0;
      size_t newline;
      for (;;) {
        newline = in_.view().substr(0, kMaxHeaderLine + 1).find('\n');
        if (newline != std::string_view::npos) break;
        if (in_.size() > kMaxHeaderLine) {
          protocol_error("a header line over " + std::to_string(kMaxHeaderLine) + " bytes");
          return std::nullopt;
        }
        if (!fill()) return std::nullopt;
      }
      // Split the header into at most 8 fields; a ninth makes the frame malformed.
      std::string_view line = in_.view().substr(0, newline);
      std::string_view fields[9];
      size_t count = 0;
      for (size_t at = 0; count < 9;) {
        size_t space = line.find(' ', at);
        fields[count++] = line.substr(at, space == std::string_view::npos ? std::string_view::npos : space - at);
        if (space == std::string_view::npos) break;
        at = space + 1;
      }
      bool event = fields[0] == "E" && count == 8 && !fields[1].empty();
      bool refusal = fields[0] == "X" && count == 4;
      int64_t lengths[5];
      size_t sections = event ? 5 : refusal ? 2 : 0;
      size_t total = newline + 1;
      bool ok = event || refusal;
      for (size_t i = 0; ok && i < sections; ++i) {
        lengths[i] = detail::parse_frame_number(fields[count - sections + i]);
        ok = lengths[i] >= 0 && lengths[i] <= kMaxSection;
        total += static_cast<size_t>(lengths[i]);
      }
      int64_t number = ok ? detail::parse_frame_number(fields[event ? 2 : 1]) : -1;
      if (!ok || number < 0) {
        protocol_error("unexpected frame '" + std::string(line) + "'");
        return std::nullopt;
      }
      // Filling may move in_: keep where the request id is, not a view of it.
      size_t id_at = static_cast<size_t>(fields[1].data() - in_.data());
      size_t id_size = fields[1].size();
      if (in_.size() < total) {
        in_.reserve_tail(total - in_.size());  // one allocation for a large frame
        while (in_.size() < total) {
          if (!fill()) return std::nullopt;
        }
      }
      consumed_ = total;
      const char* at = in_.data() + newline + 1;
      auto section = [&at, &lengths](size_t i) {
        std::string_view v(at, static_cast<size_t>(lengths[i]));
        at += lengths[i];
        return v;
      };
      if (refusal) {
        std::string_view type = section(0);
        std::string_view message = section(1);
        std::fprintf(stderr, "nimbus runtime: refused (%lld %.*s): %.*s\n", static_cast<long long>(number),
                     static_cast<int>(type.size()), type.data(), static_cast<int>(message.size()), message.data());
        if (number == 410) {
          stopped_ = true;
          last_error_ = "the daemon stopped the instance";
          return std::nullopt;
        }
        continue;
      }
      Invocation inv;
      Context& c = inv.context;
      c.request_id.assign(in_.data() + id_at, id_size);
      c.deadline_ms = number;
      std::string_view arn = section(0);
      c.function_arn.assign(arn.data(), arn.size());
      std::string_view trace = section(1);
      c.trace_id.assign(trace.data(), trace.size());
      std::string_view client_context = section(2);
      c.client_context.assign(client_context.data(), client_context.size());
      std::string_view identity = section(3);
      c.cognito_identity.assign(identity.data(), identity.size());
      std::string_view body = section(4);
      inv.event.assign(body.data(), body.size());
      finish_context(c);
      return inv;
    }
  }

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
      append_printable(out_, error_type);
      out_ += "\r\n";
    }
    out_ += "\r\n";
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = false;
      if (fd_ < 0) {
        if (!connect()) return std::nullopt;
        fresh = true;
      }
      if (send_all(body, {}) && read_response()) {
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
    sockaddr_storage addr{};
    socklen_t addr_len = parse_address(address_, addr);  // check_environment() has vouched for it
    int err = 0;
    int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
    } else if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) == 0) {
      // Small request, immediate answer: Nagle plus delayed ACK would add 40 ms.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd_ = fd;
    } else {
      err = errno;
      ::close(fd);
    }
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

  // Writes the prepared head out_, `body` and `tail` with one gathered sendmsg, so a request
  // (or a frame and the N after it) leaves in one write; a partial write of a large body is
  // continued. MSG_NOSIGNAL: a daemon that went away is an error to report, not a SIGPIPE.
  bool send_all(std::string_view body, std::string_view tail) {
    iovec iov[3] = {{const_cast<char*>(out_.data()), out_.size()},
                    {const_cast<char*>(body.data()), body.size()},
                    {const_cast<char*>(tail.data()), tail.size()}};
    int count = tail.empty() ? (body.empty() ? 1 : 2) : 3;
    iovec* cur = iov;
    while (count > 0) {
      msghdr msg{};
      msg.msg_iov = cur;
      msg.msg_iovlen = static_cast<size_t>(count);
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        last_error_ = "writing to " + peer() + ": " + std::strerror(errno);
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
      if (channel_) {
        // Wait in poll() for input only, then read. A thread blocked in recv() on a Unix
        // socket is also woken each time the daemon consumes what this side wrote (the
        // socket's write space wakes every sleeper on it); poll() filters that wake-up out,
        // which saves a needless switch into this process on every invocation.
        struct pollfd p = {fd_, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0 && errno == EINTR) continue;
      }
      ssize_t n = ::recv(fd_, dst, room, 0);
      if (n > 0) {
        in_.grow(static_cast<size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 && channel_) {
        stopped_ = true;  // the daemon closes the channel when it stops the instance
        last_error_ = "the daemon closed the runtime channel";
      } else {
        last_error_ = n == 0 ? std::string("the Runtime API closed the connection")
                             : "reading from " + peer() + ": " + std::strerror(errno);
      }
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
  bool channel_ = false;   // fd_ is the runtime channel (NIMBUS_RUNTIME_FD)
  bool owe_next_ = true;   // the channel has not yet been asked for the next event
  bool stopped_ = false;   // the daemon closed the channel or refused with 410
  std::string function_name_, function_version_, log_group_, log_stream_;
  int memory_mb_ = 128;
  int fd_ = -1;
  std::string out_;   // request head, reused
  std::string path_;  // request path, reused
  detail::Buffer in_{64 * 1024};  // response bytes, reused
  size_t head_len_ = 0, body_start_ = 0, body_len_ = 0, consumed_ = 0;
  int status_ = 0;
  std::string last_error_;
  detail::TraceIdEntry trace_env_;
};

// Runs the handler for every event until the daemon stops the instance (status 0) or cannot be
// reached (status 1, after a message on stderr: the daemon then replaces the instance).
// Exceptions thrown by the handler become error responses (errorType = the exception's class
// name, e.g. "std::runtime_error").
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
      if (runtime.stopped()) std::exit(0);
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
