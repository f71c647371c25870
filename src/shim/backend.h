// What the task service needs from the thing that really runs containers. The daemon plugs in
// VmBackend (containers in cocoon VMs, one VM per group); unit tests plug in a fake.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "proto/cgroups_v2_metrics.pb.h"
#include "proto/containerd_task.pb.h"

namespace cocoon::shim {

namespace taskpb = ::containerd::task::v2;
namespace cgroupspb = ::io::containerd::cgroups::v2;

class TaskBackend {
 public:
  virtual ~TaskBackend() = default;

  // Prepares the container and its init process without starting it (rootfs, VM, stdio).
  // Returns the pid containerd should see.
  virtual Result<uint32_t> Create(const taskpb::CreateTaskRequest& req) = 0;
  virtual Status Start(const std::string& id) = 0;
  // Starts an exec process that the task service registered (stdio, process in the guest).
  // Returns the pid containerd should see.
  virtual Result<uint32_t> StartExec(const taskpb::ExecProcessRequest& req) = 0;
  // Blocks until the process exits and its output is relayed; returns the exit status (128+n
  // for a signal). An empty `exec_id` names the init process.
  virtual Result<uint32_t> Wait(const std::string& id, const std::string& exec_id) = 0;
  virtual Status Kill(const std::string& id, const std::string& exec_id, uint32_t signal,
                      bool all) = 0;
  virtual Status CloseStdin(const std::string& id, const std::string& exec_id) = 0;
  virtual Status ResizePty(const std::string& id, const std::string& exec_id, uint32_t width,
                           uint32_t height) = 0;
  // Releases what StartExec made; the process has stopped (or never started).
  virtual Status DeleteExec(const std::string& id, const std::string& exec_id) = 0;
  // Releases everything Create made (VM, mounts, stdio). Called once per created container,
  // after its process stopped.
  virtual Status Delete(const std::string& id) = 0;
  virtual Status Pause(const std::string& id) = 0;
  virtual Status Resume(const std::string& id) = 0;
  // `resources_json`: an OCI LinuxResources object.
  virtual Status Update(const std::string& id, const std::string& resources_json) = 0;
  virtual Result<cgroupspb::Metrics> Stats(const std::string& id) = 0;
  virtual Result<std::vector<uint32_t>> Pids(const std::string& id) = 0;
};

// Where task events go (the events publisher, or a recorder in tests).
class EventSink {
 public:
  virtual ~EventSink() = default;
  // `event` is one of the containerd.events messages; topic e.g. "/tasks/exit".
  virtual void Publish(const std::string& topic, const google::protobuf::Message& event) = 0;
};

}  // namespace cocoon::shim
