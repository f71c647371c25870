// OomWatcher on plain files standing in for memory.events: inotify reports an in-place write the
// way it reports the kernel's update of the real file.
#include "agent/oom_watcher.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/io.h"

namespace cocoon::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class OomWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-oom.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(watcher_.Start().ok());
  }
  void TearDown() override {
    watcher_.Stop();
    (void)RemoveTree(dir_);
  }

  // A cgroup directory for `id` with memory.events showing `kills`.
  std::string MakeCgroup(const std::string& id, uint64_t kills) {
    std::string dir = dir_ + "/" + id;
    EXPECT_TRUE(MakeDirs(dir).ok());
    SetKills(dir, kills);
    return dir;
  }

  // Rewrites memory.events in place (same inode), as the kernel does.
  static void SetKills(const std::string& dir, uint64_t kills) {
    UniqueFd fd(::open((dir + "/memory.events").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    ASSERT_TRUE(fd.valid());
    std::string text = "low 0\nhigh 0\nmax 0\noom " + std::to_string(kills) + "\noom_kill " +
                       std::to_string(kills) + "\n";
    ASSERT_TRUE(WriteAll(fd.get(), text).ok());
  }

  std::vector<v1::GuestEvent> Take(milliseconds wait) { return watcher_.Take(Clock::now() + wait); }

  std::string dir_;
  OomWatcher watcher_;
};

TEST_F(OomWatcherTest, AnIncreaseIsOneEventDeliveredOnce) {
  std::string cg = MakeCgroup("c1", 0);
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  EXPECT_TRUE(Take(milliseconds(100)).empty());
  auto waiter = std::async(std::launch::async, [&] { return Take(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(milliseconds(50));
  auto start = Clock::now();
  SetKills(cg, 2);
  auto events = waiter.get();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));  // woken, not timed out
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].container_id(), "c1");
  EXPECT_EQ(events[0].kind(), v1::GuestEvent::KIND_OOM);
  EXPECT_TRUE(Take(milliseconds(100)).empty());
  // A write that does not raise the counter is no event.
  SetKills(cg, 2);
  EXPECT_TRUE(Take(milliseconds(200)).empty());
  SetKills(cg, 3);
  auto next = Take(std::chrono::seconds(5));
  ASSERT_EQ(next.size(), 1u);
}

TEST_F(OomWatcherTest, KillsBeforeTheWatchAreReported) {
  // The kill happened between crun create and Watch.
  ASSERT_TRUE(watcher_.Watch("early", MakeCgroup("early", 1)).ok());
  auto events = Take(milliseconds(100));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].container_id(), "early");
}

TEST_F(OomWatcherTest, EventsOfSeveralContainersQueueUp) {
  std::string a = MakeCgroup("a", 0), b = MakeCgroup("b", 0);
  ASSERT_TRUE(watcher_.Watch("a", a).ok());
  ASSERT_TRUE(watcher_.Watch("b", b).ok());
  SetKills(a, 1);
  SetKills(b, 1);
  std::vector<std::string> ids;
  auto until = Clock::now() + std::chrono::seconds(5);
  while (ids.size() < 2 && Clock::now() < until) {
    for (auto& e : Take(milliseconds(500))) ids.push_back(e.container_id());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));
}

TEST_F(OomWatcherTest, ConcurrentTakersShareNothing) {
  std::string cg = MakeCgroup("c1", 0);
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  auto t1 = std::async(std::launch::async, [&] { return Take(milliseconds(1500)); });
  auto t2 = std::async(std::launch::async, [&] { return Take(milliseconds(1500)); });
  std::this_thread::sleep_for(milliseconds(100));
  SetKills(cg, 1);
  size_t total = t1.get().size() + t2.get().size();
  EXPECT_EQ(total, 1u);
}

TEST_F(OomWatcherTest, InterruptLeavesTheEventsForTheNextTake) {
  std::string cg = MakeCgroup("c1", 0);
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  auto waiter = std::async(std::launch::async, [&] { return Take(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(milliseconds(100));
  auto start = Clock::now();
  watcher_.Interrupt();
  EXPECT_TRUE(waiter.get().empty());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  SetKills(cg, 1);
  EXPECT_EQ(Take(std::chrono::seconds(5)).size(), 1u);
}

TEST_F(OomWatcherTest, UnwatchedAndRemovedCgroupsAreQuiet) {
  std::string cg = MakeCgroup("c1", 0);
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  watcher_.Unwatch("c1");
  SetKills(cg, 1);
  EXPECT_TRUE(Take(milliseconds(300)).empty());
  watcher_.Unwatch("c1");  // twice is fine

  // A removed directory drops its watch by itself; a new container of the same id is watched.
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  EXPECT_EQ(Take(milliseconds(100)).size(), 1u);  // the 1 counted from 0
  ASSERT_TRUE(RemoveTree(cg).ok());
  std::this_thread::sleep_for(milliseconds(100));
  cg = MakeCgroup("c1", 0);
  ASSERT_TRUE(watcher_.Watch("c1", cg).ok());
  SetKills(cg, 1);
  EXPECT_EQ(Take(std::chrono::seconds(5)).size(), 1u);
}

TEST_F(OomWatcherTest, NoMemoryEventsFileIsAnError) {
  ASSERT_TRUE(MakeDirs(dir_ + "/nomem").ok());
  auto st = watcher_.Watch("nomem", dir_ + "/nomem");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("memory.events"), std::string::npos);
}

TEST_F(OomWatcherTest, StopWakesTakers) {
  auto waiter = std::async(std::launch::async, [&] { return Take(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(milliseconds(100));
  auto start = Clock::now();
  watcher_.Stop();
  EXPECT_TRUE(waiter.get().empty());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(OomWatcherQueueTest, TheQueueIsBounded) {
  char tmpl[] = "/tmp/agent-oomq.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  OomWatcher watcher;
  ASSERT_TRUE(watcher.Start().ok());
  // Each Watch of a cgroup with a kill already counted queues one event.
  for (size_t i = 0; i < OomWatcher::kMaxQueued + 10; ++i) {
    std::string cg = dir + "/c" + std::to_string(i);
    ASSERT_TRUE(MakeDirs(cg).ok());
    ASSERT_TRUE(WriteFileAtomic(cg + "/memory.events", "oom_kill 1\n").ok());
    ASSERT_TRUE(watcher.Watch("c" + std::to_string(i), cg).ok());
  }
  auto events = watcher.Take(Clock::now());
  ASSERT_EQ(events.size(), OomWatcher::kMaxQueued);
  EXPECT_EQ(events.front().container_id(), "c10");  // the oldest ten were dropped
  watcher.Stop();
  (void)RemoveTree(dir);
}

}  // namespace
}  // namespace cocoon::agent
