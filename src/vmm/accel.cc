#include "vmm/accel.h"

#include <fcntl.h>

#include <cstring>
#include <sstream>

#include "common/io.h"
#include "common/unique_fd.h"

namespace cocoon::vmm {
namespace {

// True when the first "flags" line of a /proc/cpuinfo text names vmx (Intel) or svm (AMD).
// Every CPU of one host reports the same virtualization flags, so the first line is enough.
bool CpuinfoHasVirtFlag(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    if (key != "flags") continue;
    std::istringstream words(line.substr(colon + 1));
    std::string word;
    while (words >> word) {
      if (word == "vmx" || word == "svm") return true;
    }
    return false;
  }
  return false;
}

}  // namespace

const char* AccelName(Accel accel) { return accel == Accel::kKvm ? "kvm" : "tcg"; }

AccelDecision DetectAccelerator(const std::string& cpuinfo_path, const std::string& kvm_path) {
  auto cpuinfo = ReadFile(cpuinfo_path);
  if (!cpuinfo.ok()) {
    return {Accel::kTcg, "cannot read CPU flags: " + cpuinfo.error().message()};
  }
  if (!CpuinfoHasVirtFlag(*cpuinfo)) {
    // Nested PVM hosts land here: /dev/kvm exists but cannot run an ordinary Linux guest.
    return {Accel::kTcg, "no vmx/svm flag in " + cpuinfo_path};
  }
  UniqueFd kvm(::open(kvm_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm) {
    return {Accel::kTcg, "cannot open " + kvm_path + " read-write: " + std::strerror(errno)};
  }
  return {Accel::kKvm, "CPU has hardware virtualization and " + kvm_path + " opens"};
}

}  // namespace cocoon::vmm
