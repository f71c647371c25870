// The method table of cocoon.agent.v1.Agent, independent of the transport: the ttRPC binding
// (service_ttrpc.cc) and the unit tests' in-process transport use the same table.
#pragma once

#include <functional>

#include "agent/service.h"

namespace cocoon::agent {

template <typename Req, typename Resp>
using AgentHandler = std::function<Result<Resp>(const Req&, Deadline)>;

// Calls registrar->Add<Req, Resp>(method_name, handler) for every RPC of the service.
template <typename Registrar>
void ForEachAgentMethod(AgentService* s, Registrar* r) {
  r->template Add<v1::HandshakeRequest, v1::HandshakeResponse>(
      "Handshake", [s](const auto& q, Deadline) { return s->Handshake(q); });
  r->template Add<v1::CreateContainerRequest, v1::CreateContainerResponse>(
      "CreateContainer", [s](const auto& q, Deadline) { return s->CreateContainer(q); });
  r->template Add<v1::StartContainerRequest, v1::Empty>(
      "StartContainer", [s](const auto& q, Deadline) { return s->StartContainer(q); });
  r->template Add<v1::ExecProcessRequest, v1::ExecProcessResponse>(
      "ExecProcess", [s](const auto& q, Deadline) { return s->ExecProcess(q); });
  r->template Add<v1::SignalProcessRequest, v1::Empty>(
      "SignalProcess", [s](const auto& q, Deadline) { return s->SignalProcess(q); });
  r->template Add<v1::ProcessRef, v1::WaitProcessResponse>(
      "WaitProcess", [s](const auto& q, Deadline d) { return s->WaitProcess(q, d); });
  r->template Add<v1::ReadStreamRequest, v1::ReadStreamResponse>(
      "ReadStdout", [s](const auto& q, Deadline d) { return s->ReadStdout(q, d); });
  r->template Add<v1::ReadStreamRequest, v1::ReadStreamResponse>(
      "ReadStderr", [s](const auto& q, Deadline d) { return s->ReadStderr(q, d); });
  r->template Add<v1::WriteStdinRequest, v1::WriteStdinResponse>(
      "WriteStdin", [s](const auto& q, Deadline) { return s->WriteStdin(q); });
  r->template Add<v1::ProcessRef, v1::Empty>(
      "CloseStdin", [s](const auto& q, Deadline) { return s->CloseStdin(q); });
  r->template Add<v1::ResizeTtyRequest, v1::Empty>(
      "ResizeTty", [s](const auto& q, Deadline) { return s->ResizeTty(q); });
  r->template Add<v1::RemoveContainerRequest, v1::Empty>(
      "RemoveContainer", [s](const auto& q, Deadline) { return s->RemoveContainer(q); });
  r->template Add<v1::ProcessRef, v1::StatProcessResponse>(
      "StatProcess", [s](const auto& q, Deadline) { return s->StatProcess(q); });
  r->template Add<v1::GuestDetailsRequest, v1::GuestDetailsResponse>(
      "GuestDetails", [s](const auto& q, Deadline) { return s->GuestDetails(q); });
  r->template Add<v1::ShutdownRequest, v1::Empty>(
      "Shutdown", [s](const auto& q, Deadline) { return s->Shutdown(q); });
  r->template Add<v1::ProcessRef, v1::Empty>(
      "RemoveProcess", [s](const auto& q, Deadline) { return s->RemoveProcess(q); });
  r->template Add<v1::ContainerRef, v1::Empty>(
      "PauseContainer", [s](const auto& q, Deadline) { return s->PauseContainer(q); });
  r->template Add<v1::ContainerRef, v1::Empty>(
      "ResumeContainer", [s](const auto& q, Deadline) { return s->ResumeContainer(q); });
  r->template Add<v1::UpdateContainerRequest, v1::Empty>(
      "UpdateContainer", [s](const auto& q, Deadline) { return s->UpdateContainer(q); });
  r->template Add<v1::ContainerRef, cgv2::Metrics>(
      "StatsContainer", [s](const auto& q, Deadline) { return s->StatsContainer(q); });
  r->template Add<v1::GetEventsRequest, v1::GetEventsResponse>(
      "GetEvents", [s](const auto& q, Deadline d) { return s->GetEvents(q, d); });
  r->template Add<v1::ContainerRef, v1::ListProcessesResponse>(
      "ListProcesses", [s](const auto& q, Deadline) { return s->ListProcesses(q); });
  r->template Add<v1::ConfigureInterfaceRequest, v1::Empty>(
      "ConfigureInterface", [s](const auto& q, Deadline) { return s->ConfigureInterface(q); });
}

}  // namespace cocoon::agent
