// What the task service needs from the thing that really runs containers. The daemon plugs in
// VmBackend (one cocoon sandbox per container); unit tests plug in a fake.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "proto/containerd_task.pb.h"

namespace cocoon::shim {

namespace taskpb = ::containerd::task::v2;

class TaskBackend {
 public:
  virtual ~TaskBackend() = default;

  // Prepares the container and its init process without starting it (rootfs, VM, stdio).
  // Returns the pid containerd should see.
  virtual Result<uint32_t> Create(const taskpb::CreateTaskRequest& req) = 0;
  virtual Status Start(const std::string& id) = 0;
  // Blocks until init exits and its output is relayed; returns the exit status (128+n for a
  // signal).
  virtual Result<uint32_t> Wait(const std::string& id) = 0;
  virtual Status Kill(const std::string& id, uint32_t signal, bool all) = 0;
  virtual Status CloseStdin(const std::string& id) = 0;
  virtual Status ResizePty(const std::string& id, uint32_t width, uint32_t height) = 0;
  // Releases everything Create made (VM, mounts, stdio). Called once per created container,
  // after its process stopped.
  virtual Status Delete(const std::string& id) = 0;
};

// Where task events go (the events publisher, or a recorder in tests).
class EventSink {
 public:
  virtual ~EventSink() = default;
  // `event` is one of the containerd.events messages; topic e.g. "/tasks/exit".
  virtual void Publish(const std::string& topic, const google::protobuf::Message& event) = 0;
};

}  // namespace cocoon::shim
