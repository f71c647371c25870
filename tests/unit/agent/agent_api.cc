#include "agent_api.h"

#include <thread>

#include "agent/service_methods.h"
#include "common/io.h"

#ifdef COCOON_HAVE_TTRPC
#include "agent/service_ttrpc.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"
#endif

namespace cocoon::agent::testing {

namespace {

class DirectApi : public AgentApi {
 public:
  explicit DirectApi(AgentService* service) { ForEachAgentMethod(service, this); }

  template <typename Req, typename Resp>
  void Add(const char* method, AgentHandler<Req, Resp> handler) {
    methods_[method] = [handler](const std::string& payload,
                                 Deadline deadline) -> Result<std::string> {
      Req req;
      if (!req.ParseFromString(payload)) return Error(Code::kInternal, "bad request");
      COCOON_ASSIGN_OR_RETURN(Resp resp, handler(req, deadline));
      return resp.SerializeAsString();
    };
  }

  Result<std::string> CallRaw(const std::string& method, const std::string& payload,
                              std::chrono::milliseconds timeout) override {
    auto it = methods_.find(method);
    if (it == methods_.end()) return Error(Code::kUnimplemented, "method " + method);
    Deadline deadline;
    if (timeout.count() > 0) deadline = std::chrono::steady_clock::now() + timeout;
    return it->second(payload, deadline);
  }

 private:
  std::map<std::string, std::function<Result<std::string>(const std::string&, Deadline)>> methods_;
};

#ifdef COCOON_HAVE_TTRPC
class TtrpcApi : public AgentApi {
 public:
  explicit TtrpcApi(AgentService* service) {
    UniqueFd server_end, client_end;
    Status made = MakeSocketPair(&server_end, &client_end);
    if (!made.ok()) std::abort();
    RegisterAgentService(&server_, service);
    thread_ = std::thread([this, fd = std::move(server_end)]() mutable {
      Status served = server_.ServeConnection(std::move(fd));
      (void)served;
    });
    client_ = std::make_unique<ttrpc::Client>(std::move(client_end));
  }

  ~TtrpcApi() override {
    client_->Close();
    server_.Shutdown();
    thread_.join();
  }

  Result<std::string> CallRaw(const std::string& method, const std::string& payload,
                              std::chrono::milliseconds timeout) override {
    ttrpc::CallOptions options;
    options.timeout = timeout;
    return client_->CallRaw(kAgentServiceName, method, payload, options);
  }

 private:
  ttrpc::Server server_;
  std::thread thread_;
  std::unique_ptr<ttrpc::Client> client_;
};
#endif

}  // namespace

bool TransportAvailable(Transport transport) {
#ifdef COCOON_HAVE_TTRPC
  return true;
#else
  return transport == Transport::kDirect;
#endif
}

std::unique_ptr<AgentApi> MakeApi(Transport transport, AgentService* service) {
#ifdef COCOON_HAVE_TTRPC
  if (transport == Transport::kTtrpc) return std::make_unique<TtrpcApi>(service);
#endif
  return std::make_unique<DirectApi>(service);
}

}  // namespace cocoon::agent::testing
