// ContainerRuntime over the crun binary in the guest.
//
// crun passes its own stdin/stdout/stderr to the container process, so for create and exec those
// fds are the container's stdio. crun's own error text therefore cannot be told apart on stderr;
// it is taken from the --log file instead (crun writes every error there as well), and returned
// as the error message.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/reaper.h"
#include "agent/runtime.h"

namespace cocoon::agent {

struct CrunConfig {
  std::string binary = "/usr/bin/crun";
  std::string state_root = "/run/crun";  // crun --root
  // Scratch files: crun logs, console sockets (their paths must stay under 108 bytes).
  std::string scratch_dir = "/run/cocoon/crun";
  std::chrono::milliseconds timeout{120000};  // per crun invocation; TCG guests are slow
  // For the terminal fd, after crun exited successfully (it sends the fd before it exits).
  std::chrono::milliseconds console_timeout{5000};
};

class CrunRuntime : public ContainerRuntime {
 public:
  CrunRuntime(CrunConfig config, Reaper* reaper);

  Result<Launched> Create(const std::string& id, const std::string& bundle_dir,
                          const LaunchStdio& stdio) override;
  Status Start(const std::string& id) override;
  Result<Launched> Exec(const std::string& id, const std::string& process_json_path,
                        const std::string& work_dir, const LaunchStdio& stdio) override;
  Status KillAll(const std::string& id, int sig) override;
  Status Delete(const std::string& id) override;
  Status Pause(const std::string& id) override;
  Status Resume(const std::string& id) override;
  Status Update(const std::string& id, const std::string& resources_path) override;
  std::string Version() override;

 private:
  // Runs `crun --root R --log L <args>` with the given stdio; returns an error holding crun's
  // message unless it exits 0.
  Status Run(const std::string& what, const std::vector<std::string>& args,
             const LaunchStdio* stdio);
  // Shared by create and exec: runs crun with a pid file (and a console socket for a terminal)
  // and collects the pid and the pty master. If crun succeeded but that collection fails,
  // `undo` runs (with the pid when it is known) so nothing is left half-made.
  Result<Launched> Launch(const std::string& what, std::vector<std::string> args,
                          const std::string& pid_file, const LaunchStdio& stdio,
                          const std::function<void(pid_t)>& undo);
  std::string ScratchPath(const std::string& suffix);

  const CrunConfig config_;
  Reaper* const reaper_;
  std::atomic<uint64_t> seq_{0};
};

// Reads a pid file as written by crun (decimal, maybe without a newline).
Result<pid_t> ReadPidFile(const std::string& path);
// Turns crun's log text into a one-paragraph error message (last lines, bounded).
std::string CrunMessageFromLog(const std::string& log_text);

}  // namespace cocoon::agent
