// The fixture of the Agent API tests (service_test.cc, service_control_test.cc): an AgentService
// over FakeRuntime, reached through one of the two transports, with a fake cgroup tree and a fake
// /proc/meminfo in a temporary directory.
#pragma once

#include <stdlib.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "agent/reaper.h"
#include "agent/service.h"
#include "agent_api.h"
#include "common/io.h"
#include "fake_runtime.h"

namespace cocoon::agent::testing {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

inline std::string Spec(const std::vector<std::string>& args, bool terminal = false) {
  nlohmann::json spec = {{"ociVersion", "1.0.2"},
                         {"root", {{"path", "/"}}},
                         {"process", {{"args", args}, {"cwd", "/"}, {"terminal", terminal}}}};
  return spec.dump();
}

// 512 MiB of guest memory, no swap.
inline constexpr const char* kMeminfo =
    "MemTotal:         524288 kB\nMemFree:  1000 kB\nSwapTotal: 0 kB\n";

inline std::string ProcessJson(const std::vector<std::string>& args, bool terminal = false) {
  return nlohmann::json({{"args", args}, {"cwd", "/"}, {"terminal", terminal}}).dump();
}

inline v1::ProcessRef Ref(const std::string& id, const std::string& exec = "") {
  v1::ProcessRef ref;
  ref.set_container_id(id);
  ref.set_exec_id(exec);
  return ref;
}

inline v1::ContainerRef CRef(const std::string& id) {
  v1::ContainerRef ref;
  ref.set_container_id(id);
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

}  // namespace cocoon::agent::testing
