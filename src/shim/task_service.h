// containerd.task.v2.Task for one daemon: the process state machine of init and exec processes,
// exit bookkeeping, error codes and events of contract sections 5 and 6, independent of how
// containers really run.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <google/protobuf/empty.pb.h>
#include <nlohmann/json.hpp>

#include "oci/hooks.h"
#include "shim/backend.h"
#include "ttrpc/server.h"

namespace cocoon::shim {

inline constexpr char kTaskService[] = "containerd.task.v2.Task";
// The type URL containerd decodes Stats by: the bare message name, as for events (contract 6.1).
inline constexpr char kMetricsTypeUrl[] = "io.containerd.cgroups.v2.Metrics";

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
  Result<Empty> Exec(const taskpb::ExecProcessRequest& req);
  Result<taskpb::PidsResponse> Pids(const taskpb::PidsRequest& req);
  Result<Empty> CloseIO(const taskpb::CloseIORequest& req);
  Result<Empty> ResizePty(const taskpb::ResizePtyRequest& req);
  Result<Empty> Pause(const taskpb::PauseRequest& req);
  Result<Empty> Resume(const taskpb::ResumeRequest& req);
  Result<Empty> Update(const taskpb::UpdateTaskRequest& req);
  Result<taskpb::StatsResponse> Stats(const taskpb::StatsRequest& req);
  Result<taskpb::ConnectResponse> Connect(const taskpb::ConnectRequest& req);
  Result<Empty> Shutdown(const taskpb::ShutdownRequest& req);

  // Publishes /tasks/oom for a container the backend saw killed by the guest's OOM killer.
  void ReportOom(const std::string& id);

  // Registers every method of containerd.task.v2.Task; Checkpoint answers UNIMPLEMENTED.
  void Register(ttrpc::Server* server);

  // Wakes every blocked Wait (with UNAVAILABLE) before the daemon exits.
  void Stop();

  size_t size() const;

 private:
  enum class Phase { kCreating, kCreated, kRunning, kStopped };
  // The init process of a container, or one of its exec processes.
  struct Process {
    std::string exec_id;  // empty for init
    Phase phase = Phase::kCreating;
    bool paused = false;  // init only
    uint32_t pid = 0;
    uint32_t exit_status = 0;
    google::protobuf::Timestamp exited_at;
    bool terminal = false;
    std::string stdin_path, stdout_path, stderr_path;
    taskpb::ExecProcessRequest exec;  // exec only: what Exec registered
    std::thread watcher;              // waits for the exit after Start
  };
  // The OCI hooks of a container's config.json and what their state carries besides.
  struct HookSet {
    oci::Hooks hooks;
    nlohmann::json annotations = nlohmann::json::object();
  };
  struct Container {
    std::string bundle;
    std::shared_ptr<const HookSet> hooks;  // never null once Create registered the container
    std::shared_ptr<Process> init;
    std::map<std::string, std::shared_ptr<Process>> execs;
  };

  // Caller holds mu_ for these three.
  Result<std::shared_ptr<Container>> Find(const std::string& id);
  Result<std::shared_ptr<Process>> FindProcess(const std::string& id, const std::string& exec_id);
  // Records the exit and publishes /tasks/exit.
  void MarkExited(const std::string& id, Process* p, uint32_t status);

  // Runs the hooks of `kind` with the container's state; `status` and `pid` as the state says.
  static Status RunHooks(oci::HookKind kind, const std::string& id, const Container& c,
                         const char* status, uint32_t pid);

  void Watch(const std::string& id, std::shared_ptr<Process> p);
  Result<std::shared_ptr<Process>> ClaimStart(const std::string& id, const std::string& exec_id);
  Result<taskpb::DeleteResponse> DeleteExec(const taskpb::DeleteRequest& req);
  // The init of `id` if it runs (paused or not), else FAILED_PRECONDITION naming `what`.
  Result<std::shared_ptr<Process>> RunningInit(const std::string& id, const char* what);

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
