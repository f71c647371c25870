#include "vmm/qemu_config.h"

#include <string_view>

#include "common/ids.h"

namespace cocoon::vmm {
namespace {

constexpr uint32_t kMinVcpus = 1;
constexpr uint32_t kMaxVcpus = 32;
constexpr uint64_t kMinMemoryMib = 64;
constexpr uint64_t kMaxMemoryMib = 65536;
// x86 Linux keeps 2048 bytes of command line; microvm appends one virtio_mmio.device= entry per
// device (about 45 bytes each), so our part must leave room for them.
constexpr size_t kMaxCmdlineBytes = 1536;
constexpr size_t kMaxTagLength = 31;
// Each NIC costs a virtio-mmio slot and a kernel command line entry; a pod rarely has more than a
// few interfaces.
constexpr size_t kMaxNics = 4;

// "aa:bb:cc:dd:ee:ff", lower or upper case hex.
bool IsMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    char c = mac[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (i % 3 == 2 ? c != ':' : !hex) return false;
  }
  return true;
}

// microvm properties. acpi=off: the guest kernel has no ACPI, and only without ACPI does QEMU
// append the virtio_mmio.device= entries the guest needs to find its devices. No option ROMs:
// qboot loads the kernel itself. PIT and PIC stay: without them the guest cannot calibrate or
// check its timer and hangs at boot. The RTC stays so the guest starts with the right time.
constexpr std::string_view kMachine = "microvm,acpi=off,x-option-roms=off";

// Kernel arguments that only shorten boot, kept in one place for tuning. Each was measured under
// TCG (guest/README.md):
// quiet: the 8250 console is emulated byte by byte; printing the boot log costs ~0.1 s.
// no_timer_check: skips the IO-APIC timer test, several ticks of waiting at boot.
// pci=off: microvm has no PCI bus; probing for one costs time.
// noreplace-smp: skips rewriting SMP alternatives, which TCG must retranslate (~0.2 s).
// tsc_early_khz + tsc=reliable (TCG only): under TCG the guest TSC is the host's, so its rate is
// known; without them the guest calibrates against the emulated PIT, which is slow and, on a
// loaded host, fails, leaving the guest with a 10 ms jiffies clock for its whole life.
// noapictimer (TCG, one vCPU): the TSC-driven clock makes the emulated APIC timer unnecessary
// (~0.2 s of calibration); with more vCPUs it is needed for their ticks.
std::string BootTuningArgs(const QemuConfig& config) {
  std::string args = "quiet no_timer_check pci=off noreplace-smp";
  if (config.accel == Accel::kTcg && config.guest_tsc_khz > 0) {
    args += " tsc_early_khz=" + std::to_string(config.guest_tsc_khz) + " tsc=reliable";
    if (config.vcpus == 1) args += " noapictimer";
  }
  return args;
}

// QemuOpts splits on ',' and takes ",," as a literal comma.
std::string OptValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

Status CheckPath(std::string_view what, const std::string& path) {
  if (path.empty()) return Error(Code::kInvalidArgument, std::string(what) + " path is not set");
  if (path[0] != '/') {
    return Error(Code::kInvalidArgument,
                 std::string(what) + " path '" + path + "' must be absolute");
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Error(Code::kInvalidArgument,
                   std::string(what) + " path '" + path + "' contains a control character");
    }
  }
  return OkStatus();
}

// Names the guest sees (port name, 9p tag): short, no separators QEMU or sysfs would mangle.
Status CheckTag(std::string_view what, const std::string& tag) {
  bool ok = !tag.empty() && tag.size() <= kMaxTagLength;
  for (char c : tag) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-');
  }
  if (ok) return OkStatus();
  return Error(Code::kInvalidArgument, std::string(what) + " '" + tag + "' must be 1 to " +
                                           std::to_string(kMaxTagLength) +
                                           " characters of [A-Za-z0-9_.-]");
}

Status Validate(const QemuConfig& c) {
  if (c.qemu_binary.empty()) return Error(Code::kInvalidArgument, "qemu binary is not set");
  if (Status s = ValidateId(c.name); !s.ok()) return s.error().Wrap("vm name");
  if (c.vcpus < kMinVcpus || c.vcpus > kMaxVcpus) {
    return Error(Code::kInvalidArgument, "vcpus is " + std::to_string(c.vcpus) + "; it must be " +
                                             std::to_string(kMinVcpus) + " to " +
                                             std::to_string(kMaxVcpus));
  }
  if (c.memory_mib < kMinMemoryMib || c.memory_mib > kMaxMemoryMib) {
    return Error(Code::kInvalidArgument, "memory is " + std::to_string(c.memory_mib) +
                                             " MiB; it must be " + std::to_string(kMinMemoryMib) +
                                             " to " + std::to_string(kMaxMemoryMib) + " MiB");
  }
  COCOON_RETURN_IF_ERROR(CheckPath("kernel", c.kernel));
  COCOON_RETURN_IF_ERROR(CheckPath("initrd", c.initrd));
  COCOON_RETURN_IF_ERROR(CheckPath("console log", c.console_log));
  COCOON_RETURN_IF_ERROR(CheckPath("qmp socket", c.qmp_socket));
  if (!c.share_dir.empty()) {
    COCOON_RETURN_IF_ERROR(CheckPath("share", c.share_dir));
    COCOON_RETURN_IF_ERROR(CheckTag("share tag", c.share_tag));
  }
  if (c.agent_fd < 3) {
    return Error(Code::kInvalidArgument,
                 "agent fd is " + std::to_string(c.agent_fd) +
                     "; it must be an open socket numbered 3 or more (0-2 are QEMU's stdio)");
  }
  COCOON_RETURN_IF_ERROR(CheckTag("agent port name", c.agent_port_name));
  if (c.nics.size() > kMaxNics) {
    return Error(Code::kInvalidArgument, std::to_string(c.nics.size()) +
                                             " network interfaces; the limit is " +
                                             std::to_string(kMaxNics));
  }
  for (size_t i = 0; i < c.nics.size(); ++i) {
    const QemuConfig::Nic& nic = c.nics[i];
    std::string what = "network interface " + std::to_string(i);
    if (nic.tap_fd < 3) {
      return Error(Code::kInvalidArgument, what + ": tap fd is " + std::to_string(nic.tap_fd) +
                                               "; it must be an open fd numbered 3 or more");
    }
    if (!IsMac(nic.mac)) {
      return Error(Code::kInvalidArgument, what + ": '" + nic.mac + "' is not a MAC address");
    }
  }
  for (char c2 : c.kernel_cmdline_extra) {
    if (static_cast<unsigned char>(c2) < 0x20 || c2 == 0x7f) {
      return Error(Code::kInvalidArgument, "kernel command line contains a control character");
    }
  }
  if (size_t n = KernelCmdline(c).size(); n > kMaxCmdlineBytes) {
    return Error(Code::kInvalidArgument, "kernel command line is " + std::to_string(n) +
                                             " bytes; the limit is " +
                                             std::to_string(kMaxCmdlineBytes));
  }
  return OkStatus();
}

void Add(std::vector<std::string>& argv, std::initializer_list<std::string> args) {
  argv.insert(argv.end(), args);
}

}  // namespace

std::string KernelCmdline(const QemuConfig& config) {
  // reboot=t: a guest reboot is a triple fault, which -no-reboot turns into QEMU exiting; that is
  // how the guest powers off without ACPI. panic=-1: a panicking guest reboots at once, so it
  // ends the same way instead of hanging.
  std::string cmdline = "console=ttyS0 reboot=t panic=-1 " + BootTuningArgs(config);
  if (!config.kernel_cmdline_extra.empty()) cmdline += " " + config.kernel_cmdline_extra;
  return cmdline;
}

Result<std::vector<std::string>> BuildQemuArgv(const QemuConfig& config) {
  COCOON_RETURN_IF_ERROR(Validate(config));
  const bool kvm = config.accel == Accel::kKvm;
  std::string accel = kvm ? "kvm" : "tcg";
  // One TCG thread per vCPU; a single thread would serialize all vCPUs.
  if (!kvm && config.vcpus > 1) accel += ",thread=multi";

  std::vector<std::string> argv = {config.qemu_binary};
  Add(argv, {"-name", "cocoon-" + config.name});
  Add(argv, {"-M", std::string(kMachine)});
  Add(argv, {"-accel", accel});
  Add(argv, {"-cpu", kvm ? "host" : "max"});
  Add(argv, {"-smp", std::to_string(config.vcpus)});
  Add(argv, {"-m", std::to_string(config.memory_mib) + "M"});
  Add(argv, {"-nodefaults", "-no-user-config", "-nographic", "-no-reboot"});
  // Seccomp filter: QEMU may not spawn processes, change ids or use obsolete system calls.
  Add(argv,
      {"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
  Add(argv, {"-kernel", config.kernel, "-initrd", config.initrd, "-append", KernelCmdline(config)});
  Add(argv, {"-chardev", "file,id=console,path=" + OptValue(config.console_log)});
  Add(argv, {"-serial", "chardev:console"});
  Add(argv,
      {"-chardev", "socket,id=qmp,path=" + OptValue(config.qmp_socket) + ",server=on,wait=off"});
  Add(argv, {"-mon", "chardev=qmp,mode=control"});
  // The host already holds the other end of this connected socket; QEMU inherits the fd.
  Add(argv, {"-chardev", "socket,id=agent,fd=" + std::to_string(config.agent_fd)});
  Add(argv, {"-device", "virtio-serial-device"});
  Add(argv, {"-device", "virtserialport,chardev=agent,name=" + config.agent_port_name});
  if (!config.share_dir.empty()) {
    // multidevs=remap keeps inode numbers unique when the share spans several host filesystems
    // (the rootfs overlay plus bind-mounted volumes).
    // Limitation: QEMU 7.2 in Debian 12 refuses to create special files (FIFOs, Unix sockets,
    // device nodes) on a passthrough share ("broken or compromised client detected"), with or
    // without -sandbox; the mapped security models would avoid it but store symlinks and owners
    // in a form the host's rootfs snapshot cannot keep.
    Add(argv, {"-fsdev", "local,id=share,path=" + OptValue(config.share_dir) +
                             ",security_model=passthrough,multidevs=remap"});
    Add(argv, {"-device", "virtio-9p-device,fsdev=share,mount_tag=" + config.share_tag});
  }
  for (size_t i = 0; i < config.nics.size(); ++i) {
    const QemuConfig::Nic& nic = config.nics[i];
    std::string id = "net" + std::to_string(i);
    // vhost=off: vhost-net needs /dev/vhost-net, which a host may lack, and TCG gains little.
    Add(argv, {"-netdev", "tap,id=" + id + ",fd=" + std::to_string(nic.tap_fd) + ",vhost=off"});
    Add(argv, {"-device", "virtio-net-device,netdev=" + id + ",mac=" + nic.mac});
  }
  return argv;
}

}  // namespace cocoon::vmm
