#include "common/process.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "common/io.h"

namespace cocoon {
namespace {

TEST(ProcessTest, RunCaptureGetsOutputAndCode) {
  auto r = RunCapture({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "out\nerr\n");
}

TEST(ProcessTest, MissingProgramIsAnError) {
  auto r = ChildProcess::Spawn({.argv = {"/nonexistent/prog"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_NE(r.error().message().find("/nonexistent/prog"), std::string::npos);
}

TEST(ProcessTest, FdMapping) {
  UniqueFd r, w;
  ASSERT_TRUE(MakePipe(&r, &w).ok());
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "echo mapped >&5"};
  opts.fds = {{5, w.get()}};
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child.ok());
  w.reset();
  char buf[32] = {};
  ASSERT_TRUE(ReadExact(r.get(), buf, 7).ok());
  EXPECT_EQ(std::string(buf), "mapped\n");
  EXPECT_EQ(ExitCodeFromWaitStatus(*child->Wait()), 0);
}

TEST(ProcessTest, UnmappedFdsAreClosedEvenWithoutCloexec) {
  UniqueFd r, w;
  ASSERT_TRUE(MakePipe(&r, &w).ok());
  UniqueFd leaky(::dup(r.get()));  // dup() clears FD_CLOEXEC
  ASSERT_TRUE(leaky.valid());
  SpawnOptions opts;
  // Map an fd numbered above the leaky one, so the leaky one sits inside the mapped range.
  int high = std::max(leaky.get() + 5, 10);
  opts.argv = {"/bin/sh", "-c",
               "ls /proc/self/fd | grep -qx " + std::to_string(leaky.get()) +
                   " && exit 1; ls /proc/self/fd | grep -qx " + std::to_string(high) +
                   " || exit 2; exit 0"};
  opts.fds = {{high, w.get()}};
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(ExitCodeFromWaitStatus(*child->Wait()), 0);
}

TEST(ProcessTest, SignalGives128PlusN) {
  auto child = ChildProcess::Spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(child.ok());
  EXPECT_FALSE(child->WaitFor(std::chrono::milliseconds(20)).has_value());
  ASSERT_TRUE(child->Signal(SIGKILL).ok());
  EXPECT_EQ(ExitCodeFromWaitStatus(*child->Wait()), 137);
  EXPECT_EQ(child->Signal(SIGTERM).error().code(), Code::kNotFound);
}

TEST(ProcessTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    auto child = ChildProcess::Spawn({.argv = {"sleep", "30"}});
    ASSERT_TRUE(child.ok());
    pid = child->pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // gone and reaped
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace cocoon
