// The cocoon.agent.v1.Agent API as plain C++: one method per RPC, protobuf messages in and out,
// errors as values with gRPC codes. service_ttrpc.h puts it on a ttRPC server. Every method is
// safe to call concurrently; the blocking ones (WaitProcess, Read*, WriteStdin, GetEvents) hold no
// lock while they wait.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/cgroup.h"
#include "agent/oom_watcher.h"
#include "agent/process.h"
#include "agent/reaper.h"
#include "agent/runtime.h"
#include "common/result.h"
#include "proto/agent.pb.h"

namespace cocoon::agent {

namespace v1 = ::cocoon::agent::v1;

inline constexpr uint32_t kProtocolMajor = 1;
inline constexpr uint32_t kProtocolMinor = 2;
inline constexpr uint32_t kMaxReadBytes = 1 << 20;

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

struct AgentOptions {
  std::string agent_version = "0.0.0";
  std::string bundle_root = "/run/cocoon/bundles";
  std::string meminfo_path = "/proc/meminfo";
  // The cgroup v2 mount, and the cgroup under it that holds one child per container: the agent
  // sets every container's linux.cgroupsPath to <cgroup_parent>/<id>, so it knows where to read
  // its figures without asking the runtime. Boot enables every controller at the root; crun
  // creates <cgroup_parent> and enables them there on its way down (seen in a real guest: memory,
  // pids and cpu limits apply in /cocoon/<id>). Unit tests point cgroup_root at a fake tree.
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_parent = "/cocoon";
  // The longest a GetEvents call waits (its timeout_ms is capped to this).
  std::chrono::milliseconds max_events_wait{10000};
  ProcessLimits limits;
  // How long RemoveContainer waits for the killed processes' exits, so that blocked
  // WaitProcess calls get a real exit code rather than "removed".
  std::chrono::milliseconds remove_wait{2000};
  // Runs (on a thread of its own, shortly after the Shutdown reply was sent) to power off.
  std::function<void()> on_shutdown;
  std::chrono::milliseconds shutdown_delay{100};
};

class AgentService {
 public:
  AgentService(AgentOptions options, ContainerRuntime* runtime, Reaper* reaper);
  ~AgentService();  // destroys every process record (does not kill the processes)

  Result<v1::HandshakeResponse> Handshake(const v1::HandshakeRequest& req);
  Result<v1::CreateContainerResponse> CreateContainer(const v1::CreateContainerRequest& req);
  Result<v1::Empty> StartContainer(const v1::StartContainerRequest& req);
  Result<v1::ExecProcessResponse> ExecProcess(const v1::ExecProcessRequest& req);
  Result<v1::Empty> SignalProcess(const v1::SignalProcessRequest& req);
  Result<v1::WaitProcessResponse> WaitProcess(const v1::ProcessRef& req, Deadline deadline);
  Result<v1::ReadStreamResponse> ReadStdout(const v1::ReadStreamRequest& req, Deadline deadline);
  Result<v1::ReadStreamResponse> ReadStderr(const v1::ReadStreamRequest& req, Deadline deadline);
  Result<v1::WriteStdinResponse> WriteStdin(const v1::WriteStdinRequest& req);
  Result<v1::Empty> CloseStdin(const v1::ProcessRef& req);
  Result<v1::Empty> ResizeTty(const v1::ResizeTtyRequest& req);
  Result<v1::Empty> RemoveContainer(const v1::RemoveContainerRequest& req);
  Result<v1::StatProcessResponse> StatProcess(const v1::ProcessRef& req);
  Result<v1::GuestDetailsResponse> GuestDetails(const v1::GuestDetailsRequest& req);
  Result<v1::Empty> Shutdown(const v1::ShutdownRequest& req);
  // Protocol 1.1.
  Result<v1::Empty> RemoveProcess(const v1::ProcessRef& req);
  Result<v1::Empty> PauseContainer(const v1::ContainerRef& req);
  Result<v1::Empty> ResumeContainer(const v1::ContainerRef& req);
  Result<v1::Empty> UpdateContainer(const v1::UpdateContainerRequest& req);
  Result<cgv2::Metrics> StatsContainer(const v1::ContainerRef& req);
  Result<v1::GetEventsResponse> GetEvents(const v1::GetEventsRequest& req, Deadline deadline);
  Result<v1::ListProcessesResponse> ListProcesses(const v1::ContainerRef& req);
  // Protocol 1.2 (service_network.cc).
  Result<v1::Empty> ConfigureInterface(const v1::ConfigureInterfaceRequest& req);

  // The host's connection ended: reads and GetEvents calls still blocked for it return at once,
  // empty, so they do not take output or events whose reply can no longer be delivered. (Only
  // for a single-connection transport: it disturbs the calls of every connection.)
  void InterruptPendingReads();

  // Recorded by main when the port is open, for GuestDetails.uptime_at_ready_s.
  void SetReadyUptime(double seconds);
  // Ids of the containers the agent knows (for shutdown and tests).
  std::vector<std::string> ContainerIds() const;

 private:
  struct Container {
    std::string id;
    std::string bundle_dir;
    std::shared_ptr<Process> init;                          // null while crun create runs
    std::map<std::string, std::shared_ptr<Process>> execs;  // null value: exec in progress
    enum class State { kCreating, kCreated, kStarting, kStarted, kRemoving } state;
    bool paused = false;  // only while kStarted
  };

  Result<std::shared_ptr<Process>> FindProcess(const v1::ProcessRef& ref) const;
  Result<v1::ReadStreamResponse> ReadStream(const v1::ReadStreamRequest& req, Deadline deadline,
                                            Process::StreamId stream);
  // Registers a launched process: attaches its stdio and watches its exit.
  Result<std::shared_ptr<Process>> Adopt(const std::string& container_id,
                                         const std::string& exec_id, Launched launched,
                                         ProcessIo io);
  void Forget(Container* container);
  // The container's cgroup directory in the guest.
  std::string CgroupDir(const std::string& id) const;
  // CgroupDir of a known container whose cgroup exists: NOT_FOUND for an unknown container,
  // FAILED_PRECONDITION while it has no cgroup.
  Result<std::string> ExistingCgroupDir(const std::string& id) const;
  // Pause (true) or Resume (false).
  Result<v1::Empty> SetPaused(const std::string& id, bool paused);

  const AgentOptions options_;
  ContainerRuntime* const runtime_;
  Reaper* const reaper_;

  mutable std::mutex mu_;
  std::mutex net_mu_;  // one interface change at a time
  std::map<std::string, std::unique_ptr<Container>> containers_;
  double ready_uptime_ = 0;
  std::optional<std::string> runtime_version_;
  uint64_t update_seq_ = 0;

  OomWatcher oom_;
  Status oom_started_;
};

}  // namespace cocoon::agent
