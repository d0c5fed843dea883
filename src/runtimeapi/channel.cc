#include "runtimeapi/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace nimbus::runtimeapi {
namespace {

namespace asio = boost::asio;

constexpr size_t kInitialBuffer = 64 << 10;
constexpr size_t kMaxFields = 4;

// A section length: decimal digits only, at most kChannelMaxSection.
bool ParseLength(std::string_view s, size_t& out) {
  if (s.empty() || s.size() > 9) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  if (v > kChannelMaxSection) return false;
  out = v;
  return true;
}

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

Channel::Channel(asio::io_context& loop, int fd, std::weak_ptr<RuntimeApiSink> sink, ProtocolError on_error)
    : sd_(loop, fd), sink_(std::move(sink)), on_error_(std::move(on_error)) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

Channel::~Channel() = default;

void Channel::Start() {
  in_.resize(kInitialBuffer);
  WaitReadable();
}

void Channel::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  sd_.close(ec);
  auto fn = std::move(on_close_);
  on_close_ = nullptr;
  if (fn) fn();
}

void Channel::WaitReadable() {
  if (closed_ || reading_) return;
  reading_ = true;
  // Room at the back first: the buffer must not move while the read is pending.
  if (start_ == end_) start_ = end_ = 0;
  if (in_.size() - end_ < 4096 && start_ > 0) {  // move the rest to the front
    std::memmove(in_.data(), in_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (in_.size() - end_ < 4096) in_.resize(in_.size() * 2);
  // A reactor read, not async_wait + read(): Asio reads when epoll reports input, and after a
  // read that drained the socket it queues the next one without trying it first. A warm
  // invocation so costs one read() and nothing else: no read that says EAGAIN, and no epoll_ctl
  // (async_wait re-arms the descriptor with one every time).
  sd_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                        self->reading_ = false;
                        self->OnRead(ec, n);
                      });
}

void Channel::OnRead(const boost::system::error_code& ec, size_t n) {
  if (closed_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    Close();  // end of file (the runtime exited or closed its end) or a socket error
    return;
  }
  end_ += n;
  auto self = shared_from_this();  // a sink call may close and release the channel
  if (DispatchFrames()) WaitReadable();
}

bool Channel::DispatchFrames() {
  while (!closed_ && start_ < end_) {
    const char* base = in_.data() + start_;
    const size_t avail = end_ - start_;
    const size_t scan = std::min(avail, kChannelMaxHeader + 1);
    const char* nl = static_cast<const char*>(std::memchr(base, '\n', scan));
    if (!nl) {
      if (avail > kChannelMaxHeader) {
        Fail("a frame header line is longer than " + std::to_string(kChannelMaxHeader) + " bytes");
        return false;
      }
      return true;  // the rest of the header is on its way
    }
    std::string_view line(base, static_cast<size_t>(nl - base));
    std::string_view fields[kMaxFields];
    size_t count = 0;  // kMaxFields + 1: more fields than any frame has
    for (size_t pos = 0;;) {
      if (count == kMaxFields) {
        count++;
        break;
      }
      size_t sp = line.find(' ', pos);
      fields[count++] = line.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
      if (sp == std::string_view::npos) break;
      pos = sp + 1;
    }
    const std::string_view kind = count > 0 ? fields[0] : std::string_view();
    size_t lens[2] = {0, 0};
    std::string_view id;
    bool ok = false;
    if (kind == "N") {
      ok = count == 1;
    } else if (kind == "R") {
      ok = count == 3 && !fields[1].empty() && ParseLength(fields[2], lens[0]);
      id = fields[1];
    } else if (kind == "F") {
      ok = count == 4 && !fields[1].empty() && ParseLength(fields[2], lens[0]) && ParseLength(fields[3], lens[1]);
      id = fields[1];
    } else if (kind == "I") {
      ok = count == 3 && ParseLength(fields[1], lens[0]) && ParseLength(fields[2], lens[1]);
    }
    if (!ok) {
      std::string shown(line.substr(0, 64));
      for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
      }
      Fail("a frame header is malformed: \"" + shown + "\" (frames are N, R, F and I; see docs/runtime-channel.md)");
      return false;
    }
    const size_t header = line.size() + 1;
    const size_t total = header + lens[0] + lens[1];
    if (avail < total) {
      // Wait for the rest. The buffer grows as bytes arrive (OnReadable), never to a length a
      // header merely declares: a runtime that announces 32 MiB and sends 3 bytes costs 3 bytes.
      return true;
    }
    auto sink = sink_.lock();
    if (!sink) {
      Close();
      return false;
    }
    const char* sections = base + header;
    auto self = shared_from_this();
    start_ += total;  // before the call: the sink may send, and a frame is taken once
    if (kind == "N") {
      sink->OnNext(self);
    } else if (kind == "R") {
      sink->OnResponse(self, id, std::string(sections, lens[0]));
    } else if (kind == "F") {
      std::string_view type(sections, lens[0]);
      sink->OnError(self, id, std::string(sections + lens[0], lens[1]), type);
    } else {
      std::string_view type(sections, lens[0]);
      sink->OnInitError(self, std::string(sections + lens[0], lens[1]), type);
    }
  }
  if (start_ == end_) {
    start_ = end_ = 0;
    if (in_.size() > 4 * kInitialBuffer) {  // a large frame has gone: give its memory back
      in_.resize(kInitialBuffer);
      in_.shrink_to_fit();
    }
  }
  return !closed_;
}

void Channel::Fail(std::string why) {
  if (closed_) return;
  if (on_error_) on_error_(std::move(why));
  Close();
}

void Channel::SendEvent(const NextEvent& ev, std::string body) {
  head_.clear();
  head_ += "E ";
  head_ += ev.request_id;
  head_ += ' ';
  AppendNumber(head_, static_cast<uint64_t>(ev.deadline_ms < 0 ? 0 : ev.deadline_ms));
  for (size_t len : {ev.function_arn.size(), ev.trace_id.size(), ev.client_context.size(),
                     ev.cognito_identity.size(), body.size()}) {
    head_ += ' ';
    AppendNumber(head_, len);
  }
  head_ += '\n';
  head_ += ev.function_arn;
  head_ += ev.trace_id;
  head_ += ev.client_context;
  head_ += ev.cognito_identity;
  Write(head_, body);
}

void Channel::Refuse(boost::beast::http::status status, std::string_view error_type, std::string_view message,
                     bool close) {
  head_.clear();
  head_ += "X ";
  AppendNumber(head_, static_cast<unsigned>(status));
  head_ += ' ';
  AppendNumber(head_, error_type.size());
  head_ += ' ';
  AppendNumber(head_, message.size());
  head_ += '\n';
  head_ += error_type;
  head_ += message;
  Write(head_, {});
  if (close) {
    if (out_.empty()) {
      Close();
    } else {
      close_after_write_ = true;
    }
  }
}

void Channel::Write(std::string_view head, std::string_view body) {
  if (closed_) return;
  if (!out_.empty()) {  // earlier bytes still wait: keep the order
    out_.append(head);
    out_.append(body);
    return;
  }
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = body.empty() ? 1 : 2;
  ssize_t n;
  do {
    n = ::sendmsg(sd_.native_handle(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close();  // the runtime is gone; its exit ends the invocation
      return;
    }
    n = 0;
  }
  const size_t sent = static_cast<size_t>(n);
  if (sent == head.size() + body.size()) return;
  if (sent < head.size()) {
    out_.append(head.substr(sent));
    out_.append(body);
  } else {
    out_.append(body.substr(sent - head.size()));
  }
  WaitWritable();
}

void Channel::WaitWritable() {
  if (closed_ || write_waiting_) return;
  write_waiting_ = true;
  sd_.async_wait(asio::posix::stream_descriptor::wait_write,
                 [self = shared_from_this()](const boost::system::error_code& ec) {
                   self->write_waiting_ = false;
                   if (ec || self->closed_) return;
                   ssize_t n;
                   do {
                     n = ::send(self->sd_.native_handle(), self->out_.data(), self->out_.size(), MSG_NOSIGNAL);
                   } while (n < 0 && errno == EINTR);
                   if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                     self->Close();
                     return;
                   }
                   if (n > 0) self->out_.erase(0, static_cast<size_t>(n));
                   if (!self->out_.empty()) {
                     self->WaitWritable();
                   } else if (self->close_after_write_) {
                     self->Close();
                   }
                 });
}

}  // namespace nimbus::runtimeapi
