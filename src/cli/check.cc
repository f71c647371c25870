// `cocoon check`: one verdict per requirement, so a person sees at once why VMs would not start.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "common/process.h"
#include "vmm/accel.h"

namespace cocoon::cli {
namespace {

void Verdict(bool ok, const char* what, const std::string& detail) {
  std::printf("%-12s %-4s %s\n", what, ok ? "ok" : "FAIL", detail.c_str());
}

}  // namespace

int CheckCommand(const GlobalOptions& global) {
  bool all_ok = true;
  auto config = LoadEngineConfig(global);
  if (!config.ok()) {
    Verdict(false, "config", config.error().message());
    return 1;
  }
  Verdict(true, "config", config->config_file.empty() ? "compiled defaults" : config->config_file);

  vmm::AccelDecision accel = vmm::DetectAccelerator();
  // TCG is slower but fully isolating: a working verdict, said plainly.
  Verdict(true, "accelerator",
          std::string(vmm::AccelName(accel.accel)) + " (" + accel.reason + ")");

  auto qemu = RunCapture({config->qemu_binary, "--version"});
  bool qemu_ok = qemu.ok() && qemu->exit_code == 0;
  std::string qemu_detail = qemu_ok ? qemu->output.substr(0, qemu->output.find('\n'))
                                    : config->qemu_binary + " cannot run: " +
                                          (qemu.ok() ? qemu->output : qemu.error().message());
  Verdict(qemu_ok, "qemu", qemu_detail);
  if (qemu_ok) {
    auto machines = RunCapture({config->qemu_binary, "-machine", "help"});
    bool microvm = machines.ok() && machines->output.find("microvm") != std::string::npos;
    Verdict(microvm, "microvm",
            microvm ? "machine type available" : "QEMU lacks the microvm machine");
    all_ok = all_ok && microvm;
  }
  all_ok = all_ok && qemu_ok;

  sandbox::EngineConfig resolved = *config;
  Status assets = sandbox::ResolveAssets(&resolved);
  if (assets.ok()) {
    Verdict(true, "kernel", resolved.kernel);
    Verdict(true, "initramfs", resolved.initrd);
  } else {
    Verdict(false, "guest image", assets.error().message());
    all_ok = false;
  }

  bool root = ::geteuid() == 0;
  Verdict(root, "privileges",
          root ? "running as root" : "cocoon run needs root (mounts, 9p share)");
  all_ok = all_ok && root;

  std::printf("%s\n", all_ok ? "cocoon can run containers on this host"
                             : "cocoon cannot run containers on this host: see FAIL lines");
  return all_ok ? 0 : 1;
}

}  // namespace cocoon::cli
