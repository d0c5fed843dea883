// The runtime channel (docs/runtime-channel.md): the daemon's end of the private Unix stream
// socket an instance inherits. nimbus's own runtimes send the calls of the Runtime API on it as
// compact frames (a response and the next request in one write, no acknowledgement); the
// channel parses them into RuntimeApiSink calls and is the RuntimePeer that answers them (the
// event, a refusal). It knows nothing about scheduling.
//
// Threading: a Channel lives on one loop (the instance's): it is started, read, written and
// closed only there. The sink is called on that loop and may close the channel from inside a
// call; the channel keeps itself alive until the call returns.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "runtimeapi/runtime_api.h"

namespace nimbus::runtimeapi {

// Longest header line and largest section a frame may carry.
inline constexpr size_t kChannelMaxHeader = 256;
inline constexpr size_t kChannelMaxSection = 16 << 20;

class Channel final : public RuntimePeer, public std::enable_shared_from_this<Channel> {
 public:
  // Called with a one-line description when the runtime breaks the protocol; the channel is
  // closed right after.
  using ProtocolError = std::function<void(std::string why)>;

  // Takes ownership of `fd`, a connected stream socket (made non-blocking here).
  Channel(boost::asio::io_context& loop, int fd, std::weak_ptr<RuntimeApiSink> sink, ProtocolError on_error);
  ~Channel() override;

  // Starts reading frames.
  void Start();
  // Closes the socket (the runtime reads end-of-file) and calls the OnClose callback. Idempotent.
  void Close();

  // Bytes held for frames not yet complete, with the buffer's spare room (for tests).
  size_t buffer_bytes() const { return in_.capacity(); }

  // RuntimePeer:
  bool closed() const override { return closed_; }
  void OnClose(std::function<void()> fn) override { on_close_ = std::move(fn); }
  void SendEvent(const NextEvent& ev, std::string body) override;
  void Accept() override {}
  void Refuse(boost::beast::http::status status, std::string_view error_type, std::string_view message,
              bool close = false) override;

 private:
  void WaitReadable();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Dispatches every complete frame in the buffer; false when the channel closed meanwhile.
  bool DispatchFrames();
  // Reports a protocol error and closes.
  void Fail(std::string why);
  // Writes `head` then `body` (gathered), queueing what the socket does not take now.
  void Write(std::string_view head, std::string_view body);
  void WaitWritable();

  boost::asio::posix::stream_descriptor sd_;
  std::weak_ptr<RuntimeApiSink> sink_;
  ProtocolError on_error_;
  std::function<void()> on_close_;
  bool closed_ = false;
  bool reading_ = false;
  bool close_after_write_ = false;

  std::string in_;         // read buffer: [start_, end_) holds bytes not yet parsed
  size_t start_ = 0, end_ = 0;
  std::string head_;       // reused for each outgoing frame's header and small sections
  std::string out_;        // bytes the socket did not take yet, in order
  bool write_waiting_ = false;
};

}  // namespace nimbus::runtimeapi
