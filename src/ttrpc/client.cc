#include "ttrpc/client.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "proto/ttrpc.pb.h"
#include "ttrpc/envelope.h"
#include "ttrpc/frame.h"
#include "ttrpc/stream.h"

namespace cocoon::ttrpc {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

struct PendingCall {
  bool done = false;
  std::optional<Result<std::string>> result;
  std::condition_variable cv;
};

std::string MillisText(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

struct Client::Impl {
  void Start(UniqueFd read_fd, UniqueFd write_fd);
  void ReaderLoop();
  void Dispatch(Frame& frame);
  // Marks the connection closed with `reason` (the first reason wins) and fails every pending
  // call with UNAVAILABLE.
  void FailAll(const std::string& reason);
  Error ClosedError();      // requires mu
  uint32_t NextStreamId();  // requires mu

  std::unique_ptr<Stream> stream;  // null when the fd was unusable from the start
  std::thread reader;
  std::mutex mu;
  std::map<uint32_t, std::shared_ptr<PendingCall>> pending;  // guarded by mu
  uint32_t next_id = 1;                                      // guarded by mu
  bool closed = false;                                       // guarded by mu
  std::string close_reason;                                  // guarded by mu
  std::mutex close_mu;  // serialises Close() callers around the join
};

void Client::Impl::Start(UniqueFd read_fd, UniqueFd write_fd) {
  Result<std::unique_ptr<Stream>> s = Stream::Create(std::move(read_fd), std::move(write_fd));
  if (!s.ok()) {
    FailAll("ttrpc: connection closed: " + s.error().message());
    return;
  }
  stream = std::move(*s);
  try {
    reader = std::thread([this] { ReaderLoop(); });
  } catch (const std::system_error& e) {
    FailAll(std::string("ttrpc: connection closed: cannot start reader thread: ") + e.what());
  }
}

void Client::Impl::ReaderLoop() {
  FrameReader frames;
  std::string buf(kReadChunk, '\0');
  std::string reason;
  for (;;) {
    Result<size_t> n = stream->Read(buf.data(), buf.size());
    if (!n.ok()) {
      reason = n.error().code() == Code::kCancelled
                   ? "ttrpc: connection closed"
                   : "ttrpc: connection closed: " + n.error().message();
      break;
    }
    if (*n == 0) {
      reason = frames.MidFrame() ? "ttrpc: connection closed by peer in the middle of a frame"
                                 : "ttrpc: connection closed by peer";
      break;
    }
    frames.Feed(std::string_view(buf.data(), *n));
    while (std::optional<Frame> frame = frames.Next()) Dispatch(*frame);
  }
  // Further writes would only fail, and the peer should see us go.
  stream->Wake();
  FailAll(reason);
}

void Client::Impl::Dispatch(Frame& frame) {
  if (frame.header.type != static_cast<uint8_t>(FrameType::kResponse)) return;
  std::shared_ptr<PendingCall> call;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = pending.find(frame.header.stream_id);
    // An unknown id is a response to a call that timed out: nobody waits for it any more.
    if (it == pending.end()) return;
    call = std::move(it->second);
    pending.erase(it);
  }
  Result<std::string> result =
      frame.oversized ? Result<std::string>(
                            Error(Code::kResourceExhausted, OversizedMessage(frame.header.length)))
                      : DecodeResponse(frame.data);
  std::lock_guard<std::mutex> lock(mu);
  call->result.emplace(std::move(result));
  call->done = true;
  call->cv.notify_all();
}

void Client::Impl::FailAll(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu);
  closed = true;
  if (close_reason.empty()) close_reason = reason;
  for (auto& [id, call] : pending) {
    call->result.emplace(ClosedError());
    call->done = true;
    call->cv.notify_all();
  }
  pending.clear();
}

Error Client::Impl::ClosedError() {
  return Error(Code::kUnavailable,
               close_reason.empty() ? std::string("ttrpc: connection closed") : close_reason);
}

uint32_t Client::Impl::NextStreamId() {
  // Odd ids from 1, as the Go client. After 2^31 calls the counter wraps to 1 again; ids still
  // waiting for an answer are skipped.
  uint32_t id = next_id;
  while (pending.count(id) != 0) id += 2;
  next_id = id + 2;
  return id;
}

Client::Client(UniqueFd fd) : impl_(std::make_shared<Impl>()) {
  impl_->Start(std::move(fd), UniqueFd());
}

Client::Client(UniqueFd read_fd, UniqueFd write_fd) : impl_(std::make_shared<Impl>()) {
  if (!write_fd) {
    impl_->FailAll("ttrpc: connection closed: invalid write fd");
    return;
  }
  impl_->Start(std::move(read_fd), std::move(write_fd));
}

Client::~Client() { Close(); }

Result<std::string> Client::CallRaw(const std::string& service, const std::string& method,
                                    const std::string& payload, const CallOptions& options) {
  // Held for the whole call, so that a caller still waking from a failed call never touches a
  // destroyed Impl even if the Client is being destroyed concurrently.
  std::shared_ptr<Impl> impl = impl_;
  const auto start = std::chrono::steady_clock::now();
  ::ttrpc::Request req;
  req.set_service(service);
  req.set_method(method);
  req.set_payload(payload);
  if (options.timeout.count() > 0) req.set_timeout_nano(options.timeout.count());
  for (const auto& [key, value] : options.metadata) {
    ::ttrpc::KeyValue* kv = req.add_metadata();
    kv->set_key(key);
    kv->set_value(value);
  }
  std::string body = req.SerializeAsString();
  if (body.size() > kMaxMessageSize) {
    return Error(Code::kResourceExhausted,
                 "request to " + service + "/" + method + " is " + std::to_string(body.size()) +
                     " bytes, over the maximum message size of " + std::to_string(kMaxMessageSize));
  }

  auto call = std::make_shared<PendingCall>();
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    if (impl->closed) return impl->ClosedError();
    id = impl->NextStreamId();
    impl->pending.emplace(id, call);
  }
  Status sent = impl->stream->Write(EncodeFrame(id, FrameType::kRequest, body));
  if (!sent.ok()) {
    // Part of the frame may be on the stream, so nothing after it would parse: end the
    // connection. The reader then fails every pending call, this one included.
    impl->stream->Wake();
    impl->FailAll("ttrpc: connection closed: " + sent.error().message());
  }

  // Limitation: the timeout bounds the wait for the response, not a Write() held up by a peer
  // that stops reading; only Close() (or the peer going away) ends such a write.
  std::unique_lock<std::mutex> lock(impl->mu);
  if (options.timeout.count() > 0) {
    if (!call->cv.wait_until(lock, start + options.timeout, [&] { return call->done; })) {
      impl->pending.erase(id);  // a late response finds no caller and is dropped
      return Error(Code::kDeadlineExceeded,
                   service + "/" + method + ": no response within " + MillisText(options.timeout));
    }
  } else {
    call->cv.wait(lock, [&] { return call->done; });
  }
  return std::move(*call->result);
}

void Client::Close() {
  std::lock_guard<std::mutex> close_lock(impl_->close_mu);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closed = true;
    if (impl_->close_reason.empty()) impl_->close_reason = "ttrpc: connection closed by client";
  }
  if (impl_->stream) impl_->stream->Wake();
  if (impl_->reader.joinable()) impl_->reader.join();
  impl_->FailAll("ttrpc: connection closed by client");
  if (impl_->stream) impl_->stream->Close();
}

bool Client::closed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->closed;
}

}  // namespace cocoon::ttrpc
