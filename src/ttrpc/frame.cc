#include "ttrpc/frame.h"

#include <algorithm>
#include <cstring>

namespace cocoon::ttrpc {
namespace {

void PutU32(uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

uint32_t GetU32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Consumed bytes are dropped from the front of the buffer only once they are many, so that a
// stream of small frames does not move the remaining bytes after every frame.
constexpr size_t kCompactThreshold = 64 * 1024;

}  // namespace

void EncodeHeader(const FrameHeader& h, char out[kHeaderSize]) {
  PutU32(h.length, out);
  PutU32(h.stream_id, out + 4);
  out[8] = static_cast<char>(h.type);
  out[9] = static_cast<char>(h.flags);
}

FrameHeader DecodeHeader(const char in[kHeaderSize]) {
  FrameHeader h;
  h.length = GetU32(in);
  h.stream_id = GetU32(in + 4);
  h.type = static_cast<uint8_t>(in[8]);
  h.flags = static_cast<uint8_t>(in[9]);
  return h;
}

std::string EncodeFrame(uint32_t stream_id, FrameType type, std::string_view payload) {
  FrameHeader h;
  h.length = static_cast<uint32_t>(payload.size());
  h.stream_id = stream_id;
  h.type = static_cast<uint8_t>(type);
  std::string out(kHeaderSize + payload.size(), '\0');
  EncodeHeader(h, out.data());
  std::memcpy(out.data() + kHeaderSize, payload.data(), payload.size());
  return out;
}

void FrameReader::Feed(std::string_view bytes) {
  // Data of an oversized frame is skipped straight from the input, never buffered, so a peer
  // cannot make us hold more than one frame of at most kMaxMessageSize.
  if (discard_left_ > 0 && buffered() == 0) {
    size_t skip = static_cast<size_t>(std::min<uint64_t>(discard_left_, bytes.size()));
    discard_left_ -= skip;
    bytes.remove_prefix(skip);
  }
  buf_.append(bytes.data(), bytes.size());
}

std::optional<Frame> FrameReader::Next() {
  for (;;) {
    if (discard_left_ > 0) {
      size_t skip = static_cast<size_t>(std::min<uint64_t>(discard_left_, buffered()));
      start_ += skip;
      discard_left_ -= skip;
      Compact();
      if (discard_left_ > 0) return std::nullopt;
    }
    if (oversized_) {
      Frame f;
      f.header = *oversized_;
      f.oversized = true;
      oversized_.reset();
      return f;
    }
    if (buffered() < kHeaderSize) return std::nullopt;
    FrameHeader h = DecodeHeader(buf_.data() + start_);
    if (h.length > kMaxMessageSize) {
      start_ += kHeaderSize;
      discard_left_ = h.length;
      oversized_ = h;
      continue;
    }
    if (buffered() < kHeaderSize + h.length) {
      // Reserve once for the whole frame rather than growing step by step while it arrives.
      buf_.reserve(start_ + kHeaderSize + h.length);
      return std::nullopt;
    }
    Frame f;
    f.header = h;
    f.data.assign(buf_, start_ + kHeaderSize, h.length);
    start_ += kHeaderSize + h.length;
    Compact();
    return f;
  }
}

void FrameReader::Compact() {
  if (start_ == buf_.size()) {
    // After a large frame, give the memory back rather than keep up to 4 MiB per idle connection.
    if (buf_.capacity() > kCompactThreshold) {
      std::string().swap(buf_);
    } else {
      buf_.clear();
    }
    start_ = 0;
  } else if (start_ >= kCompactThreshold) {
    buf_.erase(0, start_);
    start_ = 0;
  }
}

}  // namespace cocoon::ttrpc
