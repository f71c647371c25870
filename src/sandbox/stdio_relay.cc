#include "sandbox/stdio_relay.h"

#include <poll.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::sandbox {

Status StdioRelay::Start(int in_fd, int out_fd, int err_fd) {
  COCOON_RETURN_IF_ERROR(MakePipe(&wake_r_, &wake_w_));
  out_thread_ = std::thread([this, out_fd] { PumpOutput(false, out_fd); });
  err_thread_ = std::thread([this, err_fd] { PumpOutput(true, err_fd); });
  in_thread_ = std::thread([this, in_fd] { PumpInput(in_fd); });
  return OkStatus();
}

void StdioRelay::PumpOutput(bool stderr_stream, int fd) {
  bool writable = true;
  for (;;) {
    auto chunk = agent_->Read(id_, exec_id_, stderr_stream);
    if (!chunk.ok()) {
      Log().With("container", id_).Debug("output relay ended: {}", chunk.error().message());
      break;
    }
    // A reader that went away (EPIPE) stops our writes, not our draining: the process must not
    // block on a full pipe in the guest.
    if (writable && !chunk->data().empty() && !WriteAll(fd, chunk->data()).ok()) writable = false;
    if (chunk->eof()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++outputs_done_;
  cv_.notify_all();
}

void StdioRelay::PumpInput(int fd) {
  char buf[65536];
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_r_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) return;  // stopping: the process is gone, nobody wants more input
    ssize_t got = ::read(fd, buf, sizeof(buf));
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;  // end of input (or an unreadable stdin): tell the process
    if (!agent_->WriteStdin(id_, exec_id_, std::string(buf, static_cast<size_t>(got))).ok()) {
      return;
    }
  }
  (void)agent_->CloseStdin(id_, exec_id_);
}

bool StdioRelay::WaitOutputDone(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return outputs_done_ == 2; });
}

void StdioRelay::Stop() {
  if (wake_w_) (void)WriteAll(wake_w_.get(), "x");
  for (std::thread* t : {&in_thread_, &out_thread_, &err_thread_}) {
    if (t->joinable()) t->join();
  }
}

StdioRelay::~StdioRelay() { Stop(); }

}  // namespace cocoon::sandbox
