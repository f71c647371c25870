// Typed QEMU command line for a cocoon sandbox VM: microvm machine, direct kernel boot, one
// virtio-serial port for the agent, one virtio-9p share, console to a log file, QMP on a socket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/accel.h"

namespace cocoon::vmm {

struct QemuConfig {
  std::string qemu_binary = "qemu-system-x86_64";
  std::string name;  // sandbox id; shown in ps as "-name cocoon-<id>"
  Accel accel = Accel::kTcg;
  uint32_t vcpus = 1;
  uint64_t memory_mib = 256;
  // bzImage, or an uncompressed vmlinux with a PVH note (boots about 0.3 s sooner under TCG: no
  // decompression).
  std::string kernel;
  std::string initrd;  // initramfs path
  // TCG only: the host TSC rate (HostTscKhz()), passed to the guest as tsc_early_khz so it need
  // not calibrate; 0 = let the guest calibrate.
  uint64_t guest_tsc_khz = 0;
  std::string kernel_cmdline_extra;  // appended to the built-in command line
  std::string console_log;           // guest serial console is written here
  std::string qmp_socket;            // QEMU listens here (server=on,wait=off)
  // Host end of the agent channel: an fd number (inherited by QEMU) of a connected stream socket.
  int agent_fd = -1;
  std::string agent_port_name = "cocoon.agent";
  std::string share_dir;  // exported with virtio-9p; empty = no share
  std::string share_tag = "cocoon";
  // virtio-net NICs, each backed by an open tap fd that QEMU inherits (the caller keeps its copy).
  struct Nic {
    int tap_fd = -1;
    std::string mac;  // "52:54:00:..": the MAC the guest sees at boot
  };
  std::vector<Nic> nics;
  // A network namespace fd QEMU runs in (the pod's), so its pid names that namespace; -1: ours.
  // Not part of the argv.
  int netns_fd = -1;
};

// Checks the config (paths set, sizes sane) and returns the full argv, argv[0] included.
Result<std::vector<std::string>> BuildQemuArgv(const QemuConfig& config);

// The kernel command line the argv carries.
std::string KernelCmdline(const QemuConfig& config);

}  // namespace cocoon::vmm
