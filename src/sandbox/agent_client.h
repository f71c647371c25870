// Typed client of the guest agent (cocoon.agent.v1.Agent) over a ttRPC connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/agent.pb.h"
#include "ttrpc/client.h"

namespace cocoon::sandbox {

inline constexpr uint32_t kAgentProtocolMajor = 1;
inline constexpr uint32_t kAgentProtocolMinor = 2;

namespace agentpb = ::cocoon::agent::v1;
namespace cgroupspb = ::io::containerd::cgroups::v2;

class AgentClient {
 public:
  explicit AgentClient(UniqueFd fd) : client_(std::move(fd)) {}

  // Fails with FAILED_PRECONDITION when the agent speaks another major version.
  Result<agentpb::HandshakeResponse> Handshake(std::chrono::milliseconds timeout);
  Result<agentpb::GuestDetailsResponse> GuestDetails();
  Result<uint32_t> CreateContainer(const std::string& id, const std::string& spec_json,
                                   bool stdin_pipe);
  Status StartContainer(const std::string& id);
  Status Signal(const std::string& id, const std::string& exec_id, int sig, bool all = false);
  Result<agentpb::WaitProcessResponse> Wait(const std::string& id, const std::string& exec_id);
  // One chunk of output; eof is set when the stream is finished.
  Result<agentpb::ReadStreamResponse> Read(const std::string& id, const std::string& exec_id,
                                           bool stderr_stream);
  Status WriteStdin(const std::string& id, const std::string& exec_id, const std::string& data);
  Status CloseStdin(const std::string& id, const std::string& exec_id);
  Status ResizeTty(const std::string& id, const std::string& exec_id, uint32_t rows, uint32_t cols);
  Status RemoveContainer(const std::string& id);
  Status Shutdown();

  // Protocol 1.1.
  // Starts an extra process (OCI "process" JSON) in a running container; returns its guest pid.
  Result<uint32_t> Exec(const std::string& id, const std::string& exec_id,
                        const std::string& process_json, bool stdin_pipe);
  // Forgets a finished exec.
  Status RemoveProcess(const std::string& id, const std::string& exec_id);
  Status Pause(const std::string& id);
  Status Resume(const std::string& id);
  Status Update(const std::string& id, const std::string& resources_json);
  Result<cgroupspb::Metrics> Stats(const std::string& id);
  // Waits up to `timeout` for guest events; empty when none came.
  Result<std::vector<agentpb::GuestEvent>> GetEvents(std::chrono::milliseconds timeout);
  Result<std::vector<uint32_t>> ListProcesses(const std::string& id);

  // Protocol 1.2.
  // Gives the NIC that booted with req.boot_mac the identity of a host interface.
  Status ConfigureInterface(const agentpb::ConfigureInterfaceRequest& req);

  void Close() { client_.Close(); }

 private:
  template <typename Resp, typename Req>
  Result<Resp> Call(const char* method, const Req& req, std::chrono::milliseconds timeout = {});

  ttrpc::Client client_;
};

}  // namespace cocoon::sandbox
