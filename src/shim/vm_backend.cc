#include "shim/vm_backend.h"

#include <signal.h>

#include "common/ids.h"
#include "common/log.h"
#include "oci/spec.h"
#include "shim/socket.h"

namespace cocoon::shim {
namespace {

// How long the agent holds one GetEvents call open; a closed connection ends it at once.
constexpr auto kEventPoll = std::chrono::seconds(5);
// The agent drains output before it reports an exit, so this is quick; the bound covers a
// daemonized grandchild keeping a pipe open (its output is then cut at Delete).
constexpr auto kOutputDrain = std::chrono::seconds(2);

}  // namespace

void VmBackend::Io::Stop() {
  if (relay) relay->Stop();
  relay.reset();
  fifos.Close();  // the client sees end-of-output only once our write ends are closed
}

Result<std::shared_ptr<VmBackend::Entry>> VmBackend::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return Error(Code::kNotFound, "container " + id + " not found");
  return it->second;
}

void VmBackend::Boot(const std::shared_ptr<Pod>& pod, const oci::VmResources& resources,
                     const sandbox::NetworkRequest& network) {
  // The pod outlives this thread: StopPod joins it.
  pod->owner = std::thread(
      [this, p = pod.get(), resources, network, released = pod->release.get_future()]() mutable {
        auto sb = sandbox::Sandbox::Create(config_, p->key, resources, network);
        if (sb.ok()) p->sandbox = std::move(*sb);
        p->boot_result.set_value(sb.ok() ? OkStatus() : Status(sb.error()));
        released.wait();
      });
}

Result<std::shared_ptr<VmBackend::Pod>> VmBackend::JoinPod(const std::string& key,
                                                           const std::string& id,
                                                           const oci::VmResources& resources,
                                                           const sandbox::NetworkRequest& network) {
  std::shared_ptr<Pod> pod;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Pod>& slot = pods_[key];
    if (!slot) {
      slot = std::make_shared<Pod>();
      slot->key = key;
      first = true;
    }
    pod = slot;
    pod->members.insert(id);
  }
  // Limitation: the VM is sized, and its network namespace chosen, by the group's first container
  // (the pod sandbox in CRI); the limits of later ones apply inside the guest only (as cgroup
  // limits), and their network namespace is taken to be the sandbox's, as CRI makes it.
  if (first) Boot(pod, resources, network);
  Status booted = pod->booted.get();
  if (!booted.ok()) {
    LeavePod(pod, id);
    return booted.error();
  }
  if (first) {
    Log().With("sandbox", key).Info("vm started pid={}", pod->sandbox->vm_pid());
    pod->events = std::thread([this, p = pod.get()] { PollEvents(p); });
  }
  return pod;
}

void VmBackend::LeavePod(const std::shared_ptr<Pod>& pod, const std::string& id) {
  bool last = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pod->members.erase(id);
    if (pod->members.empty()) {
      last = true;
      auto it = pods_.find(pod->key);
      if (it != pods_.end() && it->second == pod) pods_.erase(it);
    }
  }
  if (last) StopPod(pod.get());
}

void VmBackend::StopPod(Pod* pod) {
  std::call_once(pod->stop_once, [pod] {
    pod->stopping = true;
    // Stopping the VM closes the agent connection first, which ends calls still pending.
    if (pod->sandbox) pod->sandbox->Destroy();
    if (pod->events.joinable()) pod->events.join();
    if (pod->owner.joinable()) {
      pod->release.set_value();
      pod->owner.join();
    }
  });
}

void VmBackend::PollEvents(Pod* pod) {
  Logger log = Log().With("sandbox", pod->key);
  while (!pod->stopping) {
    auto events = pod->sandbox->agent().GetEvents(kEventPoll);
    if (!events.ok()) {
      if (pod->stopping) return;
      if (events.error().code() == Code::kUnimplemented) {
        log.Warn("the guest agent reports no events (an older agent): no OOM events");
        return;
      }
      log.Debug("guest events: {}", events.error().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    Dispatch(pod, *events);
  }
}

void VmBackend::Dispatch(Pod* pod, const std::vector<sandbox::agentpb::GuestEvent>& events) {
  for (const auto& ev : events) {
    if (ev.kind() != sandbox::agentpb::GuestEvent::KIND_OOM) continue;
    Log()
        .With("sandbox", pod->key)
        .With("container", ev.container_id())
        .Warn("out of memory: a process was killed");
    if (on_oom_) on_oom_(ev.container_id());
  }
}

Status VmBackend::OpenIo(Entry* e, Io* io, const std::string& id, const std::string& exec_id,
                         const std::string& in, const std::string& out, const std::string& err) {
  COCOON_ASSIGN_OR_RETURN(io->fifos, OpenFifos(in, out, err));
  io->relay = std::make_unique<sandbox::StdioRelay>(&Agent(*e), id, exec_id);
  return io->relay->Start(io->fifos.in_fd(), io->fifos.out_fd(), io->fifos.err_fd());
}

Result<uint32_t> VmBackend::Create(const taskpb::CreateTaskRequest& req) {
  COCOON_RETURN_IF_ERROR(ValidateId(req.id()));
  auto e = std::make_shared<Entry>();
  std::vector<mountpb::Mount> mounts(req.rootfs().begin(), req.rootfs().end());
  COCOON_ASSIGN_OR_RETURN(e->rootfs, RootfsMounts::Mount(mounts, req.bundle() + "/rootfs"));
  auto fail = [&](const Error& err) -> Error {
    Teardown(req.id(), e.get());
    return err;
  };
  auto bundle = oci::LoadBundle(req.bundle());
  if (!bundle.ok()) return fail(bundle.error());
  std::string key = GroupKey(bundle->spec, req.id());
  if (Status valid = ValidateId(key); !valid.ok()) {
    return fail(valid.error().Wrap("group of container " + req.id()));
  }
  oci::VmResources resources =
      oci::ResourcesFromSpec(bundle->spec, {config_.default_vcpus, config_.default_memory_mib});
  auto network = sandbox::NetworkFromSpec(bundle->spec);
  if (!network.ok()) return fail(network.error().Wrap("bundle " + req.bundle()));
  auto pod = JoinPod(key, req.id(), resources, *network);
  if (!pod.ok()) return fail(pod.error());
  e->pod = *pod;
  auto guest_pid = e->pod->sandbox->CreateContainer(req.id(), *bundle, !req.stdin().empty());
  if (!guest_pid.ok()) return fail(guest_pid.error());
  Status io = OpenIo(e.get(), &e->init, req.id(), "", req.stdin(), req.stdout(), req.stderr());
  if (!io.ok()) return fail(io.error());
  Log().With("container", req.id()).With("sandbox", key).Info("created, guest pid {}", *guest_pid);
  std::lock_guard<std::mutex> lock(mu_);
  entries_[req.id()] = e;
  // containerd sees the VMM's pid for every process, as with kata (contract 5.5).
  return static_cast<uint32_t>(e->pod->sandbox->vm_pid());
}

Status VmBackend::Start(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  // CNI ran between Create and Start (ctr run --cni), or before the sandbox existed (CRI).
  Status net = e->pod->sandbox->ConnectNetwork();
  if (!net.ok()) return net.error().Wrap("network of container " + id);
  return Agent(*e).StartContainer(id);
}

Result<uint32_t> VmBackend::StartExec(const taskpb::ExecProcessRequest& req) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(req.id()));
  const std::string& id = req.id();
  const std::string& exec_id = req.exec_id();
  auto io = std::make_unique<Io>();
  Io* raw = io.get();
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->torn_down) return Error(Code::kNotFound, "container " + id + " is being deleted");
    if (e->execs.count(exec_id) != 0) {
      return Error(Code::kAlreadyExists, "exec " + exec_id + " of " + id + " already started");
    }
    COCOON_ASSIGN_OR_RETURN(io->fifos, OpenFifos(req.stdin(), req.stdout(), req.stderr()));
    e->execs[exec_id] = std::move(io);
  }
  auto forget = [&](const Error& err) -> Error {
    std::lock_guard<std::mutex> lock(e->mu);
    auto it = e->execs.find(exec_id);
    if (it != e->execs.end()) {
      it->second->Stop();
      e->execs.erase(it);
    }
    return err;
  };
  // The spec Any holds the OCI process as JSON (contract 5.1); the agent validates it.
  auto guest_pid = Agent(*e).Exec(id, exec_id, req.spec().value(), !req.stdin().empty());
  if (!guest_pid.ok()) return forget(guest_pid.error());
  raw->relay = std::make_unique<sandbox::StdioRelay>(&Agent(*e), id, exec_id);
  Status relay = raw->relay->Start(raw->fifos.in_fd(), raw->fifos.out_fd(), raw->fifos.err_fd());
  if (!relay.ok()) {
    (void)Agent(*e).Signal(id, exec_id, SIGKILL);
    return forget(relay.error());
  }
  Log().With("container", id).With("exec", exec_id).Info("exec started, guest pid {}", *guest_pid);
  return static_cast<uint32_t>(e->pod->sandbox->vm_pid());
}

Result<uint32_t> VmBackend::Wait(const std::string& id, const std::string& exec_id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  auto waited = Agent(*e).Wait(id, exec_id);
  if (!waited.ok()) return waited.error();
  if (exec_id.empty()) {
    // The agent queues an OOM kill of the init process before it reports the exit; fetched now,
    // the event precedes /tasks/exit and cannot be lost with a VM that stops at Delete.
    auto events = Agent(*e).GetEvents(std::chrono::milliseconds(1));
    if (events.ok()) Dispatch(e->pod.get(), *events);
  }
  std::lock_guard<std::mutex> lock(e->mu);
  Io* io = &e->init;
  if (!exec_id.empty()) {
    auto it = e->execs.find(exec_id);
    io = it == e->execs.end() ? nullptr : it->second.get();
  }
  if (!e->torn_down && io != nullptr && io->relay && io->relay->WaitOutputDone(kOutputDrain)) {
    io->Stop();
  }
  return static_cast<uint32_t>(waited->exit_code());
}

Status VmBackend::Kill(const std::string& id, const std::string& exec_id, uint32_t signal,
                       bool all) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).Signal(id, exec_id, static_cast<int>(signal), all);
}

Status VmBackend::CloseStdin(const std::string& id, const std::string&) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  // Limitation: CloseIO does not close stdin by itself: ctr and CRI close the stdin FIFO before
  // sending it, and the relay turns that end-of-file into CloseStdin after forwarding every byte
  // it read, so closing here could cut input short.
  return OkStatus();
}

Status VmBackend::ResizePty(const std::string& id, const std::string& exec_id, uint32_t width,
                            uint32_t height) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  if (width == 0 || height == 0) return OkStatus();
  return Agent(*e).ResizeTty(id, exec_id, height, width);
}

Status VmBackend::DeleteExec(const std::string& id, const std::string& exec_id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  std::unique_ptr<Io> io;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    auto it = e->execs.find(exec_id);
    if (it == e->execs.end()) return OkStatus();  // never started
    io = std::move(it->second);
    e->execs.erase(it);
  }
  // Forgetting the process in the guest also ends relay reads still waiting on it.
  Status removed = Agent(*e).RemoveProcess(id, exec_id);
  io->Stop();
  return removed;
}

void VmBackend::Teardown(const std::string& id, Entry* e) {
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->torn_down) return;
    e->torn_down = true;
  }
  if (e->pod) {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last = e->pod->members.size() == 1;
    }
    // The VM stays for the group's other containers: remove just this one (its processes, its
    // share mounts), which also ends the relay reads still pending on it.
    if (!last && e->pod->sandbox) {
      Status removed = e->pod->sandbox->RemoveContainer(id);
      if (!removed.ok()) {
        Log().With("container", id).Warn("remove in the guest: {}", removed.error().message());
      }
    }
    LeavePod(e->pod, id);
  }
  std::lock_guard<std::mutex> lock(e->mu);
  e->init.Stop();
  for (auto& [eid, io] : e->execs) io->Stop();
  e->execs.clear();
  e->rootfs.Unmount();
}

Status VmBackend::Delete(const std::string& id) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return OkStatus();
    e = it->second;
    entries_.erase(it);
  }
  Teardown(id, e.get());
  return OkStatus();
}

Status VmBackend::Pause(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).Pause(id);
}

Status VmBackend::Resume(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).Resume(id);
}

Status VmBackend::Update(const std::string& id, const std::string& resources_json) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).Update(id, resources_json);
}

Result<cgroupspb::Metrics> VmBackend::Stats(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).Stats(id);
}

Result<std::vector<uint32_t>> VmBackend::Pids(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return Agent(*e).ListProcesses(id);
}

void VmBackend::DestroyAll() {
  std::map<std::string, std::shared_ptr<Entry>> entries;
  std::map<std::string, std::shared_ptr<Pod>> pods;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries.swap(entries_);
    pods.swap(pods_);
  }
  for (auto& [key, pod] : pods) StopPod(pod.get());
  for (auto& [id, e] : entries) {
    std::lock_guard<std::mutex> lock(e->mu);
    e->torn_down = true;
    e->init.Stop();
    for (auto& [eid, io] : e->execs) io->Stop();
    e->rootfs.Unmount();
  }
}

}  // namespace cocoon::shim
