#include "agent/output_pump.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::agent {

OutputPump::~OutputPump() { Stop(); }

Status OutputPump::Start(UniqueFd fd, StreamBuffer* buffer, std::string name) {
  if (thread_.joinable()) return Error(Code::kFailedPrecondition, "output pump already started");
  // Non-blocking so that a poll that raced with another reader of the same file (a pty master
  // is shared with the stdin writer) never leaves this thread stuck in read().
  COCOON_RETURN_IF_ERROR(SetNonblocking(fd.get(), true));
  cancel_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cancel_fd_) return Error::FromErrno(errno, "eventfd");
  fd_ = std::move(fd);
  buffer_ = buffer;
  name_ = std::move(name);
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

void OutputPump::Stop() {
  if (!thread_.joinable()) return;
  buffer_->Abort();
  uint64_t one = 1;
  ssize_t n = ::write(cancel_fd_.get(), &one, sizeof(one));
  (void)n;  // cannot fail for a fresh eventfd
  thread_.join();
  fd_.reset();
  cancel_fd_.reset();
}

void OutputPump::Run() {
  constexpr size_t kChunk = 64 * 1024;
  std::string chunk(kChunk, '\0');
  for (;;) {
    size_t space = buffer_->WaitForSpace();
    if (space == 0) return;  // aborted
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {cancel_fd_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      Log().Error("{}: poll failed errno={}", name_, errno);
      buffer_->SetEof();
      return;
    }
    if (fds[1].revents & POLLIN) return;
    ssize_t n = ::read(fd_.get(), chunk.data(), std::min(space, kChunk));
    if (n > 0) {
      buffer_->Append(std::string_view(chunk.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    // EIO is how a pty master reports that the last slave fd closed: the end of the output.
    if (n < 0 && errno != EIO) Log().Warn("{}: read failed errno={}", name_, errno);
    buffer_->SetEof();
    return;
  }
}

}  // namespace cocoon::agent
