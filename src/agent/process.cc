#include "agent/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/process.h"

namespace cocoon::agent {

Process::Process(std::string container_id, std::string exec_id, pid_t pid, ProcessLimits limits)
    : container_id_(std::move(container_id)),
      exec_id_(std::move(exec_id)),
      pid_(pid),
      limits_(limits),
      log_(Log().With("container", container_id_).With("exec", exec_id_)),
      stdout_(limits.buffer_capacity),
      stderr_(limits.buffer_capacity) {}

Process::~Process() { Destroy(); }

Status Process::AttachIo(ProcessIo io) {
  terminal_ = io.terminal;
  std::string name = container_id_ + (exec_id_.empty() ? "" : "/" + exec_id_);
  if (io.terminal) {
    if (!io.pty_master) return Error(Code::kInternal, "terminal process without a pty master");
    // Three users of one pty master: the pump reads it, stdin writes it, resize ioctls it. Each
    // gets its own descriptor so each can be closed on its own schedule.
    UniqueFd for_pump(::fcntl(io.pty_master.get(), F_DUPFD_CLOEXEC, 0));
    if (!for_pump) return Error::FromErrno(errno, "dup pty master");
    UniqueFd for_stdin;
    if (io.terminal_stdin) {
      for_stdin.reset(::fcntl(io.pty_master.get(), F_DUPFD_CLOEXEC, 0));
      if (!for_stdin) return Error::FromErrno(errno, "dup pty master");
    }
    COCOON_RETURN_IF_ERROR(stdin_.Init(std::move(for_stdin), /*terminal=*/true));
    COCOON_RETURN_IF_ERROR(stdout_pump_.Start(std::move(for_pump), &stdout_, name + " tty"));
    stderr_.SetEof();  // a terminal merges stderr into the one pty stream
    pty_master_ = std::move(io.pty_master);
    return OkStatus();
  }
  COCOON_RETURN_IF_ERROR(stdin_.Init(std::move(io.stdin_write), /*terminal=*/false));
  if (io.stdout_read) {
    COCOON_RETURN_IF_ERROR(
        stdout_pump_.Start(std::move(io.stdout_read), &stdout_, name + " stdout"));
  } else {
    stdout_.SetEof();
  }
  if (io.stderr_read) {
    COCOON_RETURN_IF_ERROR(
        stderr_pump_.Start(std::move(io.stderr_read), &stderr_, name + " stderr"));
  } else {
    stderr_.SetEof();
  }
  return OkStatus();
}

void Process::OnExit(const ExitRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (exit_) return;
  exit_ = record;
  exit_seen_at_ = std::chrono::steady_clock::now();
  log_.Info("process exited pid={} code={}", pid_, ExitCodeFromWaitStatus(record.wait_status));
  cv_.notify_all();
}

Result<ProcessExit> Process::Wait(std::optional<std::chrono::steady_clock::time_point> deadline) {
  ExitRecord record;
  std::chrono::steady_clock::time_point drain_until;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto done = [&] { return exit_.has_value() || destroyed_; };
    if (deadline) {
      if (!cv_.wait_until(lock, *deadline, done)) {
        return Error(Code::kDeadlineExceeded, "process is still running");
      }
    } else {
      cv_.wait(lock, done);
    }
    if (!exit_) return Error(Code::kNotFound, "process was removed before it exited");
    record = *exit_;
    drain_until = exit_seen_at_ + limits_.drain_grace;
  }
  // The host must have all the output before it learns the exit: wait for both pipes to reach
  // EOF, but not past the grace, since a daemonized grandchild may hold a pipe open forever.
  if (deadline && *deadline < drain_until) drain_until = *deadline;
  bool complete = stdout_.WaitSourceEof(drain_until);
  complete = stderr_.WaitSourceEof(drain_until) && complete;
  if (!complete)
    log_.Warn("output still open {} ms after exit; reporting the exit anyway",
              limits_.drain_grace.count());
  return ProcessExit{ExitCodeFromWaitStatus(record.wait_status), record.exited_at_unix_nano,
                     complete};
}

std::optional<ExitRecord> Process::exit_record() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exit_;
}

StreamBuffer::Chunk Process::Read(StreamId stream, size_t max_bytes,
                                  std::optional<std::chrono::steady_clock::time_point> deadline) {
  StreamBuffer& buffer = stream == StreamId::kStdout ? stdout_ : stderr_;
  return buffer.Read(max_bytes, deadline);
}

void Process::InterruptReads() {
  stdout_.InterruptReaders();
  stderr_.InterruptReaders();
}

Result<size_t> Process::WriteStdin(std::string_view data) { return stdin_.Write(data); }

Status Process::CloseStdin() { return stdin_.Close(); }

Status Process::ResizeTty(uint32_t rows, uint32_t cols) {
  if (!terminal_) return Error(Code::kFailedPrecondition, "process has no terminal");
  if (rows > 0xffff || cols > 0xffff) {
    return Error(Code::kInvalidArgument, "terminal size out of range");
  }
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  std::lock_guard<std::mutex> lock(mu_);
  if (!pty_master_) return Error(Code::kNotFound, "process was removed");
  if (::ioctl(pty_master_.get(), TIOCSWINSZ, &ws) != 0) {
    return Error::FromErrno(errno, "resize terminal");
  }
  return OkStatus();
}

Status Process::Signal(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  // Holding mu_ while killing orders this against OnExit: once the exit is recorded the pid is
  // reaped and may belong to someone else.
  // Limitation: between the reaper's waitpid and OnExit a signal could still reach a reused pid;
  // the window is microseconds and the kernel hands out pids in increasing order.
  if (exit_ || destroyed_) return Error(Code::kNotFound, "process already finished");
  if (::kill(pid_, sig) != 0) return Error::FromErrno(errno, "kill " + std::to_string(pid_));
  return OkStatus();
}

void Process::Destroy() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (destroyed_) return;
    destroyed_ = true;
    cv_.notify_all();
  }
  stdin_.Abandon();
  stdout_pump_.Stop();
  stderr_pump_.Stop();
  stdout_.Abort();
  stderr_.Abort();
  std::lock_guard<std::mutex> lock(mu_);
  pty_master_.reset();
}

}  // namespace cocoon::agent
