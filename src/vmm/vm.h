// A running QEMU process for one sandbox. Owns the child: destroying a Vm kills and reaps QEMU.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/process.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/qemu_config.h"

namespace cocoon::vmm {

class Vm {
 public:
  // Spawns QEMU with BuildQemuArgv(config), passing config.agent_fd through. QEMU's own stderr
  // goes to `<console_log>.qemu` so a failure to start can be reported with QEMU's words.
  static Result<std::unique_ptr<Vm>> Launch(const QemuConfig& config);
  ~Vm();

  pid_t pid() const { return child_.pid(); }
  bool running() const { return child_.running(); }

  // Asks QEMU to quit over QMP; SIGKILL after `timeout`. Always reaps. Returns QEMU's exit code.
  int Stop(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void Kill();
  // Non-blocking: the exit code if QEMU has exited.
  std::optional<int> Exited();
  // QEMU's stderr so far (bounded), for error messages.
  std::string QemuStderr() const;

 private:
  Vm(QemuConfig config, ChildProcess child) : config_(std::move(config)), child_(std::move(child)) {}
  QemuConfig config_;
  ChildProcess child_;
};

}  // namespace cocoon::vmm
