// A connected byte stream for ttRPC (internal to src/ttrpc): one fd used both ways (Unix socket,
// virtio-serial port) or a read fd and a write fd (pipe pair), plus a self-pipe that wakes any
// thread blocked reading or writing it. Only read(2), write(2) and poll(2) touch the data, so any
// stream fd works.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::ttrpc {

class Stream {
 public:
  // Takes ownership of the fds and makes them non-blocking, so that a write to a peer that does
  // not read can still be abandoned on Wake(). An invalid write_fd means "write to read_fd".
  // Limitation: O_NONBLOCK is a property of the open file, so a caller that shares it with
  // another process (an inherited stdin, say) sees the change too; pass an fd of its own.
  static Result<std::unique_ptr<Stream>> Create(UniqueFd read_fd, UniqueFd write_fd);
  ~Stream();

  // Waits for input; returns the count read, 0 at end of stream, kCancelled after Wake().
  // One reader at a time.
  Result<size_t> Read(char* buf, size_t len);
  // Writes all of `data` under the write mutex, so that frames from many threads never
  // interleave. Fails with kUnavailable after Wake() or Close().
  Status Write(std::string_view data);
  // Unblocks Read and Write, now and for good; on a socket also shuts it down (the peer sees the
  // end of the stream). Safe from any thread, any number of times.
  void Wake();
  bool woken() const { return woken_.load(); }
  // Closes the fds. Waits for a writer in progress (which Wake() has released), so no write ever
  // reaches a closed or reused fd number. Must not race with Read.
  void Close();

 private:
  Stream() = default;

  UniqueFd read_fd_;
  UniqueFd write_fd_;  // invalid when read_fd_ is used both ways
  int wfd_ = -1;
  bool is_socket_ = false;
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  std::atomic<bool> woken_{false};
  // Lock order: write_mu_ before wake_mu_. Wake() takes only wake_mu_, because a writer may hold
  // write_mu_ while it waits for Wake().
  std::mutex write_mu_;
  std::mutex wake_mu_;   // keeps Wake()'s shutdown(2) off an fd that Close() is closing
  bool closed_ = false;  // guarded by write_mu_ and wake_mu_
};

}  // namespace cocoon::ttrpc
