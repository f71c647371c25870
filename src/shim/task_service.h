// containerd.task.v2.Task for one daemon: the process state machine, exit bookkeeping, error
// codes and events of contract section 5, independent of how containers really run.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <google/protobuf/empty.pb.h>

#include "shim/backend.h"
#include "ttrpc/server.h"

namespace cocoon::shim {

inline constexpr char kTaskService[] = "containerd.task.v2.Task";

class TaskService {
 public:
  // `on_last_shutdown` runs (once) when Shutdown arrives and no container is left; the daemon
  // then stops serving and exits.
  TaskService(TaskBackend* backend, EventSink* events, std::function<void()> on_last_shutdown);
  ~TaskService();  // joins the exit watchers
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  using Empty = google::protobuf::Empty;

  Result<taskpb::CreateTaskResponse> Create(const taskpb::CreateTaskRequest& req);
  Result<taskpb::StartResponse> Start(const taskpb::StartRequest& req);
  Result<taskpb::StateResponse> State(const taskpb::StateRequest& req);
  Result<taskpb::WaitResponse> Wait(const taskpb::WaitRequest& req);
  Result<Empty> Kill(const taskpb::KillRequest& req);
  Result<taskpb::DeleteResponse> Delete(const taskpb::DeleteRequest& req);
  Result<taskpb::PidsResponse> Pids(const taskpb::PidsRequest& req);
  Result<Empty> CloseIO(const taskpb::CloseIORequest& req);
  Result<Empty> ResizePty(const taskpb::ResizePtyRequest& req);
  Result<taskpb::ConnectResponse> Connect(const taskpb::ConnectRequest& req);
  Result<Empty> Shutdown(const taskpb::ShutdownRequest& req);

  // Registers every method of containerd.task.v2.Task; the ones not supported yet answer
  // UNIMPLEMENTED with a message naming them.
  void Register(ttrpc::Server* server);

  // Wakes every blocked Wait (with UNAVAILABLE) before the daemon exits.
  void Stop();

  size_t size() const;

 private:
  enum class Phase { kCreating, kCreated, kRunning, kStopped };
  struct Container {
    taskpb::CreateTaskRequest create;
    Phase phase = Phase::kCreating;
    uint32_t pid = 0;
    uint32_t exit_status = 0;
    google::protobuf::Timestamp exited_at;
    std::thread watcher;  // waits for init's exit after Start
  };

  // The container `id`, or NOT_FOUND. Caller holds mu_.
  Result<std::shared_ptr<Container>> Find(const std::string& id);
  // Records the exit and publishes /tasks/exit. Caller holds mu_.
  void MarkExited(const std::string& id, Container* c, uint32_t status);
  void Watch(const std::string& id);

  TaskBackend* backend_;
  EventSink* events_;
  std::function<void()> on_last_shutdown_;
  mutable std::mutex mu_;
  std::condition_variable exited_cv_;
  std::map<std::string, std::shared_ptr<Container>> containers_;
  bool stopping_ = false;
  bool shutdown_requested_ = false;
};

}  // namespace cocoon::shim
