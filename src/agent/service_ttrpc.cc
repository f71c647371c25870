#include "agent/service_ttrpc.h"

#include "agent/service_methods.h"

namespace cocoon::agent {

namespace {

class ServerRegistrar {
 public:
  explicit ServerRegistrar(ttrpc::Server* server) : server_(server) {}

  template <typename Req, typename Resp>
  void Add(const char* method, AgentHandler<Req, Resp> handler) {
    server_->Register<Req, Resp>(
        kAgentServiceName, method,
        [handler = std::move(handler)](const ttrpc::CallContext& ctx, const Req& req) {
          return handler(req, ctx.deadline);
        });
  }

 private:
  ttrpc::Server* server_;
};

}  // namespace

void RegisterAgentService(ttrpc::Server* server, AgentService* service) {
  ServerRegistrar registrar(server);
  ForEachAgentMethod(service, &registrar);
}

}  // namespace cocoon::agent
