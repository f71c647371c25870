// Moves one output fd (a pipe's read end or a pty master) into a StreamBuffer on its own thread.
// It reads only while the buffer has room, so a host that stops reading makes the process block
// on a full pipe rather than the agent dropping or hoarding output.
#pragma once

#include <string>
#include <thread>

#include "agent/stream_buffer.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

class OutputPump {
 public:
  OutputPump() = default;
  ~OutputPump();  // Stop()s
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // Starts pumping `fd` into `buffer` (which must outlive the pump). EOF, or EIO from a pty
  // master whose slave side is closed everywhere, ends the stream with buffer->SetEof().
  Status Start(UniqueFd fd, StreamBuffer* buffer, std::string name);
  // Stops reading (the buffer is aborted so readers wake up) and joins the thread.
  void Stop();

 private:
  void Run();

  UniqueFd fd_;
  UniqueFd cancel_fd_;  // eventfd
  StreamBuffer* buffer_ = nullptr;
  std::string name_;
  std::thread thread_;
};

}  // namespace cocoon::agent
