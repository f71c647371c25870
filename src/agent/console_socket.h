// The --console-socket of an OCI runtime: a Unix socket the agent listens on, to which the
// runtime connects and sends the pty master of a terminal process with SCM_RIGHTS.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

class ConsoleSocket {
 public:
  ConsoleSocket() = default;
  ~ConsoleSocket();  // removes the socket file
  ConsoleSocket(ConsoleSocket&&) = delete;
  ConsoleSocket& operator=(ConsoleSocket&&) = delete;

  // Listens at `path` (at most 107 bytes: keep it short).
  Status Listen(const std::string& path);
  const std::string& path() const { return path_; }

  // Accepts one connection and receives one fd from it. The runtime sends the fd before it
  // exits, and a queued connection with its fd survives the sender's exit, so this is called
  // after the runtime finished; `timeout` bounds the wait for a runtime that never connects.
  Result<UniqueFd> ReceiveFd(std::chrono::milliseconds timeout);

 private:
  std::string path_;
  UniqueFd listen_fd_;
};

// Sends `fd` over the connected Unix socket `sock` with SCM_RIGHTS (the runtime's side; used by
// tests and fakes).
Status SendFd(int sock, int fd);

}  // namespace cocoon::agent
