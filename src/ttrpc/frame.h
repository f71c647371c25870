// ttRPC framing: a 10-byte header (length u32 BE, stream id u32 BE, type u8, flags u8) followed by
// `length` bytes. See docs/protocol.md and shared containerd-shim-v2.md section 2.
#pragma once

#include <cstdint>
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

}  // namespace cocoon::ttrpc
