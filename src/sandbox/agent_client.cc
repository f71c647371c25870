#include "sandbox/agent_client.h"

#include "cocoon_version.h"

namespace cocoon::sandbox {
namespace {

constexpr char kService[] = "cocoon.agent.v1.Agent";

agentpb::ContainerRef ContainerRef(const std::string& id) {
  agentpb::ContainerRef ref;
  ref.set_container_id(id);
  return ref;
}

Status ToStatus(const Result<agentpb::Empty>& r) { return r.ok() ? OkStatus() : Status(r.error()); }

agentpb::ProcessRef Ref(const std::string& id, const std::string& exec_id) {
  agentpb::ProcessRef ref;
  ref.set_container_id(id);
  ref.set_exec_id(exec_id);
  return ref;
}

}  // namespace

template <typename Resp, typename Req>
Result<Resp> AgentClient::Call(const char* method, const Req& req,
                               std::chrono::milliseconds timeout) {
  ttrpc::CallOptions opts;
  opts.timeout = timeout;
  Result<Resp> r = client_.Call<Resp>(kService, method, req, opts);
  if (!r.ok()) return r.error().Wrap(std::string("agent ") + method);
  return r;
}

Result<agentpb::HandshakeResponse> AgentClient::Handshake(std::chrono::milliseconds timeout) {
  agentpb::HandshakeRequest req;
  req.set_protocol_major(kAgentProtocolMajor);
  req.set_protocol_minor(kAgentProtocolMinor);
  req.set_host_version(COCOON_VERSION);
  COCOON_ASSIGN_OR_RETURN(auto resp, Call<agentpb::HandshakeResponse>("Handshake", req, timeout));
  if (resp.protocol_major() != kAgentProtocolMajor) {
    return Error(Code::kFailedPrecondition,
                 "guest agent speaks protocol " + std::to_string(resp.protocol_major()) +
                     ", this cocoon speaks " + std::to_string(kAgentProtocolMajor) +
                     ": rebuild the guest image");
  }
  return resp;
}

Result<agentpb::GuestDetailsResponse> AgentClient::GuestDetails() {
  return Call<agentpb::GuestDetailsResponse>("GuestDetails", agentpb::GuestDetailsRequest());
}

Result<uint32_t> AgentClient::CreateContainer(const std::string& id, const std::string& spec_json,
                                              bool stdin_pipe) {
  agentpb::CreateContainerRequest req;
  req.set_container_id(id);
  req.set_spec_json(spec_json);
  req.set_stdin(stdin_pipe);
  COCOON_ASSIGN_OR_RETURN(auto resp,
                          Call<agentpb::CreateContainerResponse>("CreateContainer", req));
  return resp.pid();
}

Status AgentClient::StartContainer(const std::string& id) {
  agentpb::StartContainerRequest req;
  req.set_container_id(id);
  auto r = Call<agentpb::Empty>("StartContainer", req);
  return r.ok() ? OkStatus() : Status(r.error());
}

Status AgentClient::Signal(const std::string& id, const std::string& exec_id, int sig, bool all) {
  agentpb::SignalProcessRequest req;
  *req.mutable_process() = Ref(id, exec_id);
  req.set_signal(static_cast<uint32_t>(sig));
  req.set_all(all);
  auto r = Call<agentpb::Empty>("SignalProcess", req);
  return r.ok() ? OkStatus() : Status(r.error());
}

Result<agentpb::WaitProcessResponse> AgentClient::Wait(const std::string& id,
                                                       const std::string& exec_id) {
  return Call<agentpb::WaitProcessResponse>("WaitProcess", Ref(id, exec_id));
}

Result<agentpb::ReadStreamResponse> AgentClient::Read(const std::string& id,
                                                      const std::string& exec_id,
                                                      bool stderr_stream) {
  agentpb::ReadStreamRequest req;
  *req.mutable_process() = Ref(id, exec_id);
  req.set_max_bytes(1 << 20);
  return Call<agentpb::ReadStreamResponse>(stderr_stream ? "ReadStderr" : "ReadStdout", req);
}

Status AgentClient::WriteStdin(const std::string& id, const std::string& exec_id,
                               const std::string& data) {
  agentpb::WriteStdinRequest req;
  *req.mutable_process() = Ref(id, exec_id);
  req.set_data(data);
  auto r = Call<agentpb::WriteStdinResponse>("WriteStdin", req);
  return r.ok() ? OkStatus() : Status(r.error());
}

Status AgentClient::CloseStdin(const std::string& id, const std::string& exec_id) {
  auto r = Call<agentpb::Empty>("CloseStdin", Ref(id, exec_id));
  return r.ok() ? OkStatus() : Status(r.error());
}

Status AgentClient::ResizeTty(const std::string& id, const std::string& exec_id, uint32_t rows,
                              uint32_t cols) {
  agentpb::ResizeTtyRequest req;
  *req.mutable_process() = Ref(id, exec_id);
  req.set_rows(rows);
  req.set_cols(cols);
  auto r = Call<agentpb::Empty>("ResizeTty", req);
  return r.ok() ? OkStatus() : Status(r.error());
}

Status AgentClient::RemoveContainer(const std::string& id) {
  agentpb::RemoveContainerRequest req;
  req.set_container_id(id);
  auto r = Call<agentpb::Empty>("RemoveContainer", req);
  return r.ok() ? OkStatus() : Status(r.error());
}

Status AgentClient::Shutdown() {
  auto r =
      Call<agentpb::Empty>("Shutdown", agentpb::ShutdownRequest(), std::chrono::milliseconds(2000));
  return r.ok() ? OkStatus() : Status(r.error());
}

Result<uint32_t> AgentClient::Exec(const std::string& id, const std::string& exec_id,
                                   const std::string& process_json, bool stdin_pipe) {
  agentpb::ExecProcessRequest req;
  req.set_container_id(id);
  req.set_exec_id(exec_id);
  req.set_process_json(process_json);
  req.set_stdin(stdin_pipe);
  COCOON_ASSIGN_OR_RETURN(auto resp, Call<agentpb::ExecProcessResponse>("ExecProcess", req));
  return resp.pid();
}

Status AgentClient::RemoveProcess(const std::string& id, const std::string& exec_id) {
  return ToStatus(Call<agentpb::Empty>("RemoveProcess", Ref(id, exec_id)));
}

Status AgentClient::Pause(const std::string& id) {
  return ToStatus(Call<agentpb::Empty>("PauseContainer", ContainerRef(id)));
}

Status AgentClient::Resume(const std::string& id) {
  return ToStatus(Call<agentpb::Empty>("ResumeContainer", ContainerRef(id)));
}

Status AgentClient::Update(const std::string& id, const std::string& resources_json) {
  agentpb::UpdateContainerRequest req;
  req.set_container_id(id);
  req.set_resources_json(resources_json);
  return ToStatus(Call<agentpb::Empty>("UpdateContainer", req));
}

Result<cgroupspb::Metrics> AgentClient::Stats(const std::string& id) {
  return Call<cgroupspb::Metrics>("StatsContainer", ContainerRef(id));
}

Result<std::vector<agentpb::GuestEvent>> AgentClient::GetEvents(std::chrono::milliseconds timeout) {
  agentpb::GetEventsRequest req;
  req.set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  // The call itself may take the whole timeout; the transport deadline adds a margin.
  COCOON_ASSIGN_OR_RETURN(auto resp, Call<agentpb::GetEventsResponse>(
                                         "GetEvents", req, timeout + std::chrono::seconds(5)));
  return std::vector<agentpb::GuestEvent>(resp.events().begin(), resp.events().end());
}

Result<std::vector<uint32_t>> AgentClient::ListProcesses(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto resp,
                          Call<agentpb::ListProcessesResponse>("ListProcesses", ContainerRef(id)));
  return std::vector<uint32_t>(resp.pids().begin(), resp.pids().end());
}

Status AgentClient::ConfigureInterface(const agentpb::ConfigureInterfaceRequest& req) {
  return ToStatus(Call<agentpb::Empty>("ConfigureInterface", req));
}

}  // namespace cocoon::sandbox
