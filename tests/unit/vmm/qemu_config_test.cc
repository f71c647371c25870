#include "vmm/qemu_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace cocoon::vmm {
namespace {

using ::testing::HasSubstr;

QemuConfig ValidConfig() {
  QemuConfig c;
  c.name = "sb1";
  c.kernel = "/cache/bzImage";
  c.initrd = "/cache/initrd.cpio";
  c.console_log = "/run/cocoon/sb1/console.log";
  c.qmp_socket = "/run/cocoon/sb1/qmp.sock";
  c.agent_fd = 7;
  return c;
}

const std::vector<std::string> kTail = {
    "-kernel",  "/cache/bzImage",
    "-initrd",  "/cache/initrd.cpio",
    "-append",  "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp",
    "-chardev", "file,id=console,path=/run/cocoon/sb1/console.log",
    "-serial",  "chardev:console",
    "-chardev", "socket,id=qmp,path=/run/cocoon/sb1/qmp.sock,server=on,wait=off",
    "-mon",     "chardev=qmp,mode=control",
    "-chardev", "socket,id=agent,fd=7",
    "-device",  "virtio-serial-device",
    "-device",  "virtserialport,chardev=agent,name=cocoon.agent"};

std::vector<std::string> Head(const std::string& accel, const std::string& cpu,
                              const std::string& smp, const std::string& mem) {
  return {"qemu-system-x86_64",
          "-name",
          "cocoon-sb1",
          "-M",
          "microvm,acpi=off,x-option-roms=off",
          "-accel",
          accel,
          "-cpu",
          cpu,
          "-smp",
          smp,
          "-m",
          mem,
          "-nodefaults",
          "-no-user-config",
          "-nographic",
          "-no-reboot",
          "-sandbox",
          "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"};
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(BuildQemuArgvTest, TcgSingleVcpu) {
  auto argv = BuildQemuArgv(ValidConfig());
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_EQ(*argv, Concat(Head("tcg", "max", "1", "256M"), kTail));
}

TEST(BuildQemuArgvTest, TcgSeveralVcpusUsesOneThreadPerVcpu) {
  QemuConfig c = ValidConfig();
  c.vcpus = 4;
  c.memory_mib = 1024;
  auto argv = BuildQemuArgv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_EQ(*argv, Concat(Head("tcg,thread=multi", "max", "4", "1024M"), kTail));
}

TEST(BuildQemuArgvTest, Kvm) {
  QemuConfig c = ValidConfig();
  c.accel = Accel::kKvm;
  c.vcpus = 2;
  auto argv = BuildQemuArgv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_EQ(*argv, Concat(Head("kvm", "host", "2", "256M"), kTail));
}

TEST(BuildQemuArgvTest, ShareAndCustomNames) {
  QemuConfig c = ValidConfig();
  c.qemu_binary = "/usr/bin/qemu-system-x86_64";
  c.share_dir = "/run/cocoon/sb1/share";
  c.share_tag = "rootshare";
  c.agent_port_name = "agent.v1";
  c.kernel_cmdline_extra = "cocoon.debug=1";
  auto argv = BuildQemuArgv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  std::vector<std::string> want = Head("tcg", "max", "1", "256M");
  want[0] = "/usr/bin/qemu-system-x86_64";
  want = Concat(want, kTail);
  auto append = std::find(want.begin(), want.end(), "-append");
  ASSERT_NE(append, want.end());
  *(append + 1) =
      "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp cocoon.debug=1";
  want.back() = "virtserialport,chardev=agent,name=agent.v1";
  want = Concat(want, {"-fsdev",
                       "local,id=share,path=/run/cocoon/sb1/share,security_model=passthrough,"
                       "multidevs=remap",
                       "-device", "virtio-9p-device,fsdev=share,mount_tag=rootshare"});
  EXPECT_EQ(*argv, want);
}

TEST(BuildQemuArgvTest, NicsAreTapFdsWithTheirBootMacs) {
  QemuConfig c = ValidConfig();
  c.nics = {{7, "52:54:00:c0:c0:00"}, {9, "52:54:00:C0:C0:01"}};
  c.netns_fd = 12;  // a spawn option, never in the argv
  auto argv = BuildQemuArgv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_EQ(*argv, Concat(Concat(Head("tcg", "max", "1", "256M"), kTail),
                          {"-netdev", "tap,id=net0,fd=7,vhost=off", "-device",
                           "virtio-net-device,netdev=net0,mac=52:54:00:c0:c0:00", "-netdev",
                           "tap,id=net1,fd=9,vhost=off", "-device",
                           "virtio-net-device,netdev=net1,mac=52:54:00:C0:C0:01"}));
}

TEST(BuildQemuArgvTest, CommasInPathsAreEscapedForQemuOpts) {
  QemuConfig c = ValidConfig();
  c.console_log = "/run/a,b/console.log";
  c.qmp_socket = "/run/a,b/qmp.sock";
  c.share_dir = "/run/a,b/share";
  auto argv = BuildQemuArgv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_THAT(*argv, ::testing::Contains("file,id=console,path=/run/a,,b/console.log"));
  EXPECT_THAT(*argv,
              ::testing::Contains("socket,id=qmp,path=/run/a,,b/qmp.sock,server=on,wait=off"));
  EXPECT_THAT(*argv, ::testing::Contains("local,id=share,path=/run/a,,b/share,security_model="
                                         "passthrough,multidevs=remap"));
}

TEST(KernelCmdlineTest, TscRateOnlyUnderTcg) {
  QemuConfig c = ValidConfig();
  c.guest_tsc_khz = 2445426;
  EXPECT_EQ(KernelCmdline(c),
            "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp "
            "tsc_early_khz=2445426 tsc=reliable noapictimer");
  // With more vCPUs the APIC timer drives their ticks and stays on.
  c.vcpus = 2;
  EXPECT_EQ(KernelCmdline(c),
            "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp "
            "tsc_early_khz=2445426 tsc=reliable");
  // Under KVM the guest gets the rate from kvm-clock; the host's TSC rate may not apply.
  c.accel = Accel::kKvm;
  EXPECT_EQ(KernelCmdline(c),
            "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp");
}

TEST(KernelCmdlineTest, StartsWithConsoleAndEndsWithExtra) {
  QemuConfig c = ValidConfig();
  EXPECT_EQ(KernelCmdline(c),
            "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp");
  c.kernel_cmdline_extra = "a=1 b";
  EXPECT_EQ(KernelCmdline(c),
            "console=ttyS0 reboot=t panic=-1 quiet no_timer_check pci=off noreplace-smp a=1 b");
}

TEST(BuildQemuArgvTest, LimitsAreInclusive) {
  for (uint32_t vcpus : {1u, 32u}) {
    QemuConfig c = ValidConfig();
    c.vcpus = vcpus;
    EXPECT_TRUE(BuildQemuArgv(c).ok()) << vcpus;
  }
  for (uint64_t mib : {64ull, 65536ull}) {
    QemuConfig c = ValidConfig();
    c.memory_mib = mib;
    EXPECT_TRUE(BuildQemuArgv(c).ok()) << mib;
  }
  QemuConfig c = ValidConfig();
  c.agent_fd = 3;
  EXPECT_TRUE(BuildQemuArgv(c).ok());
}

struct BadCase {
  const char* label;
  void (*mutate)(QemuConfig&);
  const char* message;
};

class BuildQemuArgvErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BuildQemuArgvErrorTest, RejectsWithClearMessage) {
  QemuConfig c = ValidConfig();
  GetParam().mutate(c);
  auto argv = BuildQemuArgv(c);
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(argv.error().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BuildQemuArgvErrorTest,
    ::testing::Values(
        BadCase{"NoBinary", [](QemuConfig& c) { c.qemu_binary.clear(); }, "qemu binary is not set"},
        BadCase{"EmptyName", [](QemuConfig& c) { c.name.clear(); }, "vm name: invalid id"},
        BadCase{"NameWithComma", [](QemuConfig& c) { c.name = "a,b"; },
                "vm name: invalid id 'a,b'"},
        BadCase{"NameLikeOption", [](QemuConfig& c) { c.name = "-x"; }, "must not start"},
        BadCase{"ZeroVcpus", [](QemuConfig& c) { c.vcpus = 0; }, "vcpus is 0; it must be 1 to 32"},
        BadCase{"TooManyVcpus", [](QemuConfig& c) { c.vcpus = 33; },
                "vcpus is 33; it must be 1 to 32"},
        BadCase{"TooLittleMemory", [](QemuConfig& c) { c.memory_mib = 63; },
                "memory is 63 MiB; it must be 64 to 65536 MiB"},
        BadCase{"TooMuchMemory", [](QemuConfig& c) { c.memory_mib = 65537; },
                "memory is 65537 MiB"},
        BadCase{"NoKernel", [](QemuConfig& c) { c.kernel.clear(); }, "kernel path is not set"},
        BadCase{"RelativeKernel", [](QemuConfig& c) { c.kernel = "bzImage"; },
                "kernel path 'bzImage' must be absolute"},
        BadCase{"NoInitrd", [](QemuConfig& c) { c.initrd.clear(); }, "initrd path is not set"},
        BadCase{"NoConsoleLog", [](QemuConfig& c) { c.console_log.clear(); },
                "console log path is not set"},
        BadCase{"NoQmpSocket", [](QemuConfig& c) { c.qmp_socket.clear(); },
                "qmp socket path is not set"},
        BadCase{"NewlineInPath", [](QemuConfig& c) { c.qmp_socket = "/run/a\nb"; },
                "contains a control character"},
        BadCase{"RelativeShare", [](QemuConfig& c) { c.share_dir = "share"; },
                "share path 'share' must be absolute"},
        BadCase{"BadShareTag",
                [](QemuConfig& c) {
                  c.share_dir = "/s";
                  c.share_tag = "a,b";
                },
                "share tag 'a,b' must be 1 to 31 characters"},
        BadCase{"NoAgentFd", [](QemuConfig& c) { c.agent_fd = -1; },
                "agent fd is -1; it must be an open socket numbered 3 or more"},
        BadCase{"StdioAgentFd", [](QemuConfig& c) { c.agent_fd = 2; }, "agent fd is 2"},
        BadCase{"EmptyPortName", [](QemuConfig& c) { c.agent_port_name.clear(); },
                "agent port name '' must be"},
        BadCase{"PortNameWithComma", [](QemuConfig& c) { c.agent_port_name = "a,id=x"; },
                "agent port name 'a,id=x'"},
        BadCase{"ControlCharInCmdline", [](QemuConfig& c) { c.kernel_cmdline_extra = "a\nb"; },
                "kernel command line contains a control character"},
        BadCase{"StdioTapFd",
                [](QemuConfig& c) {
                  c.nics = {{1, "52:54:00:00:00:01"}};
                },
                "network interface 0: tap fd is 1; it must be an open fd numbered 3 or more"},
        BadCase{"BadNicMac",
                [](QemuConfig& c) {
                  c.nics = {{5, "52:54:00:00:00"}};
                },
                "network interface 0: '52:54:00:00:00' is not a MAC address"},
        BadCase{"NicMacWithComma",
                [](QemuConfig& c) {
                  c.nics = {{5, "52:54:00:00:00:0,"}};
                },
                "'52:54:00:00:00:0,' is not a MAC address"},
        BadCase{"TooManyNics",
                [](QemuConfig& c) {
                  c.nics.assign(5, QemuConfig::Nic{5, "52:54:00:00:00:01"});
                },
                "5 network interfaces; the limit is 4"},
        BadCase{"HugeCmdline",
                [](QemuConfig& c) { c.kernel_cmdline_extra = std::string(1600, 'x'); },
                "the limit is 1536"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.label; });

}  // namespace
}  // namespace cocoon::vmm
