// Minimal QMP client: greeting, qmp_capabilities, then synchronous commands; events are skipped.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::vmm {

class QmpClient {
 public:
  static constexpr size_t kMaxMessageBytes = 1 << 20;

  // Connects to QEMU's QMP socket (retrying until `timeout` while QEMU starts) and negotiates
  // capabilities.
  static Result<QmpClient> Connect(const std::string& socket_path,
                                   std::chrono::milliseconds timeout);
  // Takes an already connected fd (tests use a socketpair with a fake QEMU).
  static Result<QmpClient> FromFd(UniqueFd fd, std::chrono::milliseconds timeout);

  // Sends {"execute": command, "arguments": args} and returns the "return" value, or the QMP
  // "error" as an Error with its class and description.
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object());

  // Bounds each later command's round trip.
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  // ACPI power button; the guest decides whether to honour it.
  // Limitation: cocoon's microvm runs without ACPI (acpi=off), so there it does nothing.
  Status SystemPowerdown();
  // "quit": QEMU exits at once. The connection closing before the reply is success.
  Status Quit();

 private:
  explicit QmpClient(UniqueFd fd, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), timeout_(timeout) {}
  using Deadline = std::chrono::steady_clock::time_point;
  // Reads one JSON object (one line); bounded in size (kMaxMessageBytes) and time.
  Result<nlohmann::json> ReadMessage(Deadline deadline);
  // Reads until the reply to `id`, skipping asynchronous events.
  Result<nlohmann::json> ReadReply(const std::string& command, uint64_t id, Deadline deadline);
  Status Send(const nlohmann::json& message, Deadline deadline);
  // Reads the greeting and sends qmp_capabilities.
  Status Handshake(Deadline deadline);

  UniqueFd fd_;
  std::chrono::milliseconds timeout_;  // bounds each command's round trip
  std::string buffer_;
  uint64_t next_id_ = 1;
};

}  // namespace cocoon::vmm
