// The runtime channel's wire contract (docs/runtime-channel.md), tested over a real socketpair:
// the test writes the runtime's frames on one end and reads what the daemon's Channel sends.
#include "runtimeapi/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace nimbus::runtimeapi {
namespace {

using namespace std::chrono_literals;

struct Call {
  std::string kind, id, body, type;
};

class RecordingSink : public RuntimeApiSink {
 public:
  std::vector<Call> calls;
  PeerPtr last_peer;
  std::function<void(const PeerPtr&)> on_next;  // optional reaction to a next call

  void OnNext(const PeerPtr& peer) override {
    calls.push_back({"next", "", "", ""});
    last_peer = peer;
    if (on_next) on_next(peer);
  }
  void OnResponse(const PeerPtr& peer, std::string_view id, std::string&& body) override {
    calls.push_back({"response", std::string(id), std::move(body), ""});
    last_peer = peer;
  }
  void OnError(const PeerPtr& peer, std::string_view id, std::string&& body, std::string_view type) override {
    calls.push_back({"error", std::string(id), std::move(body), std::string(type)});
    last_peer = peer;
  }
  void OnInitError(const PeerPtr& peer, std::string&& body, std::string_view type) override {
    calls.push_back({"init_error", "", std::move(body), std::string(type)});
    last_peer = peer;
  }
};

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    runtime_ = sv[1];
    sink_ = std::make_shared<RecordingSink>();
    channel_ = std::make_shared<Channel>(loop_, sv[0], sink_, [this](std::string why) { errors_.push_back(why); });
    channel_->OnClose([this] { closes_++; });
    channel_->Start();
  }
  void TearDown() override {
    channel_->Close();
    if (runtime_ >= 0) close(runtime_);
  }

  // Runs the loop until `done` holds (or 5 s pass).
  bool RunUntil(const std::function<bool()>& done) {
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      if (loop_.stopped()) loop_.restart();  // it stops whenever it runs out of work
      loop_.run_one_for(10ms);
    }
    return true;
  }
  void Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = write(runtime_, bytes.data(), bytes.size());
      ASSERT_GT(n, 0);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Reads exactly n bytes from the runtime's end (blocking).
  std::string Receive(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = read(runtime_, out.data() + got, n - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }
  std::string ReceiveLine() {
    std::string line;
    char c;
    while (read(runtime_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }
  bool RuntimeSeesEof() {
    char c;
    return read(runtime_, &c, 1) == 0;
  }

  boost::asio::io_context loop_;
  int runtime_ = -1;
  std::shared_ptr<RecordingSink> sink_;
  std::shared_ptr<Channel> channel_;
  std::vector<std::string> errors_;
  int closes_ = 0;
};

TEST_F(ChannelTest, AResponseAndTheNextRequestWrittenTogetherAreTwoCallsInOrder) {
  Send("R 1111-aaaa 18\n{\"statusCode\":200}N\n");
  ASSERT_TRUE(RunUntil([&] { return sink_->calls.size() == 2; }));
  EXPECT_EQ(sink_->calls[0].kind, "response");
  EXPECT_EQ(sink_->calls[0].id, "1111-aaaa");
  EXPECT_EQ(sink_->calls[0].body, "{\"statusCode\":200}");
  EXPECT_EQ(sink_->calls[1].kind, "next");
  EXPECT_TRUE(errors_.empty());
}

TEST_F(ChannelTest, AFrameSplitIntoSingleBytesIsReassembled) {
  const std::string frame = "F abc 15 18\nHandler.Failure{\"errorMessage\":1}";
  for (char c : frame) {
    Send(std::string_view(&c, 1));
    loop_.poll();
  }
  ASSERT_TRUE(RunUntil([&] { return sink_->calls.size() == 1; }));
  EXPECT_EQ(sink_->calls[0].kind, "error");
  EXPECT_EQ(sink_->calls[0].id, "abc");
  EXPECT_EQ(sink_->calls[0].type, "Handler.Failure");
  EXPECT_EQ(sink_->calls[0].body, "{\"errorMessage\":1}");
}

TEST_F(ChannelTest, AnErrorWithoutATypeAndAnInitErrorCarryTheirSections) {
  Send("F abc 0 2\n{}I 9 4\nInit.Failnull");
  ASSERT_TRUE(RunUntil([&] { return sink_->calls.size() == 2; }));
  EXPECT_EQ(sink_->calls[0].type, "");
  EXPECT_EQ(sink_->calls[0].body, "{}");
  EXPECT_EQ(sink_->calls[1].kind, "init_error");
  EXPECT_EQ(sink_->calls[1].type, "Init.Fail");
  EXPECT_EQ(sink_->calls[1].body, "null");
}

TEST_F(ChannelTest, AFiveMebibyteResponseArrivesWhole) {
  std::string body(5 << 20, 'x');
  body.back() = 'y';
  std::thread writer([&] { Send("R big " + std::to_string(body.size()) + "\n" + body + "N\n"); });
  bool ok = RunUntil([&] { return sink_->calls.size() == 2; });
  writer.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(sink_->calls[0].body.size(), body.size());
  EXPECT_EQ(sink_->calls[0].body, body);
  EXPECT_EQ(sink_->calls[1].kind, "next");
}

TEST_F(ChannelTest, AHeaderDeclaringHugeSectionsCostsOnlyTheBytesThatArrive) {
  Send("F x 16777216 16777216\nabc");
  for (int i = 0; i < 20; ++i) loop_.run_one_for(5ms);
  EXPECT_FALSE(channel_->closed());
  EXPECT_TRUE(sink_->calls.empty());
  EXPECT_LE(channel_->buffer_bytes(), 256u << 10) << "the daemon allocated what the header declared";
}

TEST_F(ChannelTest, TheBufferShrinksBackAfterALargeFrame) {
  std::string body(5 << 20, 'x');
  std::thread writer([&] { Send("R big " + std::to_string(body.size()) + "\n" + body); });
  bool ok = RunUntil([&] { return sink_->calls.size() == 1; });
  writer.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(sink_->calls[0].body.size(), body.size());
  EXPECT_LE(channel_->buffer_bytes(), 256u << 10);
}

TEST_F(ChannelTest, AnEventCarriesEveryFieldInOrder) {
  NextEvent ev{"rid-1", 1764412345678, "arn:aws:lambda:local:000000000000:function:f:$LATEST", "Root=1-x",
               "Y2M=", "{\"id\": \"me\"}"};
  channel_->SendEvent(ev, "{\"k\":1}");
  EXPECT_EQ(ReceiveLine(), "E rid-1 1764412345678 52 8 4 12 7");
  EXPECT_EQ(Receive(52 + 8 + 4 + 12 + 7),
            "arn:aws:lambda:local:000000000000:function:f:$LATEST"
            "Root=1-x"
            "Y2M="
            "{\"id\": \"me\"}"
            "{\"k\":1}");
}

TEST_F(ChannelTest, AnEventLargerThanTheSocketBufferIsDeliveredWhole) {
  std::string body(12 << 20, 'e');
  body[body.size() / 2] = 'm';
  NextEvent ev{"rid-2", 1, "a", "t", "", ""};
  std::string got;
  std::atomic<bool> read_all{false};
  std::thread reader([&] {
    std::string line = ReceiveLine();
    if (line == "E rid-2 1 1 1 0 0 " + std::to_string(body.size())) got = Receive(2 + body.size());
    read_all = true;
  });
  channel_->SendEvent(ev, body);
  bool ok = RunUntil([&] { return read_all.load(); });
  reader.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(got, "at" + body);
}

TEST_F(ChannelTest, ARefusalIsAnXFrameAndTheChannelStaysOpen) {
  channel_->Refuse(boost::beast::http::status::bad_request, "InvalidRequestID", "Invalid request ID");
  EXPECT_EQ(ReceiveLine(), "X 400 16 18");
  EXPECT_EQ(Receive(34), "InvalidRequestIDInvalid request ID");
  EXPECT_FALSE(channel_->closed());
  Send("N\n");
  ASSERT_TRUE(RunUntil([&] { return sink_->calls.size() == 1; }));
}

TEST_F(ChannelTest, ARefusalThatClosesEndsTheChannelAfterItIsSent) {
  channel_->Refuse(boost::beast::http::status::gone, "InstanceStopped", "stopped", /*close=*/true);
  EXPECT_TRUE(channel_->closed());
  EXPECT_EQ(closes_, 1);
  EXPECT_EQ(ReceiveLine(), "X 410 15 7");
  EXPECT_EQ(Receive(22), "InstanceStoppedstopped");
  EXPECT_TRUE(RuntimeSeesEof());
}

TEST_F(ChannelTest, AnUnknownFrameIsAProtocolErrorThatClosesTheChannel) {
  Send("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("malformed"), std::string::npos) << errors_[0];
  EXPECT_TRUE(sink_->calls.empty());
  EXPECT_EQ(closes_, 1);
  EXPECT_TRUE(RuntimeSeesEof());
}

TEST_F(ChannelTest, MalformedLengthsAreProtocolErrors) {
  for (const char* bad : {"R id -1\n", "R id 1x\n", "R id\n", "N extra\n", "R id 1 2\n", "I 1\n", "F id 1\n",
                          "R id 16777217\n", "R  3\nabc"}) {
    SCOPED_TRACE(bad);
    TearDown();
    errors_.clear();
    closes_ = 0;
    SetUp();
    Send(bad);
    ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
    EXPECT_EQ(errors_.size(), 1u);
    EXPECT_TRUE(sink_->calls.empty());
  }
}

TEST_F(ChannelTest, AHeaderLineLongerThanTheLimitIsAProtocolError) {
  Send("R " + std::string(300, 'a'));
  ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("longer than 256"), std::string::npos) << errors_[0];
}

TEST_F(ChannelTest, TheRuntimeClosingItsEndClosesTheChannelOnce) {
  close(runtime_);
  runtime_ = -1;
  ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
  EXPECT_EQ(closes_, 1);
  EXPECT_TRUE(errors_.empty());
  channel_->Close();
  EXPECT_EQ(closes_, 1);
}

TEST_F(ChannelTest, TheSinkMayCloseTheChannelFromInsideACall) {
  sink_->on_next = [this](const PeerPtr&) { channel_->Close(); };
  Send("N\nN\n");
  ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
  loop_.poll();
  EXPECT_EQ(sink_->calls.size(), 1u);  // the second frame is not read after the close
  EXPECT_TRUE(RuntimeSeesEof());
}

TEST_F(ChannelTest, AnEventAnsweringANextFromInsideTheCallIsSentAtOnce) {
  sink_->on_next = [](const PeerPtr& peer) { peer->SendEvent(NextEvent{"r", 5, "a", "t", "", ""}, "{}"); };
  Send("N\n");
  ASSERT_TRUE(RunUntil([&] { return sink_->calls.size() == 1; }));
  EXPECT_EQ(ReceiveLine(), "E r 5 1 1 0 0 2");
  EXPECT_EQ(Receive(4), "at{}");
}

TEST_F(ChannelTest, AChannelWhoseSinkIsGoneClosesAtItsNextFrame) {
  sink_.reset();
  Send("N\n");
  ASSERT_TRUE(RunUntil([&] { return channel_->closed(); }));
  EXPECT_TRUE(errors_.empty());
}

}  // namespace
}  // namespace nimbus::runtimeapi
