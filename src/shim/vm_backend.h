// TaskBackend that runs each container in its own cocoon sandbox (VM): rootfs mounts on the
// bundle, Sandbox::Create + CreateContainer, stdio relayed between the FIFOs and the agent.
#pragma once

#include <future>
#include <map>
#include <memory>
#include <mutex>
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

  Result<uint32_t> Create(const taskpb::CreateTaskRequest& req) override;
  Status Start(const std::string& id) override;
  Result<uint32_t> Wait(const std::string& id) override;
  Status Kill(const std::string& id, uint32_t signal, bool all) override;
  Status CloseStdin(const std::string& id) override;
  Status ResizePty(const std::string& id, uint32_t width, uint32_t height) override;
  Status Delete(const std::string& id) override;

  // Stops every VM (daemon exit); blocked Waits return.
  void DestroyAll();

 private:
  struct Entry {
    std::mutex mu;  // serializes relay shutdown between Wait and teardown
    RootfsMounts rootfs;
    std::unique_ptr<sandbox::Sandbox> sandbox;
    FifoSet fifos;
    std::unique_ptr<sandbox::StdioRelay> relay;
    bool torn_down = false;
    // QEMU gets SIGKILL when the thread that spawned it ends (vmm's parent death signal), so
    // each VM is booted from a thread of its own that lives until the teardown.
    std::thread owner;
    std::promise<void> release;
  };
  static void Teardown(Entry* e);
  Result<std::shared_ptr<Entry>> Get(const std::string& id);

  sandbox::EngineConfig config_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace cocoon::shim
