#include "agent/guest_info.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sstream>

namespace cocoon::agent {

KernelInfo ReadKernelInfo() {
  utsname u{};
  if (::uname(&u) != 0) return KernelInfo{};
  return KernelInfo{u.release, u.version, u.machine};
}

uint32_t OnlineCpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<uint32_t>(n) : 0;
}

Result<uint64_t> ParseMemTotal(const std::string& meminfo) {
  std::istringstream in(meminfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream fields(line.substr(9));
    uint64_t value = 0;
    std::string unit;
    if (!(fields >> value)) break;
    fields >> unit;
    if (unit.empty()) return value;
    if (unit == "kB") return value * 1024;
    return Error(Code::kInternal, "unexpected MemTotal unit '" + unit + "'");
  }
  return Error(Code::kNotFound, "no MemTotal line in meminfo");
}

double UptimeSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace cocoon::agent
