#include "agent/reaper.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/process.h"

namespace cocoon::agent {
namespace {

using std::chrono::milliseconds;

pid_t SpawnShell(const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  Result<pid_t> pid = SpawnProcess(options);
  EXPECT_TRUE(pid.ok()) << pid.error().message();
  return pid.ok() ? *pid : -1;
}

TEST(ReaperTest, WaitForReturnsTheStatus) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  pid_t pid = SpawnShell("exit 42");
  auto exit = reaper.WaitFor(pid, std::chrono::seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(ExitCodeFromWaitStatus(exit->wait_status), 42);
  EXPECT_GT(exit->exited_at_unix_nano, 0);
}

TEST(ReaperTest, ExitBeforeRegistrationIsKept) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  pid_t pid = SpawnShell("exit 7");
  // Let the reaper collect it while nobody watches.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reaper.unclaimed_count() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(reaper.unclaimed_count(), 1u);
  std::atomic<int> code{-1};
  reaper.Watch(pid, [&](const ExitRecord& r) { code = ExitCodeFromWaitStatus(r.wait_status); });
  EXPECT_EQ(code.load(), 7);  // delivered at once, on this thread
  EXPECT_EQ(reaper.unclaimed_count(), 0u);
}

TEST(ReaperTest, SignalDeathIsVisible) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  pid_t pid = SpawnShell("sleep 30");
  std::promise<int> status;
  reaper.Watch(pid, [&](const ExitRecord& r) { status.set_value(r.wait_status); });
  ::kill(pid, SIGKILL);
  auto future = status.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(ExitCodeFromWaitStatus(future.get()), 137);
}

TEST(ReaperTest, WaitForTimesOutAndLeavesTheExitForLater) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  pid_t pid = SpawnShell("sleep 0.3");
  auto early = reaper.WaitFor(pid, milliseconds(50));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code(), Code::kDeadlineExceeded);
  auto later = reaper.WaitFor(pid, std::chrono::seconds(10));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(ExitCodeFromWaitStatus(later->wait_status), 0);
}

TEST(ReaperTest, ReapsOrphansNobodyAsksAbout) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  std::vector<pid_t> pids;
  for (int i = 0; i < 20; ++i) pids.push_back(SpawnShell("exit 0"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reaper.unclaimed_count() < 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(reaper.unclaimed_count(), 20u);
  // No zombie is left: a zombie still answers kill(pid, 0), a reaped pid does not.
  for (pid_t pid : pids) {
    EXPECT_EQ(::kill(pid, 0), -1);
    EXPECT_EQ(errno, ESRCH);
  }
}

TEST(ReaperTest, ManyConcurrentWaiters) {
  Reaper reaper;
  ASSERT_TRUE(reaper.Start().ok());
  std::vector<std::future<int>> waits;
  for (int i = 0; i < 16; ++i) {
    waits.push_back(std::async(std::launch::async, [&reaper, i] {
      pid_t pid = SpawnShell("exit " + std::to_string(i));
      auto exit = reaper.WaitFor(pid, std::chrono::seconds(10));
      return exit.ok() ? ExitCodeFromWaitStatus(exit->wait_status) : -1;
    }));
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(waits[i].get(), i);
}

}  // namespace
}  // namespace cocoon::agent
