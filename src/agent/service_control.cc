// The protocol 1.1 calls of AgentService that control and observe a whole container through its
// cgroup: pause/resume, resource updates, statistics, process lists, OOM events; and the removal
// of a finished exec.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/service.h"
#include "common/io.h"
#include "common/log.h"

namespace cocoon::agent {

namespace {

using Clock = std::chrono::steady_clock;

// The reply to a GetEvents call must leave before the caller's deadline, or the events it holds
// are lost with it.
constexpr std::chrono::milliseconds kReplyMargin{200};

Error NoContainer(const std::string& id) {
  return Error(Code::kNotFound, "container " + id + " not found");
}

// The parts of an OCI "linux.resources" object whose shape is certain; crun checks the rest.
Status CheckResources(const nlohmann::json& resources) {
  for (const char* key : {"memory", "cpu", "pids", "blockIO", "unified", "network", "rdma"}) {
    auto it = resources.find(key);
    if (it != resources.end() && !it->is_object() && !it->is_null()) {
      return Error(Code::kInvalidArgument,
                   std::string("resources_json: ") + key + " must be an object");
    }
  }
  for (const char* key : {"devices", "hugepageLimits"}) {
    auto it = resources.find(key);
    if (it != resources.end() && !it->is_array() && !it->is_null()) {
      return Error(Code::kInvalidArgument,
                   std::string("resources_json: ") + key + " must be an array");
    }
  }
  return OkStatus();
}

}  // namespace

std::string AgentService::CgroupDir(const std::string& id) const {
  return options_.cgroup_root + options_.cgroup_parent + "/" + id;
}

Result<std::string> AgentService::ExistingCgroupDir(const std::string& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    if (it->second->state == Container::State::kCreating) {
      return Error(Code::kFailedPrecondition,
                   "container " + id + " is being created and has no cgroup yet");
    }
  }
  std::string dir = CgroupDir(id);
  if (!PathExists(dir)) {
    return Error(Code::kFailedPrecondition,
                 "container " + id + " has no cgroup at " + dir + " (the runtime did not make it)");
  }
  return dir;
}

Result<v1::Empty> AgentService::SetPaused(const std::string& id, bool pause) {
  const char* verb = pause ? "pause" : "resume";
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    Container* c = it->second.get();
    if (c->state != Container::State::kStarted) {
      return Error(Code::kFailedPrecondition,
                   std::string("cannot ") + verb + " container " + id + ": it is not started");
    }
    if (c->init->exited()) {
      return Error(Code::kFailedPrecondition,
                   std::string("cannot ") + verb + " container " + id + ": it has exited");
    }
    if (pause) {
      for (const auto& [exec_id, p] : c->execs) {
        // The runtime's exec would wait for its frozen process (and the Exec call with it).
        if (!p) {
          return Error(Code::kFailedPrecondition,
                       "cannot pause container " + id + ": exec " + exec_id + " is starting");
        }
      }
    }
    if (c->paused == pause) {
      return Error(Code::kFailedPrecondition,
                   "container " + id + (pause ? " is already paused" : " is not paused"));
    }
    // Set before the runtime runs, so a concurrent second call is refused rather than racing.
    c->paused = pause;
  }
  Status done = pause ? runtime_->Pause(id) : runtime_->Resume(id);
  if (!done.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it != containers_.end()) it->second->paused = !pause;
    Log().With("container", id).Error("{} failed: {}", verb, done.error().message());
    return done.error();
  }
  Log().With("container", id).Info("container {}d", verb);
  return v1::Empty();
}

Result<v1::Empty> AgentService::PauseContainer(const v1::ContainerRef& req) {
  return SetPaused(req.container_id(), true);
}

Result<v1::Empty> AgentService::ResumeContainer(const v1::ContainerRef& req) {
  return SetPaused(req.container_id(), false);
}

Result<v1::Empty> AgentService::UpdateContainer(const v1::UpdateContainerRequest& req) {
  const std::string& id = req.container_id();
  nlohmann::json resources =
      nlohmann::json::parse(req.resources_json(), nullptr, /*allow_exceptions=*/false);
  if (resources.is_discarded()) {
    return Error(Code::kInvalidArgument, "resources_json is not valid JSON");
  }
  if (!resources.is_object()) {
    return Error(Code::kInvalidArgument, "resources_json is not a JSON object");
  }
  COCOON_RETURN_IF_ERROR(CheckResources(resources));
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    Container* c = it->second.get();
    if (c->state != Container::State::kCreated && c->state != Container::State::kStarted) {
      return Error(Code::kFailedPrecondition, "container " + id + " is being created or started");
    }
    if (c->init->exited()) {
      return Error(Code::kFailedPrecondition, "cannot update container " + id + ": it has exited");
    }
    // One file per call: concurrent updates must not read each other's half-written file.
    path = c->bundle_dir + "/resources-" + std::to_string(++update_seq_) + ".json";
  }
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(path, resources.dump(), 0600));
  Status updated = runtime_->Update(id, path);
  ::unlink(path.c_str());
  Logger log = Log().With("container", id);
  if (!updated.ok()) {
    log.Error("update failed: {}", updated.error().message());
    return updated.error();
  }
  log.Info("resources updated: {}", req.resources_json().substr(0, 256));
  return v1::Empty();
}

Result<cgv2::Metrics> AgentService::StatsContainer(const v1::ContainerRef& req) {
  COCOON_ASSIGN_OR_RETURN(std::string dir, ExistingCgroupDir(req.container_id()));
  MemoryTotals totals;
  if (Result<std::string> meminfo = ReadFile(options_.meminfo_path, 1 << 20); meminfo.ok()) {
    totals.memory = MeminfoBytes(*meminfo, "MemTotal");
    totals.swap = MeminfoBytes(*meminfo, "SwapTotal");
  }
  Result<cgv2::Metrics> metrics = ReadCgroupMetrics(dir, totals);
  if (!metrics.ok()) return metrics.error().Wrap("stats of container " + req.container_id());
  return metrics;
}

Result<v1::ListProcessesResponse> AgentService::ListProcesses(const v1::ContainerRef& req) {
  COCOON_ASSIGN_OR_RETURN(std::string dir, ExistingCgroupDir(req.container_id()));
  Result<std::vector<uint32_t>> pids = ListCgroupPids(dir);
  if (!pids.ok()) return pids.error().Wrap("processes of container " + req.container_id());
  v1::ListProcessesResponse resp;
  for (uint32_t pid : *pids) resp.add_pids(pid);
  return resp;
}

Result<v1::GetEventsResponse> AgentService::GetEvents(const v1::GetEventsRequest& req,
                                                      Deadline deadline) {
  if (!oom_started_.ok()) {
    return Error(Code::kUnavailable,
                 "guest events are unavailable: " + oom_started_.error().message());
  }
  std::chrono::milliseconds wait = options_.max_events_wait;
  if (req.timeout_ms() != 0) {
    wait = std::min(wait, std::chrono::milliseconds(req.timeout_ms()));
  }
  Clock::time_point until = Clock::now() + wait;
  if (deadline && *deadline - kReplyMargin < until) until = *deadline - kReplyMargin;
  v1::GetEventsResponse resp;
  for (v1::GuestEvent& e : oom_.Take(until)) *resp.add_events() = std::move(e);
  return resp;
}

Result<v1::Empty> AgentService::RemoveProcess(const v1::ProcessRef& req) {
  const std::string& id = req.container_id();
  const std::string& exec_id = req.exec_id();
  if (exec_id.empty()) {
    return Error(Code::kInvalidArgument,
                 "exec_id is empty: a container's init process goes with RemoveContainer");
  }
  std::shared_ptr<Process> process;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state == Container::State::kRemoving) {
      return NoContainer(id);
    }
    auto& execs = it->second->execs;
    auto e = execs.find(exec_id);
    if (e == execs.end()) {
      return Error(Code::kNotFound, "exec " + exec_id + " not found in container " + id);
    }
    if (!e->second) {
      return Error(Code::kFailedPrecondition,
                   "exec " + exec_id + " in container " + id + " is still starting");
    }
    if (!e->second->exited()) {
      return Error(Code::kFailedPrecondition,
                   "exec " + exec_id + " in container " + id + " is still running");
    }
    process = std::move(e->second);
    execs.erase(e);
  }
  // Outside the lock: Destroy joins the output pumps.
  process->Destroy();
  Log().With("container", id).With("exec", exec_id).Info("exec removed");
  return v1::Empty();
}

}  // namespace cocoon::agent
