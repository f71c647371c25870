// The protocol 1.1 calls (stats, processes, pause/resume, update, events, exec removal) over both
// transports, with FakeRuntime standing in for crun and a fake cgroup tree for the kernel's.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <dirent.h>

#include <future>
#include <thread>

#include "agent_fixture.h"

namespace cocoon::agent::testing {
namespace {

class AgentControlTest : public AgentTest {
 protected:
  Status Control(const std::string& method, const std::string& id) {
    auto r = api_->Call<v1::Empty>(method, CRef(id));
    return r.ok() ? OkStatus() : Status(r.error());
  }
  Status Pause(const std::string& id) { return Control("PauseContainer", id); }
  Status Resume(const std::string& id) { return Control("ResumeContainer", id); }

  Status Update(const std::string& id, const std::string& resources_json) {
    v1::UpdateContainerRequest req;
    req.set_container_id(id);
    req.set_resources_json(resources_json);
    auto r = api_->Call<v1::Empty>("UpdateContainer", req);
    return r.ok() ? OkStatus() : Status(r.error());
  }

  Result<cgv2::Metrics> Stats(const std::string& id) {
    return api_->Call<cgv2::Metrics>("StatsContainer", CRef(id));
  }

  Result<std::vector<uint32_t>> Pids(const std::string& id) {
    COCOON_ASSIGN_OR_RETURN(auto resp,
                            api_->Call<v1::ListProcessesResponse>("ListProcesses", CRef(id)));
    return std::vector<uint32_t>(resp.pids().begin(), resp.pids().end());
  }

  Result<std::vector<v1::GuestEvent>> Events(uint32_t timeout_ms) {
    v1::GetEventsRequest req;
    req.set_timeout_ms(timeout_ms);
    COCOON_ASSIGN_OR_RETURN(auto resp, api_->Call<v1::GetEventsResponse>("GetEvents", req));
    return std::vector<v1::GuestEvent>(resp.events().begin(), resp.events().end());
  }

  Status RemoveProcess(const std::string& id, const std::string& exec_id) {
    auto r = api_->Call<v1::Empty>("RemoveProcess", Ref(id, exec_id));
    return r.ok() ? OkStatus() : Status(r.error());
  }

  std::string Cgroup(const std::string& id) { return dir_ + "/cgroup/cocoon/" + id; }

  // Rewrites the fake memory.events in place (same inode), as the kernel updates the real one.
  void SetOomKills(const std::string& id, uint64_t kills) {
    std::string path = Cgroup(id) + "/memory.events";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << path;
    ASSERT_TRUE(WriteAll(fd.get(), "oom " + std::to_string(kills) + "\noom_kill " +
                                       std::to_string(kills) + "\n")
                    .ok());
  }

  bool CalledRuntime(const std::string& call) {
    auto calls = runtime_.calls();
    return std::find(calls.begin(), calls.end(), call) != calls.end();
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, AgentControlTest,
                         ::testing::Values(Transport::kDirect, Transport::kTtrpc),
                         [](const auto& info) {
                           return info.param == Transport::kDirect ? "Direct" : "Ttrpc";
                         });

TEST_P(AgentControlTest, StatsReadTheContainersCgroupAtEachCall) {
  Run("c1", {"sleep", "30"});
  auto m = Stats("c1");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->memory().usage(), 1048576u);
  EXPECT_EQ(m->memory().usage_limit(), 512u << 20);  // "max": the fake MemTotal
  EXPECT_EQ(m->memory().anon(), 524288u);
  EXPECT_EQ(m->memory().pgfault(), 42u);
  EXPECT_EQ(m->pids().current(), 1u);
  EXPECT_EQ(m->pids().limit(), 0u);
  EXPECT_EQ(m->cpu().usage_usec(), 1000u);
  ASSERT_TRUE(WriteFileAtomic(Cgroup("c1") + "/memory.current", "2097152\n").ok());
  m = Stats("c1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->memory().usage(), 2097152u);
}

TEST_P(AgentControlTest, StatsErrors) {
  auto unknown = Stats("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
  // A created container has its cgroup already.
  ASSERT_TRUE(Create("c1", Spec({"sleep", "30"})).ok());
  EXPECT_TRUE(Stats("c1").ok());
  ASSERT_TRUE(WriteFileAtomic(Cgroup("c1") + "/pids.current", "many\n").ok());
  auto corrupt = Stats("c1");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message().find("c1"), std::string::npos);
  EXPECT_NE(corrupt.error().message().find("many"), std::string::npos);
  ASSERT_TRUE(RemoveTree(Cgroup("c1")).ok());
  auto gone = Stats("c1");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(gone.error().message().find("no cgroup"), std::string::npos);
}

TEST_P(AgentControlTest, ListProcessesSeesInitAndExecs) {
  auto created = Create("c1", Spec({"sleep", "30"}));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(Start("c1").ok());
  auto pids = Pids("c1");
  ASSERT_TRUE(pids.ok()) << pids.error().message();
  EXPECT_EQ(*pids, std::vector<uint32_t>{created->pid()});
  auto exec = Exec("c1", "e1", ProcessJson({"sleep", "30"}));
  ASSERT_TRUE(exec.ok());
  pids = Pids("c1");
  ASSERT_TRUE(pids.ok());
  std::vector<uint32_t> both = {created->pid(), exec->pid()};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*pids, both);

  EXPECT_EQ(Pids("nope").error().code(), Code::kNotFound);
  ASSERT_TRUE(RemoveTree(Cgroup("c1")).ok());
  EXPECT_EQ(Pids("c1").error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentControlTest, PauseAndResume) {
  EXPECT_EQ(Pause("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(Resume("nope").error().code(), Code::kNotFound);
  ASSERT_TRUE(Create("c1", Spec({"sleep", "30"})).ok());
  auto early = Pause("c1");
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(early.error().message().find("not started"), std::string::npos);
  ASSERT_TRUE(Start("c1").ok());

  ASSERT_TRUE(Pause("c1").ok());
  EXPECT_TRUE(CalledRuntime("pause c1"));
  EXPECT_EQ(Pause("c1").error().code(), Code::kFailedPrecondition);
  auto exec = Exec("c1", "e1", ProcessJson({"true"}));
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(exec.error().message().find("paused"), std::string::npos);

  ASSERT_TRUE(Resume("c1").ok());
  EXPECT_TRUE(CalledRuntime("resume c1"));
  auto twice = Resume("c1");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(twice.error().message().find("not paused"), std::string::npos);
  EXPECT_TRUE(Exec("c1", "e1", ProcessJson({"true"})).ok());
}

TEST_P(AgentControlTest, PauseWaitsForNoExecToBeStarting) {
  Run("c1", {"sleep", "30"});
  runtime_.set_exec_delay(milliseconds(500));
  auto exec = std::async(std::launch::async, [this] {
    return Exec("c1", "e1", ProcessJson({"sleep", "30"}));
  });
  std::this_thread::sleep_for(milliseconds(100));
  auto refused = Pause("c1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("starting"), std::string::npos);
  ASSERT_TRUE(exec.get().ok());
  EXPECT_TRUE(Pause("c1").ok());
}

TEST_P(AgentControlTest, FailedPauseLeavesTheContainerRunning) {
  Run("c1", {"sleep", "30"});
  runtime_.FailNextControl("freezer busy");
  auto failed = Pause("c1");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("freezer busy"), std::string::npos);
  EXPECT_EQ(Resume("c1").error().code(), Code::kFailedPrecondition);  // it is not paused
  EXPECT_TRUE(Pause("c1").ok());
}

TEST_P(AgentControlTest, PauseOfAnExitedContainerIsFailedPrecondition) {
  Run("c1", {"true"});
  ASSERT_TRUE(Wait(Ref("c1")).ok());
  auto paused = Pause("c1");
  ASSERT_FALSE(paused.ok());
  EXPECT_EQ(paused.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(paused.error().message().find("exited"), std::string::npos);
}

TEST_P(AgentControlTest, RemovingAPausedContainerWorks) {
  Run("c1", {"sleep", "30"});
  ASSERT_TRUE(Pause("c1").ok());
  ASSERT_TRUE(Remove("c1").ok());
  EXPECT_FALSE(PathExists(Cgroup("c1")));
  EXPECT_EQ(Stats("c1").error().code(), Code::kNotFound);
}

TEST_P(AgentControlTest, UpdateHandsTheResourcesToTheRuntime) {
  ASSERT_TRUE(Create("c1", Spec({"sleep", "30"})).ok());
  // A created container can be updated already.
  ASSERT_TRUE(Update("c1", R"({"pids":{"limit":10}})").ok());
  ASSERT_TRUE(Start("c1").ok());
  nlohmann::json resources = {{"memory", {{"limit", 67108864}}},
                              {"cpu", {{"quota", 50000}, {"period", 100000}}}};
  Status updated = Update("c1", resources.dump());
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  auto updates = runtime_.updates();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(updates[1]), resources);
  auto m = Stats("c1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->memory().usage_limit(), 67108864u);
  // The resources files do not pile up in the bundle.
  DIR* d = ::opendir((dir_ + "/bundles/c1").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = ::readdir(d)) {
    EXPECT_EQ(std::string(e->d_name).find("resources"), std::string::npos) << e->d_name;
  }
  ::closedir(d);
}

TEST_P(AgentControlTest, UpdateRejectsBadResourcesBeforeTheRuntimeRuns) {
  Run("c1", {"sleep", "30"});
  for (const char* bad : {"{\"memory\":", "[1]", "{\"memory\":5}", "{\"devices\":{}}", ""}) {
    Status st = Update("c1", bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(st.error().message().find("resources_json"), std::string::npos);
  }
  EXPECT_FALSE(CalledRuntime("update c1"));
  EXPECT_EQ(Update("nope", "{}").error().code(), Code::kNotFound);
  runtime_.FailNextControl("cannot set memory.max");
  Status failed = Update("c1", R"({"memory":{"limit":1}})");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("cannot set memory.max"), std::string::npos);
}

TEST_P(AgentControlTest, UpdateOfAnExitedContainerIsFailedPrecondition) {
  Run("c1", {"true"});
  ASSERT_TRUE(Wait(Ref("c1")).ok());
  EXPECT_EQ(Update("c1", "{}").error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentControlTest, AnOomKillIsOneEventDeliveredOnce) {
  Run("c1", {"sleep", "30"});
  auto pending = std::async(std::launch::async, [this] { return Events(10000); });
  std::this_thread::sleep_for(milliseconds(100));
  auto start = Clock::now();
  SetOomKills("c1", 1);
  auto events = pending.get();
  ASSERT_TRUE(events.ok()) << events.error().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].container_id(), "c1");
  EXPECT_EQ((*events)[0].kind(), v1::GuestEvent::KIND_OOM);
  start = Clock::now();
  auto none = Events(200);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_GE(Clock::now() - start, milliseconds(150));
}

TEST_P(AgentControlTest, GetEventsWaitIsCapped) {
  MakeService(ProcessLimits{}, milliseconds(300));
  for (uint32_t timeout_ms : {0u, 60000u}) {
    auto start = Clock::now();
    auto events = Events(timeout_ms);
    ASSERT_TRUE(events.ok());
    EXPECT_TRUE(events->empty());
    EXPECT_GE(Clock::now() - start, milliseconds(250));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << timeout_ms;
  }
}

TEST_P(AgentControlTest, AGoneConnectionsGetEventsLeavesTheEventsQueued) {
  Run("c1", {"sleep", "30"});
  auto orphan = std::async(std::launch::async, [this] { return Events(10000); });
  std::this_thread::sleep_for(milliseconds(100));
  service_->InterruptPendingReads();  // what the port loop does when the host disconnects
  auto interrupted = orphan.get();
  ASSERT_TRUE(interrupted.ok());
  EXPECT_TRUE(interrupted->empty());
  SetOomKills("c1", 1);
  auto events = Events(5000);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u);
}

TEST_P(AgentControlTest, RemoveProcessForgetsAFinishedExec) {
  Run("c1", {"sleep", "30"});
  ASSERT_TRUE(Exec("c1", "e1", ProcessJson({"sh", "-c", "exit 3"})).ok());
  EXPECT_EQ(RemoveProcess("c1", "").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(RemoveProcess("nope", "e1").error().code(), Code::kNotFound);
  EXPECT_EQ(RemoveProcess("c1", "nope").error().code(), Code::kNotFound);
  auto waited = Wait(Ref("c1", "e1"));
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_code(), 3);
  ASSERT_TRUE(RemoveProcess("c1", "e1").ok());
  EXPECT_EQ(Stat(Ref("c1", "e1")).error().code(), Code::kNotFound);
  EXPECT_EQ(RemoveProcess("c1", "e1").error().code(), Code::kNotFound);
  // The id is free again, and the container's init is untouched.
  ASSERT_TRUE(Exec("c1", "e1", ProcessJson({"true"})).ok());
  auto init = Stat(Ref("c1"));
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->state(), v1::PROCESS_STATE_RUNNING);
}

TEST_P(AgentControlTest, RemoveProcessRefusesARunningExec) {
  Run("c1", {"sleep", "30"});
  ASSERT_TRUE(Exec("c1", "e1", ProcessJson({"sleep", "30"})).ok());
  auto busy = RemoveProcess("c1", "e1");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(busy.error().message().find("running"), std::string::npos);
  ASSERT_TRUE(Signal(Ref("c1", "e1"), SIGKILL).ok());
  ASSERT_TRUE(Wait(Ref("c1", "e1")).ok());
  EXPECT_TRUE(RemoveProcess("c1", "e1").ok());
}

}  // namespace
}  // namespace cocoon::agent::testing
