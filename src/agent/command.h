// Runs a helper program (crun) to completion through the Reaper, never through waitpid: the
// agent is PID 1 and its reaper thread owns every exit status.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "agent/reaper.h"
#include "common/result.h"

namespace cocoon::agent {

struct CommandSpec {
  std::vector<std::string> argv;
  // Child fd number <- parent fd, as SpawnOptions::fds; unnamed 0, 1 and 2 are /dev/null.
  std::vector<std::pair<int, int>> fds;
  std::chrono::milliseconds timeout{60000};
};

// Spawns the command and waits for it; returns its wait status. After `timeout` the command is
// SIGKILLed and the result is kDeadlineExceeded.
Result<int> RunCommand(Reaper* reaper, const CommandSpec& spec);

// Runs a command and returns its stdout (capped at `limit`); fails unless it exits 0.
Result<std::string> RunCommandOutput(Reaper* reaper, const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout, size_t limit = 64 << 10);

}  // namespace cocoon::agent
