// The container runtime behind the agent: crun in the guest (crun_runtime.h), a fake that runs
// ordinary processes in unit tests. The agent owns ids, bundles, stdio and exit tracking; the
// runtime only launches and controls processes.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

// The child's ends of a process's stdio. Fds are borrowed for the duration of the call.
struct LaunchStdio {
  bool terminal = false;  // allocate a pty; the fds below are then unused
  int stdin_fd = -1;      // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
};

struct Launched {
  pid_t pid = -1;
  UniqueFd pty_master;  // terminal mode only
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // Creates container `id` from `bundle_dir`/config.json; its init process exists but waits for
  // Start. Errors carry the runtime's own message.
  virtual Result<Launched> Create(const std::string& id, const std::string& bundle_dir,
                                  const LaunchStdio& stdio) = 0;
  virtual Status Start(const std::string& id) = 0;
  // Runs the OCI process described in `process_json_path` inside container `id`, detached.
  // `work_dir` is a private directory for the runtime's scratch files (pid file, socket).
  virtual Result<Launched> Exec(const std::string& id, const std::string& process_json_path,
                                const std::string& work_dir, const LaunchStdio& stdio) = 0;
  // Signals every process of the container (the runtime knows its cgroup).
  virtual Status KillAll(const std::string& id, int sig) = 0;
  // Deletes the container, killing whatever still runs in it.
  virtual Status Delete(const std::string& id) = 0;
  // Freezes / thaws every process of the container (the cgroup freezer).
  virtual Status Pause(const std::string& id) = 0;
  virtual Status Resume(const std::string& id) = 0;
  // Applies the OCI "linux.resources" object in the JSON file `resources_path` to the container.
  virtual Status Update(const std::string& id, const std::string& resources_path) = 0;
  // One line naming the runtime and its version.
  virtual std::string Version() = 0;
};

}  // namespace cocoon::agent
