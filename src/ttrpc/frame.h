// ttRPC framing: a 10-byte header (length u32 BE, stream id u32 BE, type u8, flags u8) followed by
// `length` bytes. See docs/protocol.md and shared containerd-shim-v2.md section 2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cocoon::ttrpc {

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxMessageSize = 4u << 20;  // 4 MiB, as containerd's ttrpc

enum class FrameType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

void EncodeHeader(const FrameHeader& h, char out[kHeaderSize]);
FrameHeader DecodeHeader(const char in[kHeaderSize]);

// Header + payload in one buffer, ready for a single write.
std::string EncodeFrame(uint32_t stream_id, FrameType type, std::string_view payload);

// One frame taken off the stream.
struct Frame {
  FrameHeader header;
  std::string data;  // empty when oversized
  // header.length was over kMaxMessageSize: the data was skipped without being buffered, and the
  // receiver answers (server) or fails the call (client) with RESOURCE_EXHAUSTED.
  bool oversized = false;
};

// Incremental decoder of a ttRPC byte stream. Bytes go in as they arrive, in chunks of any size;
// complete frames come out. Both the server and the client read through it, and so does the fuzz
// target, so the bytes a peer sends only ever meet this one parser.
class FrameReader {
 public:
  // Appends bytes read from the stream.
  void Feed(std::string_view bytes);
  // Returns the next complete frame, or nullopt until more bytes are fed. An oversized frame is
  // returned once all of its data has been skipped, so the answer to it follows the data, as in
  // the Go implementation.
  std::optional<Frame> Next();
  // True while part of a frame (header or data) has been received: an end of stream now would cut
  // a frame short.
  bool MidFrame() const { return buffered() > 0 || discard_left_ > 0 || oversized_.has_value(); }
  size_t buffered() const { return buf_.size() - start_; }

 private:
  void Compact();

  std::string buf_;
  size_t start_ = 0;  // bytes of buf_ already consumed
  uint64_t discard_left_ = 0;
  std::optional<FrameHeader> oversized_;  // header of the frame being skipped
};

}  // namespace cocoon::ttrpc
