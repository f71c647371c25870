#include "agent/stream_buffer.h"

#include <algorithm>

namespace cocoon::agent {

size_t StreamBuffer::WaitForSpace() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return aborted_ || data_.size() - head_ < capacity_; });
  if (aborted_) return 0;
  return capacity_ - (data_.size() - head_);
}

void StreamBuffer::Append(std::string_view data) {
  if (data.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (aborted_) return;
  // Compact before growing so the string never holds more than about twice the capacity.
  if (head_ > 0 && head_ >= data_.size() / 2) {
    data_.erase(0, head_);
    head_ = 0;
  }
  data_.append(data);
  cv_.notify_all();
}

void StreamBuffer::SetEof() {
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

StreamBuffer::Chunk StreamBuffer::Read(
    size_t max_bytes, std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t interrupts = interrupts_;
  auto ready = [&] {
    return head_ < data_.size() || eof_ || aborted_ || interrupts_ != interrupts;
  };
  if (deadline) {
    if (!cv_.wait_until(lock, *deadline, ready)) return Chunk{};
  } else {
    cv_.wait(lock, ready);
  }
  if (interrupts_ != interrupts) return Chunk{};
  Chunk chunk;
  size_t n = std::min(max_bytes, data_.size() - head_);
  chunk.data.assign(data_, head_, n);
  head_ += n;
  if (head_ == data_.size()) {
    data_.clear();
    head_ = 0;
  }
  chunk.eof = (eof_ || aborted_) && head_ == data_.size();
  if (n > 0) cv_.notify_all();  // room for the producer
  return chunk;
}

bool StreamBuffer::WaitSourceEof(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return eof_ || aborted_; });
}

bool StreamBuffer::source_eof() const {
  std::lock_guard<std::mutex> lock(mu_);
  return eof_;
}

size_t StreamBuffer::buffered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_.size() - head_;
}

void StreamBuffer::InterruptReaders() {
  std::lock_guard<std::mutex> lock(mu_);
  ++interrupts_;
  cv_.notify_all();
}

void StreamBuffer::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

}  // namespace cocoon::agent
