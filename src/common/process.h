// Child processes: spawn with an explicit fd map, wait, signal, and an RAII owner that never lets
// a child outlive it by accident.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace cocoon {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // The program to execute when it differs from argv[0] (OCI hooks name both); used as is, no
  // PATH lookup. Empty: argv[0].
  std::string path;
  // Environment as NAME=value entries; std::nullopt inherits the parent's.
  std::optional<std::vector<std::string>> env;
  // Child fd number <- parent fd. Child fds 0, 1 and 2 not named here are /dev/null. Every other
  // fd is closed in the child.
  std::vector<std::pair<int, int>> fds;
  std::string cwd;
  bool new_session = false;
  bool new_process_group = false;
  int parent_death_signal = 0;  // sent to the child when the spawning thread dies; 0 = none
  // A network namespace fd the child joins before it executes (QEMU in the pod's namespace, `ip`
  // and `tc` run there); -1 keeps the parent's.
  int netns_fd = -1;
};

// Starts a child. Fails (with the exec errno) if the program cannot be executed.
Result<pid_t> SpawnProcess(const SpawnOptions& options);

// Converts a wait status into a shell-style exit code: the exit status, or 128+n for signal n.
int ExitCodeFromWaitStatus(int status);

// Owns a spawned child. The destructor kills (SIGKILL) and reaps a child still running.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  static Result<ChildProcess> Spawn(const SpawnOptions& options);

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }
  // Blocks until the child exits; returns its wait status.
  Result<int> Wait();
  // Waits up to `timeout`; std::nullopt if still running.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);
  Status Signal(int sig);
  // SIGKILL and reap.
  void Kill();
  // Gives up ownership without killing.
  pid_t Release() { return std::exchange(pid_, -1); }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs a program to completion, capturing stdout (and stderr when `merge_stderr`). Output is
// capped at `limit` bytes. `netns_fd` as in SpawnOptions.
struct RunResult {
  int exit_code = 0;
  std::string output;
};
Result<RunResult> RunCapture(const std::vector<std::string>& argv, bool merge_stderr = true,
                             size_t limit = 1 << 20, int netns_fd = -1);

}  // namespace cocoon
