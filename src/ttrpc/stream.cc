#include "ttrpc/stream.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/io.h"

namespace cocoon::ttrpc {
namespace {

// write(2) that reports EPIPE without raising SIGPIPE. send(MSG_NOSIGNAL) would do this only for
// sockets, and a library must not change the process-wide disposition, so SIGPIPE is blocked in
// this thread for the call and a SIGPIPE it raised is consumed before unblocking.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t len) {
  sigset_t pipe_set;
  sigset_t old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigset_t pending;
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;

  ssize_t n = ::write(fd, data, len);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = err;
  return n;
}

bool IsSocket(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

Result<std::unique_ptr<Stream>> Stream::Create(UniqueFd read_fd, UniqueFd write_fd) {
  if (!read_fd) return Error(Code::kInvalidArgument, "ttrpc stream: invalid fd");
  std::unique_ptr<Stream> s(new Stream());
  COCOON_RETURN_IF_ERROR(SetNonblocking(read_fd.get(), true));
  if (write_fd) COCOON_RETURN_IF_ERROR(SetNonblocking(write_fd.get(), true));
  COCOON_RETURN_IF_ERROR(MakePipe(&s->wake_read_, &s->wake_write_));
  COCOON_RETURN_IF_ERROR(SetNonblocking(s->wake_write_.get(), true));
  s->is_socket_ = !write_fd && IsSocket(read_fd.get());
  s->wfd_ = write_fd ? write_fd.get() : read_fd.get();
  s->read_fd_ = std::move(read_fd);
  s->write_fd_ = std::move(write_fd);
  return s;
}

Stream::~Stream() { Close(); }

Result<size_t> Stream::Read(char* buf, size_t len) {
  for (;;) {
    if (woken_.load()) return Error(Code::kCancelled, "stream closed locally");
    pollfd fds[2] = {{read_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "poll");
    }
    if (fds[1].revents != 0) return Error(Code::kCancelled, "stream closed locally");
    if (fds[0].revents == 0) continue;
    ssize_t n = ::read(read_fd_.get(), buf, len);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::FromErrno(errno, "read");
    }
    return static_cast<size_t>(n);
  }
}

Status Stream::Write(std::string_view data) {
  std::lock_guard<std::mutex> lock(write_mu_);
  while (!data.empty()) {
    if (closed_ || woken_.load()) return Error(Code::kUnavailable, "stream closed locally");
    ssize_t n = WriteNoSigpipe(wfd_, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Error::FromErrno(errno, "write");
    pollfd fds[2] = {{wfd_, POLLOUT, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return Error::FromErrno(errno, "poll");
  }
  return OkStatus();
}

void Stream::Wake() {
  std::lock_guard<std::mutex> lock(wake_mu_);
  if (woken_.exchange(true)) return;
  // The byte is never drained, so every later poll() wakes at once too.
  char b = 1;
  ssize_t n = ::write(wake_write_.get(), &b, 1);
  (void)n;  // a full pipe already wakes everyone
  if (is_socket_) ::shutdown(read_fd_.get(), SHUT_RDWR);
}

void Stream::Close() {
  Wake();
  std::lock_guard<std::mutex> lock(write_mu_);
  std::lock_guard<std::mutex> wake_lock(wake_mu_);
  if (closed_) return;
  closed_ = true;
  read_fd_.reset();
  write_fd_.reset();
  wfd_ = -1;
}

}  // namespace cocoon::ttrpc
