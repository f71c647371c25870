// A ContainerRuntime for unit tests: "containers" are ordinary host processes. Create spawns
// process.args behind a start gate (a FIFO, as crun's exec.fifo), Start opens the gate; a
// terminal gets a real pty from openpty. Each process leads its own process group so that kill
// and delete reach its children too.
#pragma once

#include <sys/types.h>

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
  std::string Version() override { return "fake-runtime 1.0"; }

  // The next Create fails with this message (the runtime's own error text).
  void FailNextCreate(std::string message);
  std::vector<std::string> calls() const;

 private:
  Result<Launched> Spawn(const std::vector<std::string>& argv, bool terminal,
                         const LaunchStdio& stdio);

  mutable std::mutex mu_;
  std::map<std::string, std::vector<pid_t>> pids_;
  std::map<std::string, std::string> gates_;
  std::string fail_next_create_;
  std::vector<std::string> calls_;
};

}  // namespace cocoon::agent::testing
