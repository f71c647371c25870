// The single reaper of the agent. PID 1 inherits every orphan in the guest, so exactly one thread
// calls waitpid(-1): any other waitpid would race with it and steal statuses. Everything that
// needs a child's exit (crun invocations, container processes) asks the reaper instead.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

struct ExitRecord {
  int wait_status = 0;
  int64_t exited_at_unix_nano = 0;
};

class Reaper {
 public:
  using ExitCallback = std::function<void(const ExitRecord&)>;

  Reaper() = default;
  ~Reaper();  // Stop()s
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // Blocks SIGCHLD in the calling thread. Call it in main() before any thread exists, so every
  // thread inherits the mask and SIGCHLD is only ever consumed through the reaper's signalfd.
  static Status BlockChildSignal();

  // Starts the reaper thread. SIGCHLD must already be blocked (BlockChildSignal); without that
  // the reaper still works, by polling every kPollInterval.
  Status Start();
  void Stop();

  // Calls `on_exit` (on the reaper thread, without reaper locks held) once `pid` exits. If the
  // pid has already exited and was not claimed yet, the callback runs at once on this thread, so
  // a process that dies before its registration is never lost. One watcher per pid.
  void Watch(pid_t pid, ExitCallback on_exit);
  // Drops the watcher; a later exit of `pid` is kept as unclaimed (and ages out).
  void Unwatch(pid_t pid);

  // Waits for `pid` to exit and returns its record; kDeadlineExceeded after `timeout` (the
  // watch is then dropped). Used for short-lived helpers such as crun.
  Result<ExitRecord> WaitFor(pid_t pid, std::chrono::milliseconds timeout);

  // Number of exits recorded for pids nobody watched yet (for tests and diagnostics).
  size_t unclaimed_count() const;

  // Unclaimed exits are kept at most this long and this many (oldest dropped first): enough for
  // any registration race, bounded against orphans nobody will ever ask about.
  // Limitation: a pid registered more than kUnclaimedTtl after its exit is not recognised (the
  // caller then waits for an exit that already happened); registration follows crun at once.
  static constexpr std::chrono::seconds kUnclaimedTtl{120};
  static constexpr size_t kMaxUnclaimed = 4096;
  static constexpr std::chrono::milliseconds kPollInterval{200};

 private:
  struct Unclaimed {
    ExitRecord record;
    std::chrono::steady_clock::time_point at;
  };

  void Loop();
  void ReapAll();
  void Deliver(pid_t pid, const ExitRecord& record);
  void PruneLocked(std::chrono::steady_clock::time_point now);

  mutable std::mutex mu_;
  std::map<pid_t, ExitCallback> watchers_;
  std::map<pid_t, Unclaimed> unclaimed_;
  std::chrono::steady_clock::time_point last_prune_{};
  UniqueFd signal_fd_;
  UniqueFd stop_fd_;  // eventfd
  std::thread thread_;
};

// Wall clock in unix nanoseconds.
int64_t UnixNanosNow();

}  // namespace cocoon::agent
