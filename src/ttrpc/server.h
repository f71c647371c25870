// ttRPC server: serves calls on a connected stream fd (Unix socket, virtio-serial port, pipe pair).
// Each request runs on its own thread, so a blocking call (Wait) never holds up others (State).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::ttrpc {

struct CallContext {
  std::string service;
  std::string method;
  std::vector<std::pair<std::string, std::string>> metadata;
  // Set when the request carried timeout_nano > 0.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// A raw handler: request payload bytes in, response payload bytes out.
using RawHandler = std::function<Result<std::string>(const CallContext&, const std::string&)>;

class Server {
 public:
  Server();
  ~Server();  // Shutdown()s and joins every thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void RegisterRaw(const std::string& service, const std::string& method, RawHandler handler);

  // Registers a typed method. Req/Resp are protobuf message types. A payload that does not parse
  // as Req is answered with INTERNAL, as the Go implementation does.
  template <typename Req, typename Resp>
  void Register(const std::string& service, const std::string& method,
                std::function<Result<Resp>(const CallContext&, const Req&)> handler) {
    RegisterRaw(service, method,
                [handler = std::move(handler), method](
                    const CallContext& ctx, const std::string& payload) -> Result<std::string> {
                  Req req;
                  if (!req.ParseFromString(payload)) {
                    return Error(Code::kInternal, "failed to decode request for " + method);
                  }
                  Result<Resp> resp = handler(ctx, req);
                  if (!resp.ok()) return resp.error();
                  return resp->SerializeAsString();
                });
  }

  // Serves one connection until the peer closes it or Shutdown() is called. Blocks the caller.
  // Returns OK on a clean close by the peer.
  Status ServeConnection(UniqueFd fd);
  // The same over two one-way fds (a pipe pair): requests are read from read_fd, responses
  // written to write_fd. Returns OK also when Shutdown() ended the connection; an error when the
  // stream broke (read error, or the peer closed it in the middle of a frame).
  Status ServeConnection(UniqueFd read_fd, UniqueFd write_fd);

  // Accepts connections on a listening socket and serves each on its own thread, until Shutdown().
  // Peers whose SO_PEERCRED uid/gid differ from ours are closed at once.
  Status ServeListener(UniqueFd listen_fd);

  // Stops accepting, shuts down open connections (so ServeConnection returns) and waits for
  // handlers to finish. Must not be called from a handler (it would wait for itself).
  // Limitation: handlers cannot be cancelled; one that never returns keeps Shutdown() (and
  // ~Server) waiting. Handlers should watch CallContext::deadline and their own stop signals.
  void Shutdown();

  // Upper bound on concurrently running handlers per connection; further requests are answered
  // RESOURCE_EXHAUSTED.
  static constexpr int kMaxInFlight = 256;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cocoon::ttrpc
