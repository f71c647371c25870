// Publishes task events to containerd: containerd.services.events.ttrpc.v1.Events/Forward on the
// socket named by TTRPC_ADDRESS (contract section 6.3). One queue and one sender thread keep the
// order of contract 6.2; while containerd is away (restarting) the sender reconnects and retries.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proto/containerd_forward.pb.h"
#include "shim/backend.h"
#include "ttrpc/client.h"

namespace cocoon::shim {

namespace forwardpb = ::containerd::services::events::ttrpc::v1;

// The Forward request for one event: the Any's type_url is the bare message name
// ("containerd.events.TaskExit"); containerd 1.6 subscribers reject the type.googleapis.com/
// prefix.
forwardpb::ForwardRequest MakeForwardRequest(const std::string& ns, const std::string& topic,
                                             const google::protobuf::Message& event);

class EventPublisher : public EventSink {
 public:
  // `ttrpc_address`: a path, with or without unix://. Empty disables publishing (with a warning).
  EventPublisher(std::string ns, std::string ttrpc_address);
  ~EventPublisher() override;  // Close(std::chrono::seconds(2))

  void Publish(const std::string& topic, const google::protobuf::Message& event) override;
  // Sends what is queued for at most `grace`, then stops the sender.
  void Close(std::chrono::milliseconds grace);

 private:
  void Run();
  bool SendOne(const forwardpb::ForwardRequest& req);

  std::string ns_;
  std::string address_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<forwardpb::ForwardRequest> queue_;
  bool closing_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::unique_ptr<ttrpc::Client> client_;  // sender thread only
  std::thread thread_;
};

}  // namespace cocoon::shim
