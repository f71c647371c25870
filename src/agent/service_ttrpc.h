// Puts an AgentService on a ttRPC server as service cocoon.agent.v1.Agent.
#pragma once

#include "agent/service.h"
#include "ttrpc/server.h"

namespace cocoon::agent {

inline constexpr const char* kAgentServiceName = "cocoon.agent.v1.Agent";

// Registers every RPC of the Agent service; `service` must outlive `server`'s connections.
void RegisterAgentService(ttrpc::Server* server, AgentService* service);

}  // namespace cocoon::agent
