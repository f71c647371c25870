#include "vmm/accel.h"

#include <fcntl.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <cstring>
#include <sstream>
#include <thread>

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

bool HostClocksourceIsTsc(const std::string& path) {
  auto text = ReadFile(path, 4096);
  return text.ok() && (*text == "tsc\n" || *text == "tsc");
}

uint64_t MeasureTscKhz(std::chrono::milliseconds window) {
#if defined(__x86_64__)
  // Each sample brackets the clock read with two TSC reads and takes their middle; of a few
  // tries the tightest bracket wins, so a page fault or an interrupt in one try does not skew it.
  auto sample = [](uint64_t* tsc, int64_t* ns) {
    uint64_t best_width = UINT64_MAX;
    for (int i = 0; i < 5; ++i) {
      uint64_t before = __rdtsc();
      timespec ts;
      ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
      uint64_t after = __rdtsc();
      if (after - before < best_width) {
        best_width = after - before;
        *tsc = before + (after - before) / 2;
        *ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      }
    }
  };
  uint64_t tsc0 = 0, tsc1 = 0;
  int64_t ns0 = 0, ns1 = 0;
  sample(&tsc0, &ns0);
  std::this_thread::sleep_for(window);
  sample(&tsc1, &ns1);
  if (ns1 <= ns0 || tsc1 <= tsc0) return 0;
  auto khz = static_cast<long double>(tsc1 - tsc0) * 1e6L / static_cast<long double>(ns1 - ns0);
  return static_cast<uint64_t>(khz + 0.5L);
#else
  (void)window;
  return 0;
#endif
}

std::optional<uint64_t> HostTscKhz() {
  static const std::optional<uint64_t> khz = []() -> std::optional<uint64_t> {
    if (!HostClocksourceIsTsc()) return std::nullopt;
    uint64_t measured = MeasureTscKhz(std::chrono::milliseconds(20));
    if (measured == 0) return std::nullopt;
    return measured;
  }();
  return khz;
}

}  // namespace cocoon::vmm
