// ttRPC client: many concurrent calls multiplexed over one connected stream fd. A reader thread
// matches responses to callers by stream id (odd, increasing from 1).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::ttrpc {

struct CallOptions {
  // 0 means no deadline. Sent as timeout_nano and enforced locally (DEADLINE_EXCEEDED).
  std::chrono::nanoseconds timeout{0};
  std::vector<std::pair<std::string, std::string>> metadata;
};

class Client {
 public:
  explicit Client(UniqueFd fd);
  // The same over two one-way fds (a pipe pair): requests go to write_fd, responses come from
  // read_fd.
  Client(UniqueFd read_fd, UniqueFd write_fd);
  ~Client();  // Close()s
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request and waits for its response. Errors: the remote status (code and message as
  // sent), UNAVAILABLE when the connection is closed or breaks (every pending call fails with it),
  // DEADLINE_EXCEEDED when the timeout passes, RESOURCE_EXHAUSTED for a request over 4 MiB.
  Result<std::string> CallRaw(const std::string& service, const std::string& method,
                              const std::string& payload, const CallOptions& options = {});

  template <typename Resp, typename Req>
  Result<Resp> Call(const std::string& service, const std::string& method, const Req& req,
                    const CallOptions& options = {}) {
    Result<std::string> raw = CallRaw(service, method, req.SerializeAsString(), options);
    if (!raw.ok()) return raw.error();
    Resp resp;
    if (!resp.ParseFromString(*raw)) {
      return Error(Code::kInternal, "failed to decode response of " + service + "/" + method);
    }
    return resp;
  }

  // Shuts the connection down; pending and later calls fail with UNAVAILABLE.
  void Close();
  bool closed() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cocoon::ttrpc
