// Framing, the decoder, the envelope and the status mapping, including the worked example of
// containerd-shim-v2.md section 2.8 as golden bytes.
#include <gtest/gtest.h>

#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/envelope.h"
#include "ttrpc/frame.h"
#include "ttrpc/status.h"

namespace cocoon::ttrpc {
namespace {

using test_util::Bytes;

// Section 2.8: Connect{id:"t1"} on stream 1.
std::string GoldenConnectRequest() {
  return Bytes({0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00}) + "\x0a\x17" +
         "containerd.task.v2.Task" + "\x12\x07" + "Connect" + "\x1a\x04\x0a\x02" + "t1";
}
// Section 2.8: ConnectResponse{shim_pid:4242, task_pid:4343} on stream 1.
std::string GoldenConnectResponse() {
  return Bytes({0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x12, 0x06, 0x08, 0x92,
                0x21, 0x10, 0xf7, 0x21});
}
// Section 2.8: NOT_FOUND on stream 3.
std::string GoldenNotFound() {
  return Bytes({0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x0a, 0x1a, 0x08, 0x05,
                0x12, 0x16}) +
         "container t9 not found";
}
const std::string kConnectResponsePayload = Bytes({0x08, 0x92, 0x21, 0x10, 0xf7, 0x21});

TEST(FrameTest, HeaderIsBigEndian) {
  FrameHeader h{0x01020304, 0xa0b0c0d0, 2, 0x05};
  char out[kHeaderSize];
  EncodeHeader(h, out);
  EXPECT_EQ(std::string(out, kHeaderSize),
            Bytes({0x01, 0x02, 0x03, 0x04, 0xa0, 0xb0, 0xc0, 0xd0, 0x02, 0x05}));
  FrameHeader back = DecodeHeader(out);
  EXPECT_EQ(back.length, h.length);
  EXPECT_EQ(back.stream_id, h.stream_id);
  EXPECT_EQ(back.type, h.type);
  EXPECT_EQ(back.flags, h.flags);
}

TEST(FrameTest, GoldenRequestEncodes) {
  std::string payload = Bytes({0x0a, 0x02}) + "t1";
  std::string frame =
      EncodeFrame(1, FrameType::kRequest,
                  test_util::RequestBytes("containerd.task.v2.Task", "Connect", payload));
  EXPECT_EQ(frame, GoldenConnectRequest());
}

TEST(FrameTest, GoldenRequestDecodes) {
  FrameReader reader;
  reader.Feed(GoldenConnectRequest());
  std::optional<Frame> f = reader.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.length, 40u);
  Result<::ttrpc::Request> req = DecodeRequestFrame(*f);
  ASSERT_TRUE(req.ok()) << req.error().message();
  EXPECT_EQ(req->service(), "containerd.task.v2.Task");
  EXPECT_EQ(req->method(), "Connect");
  EXPECT_EQ(req->payload(), Bytes({0x0a, 0x02}) + "t1");
  EXPECT_FALSE(reader.MidFrame());
}

TEST(FrameTest, GoldenResponsesEncode) {
  EXPECT_EQ(EncodeFrame(1, FrameType::kResponse, EncodeResponse(kConnectResponsePayload)),
            GoldenConnectResponse());
  EXPECT_EQ(EncodeFrame(3, FrameType::kResponse,
                        EncodeResponse(Error(Code::kNotFound, "container t9 not found"))),
            GoldenNotFound());
  // An empty success is a zero-byte Response, as the Go server sends for Empty.
  EXPECT_EQ(EncodeFrame(1, FrameType::kResponse, EncodeResponse(std::string())),
            Bytes({0, 0, 0, 0, 0, 0, 0, 1, 2, 0}));
}

TEST(FrameTest, GoldenResponsesDecode) {
  Result<std::string> ok = DecodeResponse(GoldenConnectResponse().substr(kHeaderSize));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, kConnectResponsePayload);
  Result<std::string> err = DecodeResponse(GoldenNotFound().substr(kHeaderSize));
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code(), Code::kNotFound);
  EXPECT_EQ(err.error().message(), "container t9 not found");
  // An explicit empty status (0a 00) is success too.
  Result<std::string> explicit_ok = DecodeResponse(Bytes({0x0a, 0x00}));
  ASSERT_TRUE(explicit_ok.ok());
  EXPECT_EQ(*explicit_ok, "");
  Result<std::string> garbage = DecodeResponse(Bytes({0xff, 0xff, 0xff}));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code(), Code::kInternal);
}

// The same bytes through real sockets: what our server answers and what our client sends.
TEST(GoldenWireTest, ServerAnswersTheWorkedExample) {
  Server server;
  server.RegisterRaw("containerd.task.v2.Task", "Connect",
                     [](const CallContext&, const std::string& payload) -> Result<std::string> {
                       if (payload != Bytes({0x0a, 0x02}) + "t1") {
                         return Error(Code::kInvalidArgument, "unexpected payload");
                       }
                       return kConnectResponsePayload;
                     });
  server.RegisterRaw("containerd.task.v2.Task", "State",
                     [](const CallContext&, const std::string&) -> Result<std::string> {
                       return Error(Code::kNotFound, "container t9 not found");
                     });
  test_util::ServedPair pair(server);
  pair.peer().Send(GoldenConnectRequest());
  EXPECT_EQ(pair.peer().Read(GoldenConnectResponse().size()), GoldenConnectResponse());
  pair.peer().Send(test_util::RequestFrame(3, "containerd.task.v2.Task", "State", ""));
  EXPECT_EQ(pair.peer().Read(GoldenNotFound().size()), GoldenNotFound());
}

TEST(GoldenWireTest, ClientSendsAndReadsTheWorkedExample) {
  UniqueFd ours;
  UniqueFd theirs;
  ASSERT_TRUE(MakeSocketPair(&ours, &theirs).ok());
  test_util::RawPeer peer(std::move(theirs));
  Client client(std::move(ours));
  std::thread server_side([&] {
    EXPECT_EQ(peer.Read(GoldenConnectRequest().size()), GoldenConnectRequest());
    peer.Send(GoldenConnectResponse());
    std::optional<Frame> second = peer.ReadFrame();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->header.stream_id, 3u);
    peer.Send(GoldenNotFound());
  });
  Result<std::string> ok =
      client.CallRaw("containerd.task.v2.Task", "Connect", Bytes({0x0a, 0x02}) + "t1");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(*ok, kConnectResponsePayload);
  Result<std::string> err = client.CallRaw("containerd.task.v2.Task", "State", "");
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code(), Code::kNotFound);
  EXPECT_EQ(err.error().message(), "container t9 not found");
  server_side.join();
}

TEST(FrameReaderTest, ByteAtATimeAndManyInOneChunk) {
  std::string stream = GoldenConnectRequest() + GoldenConnectResponse() + GoldenNotFound();
  FrameReader slow;
  int frames = 0;
  for (char c : stream) {
    slow.Feed(std::string_view(&c, 1));
    while (slow.Next()) ++frames;
  }
  EXPECT_EQ(frames, 3);
  EXPECT_FALSE(slow.MidFrame());

  FrameReader fast;
  fast.Feed(stream);
  std::optional<Frame> a = fast.Next();
  std::optional<Frame> b = fast.Next();
  std::optional<Frame> c = fast.Next();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(fast.Next().has_value());
  EXPECT_EQ(a->header.type, 1);
  EXPECT_EQ(b->data, GoldenConnectResponse().substr(kHeaderSize));
  EXPECT_EQ(c->header.stream_id, 3u);
}

TEST(FrameReaderTest, MidFrameWhilePartial) {
  FrameReader reader;
  reader.Feed(GoldenConnectRequest().substr(0, 4));
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_TRUE(reader.MidFrame());  // mid-header
  reader.Feed(GoldenConnectRequest().substr(4, 20));
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_TRUE(reader.MidFrame());  // mid-data
  reader.Feed(GoldenConnectRequest().substr(24));
  EXPECT_TRUE(reader.Next().has_value());
  EXPECT_FALSE(reader.MidFrame());
}

TEST(FrameReaderTest, OversizedFrameIsSkippedWithoutBuffering) {
  const uint32_t len = kMaxMessageSize + 1;
  FrameHeader h{len, 7, 1, 0};
  char header[kHeaderSize];
  EncodeHeader(h, header);
  FrameReader reader;
  reader.Feed(std::string_view(header, kHeaderSize));
  EXPECT_FALSE(reader.Next().has_value());
  std::string chunk(64 * 1024, 'x');
  uint64_t left = len;
  while (left > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    reader.Feed(std::string_view(chunk.data(), n));
    left -= n;
    EXPECT_LE(reader.buffered(), chunk.size());
    if (left > 0) {
      EXPECT_FALSE(reader.Next().has_value());
      EXPECT_TRUE(reader.MidFrame());
    }
  }
  reader.Feed(GoldenConnectResponse());
  std::optional<Frame> skipped = reader.Next();
  ASSERT_TRUE(skipped.has_value());
  EXPECT_TRUE(skipped->oversized);
  EXPECT_EQ(skipped->header.length, len);
  EXPECT_EQ(skipped->header.stream_id, 7u);
  EXPECT_TRUE(skipped->data.empty());
  std::optional<Frame> next = reader.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->oversized);
  EXPECT_EQ(next->header.stream_id, 1u);
}

TEST(FrameReaderTest, MaxSizedFrameIsAccepted) {
  std::string data(kMaxMessageSize, 'y');
  FrameReader reader;
  reader.Feed(EncodeFrame(5, FrameType::kData, data));
  std::optional<Frame> f = reader.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->oversized);
  EXPECT_EQ(f->data.size(), kMaxMessageSize);
}

TEST(EnvelopeTest, RequestChecks) {
  Frame even;
  even.header = {0, 2, 1, 0};
  Result<::ttrpc::Request> r = DecodeRequestFrame(even);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "StreamID must be odd for client initiated streams");

  Frame bad;
  bad.header = {3, 1, 1, 0};
  bad.data = Bytes({0xff, 0xff, 0xff});
  r = DecodeRequestFrame(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "unmarshal request error");
}

TEST(StatusTest, EveryCodeRoundTrips) {
  for (int c = 1; c <= static_cast<int>(Code::kDataLoss); ++c) {
    ::ttrpc::RpcStatus wire;
    ToWireStatus(Error(static_cast<Code>(c), "msg " + std::to_string(c)), &wire);
    EXPECT_EQ(wire.code(), c);
    Status back = FromWireStatus(wire);
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(static_cast<int>(back.error().code()), c);
    EXPECT_EQ(back.error().message(), "msg " + std::to_string(c));
  }
}

TEST(StatusTest, OkClearsAndZeroIsOk) {
  ::ttrpc::RpcStatus wire;
  wire.set_code(5);
  wire.set_message("stale");
  ToWireStatus(Error(Code::kOk, "ignored"), &wire);
  EXPECT_EQ(wire.code(), 0);
  EXPECT_EQ(wire.message(), "");
  EXPECT_TRUE(FromWireStatus(wire).ok());
}

TEST(StatusTest, UnnamedCodesBecomeUnknownAndKeepTheNumber) {
  for (int c : {16, 99, -1}) {
    ::ttrpc::RpcStatus wire;
    wire.set_code(c);
    wire.set_message("odd");
    Status st = FromWireStatus(wire);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), Code::kUnknown);
    EXPECT_NE(st.error().message().find(std::to_string(c)), std::string::npos);
    EXPECT_NE(st.error().message().find("odd"), std::string::npos);
  }
}

}  // namespace
}  // namespace cocoon::ttrpc
