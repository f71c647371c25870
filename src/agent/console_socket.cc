#include "agent/console_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/io.h"

namespace cocoon::agent {

ConsoleSocket::~ConsoleSocket() {
  if (listen_fd_) ::unlink(path_.c_str());
}

Status ConsoleSocket::Listen(const std::string& path) {
  COCOON_ASSIGN_OR_RETURN(listen_fd_, ListenUnix(path, 4));
  path_ = path;
  return OkStatus();
}

namespace {

Status WaitReadable(int fd, std::chrono::milliseconds timeout, const char* what) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error(Code::kDeadlineExceeded, std::string("no ") + what);
    pollfd pfd{fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc > 0) return OkStatus();
    if (rc < 0 && errno != EINTR) return Error::FromErrno(errno, "poll");
  }
}

}  // namespace

Result<UniqueFd> ConsoleSocket::ReceiveFd(std::chrono::milliseconds timeout) {
  if (!listen_fd_) return Error(Code::kFailedPrecondition, "console socket is not listening");
  COCOON_RETURN_IF_ERROR(
      WaitReadable(listen_fd_.get(), timeout, "connection on the console socket"));
  UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return Error::FromErrno(errno, "accept on the console socket");
  COCOON_RETURN_IF_ERROR(WaitReadable(conn.get(), timeout, "terminal fd on the console socket"));

  char data[256];
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::FromErrno(errno, "receive from the console socket");
  UniqueFd received;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      // Keep the first fd, close any extra one so nothing leaks.
      if (!received) {
        received.reset(fd);
      } else {
        ::close(fd);
      }
    }
  }
  if (!received) return Error(Code::kInternal, "console socket message carried no fd");
  if (msg.msg_flags & MSG_CTRUNC) return Error(Code::kInternal, "console socket fds truncated");
  return received;
}

Status SendFd(int sock, int fd) {
  char data = ' ';
  iovec iov{&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::FromErrno(errno, "sendmsg");
  return OkStatus();
}

}  // namespace cocoon::agent
