// How the service tests reach the agent: in-process (the service's method table called
// directly, with protobuf (de)serialization) or through a real ttRPC client and server over a
// socketpair. The same tests run over both.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/service.h"
#include "common/result.h"

namespace cocoon::agent::testing {

class AgentApi {
 public:
  virtual ~AgentApi() = default;
  virtual Result<std::string> CallRaw(const std::string& method, const std::string& payload,
                                      std::chrono::milliseconds timeout) = 0;

  template <typename Resp, typename Req>
  Result<Resp> Call(const std::string& method, const Req& req,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    COCOON_ASSIGN_OR_RETURN(std::string raw, CallRaw(method, req.SerializeAsString(), timeout));
    Resp resp;
    if (!resp.ParseFromString(raw)) return Error(Code::kInternal, "bad response to " + method);
    return resp;
  }
};

enum class Transport { kDirect, kTtrpc };

// Makes an AgentApi over `service` (which must outlive it).
std::unique_ptr<AgentApi> MakeApi(Transport transport, AgentService* service);
bool TransportAvailable(Transport transport);

}  // namespace cocoon::agent::testing
