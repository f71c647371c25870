// CrunRuntime against a stand-in crun script: the exact command lines, the stdio handed to the
// container, the pid file, the console socket, and crun's error text coming back as the message.
// (The real crun runs only in the guest: it refuses this host's cgroup v1 hybrid mode.)
#include "agent/crun_runtime.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <thread>

#include "agent/console_socket.h"
#include "common/io.h"

namespace cocoon::agent {
namespace {

// Records every invocation in $dir/calls, one line each, then acts by command and container id:
// an id starting with "bad" fails with a message in the --log file (and on stderr, as crun
// does); "usage" fails with stderr only (crun's argument errors precede its log).
constexpr const char* kFakeCrun = R"SH(#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
root=; log=
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --version) echo "crun version 9.9.9"; echo "commit: abc"; exit 0 ;;
    *) break ;;
  esac
done
cmd=$1; shift
id=; pidfile=; sock=
while [ $# -gt 0 ]; do
  case "$1" in
    --pid-file) pidfile=$2; shift 2 ;;
    --console-socket) sock=$2; shift 2 ;;
    --bundle|--process|--resources) shift 2 ;;
    --*) shift ;;
    *) [ -z "$id" ] && id=$1; shift ;;
  esac
done
case "$id" in
  bad*) echo "$cmd failed: open \`/nope\`: No such file or directory" >> "$log"
        echo "stderr noise" >&2; exit 1 ;;
  usage*) echo "crun: unknown option" >&2; exit 1 ;;
  nofd*) echo 1 > "$pidfile"; exit 0 ;;
esac
if [ -n "$pidfile" ]; then
  if [ -n "$sock" ]; then
    /usr/bin/python3 -c '
import os, pty, socket, sys
m, s = pty.openpty()
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
socket.send_fds(c, [b" "], [m])
os.write(s, b"tty-hello\n")
' "$sock" || exit 1
    sleep 30 </dev/null >/dev/null 2>&1 &
  else
    echo "container-out"
    echo "container-err" >&2
    sleep 30 &
  fi
  echo $! > "$pidfile"
fi
exit 0
)SH";

class CrunRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-crun.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/crun", kFakeCrun, 0755).ok());
    ASSERT_TRUE(MakeDirs(dir_ + "/bundle").ok());
    ASSERT_TRUE(reaper_.Start().ok());
    CrunConfig config;
    config.binary = dir_ + "/crun";
    config.state_root = dir_ + "/state";
    config.scratch_dir = dir_ + "/s";
    config.timeout = std::chrono::seconds(20);
    config.console_timeout = std::chrono::milliseconds(300);
    runtime_ = std::make_unique<CrunRuntime>(config, &reaper_);
  }

  void TearDown() override {
    for (pid_t pid : spawned_) ::kill(pid, SIGKILL);
    reaper_.Stop();
    (void)RemoveTree(dir_);
  }

  std::vector<std::string> Calls() {
    auto text = ReadFile(dir_ + "/calls");
    std::vector<std::string> lines;
    if (!text.ok()) return lines;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      lines.push_back(text->substr(pos, nl - pos));
      pos = nl == std::string::npos ? text->size() : nl + 1;
    }
    return lines;
  }

  // Replaces the per-call log path (a counter) so expectations can name it.
  static std::string Normalize(std::string line) {
    size_t at = line.find("--log ");
    if (at == std::string::npos) return line;
    size_t end = line.find(' ', at + 6);
    return line.substr(0, at) + "--log LOG" + line.substr(end);
  }

  std::string dir_;
  Reaper reaper_;
  std::unique_ptr<CrunRuntime> runtime_;
  std::vector<pid_t> spawned_;
};

std::string ReadToEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

TEST_F(CrunRuntimeTest, CreatePassesTheContainerStdioAndReadsThePid) {
  UniqueFd out_r, out_w, err_r, err_w;
  ASSERT_TRUE(MakePipe(&out_r, &out_w).ok());
  ASSERT_TRUE(MakePipe(&err_r, &err_w).ok());
  LaunchStdio stdio;
  stdio.stdout_fd = out_w.get();
  stdio.stderr_fd = err_w.get();
  auto launched = runtime_->Create("c1", dir_ + "/bundle", stdio);
  ASSERT_TRUE(launched.ok()) << launched.error().message();
  spawned_.push_back(launched->pid);
  EXPECT_EQ(::kill(launched->pid, 0), 0);  // the pid from the pid file is alive
  out_w.reset();
  err_w.reset();
  ::kill(launched->pid, SIGKILL);  // the stand-in "container" holds the pipes
  EXPECT_EQ(ReadToEof(out_r.get()), "container-out\n");
  EXPECT_EQ(ReadToEof(err_r.get()), "container-err\n");
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Normalize(calls[0]), "--root " + dir_ + "/state --log LOG create --bundle " + dir_ +
                                     "/bundle --pid-file " + dir_ + "/bundle/init.pid c1");
  EXPECT_FALSE(PathExists(dir_ + "/bundle/init.pid"));
}

TEST_F(CrunRuntimeTest, ControlCommandLines) {
  ASSERT_TRUE(runtime_->Start("c1").ok());
  ASSERT_TRUE(runtime_->KillAll("c1", 9).ok());
  ASSERT_TRUE(runtime_->Delete("c1").ok());
  ASSERT_TRUE(runtime_->Pause("c1").ok());
  ASSERT_TRUE(runtime_->Resume("c1").ok());
  ASSERT_TRUE(runtime_->Update("c1", dir_ + "/bundle/resources-1.json").ok());
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 6u);
  std::string prefix = "--root " + dir_ + "/state --log LOG ";
  EXPECT_EQ(Normalize(calls[0]), prefix + "start c1");
  EXPECT_EQ(Normalize(calls[1]), prefix + "kill --all c1 9");
  EXPECT_EQ(Normalize(calls[2]), prefix + "delete --force c1");
  EXPECT_EQ(Normalize(calls[3]), prefix + "pause c1");
  EXPECT_EQ(Normalize(calls[4]), prefix + "resume c1");
  EXPECT_EQ(Normalize(calls[5]),
            prefix + "update --resources " + dir_ + "/bundle/resources-1.json c1");
}

TEST_F(CrunRuntimeTest, ControlErrorsCarryCrunsMessage) {
  auto paused = runtime_->Pause("bad1");
  ASSERT_FALSE(paused.ok());
  EXPECT_EQ(paused.error().message(),
            "crun pause: pause failed: open `/nope`: No such file or directory");
  auto updated = runtime_->Update("bad2", dir_ + "/r.json");
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.error().message(),
            "crun update: update failed: open `/nope`: No such file or directory");
}

TEST_F(CrunRuntimeTest, ExecCommandLine) {
  ASSERT_TRUE(MakeDirs(dir_ + "/work").ok());
  auto launched = runtime_->Exec("c1", dir_ + "/work/process.json", dir_ + "/work", LaunchStdio{});
  ASSERT_TRUE(launched.ok()) << launched.error().message();
  spawned_.push_back(launched->pid);
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Normalize(calls[0]), "--root " + dir_ + "/state --log LOG exec --process " + dir_ +
                                     "/work/process.json --detach --pid-file " + dir_ +
                                     "/work/exec.pid c1");
}

TEST_F(CrunRuntimeTest, CrunErrorTextBecomesTheMessage) {
  auto created = runtime_->Create("bad1", dir_ + "/bundle", LaunchStdio{});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().message(),
            "crun create: create failed: open `/nope`: No such file or directory");
  auto started = runtime_->Start("bad2");
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().message(),
            "crun start: start failed: open `/nope`: No such file or directory");
  auto usage = runtime_->Delete("usage");
  ASSERT_FALSE(usage.ok());
  EXPECT_EQ(usage.error().message(), "crun delete: crun: unknown option");
  // Scratch files (logs) do not pile up.
  auto left = ReadFile(dir_ + "/s/0.log");
  EXPECT_FALSE(left.ok());
}

TEST_F(CrunRuntimeTest, TerminalGetsThePtyMasterFromTheConsoleSocket) {
  LaunchStdio stdio;
  stdio.terminal = true;
  auto launched = runtime_->Create("t1", dir_ + "/bundle", stdio);
  ASSERT_TRUE(launched.ok()) << launched.error().message();
  spawned_.push_back(launched->pid);
  ASSERT_TRUE(launched->pty_master.valid());
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(launched->pty_master.get(), buf, sizeof(buf));
    if (n <= 0) break;  // EIO once the slave side is gone
    out.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(out.find("tty-hello"), std::string::npos) << out;
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_NE(calls[0].find("--console-socket " + dir_ + "/s/"), std::string::npos) << calls[0];
  EXPECT_EQ(calls[0].substr(calls[0].size() - 3), " t1");  // the id stays last
}

TEST_F(CrunRuntimeTest, HalfMadeContainerIsDeleted) {
  // crun "succeeds" but never sends the terminal fd: the container must not be left behind.
  LaunchStdio stdio;
  stdio.terminal = true;
  auto launched = runtime_->Create("nofd1", dir_ + "/bundle", stdio);
  ASSERT_FALSE(launched.ok());
  EXPECT_NE(launched.error().message().find("terminal"), std::string::npos)
      << launched.error().message();
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(Normalize(calls[1]), "--root " + dir_ + "/state --log LOG delete --force nofd1");
}

TEST_F(CrunRuntimeTest, VersionIsTheFirstLine) {
  EXPECT_EQ(runtime_->Version(), "crun version 9.9.9");
}

TEST(CrunHelpersTest, PidFile) {
  char tmpl[] = "/tmp/agent-pid.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(WriteFileAtomic(dir + "/ok", "1234").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/nl", "99\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/junk", "12x").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/zero", "0").ok());
  EXPECT_EQ(*ReadPidFile(dir + "/ok"), 1234);
  EXPECT_EQ(*ReadPidFile(dir + "/nl"), 99);
  EXPECT_FALSE(ReadPidFile(dir + "/junk").ok());
  EXPECT_FALSE(ReadPidFile(dir + "/zero").ok());
  EXPECT_FALSE(ReadPidFile(dir + "/missing").ok());
  (void)RemoveTree(dir);
}

TEST(CrunHelpersTest, MessageFromLog) {
  EXPECT_EQ(CrunMessageFromLog("  one\n"), "one");
  EXPECT_EQ(CrunMessageFromLog("warn\nerror\n"), "warn;error");
  std::string huge(10000, 'x');
  EXPECT_LE(CrunMessageFromLog(huge).size(), 2100u);
}

TEST(ConsoleSocketTest, ReceivesAnFd) {
  char tmpl[] = "/tmp/agent-cs.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  {
    ConsoleSocket socket;
    ASSERT_TRUE(socket.Listen(dir + "/c.sock").ok());
    UniqueFd r, w;
    ASSERT_TRUE(MakePipe(&r, &w).ok());
    auto conn = ConnectUnix(dir + "/c.sock", std::chrono::seconds(1));
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(SendFd(conn->get(), w.get()).ok());
    conn->reset();  // the sender is gone before the receiver looks, as with crun
    auto got = socket.ReceiveFd(std::chrono::seconds(1));
    ASSERT_TRUE(got.ok()) << got.error().message();
    w.reset();
    ASSERT_TRUE(WriteAll(got->get(), "via-fd").ok());
    got->reset();
    EXPECT_EQ(ReadToEof(r.get()), "via-fd");
    EXPECT_FALSE(socket.ReceiveFd(std::chrono::milliseconds(50)).ok());
  }
  EXPECT_FALSE(PathExists(dir + "/c.sock"));
  (void)RemoveTree(dir);
}

}  // namespace
}  // namespace cocoon::agent
