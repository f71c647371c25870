#include "shim/events.h"

#include <google/protobuf/any.pb.h>

#include <algorithm>

#include "common/io.h"
#include "common/log.h"
#include "shim/timestamps.h"

namespace cocoon::shim {
namespace {

constexpr char kEventsService[] = "containerd.services.events.ttrpc.v1.Events";
constexpr char kNamespaceKey[] = "containerd-namespace-ttrpc";

}  // namespace

forwardpb::ForwardRequest MakeForwardRequest(const std::string& ns, const std::string& topic,
                                             const google::protobuf::Message& event) {
  forwardpb::ForwardRequest req;
  auto* env = req.mutable_envelope();
  *env->mutable_timestamp() = Now();
  env->set_namespace_(ns);
  env->set_topic(topic);
  env->mutable_event()->set_type_url(event.GetTypeName());
  env->mutable_event()->set_value(event.SerializeAsString());
  return req;
}

EventPublisher::EventPublisher(std::string ns, std::string ttrpc_address) : ns_(std::move(ns)) {
  if (ttrpc_address.rfind("unix://", 0) == 0) ttrpc_address = ttrpc_address.substr(7);
  address_ = std::move(ttrpc_address);
  if (address_.empty()) Log().Warn("TTRPC_ADDRESS is not set: task events are not published");
  thread_ = std::thread([this] { Run(); });
}

EventPublisher::~EventPublisher() { Close(std::chrono::seconds(2)); }

void EventPublisher::Publish(const std::string& topic, const google::protobuf::Message& event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_ || address_.empty()) return;
  queue_.push_back(MakeForwardRequest(ns_, topic, event));
  cv_.notify_all();
}

void EventPublisher::Close(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    if (!closing_) {
      closing_ = true;
      deadline_ = std::chrono::steady_clock::now() + grace;
    }
    cv_.notify_all();
  }
  thread_.join();
}

bool EventPublisher::SendOne(const forwardpb::ForwardRequest& req) {
  if (client_ == nullptr || client_->closed()) {
    auto fd = ConnectUnix(address_, std::chrono::seconds(1));
    if (!fd.ok()) {
      Log().Debug("events: cannot reach containerd at {}: {}", address_, fd.error().message());
      return false;
    }
    client_ = std::make_unique<ttrpc::Client>(std::move(*fd));
  }
  ttrpc::CallOptions opts;
  opts.timeout = std::chrono::seconds(5);
  opts.metadata = {{kNamespaceKey, ns_}};
  auto sent = client_->CallRaw(kEventsService, "Forward", req.SerializeAsString(), opts);
  if (sent.ok()) return true;
  Log()
      .With("topic", req.envelope().topic())
      .Warn("events: Forward failed: {}", sent.error().message());
  if (sent.error().code() == Code::kInvalidArgument) return true;  // would fail forever: drop it
  client_.reset();
  return false;
}

void EventPublisher::Run() {
  auto delay = std::chrono::milliseconds(100);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) break;  // closing with nothing left
    if (closing_ && std::chrono::steady_clock::now() >= deadline_) break;
    forwardpb::ForwardRequest req = queue_.front();
    lock.unlock();
    bool ok = SendOne(req);
    lock.lock();
    if (ok) {
      queue_.pop_front();
      delay = std::chrono::milliseconds(100);
      continue;
    }
    // containerd is away (restarting): wait, growing the delay, and try the same event again.
    cv_.wait_for(lock, delay, [this] { return closing_; });
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
  if (!queue_.empty()) Log().Warn("events: {} event(s) not delivered", queue_.size());
  lock.unlock();
  client_.reset();
}

}  // namespace cocoon::shim
