// The Agent API end to end, over both transports, with FakeRuntime standing in for crun.
#include "agent/service.h"

#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "agent/reaper.h"
#include "agent_api.h"
#include "common/io.h"
#include "fake_runtime.h"

namespace cocoon::agent::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string Spec(const std::vector<std::string>& args, bool terminal = false) {
  nlohmann::json spec = {{"ociVersion", "1.0.2"},
                         {"root", {{"path", "/"}}},
                         {"process", {{"args", args}, {"cwd", "/"}, {"terminal", terminal}}}};
  return spec.dump();
}

// 512 MiB of guest memory, no swap.
constexpr const char* kMeminfo =
    "MemTotal:         524288 kB\nMemFree:  1000 kB\nSwapTotal: 0 kB\n";

std::string ProcessJson(const std::vector<std::string>& args, bool terminal = false) {
  return nlohmann::json({{"args", args}, {"cwd", "/"}, {"terminal", terminal}}).dump();
}

v1::ProcessRef Ref(const std::string& id, const std::string& exec = "") {
  v1::ProcessRef ref;
  ref.set_container_id(id);
  ref.set_exec_id(exec);
  return ref;
}

class AgentTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    if (!TransportAvailable(GetParam())) GTEST_SKIP() << "ttRPC library not built";
    char tmpl[] = "/tmp/agent-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(reaper_.Start().ok());
    // The fake runtime makes each container's cgroup as a plain directory under this root.
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/meminfo", kMeminfo).ok());
    runtime_.set_cgroup_root(dir_ + "/cgroup");
    MakeService(ProcessLimits{});
  }

  void MakeService(ProcessLimits limits,
                   std::chrono::milliseconds max_events_wait = std::chrono::seconds(10)) {
    api_.reset();
    service_.reset();
    AgentOptions options;
    options.agent_version = "9.8.7";
    options.bundle_root = dir_ + "/bundles";
    options.meminfo_path = dir_ + "/meminfo";
    options.cgroup_root = dir_ + "/cgroup";
    options.max_events_wait = max_events_wait;
    options.limits = limits;
    options.on_shutdown = [this] { shutdown_called_ = true; };
    service_ = std::make_unique<AgentService>(options, &runtime_, &reaper_);
    api_ = MakeApi(GetParam(), service_.get());
  }

  void TearDown() override {
    if (service_) {
      for (const std::string& id : service_->ContainerIds()) (void)Remove(id);
    }
    api_.reset();
    service_.reset();
    reaper_.Stop();
    if (!dir_.empty()) (void)RemoveTree(dir_);
  }

  Result<v1::CreateContainerResponse> Create(const std::string& id, const std::string& spec,
                                             bool with_stdin = false) {
    v1::CreateContainerRequest req;
    req.set_container_id(id);
    req.set_spec_json(spec);
    req.set_stdin(with_stdin);
    return api_->Call<v1::CreateContainerResponse>("CreateContainer", req);
  }

  Status Start(const std::string& id) {
    v1::StartContainerRequest req;
    req.set_container_id(id);
    Result<v1::Empty> r = api_->Call<v1::Empty>("StartContainer", req);
    if (!r.ok()) return r.error();
    return OkStatus();
  }

  // Creates and starts; fails the test on error.
  void Run(const std::string& id, const std::vector<std::string>& args, bool with_stdin = false,
           bool terminal = false) {
    Result<v1::CreateContainerResponse> created = Create(id, Spec(args, terminal), with_stdin);
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_GT(created->pid(), 0u);
    Status started = Start(id);
    ASSERT_TRUE(started.ok()) << started.error().message();
  }

  Result<v1::WaitProcessResponse> Wait(const v1::ProcessRef& ref,
                                       milliseconds timeout = std::chrono::seconds(20)) {
    return api_->Call<v1::WaitProcessResponse>("WaitProcess", ref, timeout);
  }

  Result<v1::ReadStreamResponse> Read(const v1::ProcessRef& ref, bool err, uint32_t max = 0,
                                      uint32_t timeout_ms = 0) {
    v1::ReadStreamRequest req;
    *req.mutable_process() = ref;
    req.set_max_bytes(max);
    req.set_timeout_ms(timeout_ms);
    return api_->Call<v1::ReadStreamResponse>(err ? "ReadStderr" : "ReadStdout", req);
  }

  // Reads a stream to EOF (bounded by 20 s of wall time).
  std::string ReadAll(const v1::ProcessRef& ref, bool err = false, uint32_t max = 0) {
    std::string out;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      Result<v1::ReadStreamResponse> r = Read(ref, err, max, 2000);
      if (!r.ok()) {
        ADD_FAILURE() << "read failed: " << r.error().message();
        return out;
      }
      out += r->data();
      if (r->eof()) return out;
    }
    ADD_FAILURE() << "no EOF within 20 s; got " << out.size() << " bytes";
    return out;
  }

  Result<size_t> Write(const v1::ProcessRef& ref, const std::string& data) {
    v1::WriteStdinRequest req;
    *req.mutable_process() = ref;
    req.set_data(data);
    COCOON_ASSIGN_OR_RETURN(auto resp, api_->Call<v1::WriteStdinResponse>("WriteStdin", req));
    return static_cast<size_t>(resp.written());
  }

  Status CloseStdin(const v1::ProcessRef& ref) {
    Result<v1::Empty> r = api_->Call<v1::Empty>("CloseStdin", ref);
    return r.ok() ? OkStatus() : Status(r.error());
  }

  Status Signal(const v1::ProcessRef& ref, int sig, bool all = false) {
    v1::SignalProcessRequest req;
    *req.mutable_process() = ref;
    req.set_signal(static_cast<uint32_t>(sig));
    req.set_all(all);
    Result<v1::Empty> r = api_->Call<v1::Empty>("SignalProcess", req);
    return r.ok() ? OkStatus() : Status(r.error());
  }

  Status Remove(const std::string& id) {
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    Result<v1::Empty> r = api_->Call<v1::Empty>("RemoveContainer", req);
    return r.ok() ? OkStatus() : Status(r.error());
  }

  Result<v1::ExecProcessResponse> Exec(const std::string& id, const std::string& exec_id,
                                       const std::string& process_json, bool with_stdin = false) {
    v1::ExecProcessRequest req;
    req.set_container_id(id);
    req.set_exec_id(exec_id);
    req.set_process_json(process_json);
    req.set_stdin(with_stdin);
    return api_->Call<v1::ExecProcessResponse>("ExecProcess", req);
  }

  Result<v1::StatProcessResponse> Stat(const v1::ProcessRef& ref) {
    return api_->Call<v1::StatProcessResponse>("StatProcess", ref);
  }

  std::string dir_;
  Reaper reaper_;
  FakeRuntime runtime_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<AgentApi> api_;
  std::atomic<bool> shutdown_called_{false};
};

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
  EXPECT_EQ(resp->protocol_minor(), 1u);
  EXPECT_EQ(resp->agent_version(), "9.8.7");
  std::vector<std::string> caps(resp->capabilities().begin(), resp->capabilities().end());
  for (const char* cap :
       {"tty", "exec", "remove-process", "pause", "update", "stats", "events", "ps"}) {
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
