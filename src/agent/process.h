// One process the host knows about: a container's init or an exec'd process. It owns the
// agent's ends of the process's stdio (pumps into bounded buffers, the stdin writer, the pty)
// and learns the exit from the Reaper.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "agent/output_pump.h"
#include "agent/reaper.h"
#include "agent/stdin_writer.h"
#include "agent/stream_buffer.h"
#include "common/log.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

// The agent's ends of a process's stdio, as made before the runtime started it.
struct ProcessIo {
  bool terminal = false;
  UniqueFd stdin_write;         // invalid: no stdin requested
  UniqueFd stdout_read;         // non-terminal only
  UniqueFd stderr_read;         // non-terminal only
  UniqueFd pty_master;          // terminal only
  bool terminal_stdin = false;  // terminal only: the host writes stdin to the pty master
};

struct ProcessExit {
  int exit_code = 0;
  int64_t exited_at_unix_nano = 0;
  // False when the grace period ran out while a pipe was still open (a daemonized grandchild
  // holding it): the exit is reported anyway and later output keeps arriving in the buffers.
  bool output_complete = true;
};

// Limitation: an exited process keeps its buffered output (up to 2 x buffer_capacity) until its
// container is removed; the host is expected to read it and then RemoveContainer.
struct ProcessLimits {
  size_t buffer_capacity = 4 << 20;
  std::chrono::milliseconds drain_grace{1000};
};

class Process {
 public:
  Process(std::string container_id, std::string exec_id, pid_t pid, ProcessLimits limits);
  ~Process();  // Destroy()s
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts relaying the stdio. Called once, right after the runtime launched the process.
  Status AttachIo(ProcessIo io);

  // From the reaper: the process exited with `record`.
  void OnExit(const ExitRecord& record);

  // Blocks until the process exited and its output reached EOF (or the drain grace passed since
  // the exit). kDeadlineExceeded at `deadline`; kNotFound if the process was destroyed first.
  Result<ProcessExit> Wait(std::optional<std::chrono::steady_clock::time_point> deadline);
  // The exit, if it happened (does not wait for the output).
  std::optional<ExitRecord> exit_record() const;
  bool exited() const { return exit_record().has_value(); }

  enum class StreamId { kStdout, kStderr };
  StreamBuffer::Chunk Read(StreamId stream, size_t max_bytes,
                           std::optional<std::chrono::steady_clock::time_point> deadline);
  Result<size_t> WriteStdin(std::string_view data);
  Status CloseStdin();
  Status ResizeTty(uint32_t rows, uint32_t cols);
  // kill(2) the process; kNotFound once it has exited (its pid may be reused).
  Status Signal(int sig);

  // Makes blocked Read calls return empty without taking data (see StreamBuffer).
  void InterruptReads();

  // Stops relaying, closes every fd and wakes every blocked caller. Idempotent.
  void Destroy();

  pid_t pid() const { return pid_; }
  bool terminal() const { return terminal_; }
  const std::string& container_id() const { return container_id_; }
  const std::string& exec_id() const { return exec_id_; }

 private:
  const std::string container_id_;
  const std::string exec_id_;
  const pid_t pid_;
  const ProcessLimits limits_;
  Logger log_;

  StreamBuffer stdout_;
  StreamBuffer stderr_;
  OutputPump stdout_pump_;
  OutputPump stderr_pump_;
  StdinWriter stdin_;
  UniqueFd pty_master_;  // kept for TIOCSWINSZ
  bool terminal_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ExitRecord> exit_;
  std::chrono::steady_clock::time_point exit_seen_at_;
  bool destroyed_ = false;
};

}  // namespace cocoon::agent
