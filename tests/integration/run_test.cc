// `cocoon run` end to end: real VMs, real guest kernel, real agent and crun in the guest.
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/io.h"
#include "harness.h"

namespace cocoon::itest {
namespace {

using RunTest = CocoonTest;

TEST_F(RunTest, UnameShowsTheGuestKernel) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"uname", "-r"});
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  utsname host;
  ASSERT_EQ(::uname(&host), 0);
  ASSERT_FALSE(o.out.empty());
  EXPECT_NE(o.out, std::string(host.release) + "\n") << "the container saw the host kernel";
  EXPECT_EQ(o.out.rfind("6.1", 0), 0u) << o.out;  // built from Debian's linux-source-6.1
}

TEST_F(RunTest, StdoutStderrAndExitCode) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo out; echo err >&2; exit 3"});
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");
}

TEST_F(RunTest, PipedStdinReachesTheProcessAndEofEndsIt) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"cat"});
  Outcome o = Cocoon({"run", "--bundle", bundle, id}, "abc");
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "abc");
}

TEST_F(RunTest, SigkillInsideGives137) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo before; kill -9 $$; echo after"});
  // The kernel shields a pid namespace's init from its own namespace's SIGKILL, so the process
  // runs in the guest's pid namespace here, where it is an ordinary process.
  EditSpec(bundle, [](nlohmann::json& spec) {
    auto& ns = spec["linux"]["namespaces"];
    for (auto it = ns.begin(); it != ns.end(); ++it) {
      if ((*it)["type"] == "pid") {
        ns.erase(it);
        break;
      }
    }
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  EXPECT_EQ(o.exit_code, 137) << o.err;
  EXPECT_EQ(o.out, "before\n");
}

TEST_F(RunTest, SigtermToCocoonStopsTheContainer) {
  std::string id = NewId();
  std::string bundle = MakeBundle(
      {"sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done"});
  int out_fd = -1;
  ChildProcess cocoon = StartCocoon({"run", "--bundle", bundle, id}, &out_fd);
  UniqueFd out(out_fd);
  std::string seen;
  char buf[256];
  while (seen.find("ready\n") == std::string::npos) {
    ssize_t n = ::read(out.get(), buf, sizeof(buf));
    ASSERT_GT(n, 0) << "cocoon ended before the container was ready";
    seen.append(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(cocoon.Signal(SIGTERM).ok());
  auto status = cocoon.WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "cocoon did not stop after SIGTERM";
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 42);
  EXPECT_NE((seen + ReadAllFd(out.get())).find("got-term"), std::string::npos);
}

TEST_F(RunTest, SigtermDuringBootCancelsIt) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo should-not-run"});
  int out_fd = -1;
  ChildProcess cocoon = StartCocoon({"run", "--bundle", bundle, id}, &out_fd);
  UniqueFd out(out_fd);
  // Well inside the boot: QEMU is up, the guest agent is not yet.
  for (int i = 0; i < 100 && QemuPidsFor(id).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(QemuPidsFor(id).empty()) << "QEMU did not start";
  ASSERT_TRUE(cocoon.Signal(SIGTERM).ok());
  auto status = cocoon.WaitFor(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value()) << "cocoon ignored SIGTERM during boot";
  EXPECT_EQ(ExitCodeFromWaitStatus(*status), 143);
  EXPECT_EQ(ReadAllFd(out.get()), "");
}

TEST_F(RunTest, OneMebibyteOfOutputArrivesCompleteAndInOrder) {
  std::string id = NewId();
  std::string bundle = MakeBundle(
      {"sh", "-c",
       "dd if=/dev/urandom of=/tmp/blob bs=4096 count=256 2>/dev/null; md5sum /tmp/blob >&2; "
       "cat /tmp/blob"});
  // The rootfs is read-only; /tmp must be writable for the blob.
  EditSpec(bundle, [](nlohmann::json& spec) {
    spec["mounts"].push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  });

  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  ASSERT_EQ(o.out.size(), 1u << 20);
  std::string copy = work_ + "/received";
  ASSERT_TRUE(WriteFileAtomic(copy, o.out).ok());
  auto sum = RunCapture({"md5sum", copy}, false);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->output.substr(0, 32), o.err.substr(0, 32)) << "guest: " << o.err;
}

TEST_F(RunTest, TerminalGivesAPtyWithTheCallersSize) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "tty; stty size"}, /*tty=*/true);
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_row = 31;
  ws.ws_col = 97;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  UniqueFd m(master), s(slave);
  SpawnOptions opts;
  opts.argv = {COCOON_BIN, "--root", root_, "run", "--bundle", bundle, id};
  opts.fds = {{0, s.get()}, {1, s.get()}, {2, s.get()}};
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child.ok());
  s.reset();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(m.get(), buf, sizeof(buf));
    if (n <= 0) break;  // EIO once cocoon, the last holder of the slave, exits
    out.append(buf, static_cast<size_t>(n));
  }
  auto st = child->Wait();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(ExitCodeFromWaitStatus(*st), 0) << out;
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << out;
  EXPECT_NE(out.find("31 97"), std::string::npos) << out;
}

TEST_F(RunTest, KilledCocoonLeavesNoVmAndTheIdCanBeReused) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo ready; sleep 600"});
  int out_fd = -1;
  ChildProcess cocoon = StartCocoon({"run", "--bundle", bundle, id}, &out_fd);
  UniqueFd out(out_fd);
  char buf[64];
  ASSERT_GT(::read(out.get(), buf, sizeof(buf)), 0);
  cocoon.Kill();  // SIGKILL: no cleanup code runs in cocoon
  for (int i = 0; i < 50 && !QemuPidsFor(id).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(QemuPidsFor(id).empty()) << "QEMU outlived a SIGKILLed cocoon";
  // The stale state directory is recognised and replaced by the next run of the same id.
  std::string again = MakeBundle({"true"});
  Outcome o = Cocoon({"run", "--bundle", again, id});
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

TEST_F(RunTest, TcgNoticeOnce) {
  ASSERT_EQ(::unlink((root_ + "/.tcg-notice").c_str()), 0);
  Outcome env = Cocoon({"env", "--json"});
  ASSERT_EQ(env.exit_code, 0);
  bool tcg = nlohmann::json::parse(env.out)["accelerator"]["value"] == "tcg";
  std::string bundle = MakeBundle({"true"});
  Outcome first = Cocoon({"run", "--bundle", bundle, NewId()});
  Outcome second = Cocoon({"run", "--bundle", bundle, NewId()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  if (tcg) {
    EXPECT_EQ(first.err.rfind("cocoon: notice: no usable KVM (", 0), 0u) << first.err;
    EXPECT_EQ(std::count(first.err.begin(), first.err.end(), '\n'), 1) << first.err;
  } else {
    EXPECT_EQ(first.err, "");
  }
  EXPECT_EQ(second.err, "");
}

TEST_F(RunTest, CheckVersionAndEnv) {
  Outcome check = Cocoon({"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("accelerator"), std::string::npos);
  Outcome version = Cocoon({"version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("cocoon version ", 0), 0u);
  Outcome env = Cocoon({"env", "--json"});
  ASSERT_EQ(env.exit_code, 0);
  auto doc = nlohmann::json::parse(env.out);
  EXPECT_EQ(doc["state_root"]["value"], root_);
  EXPECT_EQ(doc["state_root"]["origin"], "flag --root");
  EXPECT_TRUE(PathExists(doc["kernel"]["value"].get<std::string>()));
}

}  // namespace
}  // namespace cocoon::itest
