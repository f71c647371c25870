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
#include "vmm/qmp.h"

namespace cocoon::vmm {

class Vm {
 public:
  // Spawns QEMU with BuildQemuArgv(config), passing config.agent_fd through (the caller keeps its
  // own copy). QEMU's own stderr goes to `<console_log>.qemu` so a failure to start can be
  // reported with QEMU's words. Returns once QEMU answers on QMP, i.e. the machine is built and
  // the guest runs; an error if QEMU exits first. QEMU gets SIGKILL if the calling thread dies,
  // so call it from a thread that lives as long as the VM. Under TCG an unset guest_tsc_khz is
  // filled from HostTscKhz().
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
  Vm(QemuConfig config, ChildProcess child)
      : config_(std::move(config)), child_(std::move(child)) {}
  // Waits until QEMU's QMP socket answers or QEMU exits.
  Status AwaitQmp(std::chrono::steady_clock::time_point deadline);
  std::string StartFailure(const std::string& what);

  QemuConfig config_;
  ChildProcess child_;
  std::optional<QmpClient> qmp_;
};

}  // namespace cocoon::vmm
