// Relays a container process's stdio between cocoon's own fds and the guest agent: output is
// pulled with blocking reads (the agent answers when data or end-of-stream is there), input is
// pushed as it arrives, and end-of-input becomes CloseStdin.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "sandbox/agent_client.h"

namespace cocoon::sandbox {

class StdioRelay {
 public:
  StdioRelay(AgentClient* agent, std::string container_id, std::string exec_id)
      : agent_(agent), id_(std::move(container_id)), exec_id_(std::move(exec_id)) {}
  ~StdioRelay();  // Stop()s

  // Starts the threads. `in_fd`, `out_fd`, `err_fd` are ours (usually 0, 1, 2).
  Status Start(int in_fd, int out_fd, int err_fd);
  // Waits until both output streams reached end-of-stream, up to `timeout`. True if they did.
  bool WaitOutputDone(std::chrono::milliseconds timeout);
  // Stops the input pump and joins every thread. Output threads must have finished, or the
  // connection must have been closed, or this blocks.
  void Stop();

 private:
  void PumpOutput(bool stderr_stream, int fd);
  void PumpInput(int fd);

  AgentClient* agent_;
  std::string id_;
  std::string exec_id_;
  UniqueFd wake_r_, wake_w_;
  std::thread out_thread_, err_thread_, in_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int outputs_done_ = 0;
};

}  // namespace cocoon::sandbox
