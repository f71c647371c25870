// Runs the real QEMU. The boot tests need a guest kernel: the path in COCOON_TEST_KERNEL (CI sets
// it to the built kernel); without that variable they are skipped. A missing QEMU fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "busybox_initramfs.h"
#include "common/io.h"
#include "common/process.h"
#include "test_dir.h"
#include "vmm/vm.h"

namespace cocoon::vmm {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Finds the agent port by name in sysfs (the guest has no udev), makes its node, says "ready",
// then acts on the cocoon_test= kernel argument (the kernel hands it to init as a variable).
constexpr char kInit[] = R"sh(export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "cocoon-test-init: mode=$cocoon_test"
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name)" = cocoon.agent ] && dev=$(cat $p/dev)
done
[ -n "$dev" ] || { echo "cocoon-test-init: no agent port"; reboot -f; }
mknod /dev/agent c ${dev%%:*} ${dev##*:}
exec 3<>/dev/agent
echo ready >&3
case "$cocoon_test" in
  echo) read -r line <&3; echo "got:$line" >&3 ;;
  hang) while :; do sleep 1; done ;;
  cpus) echo "cpus:$(cat /sys/devices/system/cpu/online)" >&3 ;;
  share)
    mount -t 9p -o trans=virtio,version=9p2000.L cocoon /mnt &&
    echo hello > /mnt/hello && chown 1234:5678 /mnt/hello && mkdir /mnt/dir &&
    echo share:ok >&3 || echo share:failed >&3
    mkfifo /mnt/fifo && echo mkfifo:ok >&3 || echo mkfifo:failed >&3 ;;
esac
reboot -f
)sh";

// A zombie counts as gone: whoever inherited it may reap it late.
bool ProcessExists(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren == std::string::npos || stat->substr(paren + 2, 1) != "Z";
}

// The targets of a process's open fds ("socket:[123]", "/dev/null", ...).
std::vector<std::string> OpenFiles(pid_t pid) {
  std::vector<std::string> targets;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 1024; ++fd) {
    char buf[256];
    ssize_t n = ::readlink((dir + "/" + std::to_string(fd)).c_str(), buf, sizeof(buf));
    if (n > 0) targets.emplace_back(buf, static_cast<size_t>(n));
  }
  return targets;
}

std::string FdTarget(int fd) {
  char buf[256];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// True when this process has no children left, reaped or not.
bool NoChildren() {
  int status;
  return ::waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD;
}

// Reads one '\n'-terminated line within `timeout`.
Result<std::string> ReadLine(int fd, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(Code::kDeadlineExceeded, "no line; got '" + line + "'");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n == 0) return Error(Code::kUnavailable, "EOF; got '" + line + "'");
    if (n < 0) return Error::FromErrno(errno, "read");
    if (c == '\n') return line;
    line += c;
  }
}

std::optional<int> WaitExit(Vm& vm, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (auto code = vm.Exited()) return code;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return vm.Exited();
}

class VmRealQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    ASSERT_TRUE(MakeSocketPair(&host_end_, &qemu_end_).ok());
    config_.name = "vmtest";
    config_.console_log = dir_.Join("console.log");
    config_.qmp_socket = dir_.Join("qmp.sock");
    config_.agent_fd = qemu_end_.get();
    config_.initrd = dir_.Join("initrd.cpio");
  }

  // Sets the kernel from COCOON_TEST_KERNEL and writes the test initramfs.
  void PrepareBoot(const std::string& mode) {
    const char* kernel = std::getenv("COCOON_TEST_KERNEL");
    if (kernel == nullptr || *kernel == '\0') {
      GTEST_SKIP() << "COCOON_TEST_KERNEL is not set; it names the guest kernel to boot";
    }
    ASSERT_TRUE(PathExists(kernel)) << "COCOON_TEST_KERNEL=" << kernel << " does not exist";
    config_.kernel = kernel;
    ASSERT_TRUE(testing::WriteBusyboxInitramfs(config_.initrd, kInit).ok());
    config_.kernel_cmdline_extra = "cocoon_test=" + mode;
  }

  std::string Console() {
    auto text = ReadFile(config_.console_log);
    return text.ok() ? *text : "(no console log: " + text.error().message() + ")";
  }

  testing::TestDir dir_;
  UniqueFd host_end_;
  UniqueFd qemu_end_;
  QemuConfig config_;
};

TEST_F(VmRealQemu, QemuIsInstalled) {
  auto run = RunCapture({config_.qemu_binary, "--version"});
  ASSERT_TRUE(run.ok()) << run.error().message();
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_THAT(run->output, HasSubstr("QEMU emulator version"));
}

TEST_F(VmRealQemu, MissingKernelGivesQemusErrorAndLeavesNoProcess) {
  config_.kernel = dir_.Join("no-such-bzImage");
  ASSERT_TRUE(WriteFileAtomic(config_.initrd, "").ok());
  auto vm = Vm::Launch(config_);
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(vm.error().message(), HasSubstr("QEMU exited during start-up (exit code 1)"));
  EXPECT_THAT(vm.error().message(),
              HasSubstr("could not open kernel file '" + config_.kernel + "'"));
  EXPECT_TRUE(NoChildren());
  EXPECT_FALSE(PathExists(config_.qmp_socket));
}

TEST_F(VmRealQemu, MissingQemuBinaryFailsClearly) {
  config_.qemu_binary = dir_.Join("no-qemu");
  config_.kernel = dir_.Join("bzImage");
  auto vm = Vm::Launch(config_);
  ASSERT_FALSE(vm.ok());
  EXPECT_THAT(vm.error().message(), HasSubstr("launch QEMU: execute " + config_.qemu_binary));
  EXPECT_TRUE(NoChildren());
}

TEST_F(VmRealQemu, UnwritableLogDirFails) {
  config_.kernel = dir_.Join("bzImage");
  config_.console_log = dir_.Join("missing/console.log");
  auto vm = Vm::Launch(config_);
  ASSERT_FALSE(vm.ok());
  EXPECT_THAT(vm.error().message(), HasSubstr("create " + config_.console_log + ".qemu"));
  EXPECT_TRUE(NoChildren());
}

// The host writes before the guest has even booted: the bytes must wait in the channel, not be
// dropped. The guest reboots at the end, which -no-reboot turns into QEMU exiting with 0.
TEST_F(VmRealQemu, BootsTalksOnAgentPortAndPowersOff) {
  PrepareBoot("echo");
  if (IsSkipped()) return;
  auto start = Clock::now();
  auto vm = Vm::Launch(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto launched = Clock::now();
  ASSERT_TRUE(WriteAll(host_end_.get(), "ping\n").ok());
  auto ready = ReadLine(host_end_.get(), milliseconds(60000));
  ASSERT_TRUE(ready.ok()) << ready.error().message() << "\nconsole:\n" << Console();
  auto first_byte = Clock::now();
  EXPECT_EQ(*ready, "ready");
  auto echoed = ReadLine(host_end_.get(), milliseconds(10000));
  ASSERT_TRUE(echoed.ok()) << echoed.error().message() << "\nconsole:\n" << Console();
  EXPECT_EQ(*echoed, "got:ping");
  std::optional<int> code = WaitExit(**vm, milliseconds(30000));
  ASSERT_TRUE(code.has_value()) << "QEMU still running after the guest rebooted\n" << Console();
  EXPECT_EQ(*code, 0) << (*vm)->QemuStderr();
  EXPECT_THAT(Console(), HasSubstr("cocoon-test-init: mode=echo"));
  auto ms = [](auto d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
  RecordProperty("launch_ms", static_cast<int>(ms(launched - start)));
  RecordProperty("first_agent_byte_ms", static_cast<int>(ms(first_byte - start)));
  std::printf("launch returned after %lld ms; first agent byte after %lld ms\n",
              static_cast<long long>(ms(launched - start)),
              static_cast<long long>(ms(first_byte - start)));
}

// Several vCPUs run as one TCG thread each (thread=multi); the guest must bring them all up.
TEST_F(VmRealQemu, BootsWithTwoVcpus) {
  PrepareBoot("cpus");
  if (IsSkipped()) return;
  config_.vcpus = 2;
  auto vm = Vm::Launch(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto ready = ReadLine(host_end_.get(), milliseconds(60000));
  ASSERT_TRUE(ready.ok()) << ready.error().message() << "\nconsole:\n" << Console();
  auto cpus = ReadLine(host_end_.get(), milliseconds(10000));
  ASSERT_TRUE(cpus.ok()) << cpus.error().message() << "\nconsole:\n" << Console();
  EXPECT_EQ(*cpus, "cpus:0-1") << Console();
  EXPECT_TRUE(WaitExit(**vm, milliseconds(30000)).has_value());
}

TEST_F(VmRealQemu, StopQuitsRunningVmAndLeavesNoProcess) {
  PrepareBoot("hang");
  if (IsSkipped()) return;
  auto vm = Vm::Launch(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto ready = ReadLine(host_end_.get(), milliseconds(60000));
  ASSERT_TRUE(ready.ok()) << ready.error().message() << "\nconsole:\n" << Console();
  pid_t pid = (*vm)->pid();
  // QEMU holds its end of the agent channel and nothing of ours beyond it.
  std::vector<std::string> files = OpenFiles(pid);
  EXPECT_THAT(files, ::testing::Contains(FdTarget(qemu_end_.get())));
  EXPECT_THAT(files, ::testing::Not(::testing::Contains(FdTarget(host_end_.get()))));
  auto start = Clock::now();
  EXPECT_EQ((*vm)->Stop(milliseconds(5000)), 0);  // 0: QEMU quit on request, not killed
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
  EXPECT_FALSE((*vm)->running());
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_TRUE(NoChildren());
}

// A QEMU that no longer answers (stopped here) is killed once the timeout has passed.
TEST_F(VmRealQemu, StopKillsUnresponsiveQemu) {
  PrepareBoot("hang");
  if (IsSkipped()) return;
  auto vm = Vm::Launch(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  pid_t pid = (*vm)->pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  auto start = Clock::now();
  EXPECT_EQ((*vm)->Stop(milliseconds(300)), 128 + SIGKILL);
  auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_TRUE(NoChildren());
}

TEST_F(VmRealQemu, DestructorKillsRunningVm) {
  PrepareBoot("hang");
  if (IsSkipped()) return;
  pid_t pid;
  {
    auto vm = Vm::Launch(config_);
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    pid = (*vm)->pid();
    ASSERT_TRUE(ProcessExists(pid));
  }
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_TRUE(NoChildren());
}

// parent_death_signal: QEMU must not outlive a cocoon process that dies without cleaning up.
TEST_F(VmRealQemu, QemuDiesWithItsParent) {
  PrepareBoot("hang");
  if (IsSkipped()) return;
  UniqueFd pid_r, pid_w;
  ASSERT_TRUE(MakePipe(&pid_r, &pid_w).ok());
  pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    auto vm = Vm::Launch(config_);
    pid_t qemu = vm.ok() ? (*vm)->pid() : -1;
    (void)WriteAll(pid_w.get(), std::string_view(reinterpret_cast<char*>(&qemu), sizeof(qemu)));
    ::pause();  // until SIGKILL: no destructor runs
    ::_exit(0);
  }
  pid_w.reset();
  pid_t qemu = -1;
  Status read = ReadExact(pid_r.get(), &qemu, sizeof(qemu));
  ::kill(parent, SIGKILL);
  int status;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  ASSERT_TRUE(read.ok()) << read.error().message();
  ASSERT_GT(qemu, 0) << "launch failed in the child";
  auto deadline = Clock::now() + milliseconds(5000);
  while (ProcessExists(qemu) && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_FALSE(ProcessExists(qemu));
  if (ProcessExists(qemu)) ::kill(qemu, SIGKILL);
}

// 9p passthrough makes QEMU chown files on the host for the guest; -sandbox on must allow that.
TEST_F(VmRealQemu, ShareWorksUnderSeccomp) {
  PrepareBoot("share");
  if (IsSkipped()) return;
  config_.share_dir = dir_.Join("share");
  ASSERT_EQ(::mkdir(config_.share_dir.c_str(), 0755), 0);
  auto vm = Vm::Launch(config_);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto ready = ReadLine(host_end_.get(), milliseconds(60000));
  ASSERT_TRUE(ready.ok()) << ready.error().message() << "\nconsole:\n" << Console();
  auto result = ReadLine(host_end_.get(), milliseconds(20000));
  ASSERT_TRUE(result.ok()) << result.error().message() << "\nconsole:\n" << Console();
  EXPECT_EQ(*result, "share:ok") << Console();
  // Limitation (QEMU 7.2 in Debian 12): special files (FIFOs, sockets, device nodes) cannot be
  // created on a passthrough share, seccomp or not; QEMU logs "broken or compromised client".
  // Reported, not asserted, so that a fixed QEMU shows up in the log.
  auto fifo = ReadLine(host_end_.get(), milliseconds(20000));
  ASSERT_TRUE(fifo.ok()) << fifo.error().message();
  std::printf("mkfifo on the 9p share: %s\n", fifo->c_str());
  ASSERT_TRUE(WaitExit(**vm, milliseconds(30000)).has_value());
  auto hello = ReadFile(config_.share_dir + "/hello");
  ASSERT_TRUE(hello.ok()) << hello.error().message();
  EXPECT_EQ(*hello, "hello\n");
  struct stat st;
  ASSERT_EQ(::stat((config_.share_dir + "/hello").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  ASSERT_EQ(::stat((config_.share_dir + "/dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

}  // namespace
}  // namespace cocoon::vmm
