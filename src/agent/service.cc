#include "agent/service.h"

#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/guest_info.h"
#include "common/ids.h"
#include "common/io.h"
#include "common/log.h"
#include "common/process.h"

namespace cocoon::agent {

namespace {

using Clock = std::chrono::steady_clock;

// The stdio of a process being launched: the child's ends (closed once the runtime has handed
// them to the process) and the agent's ends.
struct StdioPlan {
  LaunchStdio child;
  UniqueFd child_stdin, child_stdout, child_stderr;
  ProcessIo ours;
};

Result<StdioPlan> PlanStdio(bool terminal, bool want_stdin) {
  StdioPlan plan;
  plan.child.terminal = terminal;
  plan.ours.terminal = terminal;
  if (terminal) {
    // The pty master arrives from the runtime; stdin, when requested, is written to it.
    plan.ours.terminal_stdin = want_stdin;
    return plan;
  }
  if (want_stdin) {
    COCOON_RETURN_IF_ERROR(MakePipe(&plan.child_stdin, &plan.ours.stdin_write));
    plan.child.stdin_fd = plan.child_stdin.get();
  }
  COCOON_RETURN_IF_ERROR(MakePipe(&plan.ours.stdout_read, &plan.child_stdout));
  COCOON_RETURN_IF_ERROR(MakePipe(&plan.ours.stderr_read, &plan.child_stderr));
  plan.child.stdout_fd = plan.child_stdout.get();
  plan.child.stderr_fd = plan.child_stderr.get();
  return plan;
}

Result<nlohmann::json> ParseObject(const std::string& text, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error(Code::kInvalidArgument, what + " is not valid JSON");
  if (!doc.is_object()) return Error(Code::kInvalidArgument, what + " is not a JSON object");
  return doc;
}

// Checks the parts of an OCI process object the agent itself relies on; returns `terminal`.
Result<bool> CheckProcess(const nlohmann::json& process, const std::string& what) {
  if (!process.is_object()) return Error(Code::kInvalidArgument, what + " is not an object");
  auto args = process.find("args");
  if (args == process.end() || !args->is_array() || args->empty()) {
    return Error(Code::kInvalidArgument, what + ".args must be a non-empty array");
  }
  for (const auto& a : *args) {
    if (!a.is_string()) return Error(Code::kInvalidArgument, what + ".args must hold strings");
  }
  auto terminal = process.find("terminal");
  if (terminal == process.end()) return false;
  if (!terminal->is_boolean()) {
    return Error(Code::kInvalidArgument, what + ".terminal must be a boolean");
  }
  return terminal->get<bool>();
}

Result<bool> CheckSpec(const nlohmann::json& spec) {
  auto root = spec.find("root");
  if (root == spec.end() || !root->is_object() || !root->contains("path") ||
      !(*root)["path"].is_string()) {
    return Error(Code::kInvalidArgument, "spec_json: root.path is missing");
  }
  std::string root_path = (*root)["path"].get<std::string>();
  if (root_path.empty() || root_path[0] != '/') {
    return Error(Code::kInvalidArgument,
                 "spec_json: root.path '" + root_path + "' must be an absolute guest path");
  }
  auto process = spec.find("process");
  if (process == spec.end()) {
    return Error(Code::kInvalidArgument, "spec_json: process is missing");
  }
  return CheckProcess(*process, "spec_json: process");
}

// Points the container's cgroup at `path`, whatever the host asked: the agent reads the
// container's figures from there (Stats, ListProcesses, OOM events).
Status SetCgroupsPath(nlohmann::json* spec, const std::string& path) {
  auto section = spec->find("linux");
  if (section == spec->end()) {
    (*spec)["linux"] = nlohmann::json::object();
  } else if (!section->is_object()) {
    return Error(Code::kInvalidArgument, "spec_json: linux is not an object");
  }
  (*spec)["linux"]["cgroupsPath"] = path;
  return OkStatus();
}

Deadline EarlierOf(Deadline a, Deadline b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

Error NoContainer(const std::string& id) {
  return Error(Code::kNotFound, "container " + id + " not found");
}

}  // namespace

AgentService::AgentService(AgentOptions options, ContainerRuntime* runtime, Reaper* reaper)
    : options_(std::move(options)), runtime_(runtime), reaper_(reaper) {
  oom_started_ = oom_.Start();
  if (!oom_started_.ok()) {
    Log().Warn("no out-of-memory events: {}", oom_started_.error().message());
  }
}

AgentService::~AgentService() {
  oom_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : containers_) Forget(c.get());
}

Result<v1::HandshakeResponse> AgentService::Handshake(const v1::HandshakeRequest& req) {
  if (req.protocol_major() != kProtocolMajor) {
    return Error(Code::kFailedPrecondition,
                 "protocol " + std::to_string(req.protocol_major()) + "." +
                     std::to_string(req.protocol_minor()) + " is not supported: the agent speaks " +
                     std::to_string(kProtocolMajor) + "." + std::to_string(kProtocolMinor));
  }
  Log().Info("handshake host_version={} protocol={}.{}", req.host_version(), req.protocol_major(),
             req.protocol_minor());
  v1::HandshakeResponse resp;
  resp.set_protocol_major(kProtocolMajor);
  resp.set_protocol_minor(kProtocolMinor);
  resp.set_agent_version(options_.agent_version);
  for (const char* cap : {"tty", "exec", "signal", "resize", "guest-details", "stdin",
                          "read-timeout", "stat-process", "output-complete", "remove-process",
                          "pause", "update", "stats", "events", "ps", "network"}) {
    resp.add_capabilities(cap);
  }
  std::lock_guard<std::mutex> lock(mu_);
  resp.set_uptime_at_ready_s(ready_uptime_);
  return resp;
}

Result<std::shared_ptr<Process>> AgentService::Adopt(const std::string& container_id,
                                                     const std::string& exec_id, Launched launched,
                                                     ProcessIo io) {
  io.pty_master = std::move(launched.pty_master);
  auto process = std::make_shared<Process>(container_id, exec_id, launched.pid, options_.limits);
  Status attached = process->AttachIo(std::move(io));
  std::weak_ptr<Process> weak = process;
  // Watch even when attaching failed: the exit must be consumed either way.
  reaper_->Watch(launched.pid, [weak](const ExitRecord& record) {
    if (auto p = weak.lock()) p->OnExit(record);
  });
  if (!attached.ok()) {
    ::kill(launched.pid, SIGKILL);
    return attached.error();
  }
  return process;
}

Result<v1::CreateContainerResponse> AgentService::CreateContainer(
    const v1::CreateContainerRequest& req) {
  const std::string& id = req.container_id();
  COCOON_RETURN_IF_ERROR(ValidateId(id));
  COCOON_ASSIGN_OR_RETURN(nlohmann::json spec, ParseObject(req.spec_json(), "spec_json"));
  COCOON_ASSIGN_OR_RETURN(bool terminal, CheckSpec(spec));
  COCOON_RETURN_IF_ERROR(SetCgroupsPath(&spec, options_.cgroup_parent + "/" + id));
  std::string bundle = options_.bundle_root + "/" + id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (containers_.count(id)) {
      return Error(Code::kAlreadyExists, "container " + id + " already exists");
    }
    auto c = std::make_unique<Container>();
    c->id = id;
    c->bundle_dir = bundle;
    c->state = Container::State::kCreating;
    containers_[id] = std::move(c);
  }
  Logger log = Log().With("container", id);
  auto fail = [&](const Error& error) -> Error {
    log.Error("create failed: {}", error.message());
    (void)RemoveTree(bundle);
    std::lock_guard<std::mutex> lock(mu_);
    containers_.erase(id);
    return error;
  };
  // A leftover directory from an earlier container of the same id must not leak into this one.
  if (Status st = RemoveTree(bundle); !st.ok()) return fail(st.error());
  if (Status st = MakeDirs(bundle, 0700); !st.ok()) return fail(st.error());
  if (Status st = WriteFileAtomic(bundle + "/config.json", spec.dump(), 0600); !st.ok()) {
    return fail(st.error());
  }
  Result<StdioPlan> plan = PlanStdio(terminal, req.stdin());
  if (!plan.ok()) return fail(plan.error());
  Result<Launched> launched = runtime_->Create(id, bundle, plan->child);
  plan->child_stdin.reset();
  plan->child_stdout.reset();
  plan->child_stderr.reset();
  if (!launched.ok()) return fail(launched.error());
  pid_t pid = launched->pid;
  Result<std::shared_ptr<Process>> process =
      Adopt(id, "", std::move(*launched), std::move(plan->ours));
  if (!process.ok()) {
    (void)runtime_->Delete(id);
    return fail(process.error());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Container* c = containers_[id].get();
    c->init = std::move(*process);
    c->state = Container::State::kCreated;
  }
  if (Status st = oom_.Watch(id, CgroupDir(id)); !st.ok()) {
    log.Warn("no out-of-memory events for this container: {}", st.error().message());
  }
  log.Info("container created pid={} terminal={}", pid, terminal);
  v1::CreateContainerResponse resp;
  resp.set_pid(static_cast<uint32_t>(pid));
  return resp;
}

Result<v1::Empty> AgentService::StartContainer(const v1::StartContainerRequest& req) {
  const std::string& id = req.container_id();
  std::shared_ptr<Process> init;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    Container* c = it->second.get();
    if (c->state != Container::State::kCreated) {
      return Error(Code::kFailedPrecondition, "container " + id + " is not in the created state");
    }
    if (c->init->exited()) {
      return Error(Code::kFailedPrecondition, "container " + id + " init process has exited");
    }
    c->state = Container::State::kStarting;
    init = c->init;
  }
  Status started = runtime_->Start(id);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = containers_.find(id);
  if (it != containers_.end() && it->second->state == Container::State::kStarting) {
    it->second->state = started.ok() ? Container::State::kStarted : Container::State::kCreated;
  }
  if (!started.ok()) return started.error();
  Log().With("container", id).Info("container started");
  return v1::Empty();
}

Result<v1::ExecProcessResponse> AgentService::ExecProcess(const v1::ExecProcessRequest& req) {
  const std::string& id = req.container_id();
  const std::string& exec_id = req.exec_id();
  if (exec_id.empty()) return Error(Code::kInvalidArgument, "exec_id is empty");
  COCOON_RETURN_IF_ERROR(ValidateId(exec_id));
  COCOON_ASSIGN_OR_RETURN(nlohmann::json process, ParseObject(req.process_json(), "process_json"));
  COCOON_ASSIGN_OR_RETURN(bool terminal, CheckProcess(process, "process_json"));
  std::string work_dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    Container* c = it->second.get();
    if (c->state != Container::State::kStarted || c->init->exited()) {
      return Error(Code::kFailedPrecondition, "container " + id + " is not running");
    }
    if (c->paused) {
      // The new process would join the frozen cgroup and the runtime would wait for it forever.
      return Error(Code::kFailedPrecondition, "container " + id + " is paused");
    }
    if (c->execs.count(exec_id)) {
      return Error(Code::kAlreadyExists, "exec " + exec_id + " already exists in " + id);
    }
    c->execs[exec_id] = nullptr;  // reserved while the runtime runs
    work_dir = c->bundle_dir + "/exec-" + exec_id;
  }
  Logger log = Log().With("container", id).With("exec", exec_id);
  auto fail = [&](const Error& error) -> Error {
    log.Error("exec failed: {}", error.message());
    (void)RemoveTree(work_dir);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it != containers_.end()) it->second->execs.erase(exec_id);
    return error;
  };
  if (Status st = MakeDirs(work_dir, 0700); !st.ok()) return fail(st.error());
  std::string process_path = work_dir + "/process.json";
  if (Status st = WriteFileAtomic(process_path, req.process_json(), 0600); !st.ok()) {
    return fail(st.error());
  }
  Result<StdioPlan> plan = PlanStdio(terminal, req.stdin());
  if (!plan.ok()) return fail(plan.error());
  Result<Launched> launched = runtime_->Exec(id, process_path, work_dir, plan->child);
  plan->child_stdin.reset();
  plan->child_stdout.reset();
  plan->child_stderr.reset();
  (void)RemoveTree(work_dir);  // the runtime has read the process file
  if (!launched.ok()) return fail(launched.error());
  pid_t pid = launched->pid;
  Result<std::shared_ptr<Process>> adopted =
      Adopt(id, exec_id, std::move(*launched), std::move(plan->ours));
  if (!adopted.ok()) return fail(adopted.error());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      // Removed while the exec ran.
      // Limitation: crun delete may have run before the exec joined the container, so the new
      // process is SIGKILLed here rather than relying on the container's teardown.
      ::kill((*adopted)->pid(), SIGKILL);
      (*adopted)->Destroy();
      return NoContainer(id);
    }
    it->second->execs[exec_id] = std::move(*adopted);
  }
  log.Info("exec started pid={} terminal={}", pid, terminal);
  v1::ExecProcessResponse resp;
  resp.set_pid(static_cast<uint32_t>(pid));
  return resp;
}

Result<std::shared_ptr<Process>> AgentService::FindProcess(const v1::ProcessRef& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = containers_.find(ref.container_id());
  if (it == containers_.end() || it->second->state == Container::State::kRemoving ||
      !it->second->init) {
    return NoContainer(ref.container_id());
  }
  const Container& c = *it->second;
  if (ref.exec_id().empty()) return c.init;
  auto e = c.execs.find(ref.exec_id());
  if (e == c.execs.end() || !e->second) {
    return Error(Code::kNotFound,
                 "exec " + ref.exec_id() + " not found in container " + ref.container_id());
  }
  return e->second;
}

Result<v1::Empty> AgentService::SignalProcess(const v1::SignalProcessRequest& req) {
  if (req.signal() == 0 || req.signal() >= static_cast<uint32_t>(NSIG)) {
    return Error(Code::kInvalidArgument,
                 "signal " + std::to_string(req.signal()) + " is out of range");
  }
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req.process()));
  int sig = static_cast<int>(req.signal());
  if (req.all()) {
    COCOON_RETURN_IF_ERROR(runtime_->KillAll(req.process().container_id(), sig));
  } else {
    COCOON_RETURN_IF_ERROR(process->Signal(sig));
  }
  return v1::Empty();
}

Result<v1::WaitProcessResponse> AgentService::WaitProcess(const v1::ProcessRef& req,
                                                          Deadline deadline) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req));
  COCOON_ASSIGN_OR_RETURN(ProcessExit exit, process->Wait(deadline));
  // Queued before the exit is reported, so a host that fetches events after the exit sees it.
  if (req.exec_id().empty()) oom_.Check(req.container_id());
  v1::WaitProcessResponse resp;
  resp.set_exit_code(exit.exit_code);
  resp.set_exited_at_unix_nano(exit.exited_at_unix_nano);
  resp.set_output_complete(exit.output_complete);
  return resp;
}

Result<v1::ReadStreamResponse> AgentService::ReadStream(const v1::ReadStreamRequest& req,
                                                        Deadline deadline,
                                                        Process::StreamId stream) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req.process()));
  uint32_t max = req.max_bytes() == 0 ? kMaxReadBytes : std::min(req.max_bytes(), kMaxReadBytes);
  if (req.timeout_ms() > 0) {
    deadline = EarlierOf(deadline, Clock::now() + std::chrono::milliseconds(req.timeout_ms()));
  }
  StreamBuffer::Chunk chunk = process->Read(stream, max, deadline);
  v1::ReadStreamResponse resp;
  resp.set_data(std::move(chunk.data));
  resp.set_eof(chunk.eof);
  return resp;
}

Result<v1::ReadStreamResponse> AgentService::ReadStdout(const v1::ReadStreamRequest& req,
                                                        Deadline deadline) {
  return ReadStream(req, deadline, Process::StreamId::kStdout);
}

Result<v1::ReadStreamResponse> AgentService::ReadStderr(const v1::ReadStreamRequest& req,
                                                        Deadline deadline) {
  return ReadStream(req, deadline, Process::StreamId::kStderr);
}

Result<v1::WriteStdinResponse> AgentService::WriteStdin(const v1::WriteStdinRequest& req) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req.process()));
  COCOON_ASSIGN_OR_RETURN(size_t written, process->WriteStdin(req.data()));
  v1::WriteStdinResponse resp;
  resp.set_written(static_cast<uint32_t>(written));
  return resp;
}

Result<v1::Empty> AgentService::CloseStdin(const v1::ProcessRef& req) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req));
  COCOON_RETURN_IF_ERROR(process->CloseStdin());
  return v1::Empty();
}

Result<v1::Empty> AgentService::ResizeTty(const v1::ResizeTtyRequest& req) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req.process()));
  COCOON_RETURN_IF_ERROR(process->ResizeTty(req.rows(), req.cols()));
  return v1::Empty();
}

Result<v1::StatProcessResponse> AgentService::StatProcess(const v1::ProcessRef& req) {
  COCOON_ASSIGN_OR_RETURN(std::shared_ptr<Process> process, FindProcess(req));
  v1::StatProcessResponse resp;
  resp.set_pid(static_cast<uint32_t>(process->pid()));
  resp.set_terminal(process->terminal());
  if (std::optional<ExitRecord> exit = process->exit_record()) {
    resp.set_state(v1::PROCESS_STATE_EXITED);
    resp.set_exit_code(ExitCodeFromWaitStatus(exit->wait_status));
    resp.set_exited_at_unix_nano(exit->exited_at_unix_nano);
    return resp;
  }
  bool created = false;
  if (req.exec_id().empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(req.container_id());
    created = it != containers_.end() && (it->second->state == Container::State::kCreated ||
                                          it->second->state == Container::State::kStarting);
  }
  resp.set_state(created ? v1::PROCESS_STATE_CREATED : v1::PROCESS_STATE_RUNNING);
  return resp;
}

void AgentService::Forget(Container* c) {
  std::vector<std::shared_ptr<Process>> all;
  if (c->init) all.push_back(c->init);
  for (auto& [eid, p] : c->execs) {
    if (p) all.push_back(p);
  }
  for (auto& p : all) {
    if (!p->exited()) reaper_->Unwatch(p->pid());
    p->Destroy();
  }
}

Result<v1::Empty> AgentService::RemoveContainer(const v1::RemoveContainerRequest& req) {
  const std::string& id = req.container_id();
  Container* c = nullptr;  // stays valid: only this call, now exclusive, erases it
  Container::State previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    if (it->second->state == Container::State::kCreating ||
        it->second->state == Container::State::kStarting) {
      return Error(Code::kFailedPrecondition, "container " + id + " is being created or started");
    }
    c = it->second.get();
    previous = c->state;
    c->state = Container::State::kRemoving;
  }
  Logger log = Log().With("container", id);
  Status deleted = runtime_->Delete(id);
  if (!deleted.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    c->state = previous;
    log.Error("remove failed: {}", deleted.error().message());
    return deleted.error();
  }
  // The runtime killed what was left; give the exits a moment to arrive so blocked WaitProcess
  // calls answer with the real status.
  auto until = Clock::now() + options_.remove_wait;
  std::vector<std::shared_ptr<Process>> all{c->init};
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [eid, p] : c->execs) {
      if (p) all.push_back(p);
    }
  }
  for (auto& p : all) {
    while (!p->exited() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::unique_ptr<Container> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    owned = std::move(it->second);
    containers_.erase(it);
  }
  oom_.Unwatch(id);
  Forget(owned.get());
  if (Status st = RemoveTree(owned->bundle_dir); !st.ok()) {
    log.Warn("bundle not removed: {}", st.error().message());
  }
  log.Info("container removed");
  return v1::Empty();
}

Result<v1::GuestDetailsResponse> AgentService::GuestDetails(const v1::GuestDetailsRequest&) {
  v1::GuestDetailsResponse resp;
  KernelInfo kernel = ReadKernelInfo();
  resp.set_kernel_release(kernel.release);
  resp.set_kernel_version(kernel.version);
  resp.set_machine(kernel.machine);
  resp.set_cpus(OnlineCpus());
  if (Result<std::string> meminfo = ReadFile(options_.meminfo_path, 1 << 20); meminfo.ok()) {
    if (Result<uint64_t> total = ParseMemTotal(*meminfo); total.ok()) {
      resp.set_memory_total_bytes(*total);
    }
  }
  resp.set_agent_version(options_.agent_version);
  std::string version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (runtime_version_) version = *runtime_version_;
  }
  if (version.empty()) {
    version = runtime_->Version();  // runs crun: not under the lock
    std::lock_guard<std::mutex> lock(mu_);
    runtime_version_ = version;
  }
  resp.set_crun_version(version);
  std::lock_guard<std::mutex> lock(mu_);
  resp.set_uptime_at_ready_s(ready_uptime_);
  return resp;
}

Result<v1::Empty> AgentService::Shutdown(const v1::ShutdownRequest&) {
  Log().Info("shutdown requested");
  if (options_.on_shutdown) {
    // The reply must leave before the power goes: act from another thread after a short delay.
    std::thread([fn = options_.on_shutdown, delay = options_.shutdown_delay] {
      std::this_thread::sleep_for(delay);
      fn();
    }).detach();
  }
  return v1::Empty();
}

void AgentService::InterruptPendingReads() {
  oom_.Interrupt();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : containers_) {
    if (c->init) c->init->InterruptReads();
    for (auto& [eid, p] : c->execs) {
      if (p) p->InterruptReads();
    }
  }
}

void AgentService::SetReadyUptime(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_uptime_ = seconds;
}

std::vector<std::string> AgentService::ContainerIds() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, c] : containers_) ids.push_back(id);
  return ids;
}

}  // namespace cocoon::agent
