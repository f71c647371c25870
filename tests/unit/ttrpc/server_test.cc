// The server against raw frames on a socketpair: every bad-input case of containerd-shim-v2.md
// section 2.7, the in-flight limit, call context, and how connections end.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "test_util.h"
#include "ttrpc/server.h"

namespace cocoon::ttrpc {
namespace {

using namespace std::chrono_literals;
using test_util::Bytes;
using test_util::RawPeer;
using test_util::RequestFrame;
using test_util::ServedPair;

// The exact bytes of an error response, built by hand (one-byte varints) so that the check does
// not lean on the encoder under test.
std::string ExpectedError(uint32_t stream_id, int code, const std::string& msg) {
  std::string status = Bytes({0x08, code, 0x12, static_cast<int>(msg.size())}) + msg;
  std::string body = Bytes({0x0a, static_cast<int>(status.size())}) + status;
  char header[kHeaderSize];
  EncodeHeader({static_cast<uint32_t>(body.size()), stream_id, 2, 0}, header);
  return std::string(header, kHeaderSize) + body;
}

// One-shot gate a handler can wait on.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    server_.RegisterRaw("test.Svc", "Echo",
                        [](const CallContext&, const std::string& p) -> Result<std::string> {
                          return "echo:" + p;
                        });
  }
  // Sends a request on `stream_id` and expects the echo back: the connection still works.
  void ExpectEchoWorks(RawPeer& peer, uint32_t stream_id) {
    peer.Send(RequestFrame(stream_id, "test.Svc", "Echo", "ping"));
    std::optional<Frame> f = peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->header.stream_id, stream_id);
    ::ttrpc::Response resp = test_util::ParseResponse(*f);
    EXPECT_FALSE(resp.has_status());
    EXPECT_EQ(resp.payload(), "echo:ping");
  }

  Server server_;
};

TEST_F(ServerTest, EvenStreamIdIsRejectedAndConnectionKept) {
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(2, "test.Svc", "Echo", "x"));
  std::string want = ExpectedError(2, 3, "StreamID must be odd for client initiated streams");
  EXPECT_EQ(pair.peer().Read(want.size()), want);
  ExpectEchoWorks(pair.peer(), 1);
}

TEST_F(ServerTest, UnparseableRequestIsInvalidArgument) {
  ServedPair pair(server_);
  pair.peer().Send(EncodeFrame(1, FrameType::kRequest, Bytes({0xff, 0xff, 0xff})));
  std::string want = ExpectedError(1, 3, "unmarshal request error");
  EXPECT_EQ(pair.peer().Read(want.size()), want);
  ExpectEchoWorks(pair.peer(), 3);
}

TEST_F(ServerTest, UnknownServiceAndMethodAreUnimplemented) {
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(1, "nope.Svc", "Echo", ""));
  std::string want = ExpectedError(1, 12, "service nope.Svc");
  EXPECT_EQ(pair.peer().Read(want.size()), want);
  pair.peer().Send(RequestFrame(3, "test.Svc", "Nope", ""));
  want = ExpectedError(3, 12, "method Nope");
  EXPECT_EQ(pair.peer().Read(want.size()), want);
  ExpectEchoWorks(pair.peer(), 5);
}

TEST_F(ServerTest, NonRequestFramesAreIgnored) {
  ServedPair pair(server_);
  pair.peer().Send(EncodeFrame(1, FrameType::kResponse, "whatever"));
  pair.peer().Send(EncodeFrame(3, FrameType::kData, Bytes({0xff})));
  pair.peer().Send(EncodeFrame(5, static_cast<FrameType>(0), ""));
  pair.peer().Send(EncodeFrame(7, static_cast<FrameType>(9), "zz"));
  // The first answer is to this request: nothing was sent for the frames above.
  ExpectEchoWorks(pair.peer(), 9);
}

TEST_F(ServerTest, OversizedFrameIsDiscardedAndAnswered) {
  ServedPair pair(server_);
  const uint32_t len = kMaxMessageSize + 1;
  char header[kHeaderSize];
  EncodeHeader({len, 11, 1, 0}, header);
  pair.peer().Send(std::string_view(header, kHeaderSize));
  pair.peer().Send(std::string(len, 'z'));  // the server must read this to let the write finish
  std::string want =
      ExpectedError(11, 8, "message length 4194305 exceeds maximum message size of 4194304");
  EXPECT_EQ(pair.peer().Read(want.size()), want);
  ExpectEchoWorks(pair.peer(), 13);
}

TEST_F(ServerTest, ResponseOverTheLimitBecomesResourceExhausted) {
  server_.RegisterRaw("test.Svc", "Huge", [](const CallContext&, const std::string&) {
    return Result<std::string>(std::string(kMaxMessageSize, 'h'));
  });
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(1, "test.Svc", "Huge", ""));
  std::optional<Frame> f = pair.peer().ReadFrame();
  ASSERT_TRUE(f.has_value());
  ::ttrpc::Response resp = test_util::ParseResponse(*f);
  EXPECT_EQ(resp.status().code(), 8);
  EXPECT_TRUE(resp.payload().empty());
  ExpectEchoWorks(pair.peer(), 3);
}

TEST_F(ServerTest, HandlerErrorsAndExceptions) {
  server_.RegisterRaw("test.Svc", "Throw",
                      [](const CallContext&, const std::string&) -> Result<std::string> {
                        throw std::runtime_error("boom");
                      });
  server_.Register<::ttrpc::KeyValue, ::ttrpc::KeyValue>(
      "test.Svc", "Typed", [](const CallContext&, const ::ttrpc::KeyValue& kv) {
        ::ttrpc::KeyValue out;
        out.set_key(kv.value());
        return Result<::ttrpc::KeyValue>(out);
      });
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(1, "test.Svc", "Throw", ""));
  std::optional<Frame> f = pair.peer().ReadFrame();
  ASSERT_TRUE(f.has_value());
  ::ttrpc::Response resp = test_util::ParseResponse(*f);
  EXPECT_EQ(resp.status().code(), 13);
  EXPECT_EQ(resp.status().message(), "test.Svc/Throw failed: boom");

  // A payload that does not parse as the method's type is INTERNAL, as in Go.
  pair.peer().Send(RequestFrame(3, "test.Svc", "Typed", Bytes({0xff, 0xff})));
  std::string want = ExpectedError(3, 13, "failed to decode request for Typed");
  EXPECT_EQ(pair.peer().Read(want.size()), want);

  ::ttrpc::KeyValue kv;
  kv.set_value("v");
  pair.peer().Send(RequestFrame(5, "test.Svc", "Typed", kv.SerializeAsString()));
  f = pair.peer().ReadFrame();
  ASSERT_TRUE(f.has_value());
  ::ttrpc::KeyValue out;
  ASSERT_TRUE(out.ParseFromString(test_util::ParseResponse(*f).payload()));
  EXPECT_EQ(out.key(), "v");
}

TEST_F(ServerTest, ContextCarriesDeadlineAndMetadata) {
  std::mutex mu;
  std::vector<CallContext> seen;
  server_.RegisterRaw("test.Svc", "Ctx", [&](const CallContext& ctx, const std::string&) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(ctx);
    return Result<std::string>(std::string());
  });
  ServedPair pair(server_);
  ::ttrpc::Request req;
  req.set_service("test.Svc");
  req.set_method("Ctx");
  req.set_timeout_nano(2'000'000'000);
  auto* kv = req.add_metadata();
  kv->set_key("containerd-namespace-ttrpc");
  kv->set_value("k8s.io");
  kv = req.add_metadata();
  kv->set_key("containerd-namespace-ttrpc");
  kv->set_value("again");
  auto before = std::chrono::steady_clock::now();
  pair.peer().Send(EncodeFrame(1, FrameType::kRequest, req.SerializeAsString()));
  std::optional<Frame> f = pair.peer().ReadFrame();
  ASSERT_TRUE(f.has_value());
  // An empty success is a zero-length Response.
  EXPECT_EQ(f->header.length, 0u);
  pair.peer().Send(RequestFrame(3, "test.Svc", "Ctx", ""));
  ASSERT_TRUE(pair.peer().ReadFrame().has_value());

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_TRUE(seen[0].deadline.has_value());
  EXPECT_GE(*seen[0].deadline, before + 2s);
  EXPECT_LE(*seen[0].deadline, std::chrono::steady_clock::now() + 2s);
  ASSERT_EQ(seen[0].metadata.size(), 2u);
  EXPECT_EQ(seen[0].metadata[0].second, "k8s.io");
  EXPECT_EQ(seen[0].metadata[1].second, "again");
  EXPECT_EQ(seen[0].service, "test.Svc");
  EXPECT_EQ(seen[0].method, "Ctx");
  EXPECT_FALSE(seen[1].deadline.has_value());
}

TEST_F(ServerTest, InFlightLimitAnswersResourceExhausted) {
  Gate gate;
  std::atomic<int> started{0};
  server_.RegisterRaw("test.Svc", "Block", [&](const CallContext&, const std::string& p) {
    started.fetch_add(1);
    gate.Wait();
    return Result<std::string>(p);
  });
  ServedPair pair(server_);
  std::string burst;
  for (int i = 0; i <= Server::kMaxInFlight; ++i) {
    burst += RequestFrame(2 * i + 1, "test.Svc", "Block", std::to_string(i));
  }
  pair.peer().Send(burst);
  const uint32_t last = 2 * Server::kMaxInFlight + 1;
  std::optional<Frame> f = pair.peer().ReadFrame();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.stream_id, last);
  ::ttrpc::Response resp = test_util::ParseResponse(*f);
  EXPECT_EQ(resp.status().code(), 8);
  EXPECT_NE(resp.status().message().find("256"), std::string::npos);
  gate.Open();
  std::set<uint32_t> answered;
  for (int i = 0; i < Server::kMaxInFlight; ++i) {
    f = pair.peer().ReadFrame();
    ASSERT_TRUE(f.has_value());
    resp = test_util::ParseResponse(*f);
    EXPECT_FALSE(resp.has_status());
    EXPECT_EQ(resp.payload(), std::to_string((f->header.stream_id - 1) / 2));
    answered.insert(f->header.stream_id);
  }
  EXPECT_EQ(answered.size(), static_cast<size_t>(Server::kMaxInFlight));
  EXPECT_EQ(started.load(), Server::kMaxInFlight);
  // Capacity is back once the handlers are done.
  ExpectEchoWorks(pair.peer(), last + 2);
}

TEST_F(ServerTest, CleanCloseByPeerReturnsOk) {
  ServedPair pair(server_);
  ExpectEchoWorks(pair.peer(), 1);
  pair.peer().Close();
  ASSERT_TRUE(pair.WaitServed());
  EXPECT_TRUE(pair.result().ok());
}

TEST_F(ServerTest, PeerClosingMidHeaderDropsTheConnection) {
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(1, "test.Svc", "Echo", "x").substr(0, 5));
  pair.peer().Close();
  ASSERT_TRUE(pair.WaitServed());
  ASSERT_FALSE(pair.result().ok());
  EXPECT_EQ(pair.result().error().code(), Code::kDataLoss);
}

TEST_F(ServerTest, PeerClosingMidFrameDropsTheConnection) {
  ServedPair pair(server_);
  std::string frame = RequestFrame(1, "test.Svc", "Echo", "payload");
  pair.peer().Send(frame.substr(0, frame.size() - 3));
  pair.peer().Close();
  ASSERT_TRUE(pair.WaitServed());
  ASSERT_FALSE(pair.result().ok());
  EXPECT_EQ(pair.result().error().code(), Code::kDataLoss);
}

TEST_F(ServerTest, HandlerOutlivingItsConnectionIsDiscardedSafely) {
  Gate entered;
  Gate release;
  std::atomic<bool> finished{false};
  server_.RegisterRaw("test.Svc", "Slow", [&](const CallContext&, const std::string&) {
    entered.Open();
    release.Wait();
    finished = true;
    return Result<std::string>(std::string(100000, 'r'));
  });
  ServedPair pair(server_);
  pair.peer().Send(RequestFrame(1, "test.Svc", "Slow", ""));
  entered.Wait();
  pair.peer().Close();
  // The connection ends while the handler still runs; its response has nowhere to go.
  ASSERT_TRUE(pair.WaitServed());
  EXPECT_TRUE(pair.result().ok());
  release.Open();
  EXPECT_TRUE(pair.Stop().ok());  // Shutdown joins the handler
  EXPECT_TRUE(finished.load());
}

TEST_F(ServerTest, ShutdownEndsAnIdleConnection) {
  ServedPair pair(server_);
  ExpectEchoWorks(pair.peer(), 1);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(pair.Stop().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(pair.peer().SeesEof());
  // After Shutdown nothing more is served.
  UniqueFd a;
  UniqueFd b;
  ASSERT_TRUE(MakeSocketPair(&a, &b).ok());
  Status st = server_.ServeConnection(std::move(a));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kCancelled);
}

TEST_F(ServerTest, InvalidFdIsAnError) {
  Status st = server_.ServeConnection(UniqueFd());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cocoon::ttrpc
