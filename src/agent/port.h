// The host channel: the virtio-serial port named "cocoon.agent". Without udev there are no
// /dev/virtio-ports/ links, so the port is found by scanning /sys/class/virtio-ports/*/name.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

inline constexpr const char* kAgentPortName = "cocoon.agent";

struct PortLocation {
  std::string sysfs_root = "/sys";
  std::string dev_root = "/dev";
  std::string name = kAgentPortName;
};

// Returns the device path (dev_root/vportNpM) of the port, or kNotFound.
Result<std::string> FindPort(const PortLocation& where);
// Retries FindPort until `timeout`: virtio devices may be probed after PID 1 starts, and the
// /dev node may appear after the sysfs entry.
Result<std::string> WaitForPort(const PortLocation& where, std::chrono::milliseconds timeout);

// Opens the port read-write; retries EBUSY (the previous connection's fd is still closing).
Result<UniqueFd> OpenPort(const std::string& path, std::chrono::milliseconds timeout);

// Waits until the host end of the port is connected: a virtio-serial port reports POLLHUP while
// nobody is attached on the host side, and a read then returns 0 at once.
void WaitForHost(int port_fd);

}  // namespace cocoon::agent
