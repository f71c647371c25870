// The Agent API end to end, over both transports, with FakeRuntime standing in for crun.
#include "agent/service.h"

#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "agent_fixture.h"

namespace cocoon::agent::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Transports, AgentTest,
                         ::testing::Values(Transport::kDirect, Transport::kTtrpc),
                         [](const auto& info) {
                           return info.param == Transport::kDirect ? "Direct" : "Ttrpc";
                         });

TEST_P(AgentTest, HandshakeReportsVersionAndCapabilities) {
  v1::HandshakeRequest req;
  req.set_protocol_major(1);
  req.set_host_version("test");
  auto resp = api_->Call<v1::HandshakeResponse>("Handshake", req);
  ASSERT_TRUE(resp.ok()) << resp.error().message();
  EXPECT_EQ(resp->protocol_major(), 1u);
  EXPECT_EQ(resp->protocol_minor(), 2u);
  EXPECT_EQ(resp->agent_version(), "9.8.7");
  std::vector<std::string> caps(resp->capabilities().begin(), resp->capabilities().end());
  for (const char* cap :
       {"tty", "exec", "remove-process", "pause", "update", "stats", "events", "ps", "network"}) {
    EXPECT_NE(std::find(caps.begin(), caps.end(), cap), caps.end()) << cap;
  }

  req.set_protocol_major(2);
  auto refused = api_->Call<v1::HandshakeResponse>("Handshake", req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentTest, ExitCodeAndBothOutputsComplete) {
  Run("c1", {"sh", "-c", "echo out; echo err >&2; exit 3"});
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 3);
  EXPECT_TRUE(waited->output_complete());
  int64_t now = UnixNanosNow();
  EXPECT_GT(waited->exited_at_unix_nano(), now - int64_t{60} * 1000000000);
  EXPECT_LE(waited->exited_at_unix_nano(), now);
  EXPECT_EQ(ReadAll(Ref("c1")), "out\n");
  EXPECT_EQ(ReadAll(Ref("c1"), /*err=*/true), "err\n");
  // Waiting again answers at once with the same result.
  auto again = Wait(Ref("c1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code(), 3);
  EXPECT_EQ(again->exited_at_unix_nano(), waited->exited_at_unix_nano());
}

TEST_P(AgentTest, OutputIsBufferedBeforeExitIsReported) {
  // The shell exits at once; a background child writes 300 ms later on the inherited stdout.
  Run("c1", {"sh", "-c", "(sleep 0.3; echo late; echo late-err >&2) & exit 0"});
  auto start = Clock::now();
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_GE(Clock::now() - start, milliseconds(250));
  EXPECT_TRUE(waited->output_complete());
  // Everything is in the agent already: a read with a tiny timeout gets it all, with eof.
  auto out = Read(Ref("c1"), false, 0, 1);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data(), "late\n");
  EXPECT_TRUE(out->eof());
  auto err = Read(Ref("c1"), true, 0, 1);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->data(), "late-err\n");
  EXPECT_TRUE(err->eof());
}

TEST_P(AgentTest, DaemonHoldingThePipeDoesNotBlockTheExitForever) {
  ProcessLimits limits;
  limits.drain_grace = milliseconds(300);
  MakeService(limits);
  Run("c1", {"sh", "-c", "echo before; sleep 30 & exit 7"});
  auto start = Clock::now();
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 7);
  EXPECT_FALSE(waited->output_complete());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  auto out = Read(Ref("c1"), false, 0, 100);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data(), "before\n");
  EXPECT_FALSE(out->eof());  // the daemon still holds stdout
  auto empty = Read(Ref("c1"), false, 0, 100);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), "");
  EXPECT_FALSE(empty->eof());
}

TEST_P(AgentTest, StdinIsPipedAndClosed) {
  Run("c1", {"cat"}, /*with_stdin=*/true);
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    expected += line;
    auto written = Write(Ref("c1"), line);
    ASSERT_TRUE(written.ok()) << written.error().message();
    EXPECT_EQ(*written, line.size());
  }
  ASSERT_TRUE(CloseStdin(Ref("c1")).ok());
  EXPECT_TRUE(CloseStdin(Ref("c1")).ok());  // idempotent
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 0);
  EXPECT_EQ(ReadAll(Ref("c1")), expected);
  auto late = Write(Ref("c1"), "x");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentTest, WithoutStdinTheProcessReadsDevNull) {
  Run("c1", {"sh", "-c", "cat; echo done"});
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 0);
  EXPECT_EQ(ReadAll(Ref("c1")), "done\n");
  auto write = Write(Ref("c1"), "x");
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentTest, OneMebibyteArrivesCompleteAndInOrderThroughSmallBuffers) {
  ProcessLimits limits;
  limits.buffer_capacity = 64 << 10;  // far less than the output: backpressure must hold it
  MakeService(limits);
  // 1 MiB of numbered lines, 10 bytes each ("%09d\n").
  Run("c1", {"sh", "-c",
             "i=0; while [ $i -lt 104858 ]; do printf '%09d\\n' $i; i=$((i+1)); done"
             " | head -c 1048576"});
  std::string expected;
  for (int i = 0; expected.size() < (1u << 20); ++i) {
    char line[16];
    snprintf(line, sizeof(line), "%09d\n", i);
    expected += line;
  }
  expected.resize(1u << 20);
  std::string got = ReadAll(Ref("c1"), false, 100000);
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "output differs from the expected sequence";
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_code(), 0);
}

TEST_P(AgentTest, BackpressureBlocksTheWriterInsteadOfDropping) {
  ProcessLimits limits;
  limits.buffer_capacity = 4096;
  MakeService(limits);
  Run("c1", {"sh", "-c", "head -c 300000 /dev/zero; echo finished >&2"});
  // Nobody reads stdout: the pipe (64 KiB) and the buffer (4 KiB) fill and the writer blocks.
  auto err = Read(Ref("c1"), true, 0, 500);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->data(), "");
  auto stat = Stat(Ref("c1"));
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->state(), v1::PROCESS_STATE_RUNNING);
  EXPECT_EQ(ReadAll(Ref("c1")).size(), 300000u);
  EXPECT_EQ(ReadAll(Ref("c1"), true), "finished\n");
}

TEST_P(AgentTest, MaxBytesIsHonoured) {
  Run("c1", {"sh", "-c", "echo 0123456789"});
  ASSERT_TRUE(Wait(Ref("c1")).ok());
  auto first = Read(Ref("c1"), false, 4);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->data(), "0123");
  EXPECT_FALSE(first->eof());
  EXPECT_EQ(ReadAll(Ref("c1")), "456789\n");
}

TEST_P(AgentTest, ReadTimeoutReturnsEmptyWithoutEof) {
  Run("c1", {"sleep", "30"});
  auto start = Clock::now();
  auto r = Read(Ref("c1"), false, 0, 200);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data(), "");
  EXPECT_FALSE(r->eof());
  EXPECT_GE(Clock::now() - start, milliseconds(190));
}

TEST_P(AgentTest, ReadsOfAGoneConnectionAreInterruptedWithoutLosingData) {
  Run("c1", {"sh", "-c", "read x; echo after:$x"}, /*with_stdin=*/true);
  auto orphan = std::async(std::launch::async, [&] { return Read(Ref("c1"), false); });
  std::this_thread::sleep_for(milliseconds(100));
  service_->InterruptPendingReads();  // what the port loop does when the host disconnects
  auto interrupted = orphan.get();
  ASSERT_TRUE(interrupted.ok());
  EXPECT_EQ(interrupted->data(), "");
  EXPECT_FALSE(interrupted->eof());
  ASSERT_TRUE(Write(Ref("c1"), "x\n").ok());
  EXPECT_EQ(ReadAll(Ref("c1")), "after:x\n");
}

TEST_P(AgentTest, SigkillGives137) {
  Run("c1", {"sleep", "30"});
  ASSERT_TRUE(Signal(Ref("c1"), SIGKILL).ok());
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 137);
  auto again = Signal(Ref("c1"), SIGTERM);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kNotFound);
}

TEST_P(AgentTest, SignalAllGoesThroughTheRuntime) {
  Run("c1", {"sleep", "30"});
  ASSERT_TRUE(Signal(Ref("c1"), SIGTERM, /*all=*/true).ok());
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_code(), 128 + SIGTERM);
  auto calls = runtime_.calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "kill-all c1 15"), calls.end());
  auto bad = Signal(Ref("c1"), 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
}

TEST_P(AgentTest, WaitHonoursTheCallDeadline) {
  Run("c1", {"sleep", "30"});
  auto waited = Wait(Ref("c1"), milliseconds(300));
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code(), Code::kDeadlineExceeded);
}

TEST_P(AgentTest, UnknownContainerIsNotFound) {
  EXPECT_EQ(Start("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(Wait(Ref("nope")).error().code(), Code::kNotFound);
  EXPECT_EQ(Read(Ref("nope"), false).error().code(), Code::kNotFound);
  EXPECT_EQ(Signal(Ref("nope"), SIGTERM).error().code(), Code::kNotFound);
  EXPECT_EQ(Remove("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(Stat(Ref("nope")).error().code(), Code::kNotFound);
  Run("c1", {"sleep", "30"});
  EXPECT_EQ(Wait(Ref("c1", "no-exec")).error().code(), Code::kNotFound);
}

TEST_P(AgentTest, CreateValidatesItsInput) {
  auto bad_id = Create("../evil", Spec({"true"}));
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.error().code(), Code::kInvalidArgument);
  auto bad_json = Create("c1", "{not json");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.error().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_json.error().message().find("JSON"), std::string::npos);
  auto relative_root = Create("c1", R"({"root":{"path":"rootfs"},"process":{"args":["x"]}})");
  ASSERT_FALSE(relative_root.ok());
  EXPECT_EQ(relative_root.error().code(), Code::kInvalidArgument);
  auto no_args = Create("c1", R"({"root":{"path":"/"},"process":{"args":[]}})");
  ASSERT_FALSE(no_args.ok());
  EXPECT_EQ(no_args.error().code(), Code::kInvalidArgument);
  EXPECT_TRUE(service_->ContainerIds().empty());
}

TEST_P(AgentTest, DuplicateCreateIsAlreadyExists) {
  ASSERT_TRUE(Create("c1", Spec({"sleep", "30"})).ok());
  auto dup = Create("c1", Spec({"sleep", "30"}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), Code::kAlreadyExists);
}

TEST_P(AgentTest, RuntimeFailureMessageReachesTheHostAndNothingLeaks) {
  runtime_.FailNextCreate("executable file `nope` not found");
  auto created = Create("c1", Spec({"nope"}));
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message().find("executable file `nope` not found"), std::string::npos)
      << created.error().message();
  EXPECT_TRUE(service_->ContainerIds().empty());
  EXPECT_FALSE(PathExists(dir_ + "/bundles/c1"));
  // The id is free again.
  ASSERT_TRUE(Create("c1", Spec({"true"})).ok());
}

TEST_P(AgentTest, BundleHoldsTheSpecWithTheAgentsCgroupPath) {
  nlohmann::json spec = nlohmann::json::parse(Spec({"sleep", "30"}));
  // Whatever the host asked for, the container lands where the agent looks for it.
  spec["linux"] = {{"cgroupsPath", "/kubepods/pod1/c1"}, {"sysctl", {{"a", "b"}}}};
  ASSERT_TRUE(Create("c1", spec.dump()).ok());
  auto written = ReadFile(dir_ + "/bundles/c1/config.json");
  ASSERT_TRUE(written.ok());
  nlohmann::json expected = spec;
  expected["linux"]["cgroupsPath"] = "/cocoon/c1";
  EXPECT_EQ(nlohmann::json::parse(*written), expected);
  EXPECT_TRUE(PathExists(dir_ + "/cgroup/cocoon/c1/cgroup.procs"));
  ASSERT_TRUE(Remove("c1").ok());
  EXPECT_FALSE(PathExists(dir_ + "/bundles/c1"));

  // A spec without a linux object gets one.
  ASSERT_TRUE(Create("c2", Spec({"sleep", "30"})).ok());
  written = ReadFile(dir_ + "/bundles/c2/config.json");
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(nlohmann::json::parse(*written)["linux"]["cgroupsPath"], "/cocoon/c2");

  spec["linux"] = "not an object";
  auto bad = Create("c3", spec.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("linux"), std::string::npos);
}

TEST_P(AgentTest, StartTwiceIsFailedPrecondition) {
  Run("c1", {"sleep", "30"});
  EXPECT_EQ(Start("c1").error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentTest, StatFollowsTheLifecycle) {
  ASSERT_TRUE(Create("c1", Spec({"sh", "-c", "exit 4"})).ok());
  auto created = Stat(Ref("c1"));
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->state(), v1::PROCESS_STATE_CREATED);
  EXPECT_GT(created->pid(), 0u);
  ASSERT_TRUE(Start("c1").ok());
  ASSERT_TRUE(Wait(Ref("c1")).ok());
  auto exited = Stat(Ref("c1"));
  ASSERT_TRUE(exited.ok());
  EXPECT_EQ(exited->state(), v1::PROCESS_STATE_EXITED);
  EXPECT_EQ(exited->exit_code(), 4);
}

TEST_P(AgentTest, ExecRunsAnExtraProcess) {
  Run("c1", {"sleep", "30"});
  auto exec =
      Exec("c1", "e1", ProcessJson({"sh", "-c", "echo exec-out; read x; echo got:$x; exit 5"}),
           /*with_stdin=*/true);
  ASSERT_TRUE(exec.ok()) << exec.error().message();
  EXPECT_GT(exec->pid(), 0u);
  ASSERT_TRUE(Write(Ref("c1", "e1"), "abc\n").ok());
  auto waited = Wait(Ref("c1", "e1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 5);
  EXPECT_EQ(ReadAll(Ref("c1", "e1")), "exec-out\ngot:abc\n");
  auto stat = Stat(Ref("c1"));
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->state(), v1::PROCESS_STATE_RUNNING);

  auto dup = Exec("c1", "e1", ProcessJson({"true"}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), Code::kAlreadyExists);
  auto bad_id = Exec("c1", "", ProcessJson({"true"}));
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.error().code(), Code::kInvalidArgument);
  auto bad_json = Exec("c1", "e2", "[1,2]");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.error().code(), Code::kInvalidArgument);
  EXPECT_FALSE(PathExists(dir_ + "/bundles/c1/exec-e1"));
}

TEST_P(AgentTest, ExecNeedsARunningContainer) {
  ASSERT_TRUE(Create("c1", Spec({"sleep", "30"})).ok());
  auto exec = Exec("c1", "e1", ProcessJson({"true"}));
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code(), Code::kFailedPrecondition);
  auto unknown = Exec("nope", "e1", ProcessJson({"true"}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
}

TEST_P(AgentTest, TerminalModeUsesAPtyAndResizes) {
  ASSERT_TRUE(Create("c1", Spec({"sh", "-c", "stty size; read line; echo got:$line"}, true),
                     /*with_stdin=*/true)
                  .ok());
  v1::ResizeTtyRequest resize;
  *resize.mutable_process() = Ref("c1");
  resize.set_rows(40);
  resize.set_cols(123);
  auto resized = api_->Call<v1::Empty>("ResizeTty", resize);
  ASSERT_TRUE(resized.ok()) << resized.error().message();
  ASSERT_TRUE(Start("c1").ok());
  ASSERT_TRUE(Write(Ref("c1"), "hello\n").ok());
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 0);
  std::string out = ReadAll(Ref("c1"));
  EXPECT_NE(out.find("40 123"), std::string::npos) << out;
  EXPECT_NE(out.find("got:hello"), std::string::npos) << out;
  auto err = Read(Ref("c1"), true, 0, 100);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->data(), "");
  EXPECT_TRUE(err->eof());  // a terminal has one stream
  auto stat = Stat(Ref("c1"));
  ASSERT_TRUE(stat.ok());
  EXPECT_TRUE(stat->terminal());
}

TEST_P(AgentTest, TerminalCloseStdinSendsEndOfInput) {
  Run("c1", {"sh", "-c", "cat >/dev/null; echo eof-seen"}, /*with_stdin=*/true,
      /*terminal=*/true);
  ASSERT_TRUE(CloseStdin(Ref("c1")).ok());
  auto waited = Wait(Ref("c1"));
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 0);
  EXPECT_NE(ReadAll(Ref("c1")).find("eof-seen"), std::string::npos);
}

TEST_P(AgentTest, ResizeWithoutTerminalIsFailedPrecondition) {
  Run("c1", {"sleep", "30"});
  v1::ResizeTtyRequest resize;
  *resize.mutable_process() = Ref("c1");
  resize.set_rows(10);
  resize.set_cols(10);
  auto r = api_->Call<v1::Empty>("ResizeTty", resize);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
}

TEST_P(AgentTest, RemoveWakesABlockedWaitWithTheRealExit) {
  Run("c1", {"sleep", "30"});
  auto waiter = std::async(std::launch::async, [&] { return Wait(Ref("c1")); });
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_TRUE(Remove("c1").ok());
  auto waited = waiter.get();
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited->exit_code(), 137);
  EXPECT_EQ(Wait(Ref("c1")).error().code(), Code::kNotFound);
  EXPECT_TRUE(service_->ContainerIds().empty());
}

TEST_P(AgentTest, GuestDetailsDescribeTheMachine) {
  service_->SetReadyUptime(1.25);
  auto details = api_->Call<v1::GuestDetailsResponse>("GuestDetails", v1::GuestDetailsRequest());
  ASSERT_TRUE(details.ok());
  EXPECT_FALSE(details->kernel_release().empty());
  EXPECT_EQ(details->machine(), "x86_64");
  EXPECT_GT(details->cpus(), 0u);
  EXPECT_GT(details->memory_total_bytes(), 1u << 20);
  EXPECT_EQ(details->crun_version(), "fake-runtime 1.0");
  EXPECT_EQ(details->agent_version(), "9.8.7");
  EXPECT_DOUBLE_EQ(details->uptime_at_ready_s(), 1.25);
}

TEST_P(AgentTest, ShutdownAnswersThenActs) {
  auto r = api_->Call<v1::Empty>("Shutdown", v1::ShutdownRequest());
  ASSERT_TRUE(r.ok());
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!shutdown_called_ && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(shutdown_called_);
}

TEST_P(AgentTest, ManyConcurrentContainers) {
  constexpr int kCount = 8;
  std::vector<std::future<void>> runs;
  for (int i = 0; i < kCount; ++i) {
    runs.push_back(std::async(std::launch::async, [this, i] {
      std::string id = "c" + std::to_string(i);
      Run(id, {"sh", "-c", "echo " + id + "; exit " + std::to_string(i)});
      auto waited = Wait(Ref(id));
      ASSERT_TRUE(waited.ok());
      EXPECT_EQ(waited->exit_code(), i);
      EXPECT_EQ(ReadAll(Ref(id)), id + "\n");
    }));
  }
  for (auto& r : runs) r.get();
}

}  // namespace
}  // namespace cocoon::agent::testing
