// The host's side of a process's stdin: a pipe write end, or a pty master in terminal mode.
// WriteStdin may block for as long as the process does not read; CloseStdin must still be able
// to end it, so writes are non-blocking with a poll that a close interrupts.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

class StdinWriter {
 public:
  // `fd` may be invalid: the process has no stdin (it reads /dev/null); writes then fail.
  // `terminal`: the fd is a pty master shared with the output pump; Close() then sends the
  // terminal's end-of-file character instead of closing it (closing would hang up the tty).
  Status Init(UniqueFd fd, bool terminal);

  // Writes all of `data` unless closed meanwhile; returns how much was written. Errors:
  // kFailedPrecondition when stdin is closed or was never requested, or when the process closed
  // its end (EPIPE).
  Result<size_t> Write(std::string_view data);
  // The process sees end of input. Waits for writers in progress (which it interrupts), so the
  // fd is never closed under a write. Idempotent.
  Status Close() { return CloseImpl(/*send_eof=*/true); }
  // Like Close() but never writes to a terminal: for tearing a process down.
  void Abandon() { (void)CloseImpl(/*send_eof=*/false); }

 private:
  Status CloseImpl(bool send_eof);
  Status SendTerminalEof();

  std::mutex mu_;
  std::condition_variable cv_;
  UniqueFd fd_;
  UniqueFd cancel_read_;  // self-pipe: Close() makes it readable to wake a polling writer
  UniqueFd cancel_write_;
  bool terminal_ = false;
  bool closed_ = false;
  int writers_ = 0;
};

}  // namespace cocoon::agent
