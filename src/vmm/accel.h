// Accelerator choice: KVM only when the CPU advertises hardware virtualization (vmx/svm) and
// /dev/kvm opens read-write; otherwise TCG. Nested PVM hosts expose /dev/kvm without vmx/svm and
// cannot boot a Linux guest with it, which is why the flag check comes first.
#pragma once

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

}  // namespace cocoon::vmm
