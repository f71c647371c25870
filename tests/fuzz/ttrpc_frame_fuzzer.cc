// libFuzzer target: arbitrary bytes as the stream a ttRPC peer sends, through the same FrameReader
// and envelope decoders the server and the client use.
//
// Input layout: byte 0 picks how the stream is cut into reads (so split points are fuzzed too),
// the rest is the stream. Besides memory errors (ASan), the target traps when:
//   - frames differ depending on how the stream was cut,
//   - a frame breaks its own invariants (length, oversized flag),
//   - a Request that decoded does not survive a re-encode and decode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/ttrpc.pb.h"
#include "ttrpc/envelope.h"
#include "ttrpc/frame.h"

namespace {

using cocoon::ttrpc::DecodeRequestFrame;
using cocoon::ttrpc::DecodeResponse;
using cocoon::ttrpc::EncodeFrame;
using cocoon::ttrpc::EncodeResponse;
using cocoon::ttrpc::Frame;
using cocoon::ttrpc::FrameReader;
using cocoon::ttrpc::FrameType;
using cocoon::ttrpc::kMaxMessageSize;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Runs one frame through what the server or the client would do with it.
void Exercise(const Frame& f) {
  if (f.oversized) {
    Check(f.header.length > kMaxMessageSize && f.data.empty());
    return;
  }
  Check(f.data.size() == f.header.length);
  if (f.header.type == static_cast<uint8_t>(FrameType::kRequest)) {
    cocoon::Result<::ttrpc::Request> req = DecodeRequestFrame(f);
    if (!req.ok()) {
      // The server answers with this; it must encode.
      Check(!EncodeResponse(req.error()).empty());
      return;
    }
    Frame again;
    again.header = f.header;
    again.data = req->SerializeAsString();
    again.header.length = static_cast<uint32_t>(again.data.size());
    cocoon::Result<::ttrpc::Request> back = DecodeRequestFrame(again);
    Check(back.ok() && back->service() == req->service() && back->method() == req->method() &&
          back->payload() == req->payload() && back->timeout_nano() == req->timeout_nano() &&
          back->metadata_size() == req->metadata_size());
  } else if (f.header.type == static_cast<uint8_t>(FrameType::kResponse)) {
    cocoon::Result<std::string> resp = DecodeResponse(f.data);
    if (resp.ok()) {
      // What decodes as success re-encodes and decodes to the same payload.
      cocoon::Result<std::string> back = DecodeResponse(EncodeResponse(*resp));
      Check(back.ok() && *back == *resp);
    }
  }
}

std::vector<Frame> ReadAll(std::string_view stream, size_t step) {
  std::vector<Frame> out;
  FrameReader reader;
  for (size_t pos = 0; pos < stream.size(); pos += step) {
    reader.Feed(stream.substr(pos, step));
    while (std::optional<Frame> f = reader.Next()) out.push_back(std::move(*f));
  }
  return out;
}

bool SameFrames(const std::vector<Frame>& a, const std::vector<Frame>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].header.length != b[i].header.length ||
        a[i].header.stream_id != b[i].header.stream_id || a[i].header.type != b[i].header.type ||
        a[i].header.flags != b[i].header.flags || a[i].oversized != b[i].oversized ||
        a[i].data != b[i].data) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = static_cast<size_t>(data[0] % 32) + 1;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (stream.empty()) return 0;

  std::vector<Frame> whole = ReadAll(stream, stream.size());
  std::vector<Frame> cut = ReadAll(stream, step);
  Check(SameFrames(whole, cut));
  for (const Frame& f : whole) {
    Exercise(f);
    // Frames re-encode to the bytes they came from (flags aside, which EncodeFrame leaves 0).
    if (!f.oversized && f.header.flags == 0) {
      std::string bytes =
          EncodeFrame(f.header.stream_id, static_cast<FrameType>(f.header.type), f.data);
      std::vector<Frame> again = ReadAll(bytes, bytes.size());
      Check(again.size() == 1 && SameFrames(again, {f}));
    }
  }
  return 0;
}
