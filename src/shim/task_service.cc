#include "shim/task_service.h"

#include <signal.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/containerd_events.pb.h"
#include "shim/timestamps.h"

namespace cocoon::shim {
namespace {

namespace eventspb = ::containerd::events;
namespace typespb = ::containerd::v1::types;

// A first version supports FIFO paths only (contract 5.6 allows refusing file:// and binary://).
Status CheckStdioPath(const char* name, const std::string& path) {
  if (path.empty() || path[0] == '/') return OkStatus();
  return Error(Code::kInvalidArgument,
               std::string("cocoon: ") + name + " \"" + path +
                   "\" is not supported: only FIFO paths are (no file:// or binary:// logging)");
}

Error NoExec(const std::string& id, const std::string& exec_id) {
  return Error(Code::kNotFound, "exec " + exec_id + " of container " + id + " not found");
}

}  // namespace

TaskService::TaskService(TaskBackend* backend, EventSink* events,
                         std::function<void()> on_last_shutdown)
    : backend_(backend), events_(events), on_last_shutdown_(std::move(on_last_shutdown)) {}

TaskService::~TaskService() {
  Stop();
  std::map<std::string, std::shared_ptr<Container>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(containers_);
  }
  for (auto& [id, c] : all) {
    if (c->watcher.joinable()) c->watcher.join();
  }
}

void TaskService::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  exited_cv_.notify_all();
}

size_t TaskService::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return containers_.size();
}

Result<std::shared_ptr<TaskService::Container>> TaskService::Find(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return Error(Code::kNotFound, "container " + id + " not found");
  return it->second;
}

void TaskService::MarkExited(const std::string& id, Container* c, uint32_t status) {
  c->phase = Phase::kStopped;
  c->exit_status = status;
  c->exited_at = Now();
  eventspb::TaskExit ev;
  ev.set_container_id(id);
  ev.set_id(id);
  ev.set_pid(c->pid);
  ev.set_exit_status(status);
  *ev.mutable_exited_at() = c->exited_at;
  events_->Publish("/tasks/exit", ev);
  exited_cv_.notify_all();
}

Result<taskpb::CreateTaskResponse> TaskService::Create(const taskpb::CreateTaskRequest& req) {
  if (req.id().empty()) return Error(Code::kInvalidArgument, "Create: id is required");
  if (req.bundle().empty()) return Error(Code::kInvalidArgument, "Create: bundle is required");
  if (!req.checkpoint().empty()) {
    return Error(Code::kUnimplemented, "cocoon: restoring from a checkpoint is not implemented");
  }
  COCOON_RETURN_IF_ERROR(CheckStdioPath("stdin", req.stdin()));
  COCOON_RETURN_IF_ERROR(CheckStdioPath("stdout", req.stdout()));
  COCOON_RETURN_IF_ERROR(CheckStdioPath("stderr", req.stderr()));
  auto c = std::make_shared<Container>();
  c->create = req;
  c->exited_at = NotExited();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (containers_.count(req.id()) != 0) {
      return Error(Code::kAlreadyExists, "container " + req.id() + " already exists");
    }
    // Limitation: one container per daemon (and VM) for now; grouping is a later step.
    if (!containers_.empty()) {
      return Error(Code::kFailedPrecondition,
                   "cocoon: this shim already runs container " + containers_.begin()->first +
                       "; several containers per VM are not supported yet");
    }
    containers_[req.id()] = c;
  }
  // The VM boot takes long: no lock is held, so State and Connect still answer meanwhile.
  Result<uint32_t> pid = backend_->Create(req);
  std::lock_guard<std::mutex> lock(mu_);
  if (!pid.ok()) {
    containers_.erase(req.id());
    return pid.error();
  }
  c->pid = *pid;
  c->phase = Phase::kCreated;
  eventspb::TaskCreate ev;
  ev.set_container_id(req.id());
  ev.set_bundle(req.bundle());
  *ev.mutable_rootfs() = req.rootfs();
  ev.mutable_io()->set_stdin(req.stdin());
  ev.mutable_io()->set_stdout(req.stdout());
  ev.mutable_io()->set_stderr(req.stderr());
  ev.mutable_io()->set_terminal(req.terminal());
  ev.set_pid(c->pid);
  events_->Publish("/tasks/create", ev);
  taskpb::CreateTaskResponse resp;
  resp.set_pid(c->pid);
  return resp;
}

Result<taskpb::StartResponse> TaskService::Start(const taskpb::StartRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  std::shared_ptr<Container> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(c, Find(req.id()));
    if (c->phase != Phase::kCreated) {
      return Error(Code::kFailedPrecondition,
                   "container " + req.id() + " cannot be started: it is not in the created state");
    }
    c->phase = Phase::kRunning;  // claims the start against a concurrent one
  }
  Status started = backend_->Start(req.id());
  std::lock_guard<std::mutex> lock(mu_);
  if (!started.ok()) {
    if (c->phase == Phase::kRunning) c->phase = Phase::kCreated;
    return started.error();
  }
  eventspb::TaskStart ev;
  ev.set_container_id(req.id());
  ev.set_pid(c->pid);
  // Published before the watcher exists, so no exit event can overtake it (contract 6.2).
  events_->Publish("/tasks/start", ev);
  c->watcher = std::thread([this, id = req.id()] { Watch(id); });
  taskpb::StartResponse resp;
  resp.set_pid(c->pid);
  return resp;
}

void TaskService::Watch(const std::string& id) {
  Result<uint32_t> status = backend_->Wait(id);
  if (!status.ok()) {
    Log().With("container", id).Warn("lost the exit status: {}", status.error().message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end() || it->second->phase == Phase::kStopped) return;
  // Unknown or lost exit: 255, as containerd itself uses (contract 5.4).
  MarkExited(id, it->second.get(), status.ok() ? *status : 255);
}

Result<taskpb::StateResponse> TaskService::State(const taskpb::StateRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  taskpb::StateResponse resp;
  resp.set_id(req.id());
  resp.set_bundle(c->create.bundle());
  resp.set_pid(c->pid);
  switch (c->phase) {
    case Phase::kCreating:
      resp.set_status(typespb::UNKNOWN);
      break;
    case Phase::kCreated:
      resp.set_status(typespb::CREATED);
      break;
    case Phase::kRunning:
      resp.set_status(typespb::RUNNING);
      break;
    case Phase::kStopped:
      resp.set_status(typespb::STOPPED);
      break;
  }
  resp.set_stdin(c->create.stdin());
  resp.set_stdout(c->create.stdout());
  resp.set_stderr(c->create.stderr());
  resp.set_terminal(c->create.terminal());
  resp.set_exit_status(c->exit_status);
  *resp.mutable_exited_at() = c->exited_at;
  return resp;
}

Result<taskpb::WaitResponse> TaskService::Wait(const taskpb::WaitRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  std::unique_lock<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  exited_cv_.wait(lock, [&] { return c->phase == Phase::kStopped || stopping_; });
  if (c->phase != Phase::kStopped) {
    return Error(Code::kUnavailable, "cocoon shim is shutting down");
  }
  taskpb::WaitResponse resp;
  resp.set_exit_status(c->exit_status);
  *resp.mutable_exited_at() = c->exited_at;
  return resp;
}

Result<TaskService::Empty> TaskService::Kill(const taskpb::KillRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  if (req.signal() == 0 || req.signal() >= 65) {
    return Error(Code::kInvalidArgument, "invalid signal " + std::to_string(req.signal()));
  }
  Phase phase;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    phase = c->phase;
  }
  if (phase == Phase::kStopped) return Error(Code::kNotFound, "process already finished");
  if (phase == Phase::kCreating) {
    return Error(Code::kFailedPrecondition, "container " + req.id() + " is still being created");
  }
  Status sent = backend_->Kill(req.id(), req.signal(), req.all());
  if (phase == Phase::kCreated) {
    // Nothing watches a never-started process: it counts as killed by the signal (contract 5.3),
    // whatever the guest made of it.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(req.id());
    if (it != containers_.end() && it->second->phase == Phase::kCreated) {
      MarkExited(req.id(), it->second.get(), 128 + req.signal());
    }
    return Empty();
  }
  if (!sent.ok()) return sent.error();
  return Empty();
}

Result<taskpb::DeleteResponse> TaskService::Delete(const taskpb::DeleteRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  std::shared_ptr<Container> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(c, Find(req.id()));
    if (c->phase == Phase::kRunning) {
      return Error(Code::kFailedPrecondition,
                   "container " + req.id() + " is running: kill it before deleting it");
    }
    if (c->phase == Phase::kCreating) {
      return Error(Code::kFailedPrecondition, "container " + req.id() + " is still being created");
    }
    if (c->phase == Phase::kCreated) MarkExited(req.id(), c.get(), 128 + SIGKILL);
    containers_.erase(req.id());
  }
  if (c->watcher.joinable()) c->watcher.join();
  Status released = backend_->Delete(req.id());
  if (!released.ok()) {
    Log().With("container", req.id()).Warn("cleanup: {}", released.error().message());
  }
  eventspb::TaskDelete ev;
  ev.set_container_id(req.id());
  ev.set_pid(c->pid);
  ev.set_exit_status(c->exit_status);
  *ev.mutable_exited_at() = c->exited_at;
  events_->Publish("/tasks/delete", ev);
  taskpb::DeleteResponse resp;
  resp.set_pid(c->pid);
  resp.set_exit_status(c->exit_status);
  *resp.mutable_exited_at() = c->exited_at;
  return resp;
}

Result<taskpb::PidsResponse> TaskService::Pids(const taskpb::PidsRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  taskpb::PidsResponse resp;
  // Limitation: only init is listed (with the VMM pid, as kata does); guest processes are not.
  resp.add_processes()->set_pid(c->pid);
  return resp;
}

Result<TaskService::Empty> TaskService::CloseIO(const taskpb::CloseIORequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  }
  if (req.stdin()) COCOON_RETURN_IF_ERROR(backend_->CloseStdin(req.id()));
  return Empty();
}

Result<TaskService::Empty> TaskService::ResizePty(const taskpb::ResizePtyRequest& req) {
  if (!req.exec_id().empty()) return NoExec(req.id(), req.exec_id());
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    if (!c->create.terminal()) return Empty();  // no pty to size
  }
  COCOON_RETURN_IF_ERROR(backend_->ResizePty(req.id(), req.width(), req.height()));
  return Empty();
}

Result<taskpb::ConnectResponse> TaskService::Connect(const taskpb::ConnectRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  taskpb::ConnectResponse resp;
  resp.set_shim_pid(static_cast<uint32_t>(::getpid()));
  auto it = containers_.find(req.id());
  resp.set_task_pid(it == containers_.end() ? 0 : it->second->pid);
  return resp;
}

Result<TaskService::Empty> TaskService::Shutdown(const taskpb::ShutdownRequest&) {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!containers_.empty() || shutdown_requested_) return Empty();
    shutdown_requested_ = true;
    notify = on_last_shutdown_;
  }
  if (notify) notify();
  return Empty();
}

void TaskService::Register(ttrpc::Server* server) {
  using ttrpc::CallContext;
#define COCOON_TASK_METHOD(Name, Req, Resp) \
  server->Register<Req, Resp>(              \
      kTaskService, #Name,                  \
      [this](const CallContext&, const Req& r) -> Result<Resp> { return Name(r); })
  COCOON_TASK_METHOD(Create, taskpb::CreateTaskRequest, taskpb::CreateTaskResponse);
  COCOON_TASK_METHOD(Start, taskpb::StartRequest, taskpb::StartResponse);
  COCOON_TASK_METHOD(State, taskpb::StateRequest, taskpb::StateResponse);
  COCOON_TASK_METHOD(Wait, taskpb::WaitRequest, taskpb::WaitResponse);
  COCOON_TASK_METHOD(Kill, taskpb::KillRequest, Empty);
  COCOON_TASK_METHOD(Delete, taskpb::DeleteRequest, taskpb::DeleteResponse);
  COCOON_TASK_METHOD(Pids, taskpb::PidsRequest, taskpb::PidsResponse);
  COCOON_TASK_METHOD(CloseIO, taskpb::CloseIORequest, Empty);
  COCOON_TASK_METHOD(ResizePty, taskpb::ResizePtyRequest, Empty);
  COCOON_TASK_METHOD(Connect, taskpb::ConnectRequest, taskpb::ConnectResponse);
  COCOON_TASK_METHOD(Shutdown, taskpb::ShutdownRequest, Empty);
#undef COCOON_TASK_METHOD
  for (const char* name : {"Pause", "Resume", "Checkpoint", "Exec", "Update", "Stats"}) {
    std::string method = name;
    server->RegisterRaw(kTaskService, method,
                        [method](const CallContext&, const std::string&) -> Result<std::string> {
                          return Error(Code::kUnimplemented,
                                       "cocoon: " + method + " is not implemented yet");
                        });
  }
}

}  // namespace cocoon::shim
