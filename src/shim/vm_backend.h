// TaskBackend that runs containers in cocoon sandboxes (VMs): one VM per group (a pod's sandbox
// id, a cocoon group annotation, or the container alone), rootfs mounts on each bundle, stdio
// relayed between the FIFOs and the agent for init and exec processes.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sandbox/config.h"
#include "sandbox/sandbox.h"
#include "sandbox/stdio_relay.h"
#include "shim/backend.h"
#include "shim/rootfs.h"
#include "shim/stdio.h"

namespace cocoon::shim {

class VmBackend : public TaskBackend {
 public:
  explicit VmBackend(sandbox::EngineConfig config) : config_(std::move(config)) {}
  ~VmBackend() override { DestroyAll(); }

  // Called with a container id whenever the guest reports an out-of-memory kill in it. Set
  // before the first Create.
  void SetOomHandler(std::function<void(const std::string&)> handler) {
    on_oom_ = std::move(handler);
  }

  Result<uint32_t> Create(const taskpb::CreateTaskRequest& req) override;
  Status Start(const std::string& id) override;
  Result<uint32_t> StartExec(const taskpb::ExecProcessRequest& req) override;
  Result<uint32_t> Wait(const std::string& id, const std::string& exec_id) override;
  Status Kill(const std::string& id, const std::string& exec_id, uint32_t signal,
              bool all) override;
  Status CloseStdin(const std::string& id, const std::string& exec_id) override;
  Status ResizePty(const std::string& id, const std::string& exec_id, uint32_t width,
                   uint32_t height) override;
  Status DeleteExec(const std::string& id, const std::string& exec_id) override;
  Status Delete(const std::string& id) override;
  Status Pause(const std::string& id) override;
  Status Resume(const std::string& id) override;
  Status Update(const std::string& id, const std::string& resources_json) override;
  Result<cgroupspb::Metrics> Stats(const std::string& id) override;
  Result<std::vector<uint32_t>> Pids(const std::string& id) override;

  // Stops every VM (daemon exit); blocked Waits return.
  void DestroyAll();

 private:
  // One VM and the containers sharing it.
  struct Pod {
    std::string key;
    std::promise<Status> boot_result;
    std::shared_future<Status> booted = boot_result.get_future().share();
    std::unique_ptr<sandbox::Sandbox> sandbox;  // set before `booted` is ready, if it booted
    std::set<std::string> members;              // guarded by VmBackend::mu_
    // QEMU gets SIGKILL when the thread that spawned it ends (vmm's parent death signal), so
    // each VM is booted from a thread of its own that lives until the teardown.
    std::thread owner;
    std::promise<void> release;
    std::thread events;  // long-polls the agent for OOM kills
    std::atomic<bool> stopping{false};
    std::once_flag stop_once;
  };
  // The stdio of one process.
  struct Io {
    FifoSet fifos;
    std::unique_ptr<sandbox::StdioRelay> relay;
    void Stop();
  };
  struct Entry {
    std::mutex mu;  // serializes relay shutdown between Wait and teardown
    std::shared_ptr<Pod> pod;
    RootfsMounts rootfs;
    Io init;
    std::map<std::string, std::unique_ptr<Io>> execs;
    bool torn_down = false;
  };

  Result<std::shared_ptr<Entry>> Get(const std::string& id);
  sandbox::AgentClient& Agent(const Entry& e) { return e.pod->sandbox->agent(); }
  // Adds `id` to the pod of `key`, booting its VM if it is the first member.
  Result<std::shared_ptr<Pod>> JoinPod(const std::string& key, const std::string& id,
                                       const oci::VmResources& resources,
                                       const sandbox::NetworkRequest& network);
  // Removes `id`; the last member to leave stops the VM.
  void LeavePod(const std::shared_ptr<Pod>& pod, const std::string& id);
  void Boot(const std::shared_ptr<Pod>& pod, const oci::VmResources& resources,
            const sandbox::NetworkRequest& network);
  void PollEvents(Pod* pod);
  void Dispatch(Pod* pod, const std::vector<sandbox::agentpb::GuestEvent>& events);
  static void StopPod(Pod* pod);
  void Teardown(const std::string& id, Entry* e);
  Status OpenIo(Entry* e, Io* io, const std::string& id, const std::string& exec_id,
                const std::string& in, const std::string& out, const std::string& err);

  sandbox::EngineConfig config_;
  std::function<void(const std::string&)> on_oom_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  std::map<std::string, std::shared_ptr<Pod>> pods_;  // by group key
};

}  // namespace cocoon::shim
