#include "agent/stdin_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include "common/io.h"

namespace cocoon::agent {

Status StdinWriter::Init(UniqueFd fd, bool terminal) {
  terminal_ = terminal;
  if (!fd) {
    closed_ = true;
    return OkStatus();
  }
  COCOON_RETURN_IF_ERROR(SetNonblocking(fd.get(), true));
  COCOON_RETURN_IF_ERROR(MakePipe(&cancel_read_, &cancel_write_));
  fd_ = std::move(fd);
  return OkStatus();
}

Result<size_t> StdinWriter::Write(std::string_view data) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Error(Code::kFailedPrecondition, "stdin is closed or was not requested");
    fd = fd_.get();
    ++writers_;
  }
  size_t written = 0;
  Status status = OkStatus();
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {cancel_read_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        status = Error::FromErrno(errno, "poll stdin");
        break;
      }
      if (fds[1].revents & POLLIN) {
        status = Error(Code::kFailedPrecondition, "stdin was closed during the write");
        break;
      }
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      status = Error(Code::kFailedPrecondition, "the process closed its stdin");
    } else {
      status = Error::FromErrno(errno, "write stdin");
    }
    break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    --writers_;
    cv_.notify_all();
  }
  // Bytes already written are reported even if the rest failed: the process has them.
  if (!status.ok() && written == 0) return status.error();
  return written;
}

Status StdinWriter::SendTerminalEof() {
  termios tio{};
  cc_t eof = 4;  // ^D, the usual VEOF
  if (::tcgetattr(fd_.get(), &tio) == 0 && tio.c_cc[VEOF] != 0) eof = tio.c_cc[VEOF];
  char c = static_cast<char>(eof);
  return WriteAll(fd_.get(), std::string_view(&c, 1));
}

Status StdinWriter::CloseImpl(bool send_eof) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return OkStatus();
  closed_ = true;
  if (!fd_) return OkStatus();
  char b = 1;
  ssize_t n = ::write(cancel_write_.get(), &b, 1);
  (void)n;  // one byte into an empty pipe
  cv_.wait(lock, [&] { return writers_ == 0; });
  Status status = OkStatus();
  // Limitation: in terminal mode the end of input is the VEOF character, which a program in raw
  // mode reads as a plain byte; a pty has no other way to signal end of input.
  if (terminal_ && send_eof && fd_) status = SendTerminalEof();
  fd_.reset();  // for a pty only our duplicate; the pump keeps its own
  return status;
}

}  // namespace cocoon::agent
