#include "shim/task_service.h"

#include <signal.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/io.h"
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

Status CheckStdio(const std::string& in, const std::string& out, const std::string& err) {
  COCOON_RETURN_IF_ERROR(CheckStdioPath("stdin", in));
  COCOON_RETURN_IF_ERROR(CheckStdioPath("stdout", out));
  return CheckStdioPath("stderr", err);
}

std::string Describe(const std::string& id, const std::string& exec_id) {
  return exec_id.empty() ? "container " + id : "exec " + exec_id + " of container " + id;
}

// The hooks and annotations of <bundle>/config.json. A config.json that cannot be read or parsed
// means no hooks here: the backend loads the whole bundle next and reports that problem itself.
// Invalid hooks fail at once, before a VM boots for nothing.
Result<oci::Hooks> LoadHooks(const std::string& bundle, nlohmann::json* annotations) {
  auto text = ReadFile(bundle + "/config.json");
  if (!text.ok()) return oci::Hooks();
  nlohmann::json spec = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object()) return oci::Hooks();
  if (auto a = spec.find("annotations"); a != spec.end() && a->is_object()) *annotations = *a;
  auto hooks = oci::ParseHooks(spec);
  if (!hooks.ok()) return hooks.error().Wrap(bundle + "/config.json");
  return hooks;
}

}  // namespace

Status TaskService::RunHooks(oci::HookKind kind, const std::string& id, const Container& c,
                             const char* status, uint32_t pid) {
  const std::vector<oci::Hook>& hooks = c.hooks->hooks.of(kind);
  if (hooks.empty()) return OkStatus();
  oci::State state;
  state.id = id;
  state.status = status;
  state.pid = static_cast<int>(pid);
  state.bundle = c.bundle;
  state.annotations = c.hooks->annotations;
  Log().With("container", id).Debug("running {} {} hook(s)", hooks.size(), HookKindName(kind));
  return oci::RunHooks(kind, hooks, state);
}

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
    if (c->init->watcher.joinable()) c->init->watcher.join();
    for (auto& [eid, p] : c->execs) {
      if (p->watcher.joinable()) p->watcher.join();
    }
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

Result<std::shared_ptr<TaskService::Process>> TaskService::FindProcess(const std::string& id,
                                                                       const std::string& exec_id) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(id));
  if (exec_id.empty()) return c->init;
  auto it = c->execs.find(exec_id);
  if (it == c->execs.end()) return Error(Code::kNotFound, Describe(id, exec_id) + " not found");
  return it->second;
}

void TaskService::MarkExited(const std::string& id, Process* p, uint32_t status) {
  p->phase = Phase::kStopped;
  p->paused = false;
  p->exit_status = status;
  p->exited_at = Now();
  eventspb::TaskExit ev;
  ev.set_container_id(id);
  // The exec id for an exec: CRI tells exec exits from container exits by it (contract 5.7).
  ev.set_id(p->exec_id.empty() ? id : p->exec_id);
  ev.set_pid(p->pid);
  ev.set_exit_status(status);
  *ev.mutable_exited_at() = p->exited_at;
  events_->Publish("/tasks/exit", ev);
  exited_cv_.notify_all();
}

Result<taskpb::CreateTaskResponse> TaskService::Create(const taskpb::CreateTaskRequest& req) {
  if (req.id().empty()) return Error(Code::kInvalidArgument, "Create: id is required");
  if (req.bundle().empty()) return Error(Code::kInvalidArgument, "Create: bundle is required");
  if (!req.checkpoint().empty()) {
    return Error(Code::kUnimplemented, "cocoon: restoring from a checkpoint is not implemented");
  }
  COCOON_RETURN_IF_ERROR(CheckStdio(req.stdin(), req.stdout(), req.stderr()));
  auto hook_set = std::make_shared<HookSet>();
  COCOON_ASSIGN_OR_RETURN(hook_set->hooks, LoadHooks(req.bundle(), &hook_set->annotations));
  auto c = std::make_shared<Container>();
  c->bundle = req.bundle();
  c->hooks = hook_set;
  c->init = std::make_shared<Process>();
  Process& init = *c->init;
  init.exited_at = NotExited();
  init.terminal = req.terminal();
  init.stdin_path = req.stdin();
  init.stdout_path = req.stdout();
  init.stderr_path = req.stderr();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (containers_.count(req.id()) != 0) {
      return Error(Code::kAlreadyExists, "container " + req.id() + " already exists");
    }
    containers_[req.id()] = c;
  }
  // The VM boot takes long: no lock is held, so State and Connect still answer meanwhile.
  Result<uint32_t> pid = backend_->Create(req);
  if (pid.ok()) {
    if (std::string skipped = oci::SkippedHooksWarning(hook_set->hooks); !skipped.empty()) {
      Log().With("container", req.id()).Warn("{}", skipped);
    }
    // The runtime environment exists now (VM and container created, pid known): the spec's
    // prestart, then createRuntime, before Create returns. A failure undoes the whole Create.
    Status hooked = RunHooks(oci::HookKind::kPrestart, req.id(), *c, "created", *pid);
    if (hooked.ok()) {
      hooked = RunHooks(oci::HookKind::kCreateRuntime, req.id(), *c, "created", *pid);
    }
    if (!hooked.ok()) {
      Log().With("container", req.id()).Warn("create failed: {}", hooked.error().message());
      Status released = backend_->Delete(req.id());
      if (!released.ok()) {
        Log().With("container", req.id()).Warn("cleanup: {}", released.error().message());
      }
      // One code for every hook failure: the spec's hooks, not the request, are at fault.
      pid = Error(Code::kFailedPrecondition, hooked.error().message());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!pid.ok()) {
    containers_.erase(req.id());
    return pid.error();
  }
  init.pid = *pid;
  init.phase = Phase::kCreated;
  eventspb::TaskCreate ev;
  ev.set_container_id(req.id());
  ev.set_bundle(req.bundle());
  *ev.mutable_rootfs() = req.rootfs();
  ev.mutable_io()->set_stdin(req.stdin());
  ev.mutable_io()->set_stdout(req.stdout());
  ev.mutable_io()->set_stderr(req.stderr());
  ev.mutable_io()->set_terminal(req.terminal());
  ev.set_pid(init.pid);
  events_->Publish("/tasks/create", ev);
  taskpb::CreateTaskResponse resp;
  resp.set_pid(init.pid);
  return resp;
}

Result<TaskService::Empty> TaskService::Exec(const taskpb::ExecProcessRequest& req) {
  if (req.exec_id().empty()) return Error(Code::kInvalidArgument, "Exec: exec_id is required");
  COCOON_RETURN_IF_ERROR(ValidateId(req.exec_id()));
  if (req.spec().value().empty()) {
    return Error(Code::kInvalidArgument, "Exec: the process spec is missing");
  }
  COCOON_RETURN_IF_ERROR(CheckStdio(req.stdin(), req.stdout(), req.stderr()));
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  if (c->init->phase != Phase::kRunning) {
    return Error(Code::kFailedPrecondition,
                 "cannot exec in container " + req.id() + ": it is not running");
  }
  if (c->execs.count(req.exec_id()) != 0) {
    return Error(Code::kAlreadyExists, Describe(req.id(), req.exec_id()) + " already exists");
  }
  auto p = std::make_shared<Process>();
  p->exec_id = req.exec_id();
  p->phase = Phase::kCreated;
  p->exited_at = NotExited();
  p->terminal = req.terminal();
  p->stdin_path = req.stdin();
  p->stdout_path = req.stdout();
  p->stderr_path = req.stderr();
  c->execs[req.exec_id()] = p;
  p->exec = req;
  eventspb::TaskExecAdded ev;
  ev.set_container_id(req.id());
  ev.set_exec_id(req.exec_id());
  events_->Publish("/tasks/exec-added", ev);
  return Empty();
}

Result<std::shared_ptr<TaskService::Process>> TaskService::ClaimStart(const std::string& id,
                                                                      const std::string& exec_id) {
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(id, exec_id));
  if (p->phase != Phase::kCreated) {
    return Error(Code::kFailedPrecondition,
                 Describe(id, exec_id) + " cannot be started: it is not in the created state");
  }
  if (!exec_id.empty()) {
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(id));
    if (c->init->phase != Phase::kRunning) {
      return Error(Code::kFailedPrecondition,
                   "cannot start " + Describe(id, exec_id) + ": the container is not running");
    }
  }
  p->phase = Phase::kRunning;  // claims the start against a concurrent one
  return p;
}

Result<taskpb::StartResponse> TaskService::Start(const taskpb::StartRequest& req) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, ClaimStart(req.id(), req.exec_id()));
  Result<uint32_t> pid = p->pid;
  if (req.exec_id().empty()) {
    Status started = backend_->Start(req.id());
    if (!started.ok()) pid = started.error();
  } else {
    pid = backend_->StartExec(p->exec);  // set once by Exec, before the process was shared
  }
  std::shared_ptr<Container> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pid.ok()) {
      if (p->phase == Phase::kRunning) p->phase = Phase::kCreated;
      return pid.error();
    }
    p->pid = *pid;
    // Published before the watcher exists, so no exit event can overtake it (contract 6.2).
    if (req.exec_id().empty()) {
      eventspb::TaskStart ev;
      ev.set_container_id(req.id());
      ev.set_pid(p->pid);
      events_->Publish("/tasks/start", ev);
    } else {
      eventspb::TaskExecStarted ev;
      ev.set_container_id(req.id());
      ev.set_exec_id(req.exec_id());
      ev.set_pid(p->pid);
      events_->Publish("/tasks/exec-started", ev);
    }
    p->watcher = std::thread([this, id = req.id(), p] { Watch(id, p); });
    if (req.exec_id().empty()) {
      if (auto found = Find(req.id()); found.ok()) c = *found;
    }
  }
  // The spec's poststart: after the process started, before Start returns; a failure is only
  // logged, as the process already runs.
  if (c) {
    Status hooked = RunHooks(oci::HookKind::kPoststart, req.id(), *c, "running", *pid);
    if (!hooked.ok()) Log().With("container", req.id()).Warn("{}", hooked.error().message());
  }
  taskpb::StartResponse resp;
  resp.set_pid(*pid);
  return resp;
}

void TaskService::Watch(const std::string& id, std::shared_ptr<Process> p) {
  Result<uint32_t> status = backend_->Wait(id, p->exec_id);
  if (!status.ok()) {
    Log()
        .With("container", id)
        .With("exec", p->exec_id)
        .Warn("lost the exit status: {}", status.error().message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (p->phase == Phase::kStopped || containers_.count(id) == 0) return;
  // Unknown or lost exit: 255, as containerd itself uses (contract 5.4).
  MarkExited(id, p.get(), status.ok() ? *status : 255);
}

Result<taskpb::StateResponse> TaskService::State(const taskpb::StateRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(req.id(), req.exec_id()));
  taskpb::StateResponse resp;
  resp.set_id(req.exec_id().empty() ? req.id() : req.exec_id());
  resp.set_exec_id(req.exec_id());
  resp.set_bundle(c->bundle);
  resp.set_pid(p->pid);
  switch (p->phase) {
    case Phase::kCreating:
      resp.set_status(typespb::UNKNOWN);
      break;
    case Phase::kCreated:
      resp.set_status(typespb::CREATED);
      break;
    case Phase::kRunning:
      resp.set_status(p->paused ? typespb::PAUSED : typespb::RUNNING);
      break;
    case Phase::kStopped:
      resp.set_status(typespb::STOPPED);
      break;
  }
  resp.set_stdin(p->stdin_path);
  resp.set_stdout(p->stdout_path);
  resp.set_stderr(p->stderr_path);
  resp.set_terminal(p->terminal);
  resp.set_exit_status(p->exit_status);
  *resp.mutable_exited_at() = p->exited_at;
  return resp;
}

Result<taskpb::WaitResponse> TaskService::Wait(const taskpb::WaitRequest& req) {
  std::unique_lock<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(req.id(), req.exec_id()));
  exited_cv_.wait(lock, [&] { return p->phase == Phase::kStopped || stopping_; });
  if (p->phase != Phase::kStopped) {
    return Error(Code::kUnavailable, "cocoon shim is shutting down");
  }
  taskpb::WaitResponse resp;
  resp.set_exit_status(p->exit_status);
  *resp.mutable_exited_at() = p->exited_at;
  return resp;
}

Result<TaskService::Empty> TaskService::Kill(const taskpb::KillRequest& req) {
  if (req.signal() == 0 || req.signal() >= 65) {
    return Error(Code::kInvalidArgument, "invalid signal " + std::to_string(req.signal()));
  }
  std::shared_ptr<Process> p;
  Phase phase;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(p, FindProcess(req.id(), req.exec_id()));
    phase = p->phase;
  }
  if (phase == Phase::kStopped) return Error(Code::kNotFound, "process already finished");
  if (phase == Phase::kCreating) {
    return Error(Code::kFailedPrecondition,
                 Describe(req.id(), req.exec_id()) + " is still being created");
  }
  // A created exec exists only here; a created init exists in the guest and gets the signal.
  Status sent = OkStatus();
  if (phase != Phase::kCreated || req.exec_id().empty()) {
    sent = backend_->Kill(req.id(), req.exec_id(), req.signal(), req.all());
  }
  if (phase == Phase::kCreated) {
    // Nothing watches a never-started process: it counts as killed by the signal (contract 5.3),
    // whatever the guest made of it.
    std::lock_guard<std::mutex> lock(mu_);
    if (p->phase == Phase::kCreated) MarkExited(req.id(), p.get(), 128 + req.signal());
    return Empty();
  }
  if (!sent.ok()) return sent.error();
  return Empty();
}

Result<taskpb::DeleteResponse> TaskService::DeleteExec(const taskpb::DeleteRequest& req) {
  std::shared_ptr<Process> p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    COCOON_ASSIGN_OR_RETURN(p, FindProcess(req.id(), req.exec_id()));
    if (p->phase == Phase::kRunning) {
      return Error(Code::kFailedPrecondition,
                   Describe(req.id(), req.exec_id()) + " is running: kill it before deleting it");
    }
    if (p->phase == Phase::kCreated) {
      // Never started: nothing ran, so no exit event; it reads as killed.
      p->phase = Phase::kStopped;
      p->exit_status = 128 + SIGKILL;
      p->exited_at = Now();
    }
    c->execs.erase(req.exec_id());
  }
  if (p->watcher.joinable()) p->watcher.join();
  Status released = backend_->DeleteExec(req.id(), req.exec_id());
  if (!released.ok()) {
    Log()
        .With("container", req.id())
        .With("exec", req.exec_id())
        .Warn("cleanup: {}", released.error().message());
  }
  // runc publishes no event for an exec's delete; neither do we (contract 6.1).
  taskpb::DeleteResponse resp;
  resp.set_pid(p->pid);
  resp.set_exit_status(p->exit_status);
  *resp.mutable_exited_at() = p->exited_at;
  return resp;
}

Result<taskpb::DeleteResponse> TaskService::Delete(const taskpb::DeleteRequest& req) {
  if (!req.exec_id().empty()) return DeleteExec(req);
  std::shared_ptr<Container> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(c, Find(req.id()));
    if (c->init->phase == Phase::kRunning) {
      return Error(Code::kFailedPrecondition,
                   "container " + req.id() + " is running: kill it before deleting it");
    }
    if (c->init->phase == Phase::kCreating) {
      return Error(Code::kFailedPrecondition, "container " + req.id() + " is still being created");
    }
    if (c->init->phase == Phase::kCreated) MarkExited(req.id(), c->init.get(), 128 + SIGKILL);
    containers_.erase(req.id());
  }
  Process& init = *c->init;
  if (init.watcher.joinable()) init.watcher.join();
  // Execs still running die with the container; their watchers return once the backend let go.
  Status released = backend_->Delete(req.id());
  if (!released.ok()) {
    Log().With("container", req.id()).Warn("cleanup: {}", released.error().message());
  }
  for (auto& [eid, p] : c->execs) {
    if (p->watcher.joinable()) p->watcher.join();
  }
  // The spec's poststop: after the container is gone, before Delete returns; only logged.
  Status hooked = RunHooks(oci::HookKind::kPoststop, req.id(), *c, "stopped", init.pid);
  if (!hooked.ok()) Log().With("container", req.id()).Warn("{}", hooked.error().message());
  eventspb::TaskDelete ev;
  ev.set_container_id(req.id());
  ev.set_pid(init.pid);
  ev.set_exit_status(init.exit_status);
  *ev.mutable_exited_at() = init.exited_at;
  events_->Publish("/tasks/delete", ev);
  taskpb::DeleteResponse resp;
  resp.set_pid(init.pid);
  resp.set_exit_status(init.exit_status);
  *resp.mutable_exited_at() = init.exited_at;
  return resp;
}

Result<taskpb::PidsResponse> TaskService::Pids(const taskpb::PidsRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    if (c->init->phase == Phase::kCreating || c->init->phase == Phase::kStopped) {
      return taskpb::PidsResponse();  // no process runs
    }
  }
  COCOON_ASSIGN_OR_RETURN(std::vector<uint32_t> pids, backend_->Pids(req.id()));
  taskpb::PidsResponse resp;
  // Guest pids: what runs in the container, as `ps` inside it shows them.
  for (uint32_t pid : pids) resp.add_processes()->set_pid(pid);
  return resp;
}

Result<TaskService::Empty> TaskService::CloseIO(const taskpb::CloseIORequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(req.id(), req.exec_id()));
  }
  if (req.stdin()) COCOON_RETURN_IF_ERROR(backend_->CloseStdin(req.id(), req.exec_id()));
  return Empty();
}

Result<TaskService::Empty> TaskService::ResizePty(const taskpb::ResizePtyRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(req.id(), req.exec_id()));
    if (!p->terminal || p->phase != Phase::kRunning) return Empty();  // no pty to size
  }
  COCOON_RETURN_IF_ERROR(backend_->ResizePty(req.id(), req.exec_id(), req.width(), req.height()));
  return Empty();
}

Result<std::shared_ptr<TaskService::Process>> TaskService::RunningInit(const std::string& id,
                                                                       const char* what) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(id));
  if (c->init->phase != Phase::kRunning) {
    return Error(Code::kFailedPrecondition,
                 std::string("cannot ") + what + " container " + id + ": it is not running");
  }
  return c->init;
}

Result<TaskService::Empty> TaskService::Pause(const taskpb::PauseRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> init, RunningInit(req.id(), "pause"));
    if (init->paused) {
      return Error(Code::kFailedPrecondition, "container " + req.id() + " is already paused");
    }
  }
  COCOON_RETURN_IF_ERROR(backend_->Pause(req.id()));
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> init, RunningInit(req.id(), "pause"));
  init->paused = true;
  eventspb::TaskPaused ev;
  ev.set_container_id(req.id());
  events_->Publish("/tasks/paused", ev);
  return Empty();
}

Result<TaskService::Empty> TaskService::Resume(const taskpb::ResumeRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> init, RunningInit(req.id(), "resume"));
    if (!init->paused) {
      return Error(Code::kFailedPrecondition, "container " + req.id() + " is not paused");
    }
  }
  COCOON_RETURN_IF_ERROR(backend_->Resume(req.id()));
  std::lock_guard<std::mutex> lock(mu_);
  auto init = RunningInit(req.id(), "resume");
  if (init.ok()) (*init)->paused = false;
  eventspb::TaskResumed ev;
  ev.set_container_id(req.id());
  events_->Publish("/tasks/resumed", ev);
  return Empty();
}

Result<TaskService::Empty> TaskService::Update(const taskpb::UpdateTaskRequest& req) {
  if (req.resources().value().empty()) {
    return Error(Code::kInvalidArgument, "Update: no resources given");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    Phase phase = c->init->phase;
    if (phase != Phase::kCreated && phase != Phase::kRunning) {
      return Error(Code::kFailedPrecondition,
                   "cannot update container " + req.id() + ": it is not created or running");
    }
  }
  // containerd encodes LinuxResources (a Go struct, not a protobuf) as JSON in the Any.
  COCOON_RETURN_IF_ERROR(backend_->Update(req.id(), req.resources().value()));
  return Empty();
}

Result<taskpb::StatsResponse> TaskService::Stats(const taskpb::StatsRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Find(req.id()));
    if (c->init->phase == Phase::kCreating || c->init->phase == Phase::kStopped) {
      // containerd skips NOT_FOUND silently on its metrics scrapes (contract 5.2).
      return Error(Code::kNotFound, "container " + req.id() + " has no running process");
    }
  }
  COCOON_ASSIGN_OR_RETURN(cgroupspb::Metrics metrics, backend_->Stats(req.id()));
  taskpb::StatsResponse resp;
  resp.mutable_stats()->set_type_url(kMetricsTypeUrl);
  resp.mutable_stats()->set_value(metrics.SerializeAsString());
  return resp;
}

void TaskService::ReportOom(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (containers_.count(id) == 0) return;
  eventspb::TaskOOM ev;
  ev.set_container_id(id);
  events_->Publish("/tasks/oom", ev);
}

Result<taskpb::ConnectResponse> TaskService::Connect(const taskpb::ConnectRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  taskpb::ConnectResponse resp;
  resp.set_shim_pid(static_cast<uint32_t>(::getpid()));
  auto it = containers_.find(req.id());
  resp.set_task_pid(it == containers_.end() ? 0 : it->second->init->pid);
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
  COCOON_TASK_METHOD(Exec, taskpb::ExecProcessRequest, Empty);
  COCOON_TASK_METHOD(Pids, taskpb::PidsRequest, taskpb::PidsResponse);
  COCOON_TASK_METHOD(CloseIO, taskpb::CloseIORequest, Empty);
  COCOON_TASK_METHOD(ResizePty, taskpb::ResizePtyRequest, Empty);
  COCOON_TASK_METHOD(Pause, taskpb::PauseRequest, Empty);
  COCOON_TASK_METHOD(Resume, taskpb::ResumeRequest, Empty);
  COCOON_TASK_METHOD(Update, taskpb::UpdateTaskRequest, Empty);
  COCOON_TASK_METHOD(Stats, taskpb::StatsRequest, taskpb::StatsResponse);
  COCOON_TASK_METHOD(Connect, taskpb::ConnectRequest, taskpb::ConnectResponse);
  COCOON_TASK_METHOD(Shutdown, taskpb::ShutdownRequest, Empty);
#undef COCOON_TASK_METHOD
  server->RegisterRaw(kTaskService, "Checkpoint",
                      [](const CallContext&, const std::string&) -> Result<std::string> {
                        return Error(Code::kUnimplemented,
                                     "cocoon: Checkpoint is not implemented: a VM sandbox cannot "
                                     "be checkpointed yet");
                      });
}

}  // namespace cocoon::shim
