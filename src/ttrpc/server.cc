#include "ttrpc/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <exception>
#include <set>
#include <system_error>
#include <thread>

#include "common/io.h"
#include "common/log.h"
#include "ttrpc/envelope.h"
#include "ttrpc/frame.h"
#include "ttrpc/stream.h"

namespace cocoon::ttrpc {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Deadlines further away than this are clamped, so that now() + timeout cannot overflow.
constexpr std::chrono::nanoseconds kMaxTimeout = std::chrono::hours(24 * 365 * 10);

const Logger& TtrpcLog() {
  static const Logger logger = Log().With("component", "ttrpc-server");
  return logger;
}

// One served connection. Handler threads share it with the reader, so it lives until the last
// of them is done; the stream's fds are closed as soon as the connection ends, and responses of
// handlers still running then are discarded by Stream::Write.
struct Connection {
  explicit Connection(std::unique_ptr<Stream> s) : stream(std::move(s)) {}
  std::unique_ptr<Stream> stream;
  std::atomic<int> in_flight{0};
};

// Sends an error answer on `stream_id`. A failed write leaves a partial frame on the stream, so
// the connection is ended.
void AnswerError(Connection& conn, uint32_t stream_id, const Error& error) {
  std::string frame = EncodeFrame(stream_id, FrameType::kResponse, EncodeResponse(error));
  if (!conn.stream->Write(frame).ok()) conn.stream->Wake();
}

// Threads that are joined by whoever comes next (or by JoinAll), so that none is detached and
// finished ones do not pile up.
class WorkerSet {
 public:
  // Runs `fn` on a new thread. False when no thread could be created.
  bool Spawn(std::function<void()> fn) {
    ReapFinished();
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t id = next_id_++;
    try {
      threads_.emplace(
          id, std::thread([this, id, fn = std::move(fn)]() mutable {
            fn();
            fn = nullptr;  // release what the task holds before the thread is marked finished
            std::lock_guard<std::mutex> lock(mu_);
            finished_.push_back(id);
            cv_.notify_all();
          }));
    } catch (const std::system_error&) {
      return false;
    }
    return true;
  }

  void JoinAll() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_.size() == threads_.size(); });
    lock.unlock();
    ReapFinished();
  }

 private:
  void ReapFinished() {
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (uint64_t id : finished_) {
        auto it = threads_.find(id);
        done.push_back(std::move(it->second));
        threads_.erase(it);
      }
      finished_.clear();
    }
    for (std::thread& t : done) t.join();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::thread> threads_;
  std::vector<uint64_t> finished_;
  uint64_t next_id_ = 1;
};

Result<std::string> InvokeHandler(const RawHandler& handler, const CallContext& ctx,
                                  const std::string& payload) {
  // Errors are values in cocoon, but a handler that throws (std::bad_alloc, a library call)
  // must cost one call, not the whole process.
  try {
    return handler(ctx, payload);
  } catch (const std::exception& e) {
    return Error(Code::kInternal, ctx.service + "/" + ctx.method + " failed: " + e.what());
  }
}

CallContext MakeContext(::ttrpc::Request& req) {
  CallContext ctx;
  ctx.service = req.service();
  ctx.method = req.method();
  for (const auto& kv : req.metadata()) ctx.metadata.emplace_back(kv.key(), kv.value());
  if (req.timeout_nano() > 0) {
    auto timeout = std::min(std::chrono::nanoseconds(req.timeout_nano()), kMaxTimeout);
    ctx.deadline = std::chrono::steady_clock::now() + timeout;
  }
  return ctx;
}

// True when the peer runs as our effective uid and gid (spec 2.1); `who` describes it for logs.
bool PeerIsUs(int fd, std::string* who) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *who = std::string("unknown peer (SO_PEERCRED: ") + std::strerror(errno) + ")";
    return false;
  }
  *who = fmt::format("pid={} uid={} gid={}", cred.pid, cred.uid, cred.gid);
  return cred.uid == ::geteuid() && cred.gid == ::getegid();
}

// Waits up to `ms` unless the wake pipe fires first.
void SleepUnlessWoken(int wake_fd, int ms) {
  pollfd p = {wake_fd, POLLIN, 0};
  ::poll(&p, 1, ms);
}

}  // namespace

struct Server::Impl {
  using HandlerPtr = std::shared_ptr<const RawHandler>;

  Status Serve(UniqueFd read_fd, UniqueFd write_fd);
  Status ReadLoop(const std::shared_ptr<Connection>& conn);
  void HandleFrame(const std::shared_ptr<Connection>& conn, Frame& frame);
  void RunCall(Connection& conn, uint32_t stream_id, ::ttrpc::Request& req,
               const RawHandler& handler);
  Result<HandlerPtr> Lookup(const std::string& service, const std::string& method);
  Status AcceptLoop(int listen_fd, int wake_fd, WorkerSet& conn_threads);

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::map<std::string, HandlerPtr>> services;  // guarded by mu
  bool shutting_down = false;                                         // guarded by mu
  int serving = 0;  // ServeConnection/ServeListener calls running; guarded by mu
  std::set<std::shared_ptr<Connection>> conns;  // live connections; guarded by mu
  std::set<int> listener_wakes;                 // wake pipes of running listeners; guarded by mu
  WorkerSet handlers;
};

Status Server::Impl::Serve(UniqueFd read_fd, UniqueFd write_fd) {
  COCOON_ASSIGN_OR_RETURN(std::unique_ptr<Stream> stream,
                          Stream::Create(std::move(read_fd), std::move(write_fd)));
  auto conn = std::make_shared<Connection>(std::move(stream));
  {
    std::lock_guard<std::mutex> lock(mu);
    if (shutting_down) return Error(Code::kCancelled, "ttrpc server is shut down");
    ++serving;
    conns.insert(conn);
  }
  Status st = ReadLoop(conn);
  // From here on, responses of handlers still running are discarded.
  conn->stream->Close();
  {
    std::lock_guard<std::mutex> lock(mu);
    conns.erase(conn);
    --serving;
    cv.notify_all();
  }
  return st;
}

Status Server::Impl::ReadLoop(const std::shared_ptr<Connection>& conn) {
  FrameReader reader;
  std::string buf(kReadChunk, '\0');
  for (;;) {
    Result<size_t> n = conn->stream->Read(buf.data(), buf.size());
    if (!n.ok()) {
      if (n.error().code() == Code::kCancelled) return OkStatus();
      TtrpcLog().Debug("connection dropped: {}", n.error().message());
      return n.error().Wrap("ttrpc connection");
    }
    if (*n == 0) {
      if (!reader.MidFrame()) return OkStatus();
      TtrpcLog().Debug("peer closed the connection in the middle of a frame");
      return Error(Code::kDataLoss, "ttrpc connection: peer closed it in the middle of a frame");
    }
    reader.Feed(std::string_view(buf.data(), *n));
    while (std::optional<Frame> frame = reader.Next()) HandleFrame(conn, *frame);
  }
}

void Server::Impl::HandleFrame(const std::shared_ptr<Connection>& conn, Frame& frame) {
  const uint32_t stream_id = frame.header.stream_id;
  if (frame.oversized) {
    // As the Go server: answered whatever the frame's type, since its header is all we have.
    AnswerError(*conn, stream_id,
                Error(Code::kResourceExhausted, OversizedMessage(frame.header.length)));
    return;
  }
  if (frame.header.type != static_cast<uint8_t>(FrameType::kRequest)) {
    // Responses and ttRPC 1.2 Data frames mean nothing to a unary server; 1.1 ignores them too.
    return;
  }
  // Limitation: unary calls only, as ttRPC 1.1 (containerd 1.6): reused stream ids are not
  // rejected and Data frames (1.2 streaming) are ignored.
  Result<::ttrpc::Request> req = DecodeRequestFrame(frame);
  if (!req.ok()) return AnswerError(*conn, stream_id, req.error());
  Result<HandlerPtr> handler = Lookup(req->service(), req->method());
  if (!handler.ok()) return AnswerError(*conn, stream_id, handler.error());
  if (conn->in_flight.load() >= kMaxInFlight) {
    return AnswerError(
        *conn, stream_id,
        Error(Code::kResourceExhausted, "too many requests in flight on this connection (limit " +
                                            std::to_string(kMaxInFlight) + ")"));
  }
  conn->in_flight.fetch_add(1);
  bool spawned = handlers.Spawn(
      [this, conn, stream_id, req = std::move(*req), h = std::move(*handler)]() mutable {
        RunCall(*conn, stream_id, req, *h);
        conn->in_flight.fetch_sub(1);
      });
  if (!spawned) {
    conn->in_flight.fetch_sub(1);
    AnswerError(*conn, stream_id,
                Error(Code::kResourceExhausted, "cannot start a thread for the request"));
  }
}

void Server::Impl::RunCall(Connection& conn, uint32_t stream_id, ::ttrpc::Request& req,
                           const RawHandler& handler) {
  CallContext ctx = MakeContext(req);
  Result<std::string> result = InvokeHandler(handler, ctx, req.payload());
  std::string body = EncodeResponse(result);
  if (body.size() > kMaxMessageSize) body = EncodeResponse(ResponseTooLarge(body.size()));
  // A failed write (peer gone, or the connection ended meanwhile) drops the response, as the
  // Go server does; a partial frame may be on the stream, so the connection is ended.
  if (!conn.stream->Write(EncodeFrame(stream_id, FrameType::kResponse, body)).ok()) {
    conn.stream->Wake();
  }
}

Result<Server::Impl::HandlerPtr> Server::Impl::Lookup(const std::string& service,
                                                      const std::string& method) {
  std::lock_guard<std::mutex> lock(mu);
  auto s = services.find(service);
  if (s == services.end()) return Error(Code::kUnimplemented, "service " + service);
  auto m = s->second.find(method);
  if (m == s->second.end()) return Error(Code::kUnimplemented, "method " + method);
  return m->second;
}

Server::Server() : impl_(std::make_unique<Impl>()) {}

Server::~Server() { Shutdown(); }

void Server::RegisterRaw(const std::string& service, const std::string& method,
                         RawHandler handler) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->services[service][method] = std::make_shared<const RawHandler>(std::move(handler));
}

Status Server::ServeConnection(UniqueFd fd) { return impl_->Serve(std::move(fd), UniqueFd()); }

Status Server::ServeConnection(UniqueFd read_fd, UniqueFd write_fd) {
  if (!write_fd) return Error(Code::kInvalidArgument, "ttrpc server: invalid write fd");
  return impl_->Serve(std::move(read_fd), std::move(write_fd));
}

Status Server::ServeListener(UniqueFd listen_fd) {
  if (!listen_fd) return Error(Code::kInvalidArgument, "ttrpc server: invalid listening fd");
  UniqueFd wake_read;
  UniqueFd wake_write;
  COCOON_RETURN_IF_ERROR(MakePipe(&wake_read, &wake_write));
  COCOON_RETURN_IF_ERROR(SetNonblocking(wake_write.get(), true));
  // Non-blocking, so that a client that gives up between poll() and accept() cannot block us.
  COCOON_RETURN_IF_ERROR(SetNonblocking(listen_fd.get(), true));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down) return Error(Code::kCancelled, "ttrpc server is shut down");
    ++impl_->serving;
    impl_->listener_wakes.insert(wake_write.get());
  }
  WorkerSet conn_threads;
  Status st = impl_->AcceptLoop(listen_fd.get(), wake_read.get(), conn_threads);
  // After Shutdown() the connections are ending too; after an accept error they are served to
  // their end, since this call owns their threads.
  conn_threads.JoinAll();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->listener_wakes.erase(wake_write.get());
    --impl_->serving;
    impl_->cv.notify_all();
  }
  return st;
}

Status Server::Impl::AcceptLoop(int listen_fd, int wake_fd, WorkerSet& conn_threads) {
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "ttrpc server: poll on listening socket");
    }
    if (fds[1].revents != 0) return OkStatus();
    if (fds[0].revents & (POLLERR | POLLNVAL)) {
      return Error(Code::kInternal, "ttrpc server: listening socket failed");
    }
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR || err == EAGAIN || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of fds or memory: pending peers stay queued; retrying at once would spin.
        TtrpcLog().Warn("accept: {}; retrying", std::strerror(err));
        SleepUnlessWoken(wake_fd, 100);
        continue;
      }
      return Error::FromErrno(err, "ttrpc server: accept");
    }
    auto conn_fd = std::make_shared<UniqueFd>(fd);
    std::string who;
    if (!PeerIsUs(fd, &who)) {
      TtrpcLog().Warn("rejected connection from {}: uid and gid must be ours ({}:{})", who,
                      ::geteuid(), ::getegid());
      continue;
    }
    bool spawned = conn_threads.Spawn([this, conn_fd] {
      Status st = Serve(std::move(*conn_fd), UniqueFd());
      if (!st.ok()) TtrpcLog().Debug("connection ended: {}", st.error().message());
    });
    if (!spawned) TtrpcLog().Warn("cannot start a thread for a new connection; closing it");
  }
}

void Server::Shutdown() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->shutting_down = true;
  for (const auto& conn : impl_->conns) conn->stream->Wake();
  for (int wake_fd : impl_->listener_wakes) {
    char b = 1;
    ssize_t n = ::write(wake_fd, &b, 1);
    (void)n;  // a full pipe already wakes the listener
  }
  impl_->cv.wait(lock, [this] { return impl_->serving == 0; });
  lock.unlock();
  impl_->handlers.JoinAll();
}

}  // namespace cocoon::ttrpc
