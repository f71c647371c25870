// A ContainerRuntime for unit tests: "containers" are ordinary host processes. Create spawns
// process.args behind a start gate (a FIFO, as crun's exec.fifo), Start opens the gate; a
// terminal gets a real pty from openpty. Each process leads its own process group so that kill
// and delete reach its children too. Pause and Resume send SIGSTOP and SIGCONT to the groups.
//
// With a cgroup root set, Create also makes the container's cgroup as crun would, at the
// spec's linux.cgroupsPath under that root: a plain directory holding fake cgroup v2 files
// (cgroup.procs lists the container's pids); Update writes memory.max from the resources, and
// Delete removes the directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/runtime.h"

namespace cocoon::agent::testing {

class FakeRuntime : public ContainerRuntime {
 public:
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
  std::string Version() override { return "fake-runtime 1.0"; }

  // The next Create fails with this message (the runtime's own error text).
  void FailNextCreate(std::string message);
  // The next control call (pause, resume, update) fails with this message.
  void FailNextControl(std::string message);
  // Exec waits this long before it launches anything (a slow runtime).
  void set_exec_delay(std::chrono::milliseconds delay);
  // Where Create makes fake cgroups; empty (the default): it makes none.
  void set_cgroup_root(std::string root);
  std::vector<std::string> calls() const;
  // The resources file content of each Update call, in order.
  std::vector<std::string> updates() const;

 private:
  Result<Launched> Spawn(const std::vector<std::string>& argv, bool terminal,
                         const LaunchStdio& stdio);
  Status MakeCgroup(const std::string& id, const std::string& dir);
  void WriteProcsLocked(const std::string& id);
  Status TakeControlFailureLocked(const std::string& what);
  void SignalGroupsLocked(const std::string& id, int sig);

  mutable std::mutex mu_;
  std::map<std::string, std::vector<pid_t>> pids_;
  std::map<std::string, std::string> gates_;
  std::map<std::string, std::string> cgroups_;  // id -> fake cgroup directory
  std::string cgroup_root_;
  std::chrono::milliseconds exec_delay_{0};
  std::string fail_next_create_;
  std::string fail_next_control_;
  std::vector<std::string> calls_;
  std::vector<std::string> updates_;
};

}  // namespace cocoon::agent::testing
