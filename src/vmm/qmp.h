// Minimal QMP client: greeting, qmp_capabilities, then synchronous commands; events are skipped.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::vmm {

class QmpClient {
 public:
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

  // ACPI power button; the guest decides whether to honour it.
  Status SystemPowerdown();
  // "quit": QEMU exits at once. The connection closing before the reply is success.
  Status Quit();

 private:
  explicit QmpClient(UniqueFd fd, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), timeout_(timeout) {}
  Result<nlohmann::json> ReadMessage();

  UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

}  // namespace cocoon::vmm
