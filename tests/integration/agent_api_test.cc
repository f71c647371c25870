// Agent protocol 1.1 against a real guest: a real QEMU VM booted by the sandbox engine, the real
// agent and crun inside, busybox containers. Pause must really freeze a process, an updated
// memory limit must really reach the cgroup, and a process over that limit must really be killed
// by the guest kernel and reported as an OOM event.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/io.h"
#include "harness.h"
#include "oci/spec.h"
#include "sandbox/mounts.h"
#include "sandbox/sandbox.h"

namespace cocoon::itest {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

Status g_namespace = Error(Code::kUnknown, "main did not run");

std::string ProcessJson(const std::vector<std::string>& args) {
  return nlohmann::json({{"args", args},
                         {"cwd", "/"},
                         {"env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
                         {"user", {{"uid", 0}, {"gid", 0}}}})
      .dump();
}

class AgentApiTest : public CocoonTest {
 protected:
  void SetUp() override {
    CocoonTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(g_namespace.ok()) << g_namespace.error().message();
  }

  void TearDown() override {
    sandbox_.reset();  // stops the VM before the harness looks for leftovers
    CocoonTest::TearDown();
  }

  // Boots a sandbox and creates and starts one busybox container running `args` in it; `edit`
  // may change the spec first.
  void Boot(const std::vector<std::string>& args,
            const std::function<void(nlohmann::json&)>& edit = nullptr) {
    id_ = NewId();
    bundle_ = MakeBundle(args);
    if (edit) EditSpec(bundle_, edit);
    auto bundle = oci::LoadBundle(bundle_);
    ASSERT_TRUE(bundle.ok()) << bundle.error().message();
    sandbox::EngineConfig config;
    config.state_root = root_;
    config.kernel = COCOON_GUEST_DIR "/kernel";
    config.initrd = COCOON_GUEST_DIR "/initramfs.cpio";
    auto sb = sandbox::Sandbox::Create(config, id_, oci::VmResources{1, 256}, {});
    ASSERT_TRUE(sb.ok()) << sb.error().message();
    sandbox_ = std::move(*sb);
    auto pid = sandbox_->CreateContainer(id_, *bundle, /*stdin_pipe=*/false);
    ASSERT_TRUE(pid.ok()) << pid.error().message() << "\n" << sandbox_->ConsoleTail();
    init_pid_ = *pid;
    Status started = agent().StartContainer(id_);
    ASSERT_TRUE(started.ok()) << started.error().message();
  }

  sandbox::AgentClient& agent() { return sandbox_->agent(); }

  // Runs an exec to its end; returns its exit code.
  int RunExec(const std::string& exec_id, const std::vector<std::string>& args) {
    auto pid = agent().Exec(id_, exec_id, ProcessJson(args), false);
    EXPECT_TRUE(pid.ok()) << pid.error().message();
    if (!pid.ok()) return -1;
    auto waited = agent().Wait(id_, exec_id);
    EXPECT_TRUE(waited.ok()) << waited.error().message();
    return waited.ok() ? waited->exit_code() : -1;
  }

  // The number the container's counting loop last wrote to /count in its rootfs (shared with
  // the host over 9p); -1 while the file is empty or half-written.
  long ReadCounter() {
    auto text = ReadFile(bundle_ + "/rootfs/count");
    if (!text.ok() || text->empty() || text->back() != '\n') return -1;
    return std::strtol(text->c_str(), nullptr, 10);
  }

  // Waits until the counter exceeds `than` (up to `timeout`); returns the value seen.
  long WaitCounterAbove(long than, milliseconds timeout) {
    auto until = Clock::now() + timeout;
    long value = ReadCounter();
    while (value <= than && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(50));
      value = ReadCounter();
    }
    return value;
  }

  std::string id_;
  std::string bundle_;
  uint32_t init_pid_ = 0;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
};

TEST_F(AgentApiTest, StatsAndProcessesOfARunningContainer) {
  Boot({"sleep", "100"});
  ASSERT_FALSE(HasFatalFailure());

  std::vector<double> ms;
  Result<sandbox::cgroupspb::Metrics> stats = Error(Code::kUnknown, "not called");
  for (int i = 0; i < 20; ++i) {
    auto start = Clock::now();
    stats = agent().Stats(id_);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    ASSERT_TRUE(stats.ok()) << stats.error().message();
  }
  std::sort(ms.begin(), ms.end());
  std::printf("StatsContainer round trip: median %.2f ms, max %.2f ms (20 calls)\n", ms[10],
              ms.back());
  RecordProperty("stats_median_us", static_cast<int>(ms[10] * 1000));
  EXPECT_GE(stats->pids().current(), 1u);
  EXPECT_EQ(stats->pids().limit(), 0u) << "pids.max is 'max' in a default spec";
  EXPECT_GT(stats->memory().usage(), 0u);
  EXPECT_GT(stats->cpu().usage_usec(), 0u);
  // No limit in the spec: the limit is the guest's memory (256 MiB minus what the kernel keeps).
  EXPECT_GT(stats->memory().usage_limit(), 128ull << 20);
  EXPECT_LE(stats->memory().usage_limit(), 256ull << 20);
  EXPECT_EQ(stats->memory_events().oom_kill(), 0u);

  auto pids = agent().ListProcesses(id_);
  ASSERT_TRUE(pids.ok()) << pids.error().message();
  ASSERT_FALSE(pids->empty());
  EXPECT_NE(std::find(pids->begin(), pids->end(), init_pid_), pids->end())
      << "init pid " << init_pid_ << " not in the container's cgroup";

  // The cpu and pids controllers reach the container's cgroup too (crun enables them on the
  // way down from the root): limits on them apply and show.
  Status updated =
      agent().Update(id_, R"({"cpu":{"quota":50000,"period":100000},"pids":{"limit":64}})");
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  stats = agent().Stats(id_);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->pids().limit(), 64u);

  auto unknown = agent().Stats("no-such-container");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
  auto bad_json = agent().Update(id_, "{\"memory\":");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.error().code(), Code::kInvalidArgument);
}

TEST_F(AgentApiTest, PauseFreezesTheContainerAndResumeThawsIt) {
  // A loop that writes an ever-growing number to /count, which the host sees through the share.
  Boot({"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /count; usleep 20000; done"},
       [](nlohmann::json& spec) { spec["root"]["readonly"] = false; });
  ASSERT_FALSE(HasFatalFailure());
  long before = WaitCounterAbove(3, std::chrono::seconds(30));
  ASSERT_GT(before, 3) << "the counting loop does not run";

  auto start = Clock::now();
  ASSERT_TRUE(agent().Pause(id_).ok());
  std::printf("PauseContainer: %.0f ms\n", MsSince(start));
  std::this_thread::sleep_for(milliseconds(300));  // a write in flight lands
  long frozen = ReadCounter();
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(ReadCounter(), frozen) << "the counter moved while the container was paused";
  auto again = agent().Pause(id_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kFailedPrecondition);
  auto exec = agent().Exec(id_, "while-paused", ProcessJson({"true"}), false);
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code(), Code::kFailedPrecondition);
  auto pids = agent().ListProcesses(id_);
  ASSERT_TRUE(pids.ok()) << pids.error().message();
  EXPECT_FALSE(pids->empty());

  start = Clock::now();
  ASSERT_TRUE(agent().Resume(id_).ok());
  std::printf("ResumeContainer: %.0f ms\n", MsSince(start));
  long after = WaitCounterAbove(std::max(frozen, before) + 3, std::chrono::seconds(30));
  EXPECT_GT(after, std::max(frozen, before) + 3) << "the counter did not move after Resume";

  // A paused container can still be removed: its processes die and its cgroup goes.
  ASSERT_TRUE(agent().Pause(id_).ok());
  Status removed = sandbox_->RemoveContainer(id_);
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  auto gone = agent().ListProcesses(id_);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
}

TEST_F(AgentApiTest, MemoryLimitUpdateAndOomEvent) {
  Boot({"sleep", "100"});
  ASSERT_FALSE(HasFatalFailure());

  auto start = Clock::now();
  Status updated = agent().Update(id_, R"({"memory":{"limit":67108864}})");
  std::printf("UpdateContainer: %.0f ms\n", MsSince(start));
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  auto stats = agent().Stats(id_);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->memory().usage_limit(), 67108864u);

  // Nothing has happened yet: a short poll comes back empty.
  auto none = agent().GetEvents(milliseconds(200));
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(agent().Update(id_, R"({"memory":{"limit":16777216}})").ok());
  // The long poll is already waiting when the kill happens: only the notification can end it.
  Clock::time_point event_seen;
  auto events = std::async(std::launch::async, [this, &event_seen] {
    std::vector<sandbox::agentpb::GuestEvent> got;
    auto until = Clock::now() + std::chrono::seconds(60);
    while (got.empty() && Clock::now() < until) {
      auto r = agent().GetEvents(std::chrono::seconds(10));
      if (!r.ok()) {
        ADD_FAILURE() << r.error().message();
        break;
      }
      got = *r;
    }
    event_seen = Clock::now();
    return got;
  });
  // dd's 64 MiB buffer is touched page by page as /dev/zero fills it: far over 16 MiB.
  int code = RunExec("hog", {"dd", "if=/dev/zero", "of=/dev/null", "bs=67108864", "count=1"});
  auto exited = Clock::now();
  EXPECT_EQ(code, 137) << "dd was expected to die by SIGKILL (the OOM killer)";
  std::vector<sandbox::agentpb::GuestEvent> got = events.get();
  std::printf("OOM event vs. the exec's exit seen by the host: %+.0f ms\n",
              std::chrono::duration<double, std::milli>(event_seen - exited).count());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].container_id(), id_);
  EXPECT_EQ(got[0].kind(), sandbox::agentpb::GuestEvent::KIND_OOM);
  stats = agent().Stats(id_);
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->memory_events().oom_kill(), 1u);
  EXPECT_EQ(stats->memory().usage_limit(), 16777216u);
  // Delivered once: nothing more to take.
  auto after = agent().GetEvents(milliseconds(300));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());

  // The container itself survived (sleep is small), and the finished exec can be forgotten.
  auto running = agent().ListProcesses(id_);
  ASSERT_TRUE(running.ok());
  EXPECT_NE(std::find(running->begin(), running->end(), init_pid_), running->end());
  EXPECT_TRUE(agent().RemoveProcess(id_, "hog").ok());
  auto twice = agent().RemoveProcess(id_, "hog");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code(), Code::kNotFound);

  // A running exec cannot be removed.
  auto sleeper = agent().Exec(id_, "sleeper", ProcessJson({"sleep", "100"}), false);
  ASSERT_TRUE(sleeper.ok()) << sleeper.error().message();
  auto busy = agent().RemoveProcess(id_, "sleeper");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(agent().Signal(id_, "sleeper", SIGKILL).ok());
  ASSERT_TRUE(agent().Wait(id_, "sleeper").ok());
  EXPECT_TRUE(agent().RemoveProcess(id_, "sleeper").ok());
}

}  // namespace
}  // namespace cocoon::itest

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Bind mounts into the share must vanish with this process, and unshare needs a process
  // without threads: before any test runs. Without root it fails, and every test says so.
  if (::geteuid() == 0) cocoon::itest::g_namespace = cocoon::sandbox::EnterPrivateMountNamespace();
  return RUN_ALL_TESTS();
}
