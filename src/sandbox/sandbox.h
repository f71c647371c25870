// The sandbox engine: one sandbox = one VM = one state directory = one 9p share. Both front ends
// (the cocoon CLI and the containerd shim) drive containers through this class.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "oci/spec.h"
#include "sandbox/agent_client.h"
#include "sandbox/cancel.h"
#include "sandbox/config.h"
#include "sandbox/mounts.h"
#include "sandbox/network.h"
#include "sandbox/state_dir.h"
#include "vmm/vm.h"

namespace cocoon::sandbox {

// Milestones of a sandbox's start, in milliseconds since Sandbox::Create was entered.
struct StartTimeline {
  double qemu_spawned_ms = 0;
  double kernel_entered_ms = 0;  // estimated: agent ready minus guest uptime at ready
  double agent_ready_ms = 0;
  std::chrono::steady_clock::time_point origin;

  double Since(std::chrono::steady_clock::time_point t) const {
    return std::chrono::duration<double, std::milli>(t - origin).count();
  }
};

class Sandbox {
 public:
  // Creates the state directory, boots the VM and waits for the agent's handshake. Every failure
  // leaves nothing behind and, where the guest got that far, quotes the end of its console log.
  // `cancel`, when given, may be triggered from another thread to abandon the boot (CANCELLED).
  // A `network` other than kNone gives the VM a NIC backed by a tap in that namespace, and runs
  // QEMU there.
  static Result<std::unique_ptr<Sandbox>> Create(const EngineConfig& config, const std::string& id,
                                                 const oci::VmResources& resources,
                                                 const NetworkRequest& network,
                                                 Canceller* cancel = nullptr);
  ~Sandbox();  // Destroy()

  const std::string& id() const { return id_; }
  AgentClient& agent() { return *agent_; }
  const StartTimeline& timeline() const { return timeline_; }
  const std::string& state_path() const { return state_.path(); }
  pid_t vm_pid() const { return vm_->pid(); }

  // Shares the bundle's rootfs and bind sources with the guest and creates the container there.
  // Returns the guest pid of its init process.
  Result<uint32_t> CreateContainer(const std::string& container_id, const oci::Bundle& bundle,
                                   bool stdin_pipe);
  // Removes the container in the guest and its share mounts on the host.
  Status RemoveContainer(const std::string& container_id);

  // Hands the guest every interface that appeared in the pod's network namespace since the last
  // call (CNI runs between Create and Start): called before each container starts. Nothing to do
  // for a sandbox without network.
  Status ConnectNetwork();

  // Stops the VM (QMP quit, SIGKILL fallback), unmounts the share, removes the state directory.
  void Destroy();

  // The last `max_bytes` of the guest console log.
  std::string ConsoleTail(size_t max_bytes = 2048) const;

 private:
  Sandbox(std::string id, StateDir state) : id_(std::move(id)), state_(std::move(state)) {}
  Status Boot(const EngineConfig& config, const oci::VmResources& resources,
              const NetworkRequest& network, Canceller* cancel);

  std::string id_;
  StateDir state_;
  StartTimeline timeline_;
  std::unique_ptr<vmm::Vm> vm_;
  std::unique_ptr<AgentClient> agent_;
  std::unique_ptr<PodNetwork> network_;  // null: no network namespace, loopback only
  std::mutex mu_;
  std::map<std::string, std::vector<BindMount>> mounts_;  // by container id
  bool destroyed_ = false;
};

}  // namespace cocoon::sandbox
