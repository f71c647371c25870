#include "shim/vm_backend.h"

#include "common/ids.h"
#include "common/log.h"
#include "oci/spec.h"

namespace cocoon::shim {

Result<std::shared_ptr<VmBackend::Entry>> VmBackend::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return Error(Code::kNotFound, "container " + id + " not found");
  return it->second;
}

void VmBackend::Teardown(Entry* e) {
  std::lock_guard<std::mutex> lock(e->mu);
  if (e->torn_down) return;
  e->torn_down = true;
  // Stopping the VM closes the agent connection first, which ends relay calls still pending.
  if (e->sandbox) e->sandbox->Destroy();
  if (e->owner.joinable()) {
    e->release.set_value();
    e->owner.join();
  }
  if (e->relay) e->relay->Stop();
  e->relay.reset();
  e->fifos.Close();
  // The Sandbox object itself lives as long as the entry: a watcher may still be returning from
  // an agent call on it.
  e->rootfs.Unmount();
}

Result<uint32_t> VmBackend::Create(const taskpb::CreateTaskRequest& req) {
  COCOON_RETURN_IF_ERROR(ValidateId(req.id()));
  Logger log = Log().With("container", req.id());
  auto e = std::make_shared<Entry>();
  std::vector<mountpb::Mount> mounts(req.rootfs().begin(), req.rootfs().end());
  COCOON_ASSIGN_OR_RETURN(e->rootfs, RootfsMounts::Mount(mounts, req.bundle() + "/rootfs"));
  auto fail = [&](const Error& err) -> Error {
    Teardown(e.get());
    return err;
  };
  auto bundle = oci::LoadBundle(req.bundle());
  if (!bundle.ok()) return fail(bundle.error());
  oci::VmResources resources =
      oci::ResourcesFromSpec(bundle->spec, {config_.default_vcpus, config_.default_memory_mib});
  std::promise<Result<std::unique_ptr<sandbox::Sandbox>>> booted;
  auto booted_future = booted.get_future();
  e->owner = std::thread([this, id = req.id(), resources, booted = std::move(booted),
                          released = e->release.get_future()]() mutable {
    booted.set_value(sandbox::Sandbox::Create(config_, id, resources));
    released.wait();
  });
  auto sb = booted_future.get();
  if (!sb.ok()) return fail(sb.error());
  e->sandbox = std::move(*sb);
  log.Info("vm started pid={}", e->sandbox->vm_pid());
  auto guest_pid = e->sandbox->CreateContainer(req.id(), *bundle, !req.stdin().empty());
  if (!guest_pid.ok()) return fail(guest_pid.error());
  auto fifos = OpenFifos(req.stdin(), req.stdout(), req.stderr());
  if (!fifos.ok()) return fail(fifos.error());
  e->fifos = std::move(*fifos);
  e->relay = std::make_unique<sandbox::StdioRelay>(&e->sandbox->agent(), req.id(), "");
  Status relay = e->relay->Start(e->fifos.in_fd(), e->fifos.out_fd(), e->fifos.err_fd());
  if (!relay.ok()) return fail(relay.error());
  // containerd sees the VMM's pid for the task, as with kata (contract 5.5).
  auto pid = static_cast<uint32_t>(e->sandbox->vm_pid());
  std::lock_guard<std::mutex> lock(mu_);
  entries_[req.id()] = e;
  return pid;
}

Status VmBackend::Start(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return e->sandbox->agent().StartContainer(id);
}

Result<uint32_t> VmBackend::Wait(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  auto waited = e->sandbox->agent().Wait(id, "");
  if (!waited.ok()) return waited.error();
  // The agent reports the exit after draining the pipes, so this is quick; the bound covers a
  // daemonized grandchild keeping a pipe open (its output is then cut at Delete).
  std::lock_guard<std::mutex> lock(e->mu);
  if (!e->torn_down && e->relay->WaitOutputDone(std::chrono::seconds(2))) {
    e->relay->Stop();
    e->fifos.Close();  // the client sees end-of-output only once our write ends are closed
  }
  return static_cast<uint32_t>(waited->exit_code());
}

Status VmBackend::Kill(const std::string& id, uint32_t signal, bool all) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  return e->sandbox->agent().Signal(id, "", static_cast<int>(signal), all);
}

Status VmBackend::CloseStdin(const std::string& id) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  // Limitation: CloseIO does not close stdin by itself: ctr and CRI close the stdin FIFO before
  // sending it, and the relay turns that end-of-file into CloseStdin after forwarding every byte
  // it read, so closing here could cut input short.
  return OkStatus();
}

Status VmBackend::ResizePty(const std::string& id, uint32_t width, uint32_t height) {
  COCOON_ASSIGN_OR_RETURN(auto e, Get(id));
  if (width == 0 || height == 0) return OkStatus();
  return e->sandbox->agent().ResizeTty(id, "", height, width);
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
  Teardown(e.get());
  return OkStatus();
}

void VmBackend::DestroyAll() {
  std::map<std::string, std::shared_ptr<Entry>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(entries_);
  }
  for (auto& [id, e] : all) Teardown(e.get());
}

}  // namespace cocoon::shim
