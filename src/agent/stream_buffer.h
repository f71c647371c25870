// A bounded byte buffer between a process's output pipe and the host's ReadStdout/ReadStderr
// calls. The producer (an OutputPump) waits for space instead of dropping data, so a full buffer
// stops the pipe from being read and the process blocks: backpressure, never loss.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace cocoon::agent {

class StreamBuffer {
 public:
  explicit StreamBuffer(size_t capacity) : capacity_(capacity) {}

  // Producer: blocks until there is room; returns the free space, or 0 once Abort()ed.
  size_t WaitForSpace();
  // Producer: appends data (never more than the space WaitForSpace reported).
  void Append(std::string_view data);
  // Producer: the source reached end of file; nothing more will be appended.
  void SetEof();

  struct Chunk {
    std::string data;
    bool eof = false;  // the source hit EOF (or the buffer was aborted) and everything was read
  };
  // Consumer: blocks until data is available, EOF, Abort() or `deadline`; returns up to
  // `max_bytes`. At the deadline it returns an empty chunk with eof=false.
  Chunk Read(size_t max_bytes,
             std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  // Waits until the source reached EOF (data may still be buffered); false at the deadline.
  bool WaitSourceEof(std::chrono::steady_clock::time_point deadline);
  bool source_eof() const;
  size_t buffered() const;

  // Ends the stream for everyone: the producer stops, readers get what is buffered, then eof.
  void Abort();

  // Wakes the readers blocked right now; they return an empty chunk (eof=false) and consume
  // nothing. For reads whose caller is gone (the host's connection ended): their reply would be
  // lost, and the data with it, if they went on to take it.
  void InterruptReaders();

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string data_;
  size_t head_ = 0;  // bytes of data_ already read (compacted lazily)
  bool eof_ = false;
  bool aborted_ = false;
  uint64_t interrupts_ = 0;
};

}  // namespace cocoon::agent
