// Facts about the guest for GuestDetails: kernel, CPUs, memory, uptime.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace cocoon::agent {

struct KernelInfo {
  std::string release;
  std::string version;
  std::string machine;
};

KernelInfo ReadKernelInfo();
uint32_t OnlineCpus();
// Parses the MemTotal line of /proc/meminfo ("MemTotal:  123 kB") into bytes.
Result<uint64_t> ParseMemTotal(const std::string& meminfo);
// Seconds since boot (CLOCK_BOOTTIME), the clock /proc/uptime shows.
double UptimeSeconds();

}  // namespace cocoon::agent
