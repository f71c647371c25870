// Accelerator choice: KVM only when the CPU advertises hardware virtualization (vmx/svm) and
// /dev/kvm opens read-write; otherwise TCG. Nested PVM hosts expose /dev/kvm without vmx/svm and
// cannot boot a Linux guest with it, which is why the flag check comes first.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace cocoon::vmm {

enum class Accel { kKvm, kTcg };

const char* AccelName(Accel accel);

struct AccelDecision {
  Accel accel = Accel::kTcg;
  std::string reason;  // one line a person can read, e.g. "no vmx/svm flag in /proc/cpuinfo"
};

// Paths are parameters so tests can point them at fixtures.
AccelDecision DetectAccelerator(const std::string& cpuinfo_path = "/proc/cpuinfo",
                                const std::string& kvm_path = "/dev/kvm");

// Under TCG the guest reads the host's TSC unchanged, so the host's TSC rate is the guest's.
// True when the host kernel itself trusts the TSC (it is the current clocksource).
bool HostClocksourceIsTsc(
    const std::string& path = "/sys/devices/system/clocksource/clocksource0/current_clocksource");
// Measures the TSC rate against CLOCK_MONOTONIC_RAW over `window`; 0 where there is no TSC.
uint64_t MeasureTscKhz(std::chrono::milliseconds window);
// The host TSC rate in kHz, measured once per process (20 ms); nullopt when the host does not
// use the TSC as its clocksource.
std::optional<uint64_t> HostTscKhz();

}  // namespace cocoon::vmm
