// The client against our server (round trips, concurrency) and against a raw peer (stream ids,
// timeouts, closed connections, oversized messages).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"

namespace cocoon::ttrpc {
namespace {

using namespace std::chrono_literals;
using test_util::RawPeer;

::ttrpc::Request ParseRequest(const Frame& f) {
  ::ttrpc::Request req;
  EXPECT_EQ(f.header.type, static_cast<uint8_t>(FrameType::kRequest));
  EXPECT_TRUE(req.ParseFromString(f.data));
  return req;
}

std::string OkFrame(uint32_t stream_id, const std::string& payload) {
  ::ttrpc::Response resp;
  resp.set_payload(payload);
  return EncodeFrame(stream_id, FrameType::kResponse, resp.SerializeAsString());
}

// A client on one end of a socketpair, a raw peer on the other.
struct RawPair {
  RawPair() {
    UniqueFd ours;
    UniqueFd theirs;
    EXPECT_TRUE(MakeSocketPair(&ours, &theirs).ok());
    peer = RawPeer(std::move(theirs));
    client = std::make_unique<Client>(std::move(ours));
  }
  RawPeer peer;
  std::unique_ptr<Client> client;
};

// A client connected to a real server over a socketpair.
class ClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.RegisterRaw("test.Svc", "Echo",
                        [](const CallContext&, const std::string& p) -> Result<std::string> {
                          return "echo:" + p;
                        });
    server_.RegisterRaw("test.Svc", "Block", [this](const CallContext&, const std::string&) {
      std::unique_lock<std::mutex> lock(mu_);
      blocked_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
      return Result<std::string>(std::string("released"));
    });
    UniqueFd ours;
    UniqueFd theirs;
    ASSERT_TRUE(MakeSocketPair(&ours, &theirs).ok());
    serve_ = std::thread([this, fd = std::move(theirs)]() mutable {
      EXPECT_TRUE(server_.ServeConnection(std::move(fd)).ok());
    });
    client_ = std::make_unique<Client>(std::move(ours));
  }
  void TearDown() override {
    Release();
    client_.reset();
    server_.Shutdown();
    serve_.join();
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  void WaitBlocked() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return blocked_; });
  }

  Server server_;
  std::thread serve_;
  std::unique_ptr<Client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;
  bool released_ = false;
};

TEST_F(ClientServerTest, RoundTrip) {
  Result<std::string> r = client_->CallRaw("test.Svc", "Echo", "hello");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, "echo:hello");
  Result<std::string> missing = client_->CallRaw("test.Svc", "Missing", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::kUnimplemented);
  EXPECT_EQ(missing.error().message(), "method Missing");
  EXPECT_FALSE(client_->closed());
}

TEST_F(ClientServerTest, TypedCall) {
  server_.Register<::ttrpc::KeyValue, ::ttrpc::KeyValue>(
      "test.Svc", "Swap", [](const CallContext&, const ::ttrpc::KeyValue& in) {
        ::ttrpc::KeyValue out;
        out.set_key(in.value());
        out.set_value(in.key());
        return Result<::ttrpc::KeyValue>(out);
      });
  ::ttrpc::KeyValue in;
  in.set_key("a");
  in.set_value("b");
  Result<::ttrpc::KeyValue> out = client_->Call<::ttrpc::KeyValue>("test.Svc", "Swap", in);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->key(), "b");
  EXPECT_EQ(out->value(), "a");
}

TEST_F(ClientServerTest, BlockedHandlerDoesNotHoldUpOtherCalls) {
  Result<std::string> blocked_result = Error(Code::kUnknown, "not run");
  std::thread t([&] { blocked_result = client_->CallRaw("test.Svc", "Block", ""); });
  WaitBlocked();
  Result<std::string> r = client_->CallRaw("test.Svc", "Echo", "meanwhile");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "echo:meanwhile");
  Release();
  t.join();
  ASSERT_TRUE(blocked_result.ok());
  EXPECT_EQ(*blocked_result, "released");
}

TEST_F(ClientServerTest, FiftyCallsFromEightThreads) {
  constexpr int kCalls = 50;
  constexpr int kThreads = 8;
  std::vector<std::string> answers(kCalls);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kCalls; i += kThreads) {
        Result<std::string> r = client_->CallRaw("test.Svc", "Echo", "call-" + std::to_string(i));
        answers[i] = r.ok() ? *r : "error: " + r.error().message();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(answers[i], "echo:call-" + std::to_string(i));
}

TEST(ClientTest, StreamIdsAreOddAndIncreasing) {
  RawPair p;
  std::thread peer([&] {
    for (uint32_t want : {1u, 3u, 5u}) {
      std::optional<Frame> f = p.peer.ReadFrame();
      ASSERT_TRUE(f.has_value());
      EXPECT_EQ(f->header.stream_id, want);
      EXPECT_EQ(f->header.flags, 0);
      p.peer.Send(OkFrame(want, std::to_string(want)));
    }
  });
  for (const char* want : {"1", "3", "5"}) {
    Result<std::string> r = p.client->CallRaw("s", "m", "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, want);
  }
  peer.join();
}

TEST(ClientTest, SendsTimeoutAndMetadata) {
  RawPair p;
  std::thread peer([&] {
    std::optional<Frame> f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    ::ttrpc::Request req = ParseRequest(*f);
    EXPECT_EQ(req.timeout_nano(), 3'000'000'000);
    ASSERT_EQ(req.metadata_size(), 2);
    EXPECT_EQ(req.metadata(0).key(), "k");
    EXPECT_EQ(req.metadata(1).value(), "v2");
    p.peer.Send(OkFrame(f->header.stream_id, "ok"));
  });
  CallOptions opts;
  opts.timeout = 3s;
  opts.metadata = {{"k", "v1"}, {"k", "v2"}};
  Result<std::string> r = p.client->CallRaw("s", "m", "", opts);
  EXPECT_TRUE(r.ok());
  peer.join();
}

TEST(ClientTest, PendingAndLaterCallsFailWhenPeerCloses) {
  RawPair p;
  std::thread peer([&] {
    ASSERT_TRUE(p.peer.ReadFrame().has_value());
    ASSERT_TRUE(p.peer.ReadFrame().has_value());
    p.peer.Close();
  });
  Result<std::string> other = Error(Code::kUnknown, "not run");
  std::thread second([&] { other = p.client->CallRaw("s", "m", "2"); });
  Result<std::string> r = p.client->CallRaw("s", "m", "1");
  second.join();
  peer.join();
  for (const Result<std::string>* res : {&r, &other}) {
    ASSERT_FALSE(res->ok());
    EXPECT_EQ(res->error().code(), Code::kUnavailable);
    EXPECT_NE(res->error().message().find("connection closed"), std::string::npos);
  }
  EXPECT_TRUE(p.client->closed());
  Result<std::string> later = p.client->CallRaw("s", "m", "3");
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().code(), Code::kUnavailable);
  EXPECT_NE(later.error().message().find("connection closed"), std::string::npos);
}

TEST(ClientTest, TimeoutIsDeadlineExceededAndLateResponseIsDropped) {
  RawPair p;
  CallOptions opts;
  opts.timeout = 50ms;
  auto start = std::chrono::steady_clock::now();
  Result<std::string> r = p.client->CallRaw("s", "m", "", opts);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDeadlineExceeded);
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 2s);
  std::optional<Frame> first = p.peer.ReadFrame();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(ParseRequest(*first).timeout_nano(), 50'000'000);
  // The late answer arrives; the next call must get its own answer, not this one.
  p.peer.Send(OkFrame(first->header.stream_id, "late"));
  std::thread peer([&] {
    std::optional<Frame> f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->header.stream_id, 3u);
    p.peer.Send(OkFrame(3, "second"));
  });
  Result<std::string> r2 = p.client->CallRaw("s", "m", "");
  peer.join();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, "second");
}

TEST(ClientTest, OversizedRequestFailsLocally) {
  RawPair p;
  Result<std::string> r = p.client->CallRaw("s", "m", std::string(kMaxMessageSize, 'q'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kResourceExhausted);
  EXPECT_TRUE(p.peer.Quiet(100ms));  // nothing was sent
  EXPECT_FALSE(p.client->closed());
  std::thread peer([&] {
    std::optional<Frame> f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->header.stream_id, 1u);  // no id was used up either
    p.peer.Send(OkFrame(1, "fine"));
  });
  Result<std::string> r2 = p.client->CallRaw("s", "m", "small");
  peer.join();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, "fine");
}

TEST(ClientTest, OversizedResponseFailsThatCallOnly) {
  RawPair p;
  std::thread peer([&] {
    std::optional<Frame> f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    const uint32_t len = kMaxMessageSize + 1;
    char header[kHeaderSize];
    EncodeHeader({len, f->header.stream_id, 2, 0}, header);
    p.peer.Send(std::string_view(header, kHeaderSize));
    p.peer.Send(std::string(len, 'r'));
    f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    p.peer.Send(OkFrame(f->header.stream_id, "after"));
  });
  Result<std::string> r = p.client->CallRaw("s", "m", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kResourceExhausted);
  Result<std::string> r2 = p.client->CallRaw("s", "m", "");
  peer.join();
  ASSERT_TRUE(r2.ok()) << r2.error().message();
  EXPECT_EQ(*r2, "after");
}

TEST(ClientTest, IgnoresStrayFrames) {
  RawPair p;
  std::thread peer([&] {
    std::optional<Frame> f = p.peer.ReadFrame();
    ASSERT_TRUE(f.has_value());
    p.peer.Send(OkFrame(99, "nobody asked"));
    p.peer.Send(EncodeFrame(f->header.stream_id, FrameType::kData, "data"));
    p.peer.Send(EncodeFrame(f->header.stream_id, FrameType::kRequest, "req"));
    p.peer.Send(OkFrame(f->header.stream_id, "mine"));
  });
  Result<std::string> r = p.client->CallRaw("s", "m", "");
  peer.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "mine");
}

TEST(ClientTest, CloseFailsPendingCallsAndJoins) {
  RawPair p;
  Result<std::string> r = Error(Code::kUnknown, "not run");
  std::thread caller([&] { r = p.client->CallRaw("s", "m", ""); });
  ASSERT_TRUE(p.peer.ReadFrame().has_value());  // the call is on the wire and pending
  p.client->Close();
  caller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("connection closed"), std::string::npos);
  EXPECT_TRUE(p.client->closed());
  EXPECT_TRUE(p.peer.SeesEof());
  Result<std::string> later = p.client->CallRaw("s", "m", "");
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().code(), Code::kUnavailable);
  p.client->Close();  // idempotent
}

TEST(ClientTest, InvalidFdGivesUnavailable) {
  Client client{UniqueFd()};
  EXPECT_TRUE(client.closed());
  Result<std::string> r = client.CallRaw("s", "m", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("connection closed"), std::string::npos);
}

}  // namespace
}  // namespace cocoon::ttrpc
