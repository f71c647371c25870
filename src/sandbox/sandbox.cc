#include "sandbox/sandbox.h"

#include "common/ids.h"
#include "common/io.h"
#include "common/log.h"
#include "vmm/accel.h"

namespace cocoon::sandbox {
namespace {

// Under TCG a guest boots in one to two seconds; the margin covers loaded CI machines.
constexpr auto kAgentTimeout = std::chrono::seconds(60);
constexpr auto kVmStopTimeout = std::chrono::milliseconds(3000);

}  // namespace

Result<std::unique_ptr<Sandbox>> Sandbox::Create(const EngineConfig& config, const std::string& id,
                                                 const oci::VmResources& resources,
                                                 const NetworkRequest& network, Canceller* cancel) {
  auto origin = std::chrono::steady_clock::now();
  COCOON_RETURN_IF_ERROR(ValidateId(id));
  COCOON_ASSIGN_OR_RETURN(StateDir state, StateDir::Create(config.state_root, id));
  std::unique_ptr<Sandbox> sb(new Sandbox(id, std::move(state)));
  sb->timeline_.origin = origin;
  Status st = sb->Boot(config, resources, network, cancel);
  if (!st.ok()) {
    std::string tail = sb->ConsoleTail();
    sb->Destroy();
    Error e = st.error().Wrap("sandbox " + id);
    if (tail.empty()) return e;
    return Error(e.code(), e.message() + "\n--- end of the guest console ---\n" + tail);
  }
  return sb;
}

Status Sandbox::Boot(const EngineConfig& config, const oci::VmResources& resources,
                     const NetworkRequest& network, Canceller* cancel) {
  Logger log = Log().With("sandbox", id_);
  std::string share = state_.File("share");
  COCOON_RETURN_IF_ERROR(MakeDirs(share, 0700));

  UniqueFd host_end, qemu_end;
  COCOON_RETURN_IF_ERROR(MakeSocketPair(&host_end, &qemu_end));

  vmm::AccelDecision accel = config.accel ? *config.accel : vmm::DetectAccelerator();
  vmm::QemuConfig qc;
  qc.qemu_binary = config.qemu_binary;
  qc.name = id_;
  qc.accel = accel.accel;
  qc.vcpus = resources.vcpus;
  qc.memory_mib = resources.memory_mib;
  qc.kernel = config.kernel;
  qc.initrd = config.initrd;
  qc.kernel_cmdline_extra = config.kernel_cmdline_extra;
  qc.console_log = state_.File("console.log");
  qc.qmp_socket = state_.File("qmp.sock");
  qc.agent_fd = qemu_end.get();
  qc.share_dir = share;
  if (network.mode != NetworkRequest::Mode::kNone) {
    // Limitation: the VM gets one NIC, made at boot (microvm has no hotplug); a pod whose network
    // namespace holds a second CNI interface fails to start a container with an error naming it.
    Result<std::unique_ptr<PodNetwork>> net = PodNetwork::Open(network, 1);
    if (!net.ok()) return net.error().Wrap("network");
    network_ = std::move(*net);
    qc.netns_fd = network_->netns_fd();
    for (const PodNetwork::Tap& tap : network_->taps()) {
      qc.nics.push_back({tap.fd.get(), tap.boot_mac});
    }
  }
  log.Debug("accelerator {}: {}", vmm::AccelName(accel.accel), accel.reason);

  COCOON_ASSIGN_OR_RETURN(vm_, vmm::Vm::Launch(qc));
  qemu_end.reset();
  if (network_) network_->ReleaseTapFds();
  timeline_.qemu_spawned_ms = timeline_.Since(std::chrono::steady_clock::now());
  COCOON_RETURN_IF_ERROR(state_.RecordVmPid(vm_->pid()));
  log.Debug("qemu started pid={}", vm_->pid());

  agent_ = std::make_unique<AgentClient>(std::move(host_end));
  if (cancel != nullptr) cancel->SetHook([this] { agent_->Close(); });
  auto hs = agent_->Handshake(std::chrono::duration_cast<std::chrono::milliseconds>(kAgentTimeout));
  if (cancel != nullptr) {
    cancel->ClearHook();
    if (cancel->cancelled()) return Error(Code::kCancelled, "start cancelled");
  }
  if (!hs.ok()) {
    if (auto code = vm_->Exited()) {
      return Error(Code::kUnavailable, "the VM exited (code " + std::to_string(*code) +
                                           ") before its agent answered: " + vm_->QemuStderr());
    }
    return hs.error();
  }
  timeline_.agent_ready_ms = timeline_.Since(std::chrono::steady_clock::now());
  timeline_.kernel_entered_ms = timeline_.agent_ready_ms - hs->uptime_at_ready_s() * 1000.0;
  log.Debug("agent ready after {:.0f} ms", timeline_.agent_ready_ms);
  return OkStatus();
}

Result<uint32_t> Sandbox::CreateContainer(const std::string& container_id,
                                          const oci::Bundle& bundle, bool stdin_pipe) {
  COCOON_RETURN_IF_ERROR(ValidateId(container_id));
  COCOON_ASSIGN_OR_RETURN(oci::GuestSpec guest, oci::RewriteForGuest(bundle, container_id));
  std::vector<BindMount> binds;
  for (const auto& b : guest.binds) {
    COCOON_ASSIGN_OR_RETURN(
        BindMount m,
        BindMount::Create(b.host_source, state_.File("share/" + b.share_path), b.read_only));
    binds.push_back(std::move(m));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (mounts_.count(container_id) != 0) {
      return Error(Code::kAlreadyExists, "container " + container_id + " already exists");
    }
    mounts_[container_id] = std::move(binds);
  }
  auto pid = agent_->CreateContainer(container_id, guest.spec.dump(), stdin_pipe);
  if (!pid.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    mounts_.erase(container_id);
    return pid.error();
  }
  return pid;
}

Status Sandbox::RemoveContainer(const std::string& container_id) {
  Status st = agent_->RemoveContainer(container_id);
  std::lock_guard<std::mutex> lock(mu_);
  mounts_.erase(container_id);
  if (!st.ok()) return st;
  // The share subdirectory held only mount points; drop it so the share stays tidy.
  return RemoveTree(state_.File("share/" + container_id));
}

Status Sandbox::ConnectNetwork() {
  if (!network_) return OkStatus();
  COCOON_ASSIGN_OR_RETURN(std::vector<PodNetwork::Joined> joined, network_->JoinNewInterfaces());
  for (const PodNetwork::Joined& j : joined) {
    agentpb::ConfigureInterfaceRequest req;
    req.set_boot_mac(j.boot_mac);
    req.set_name(j.interface.name);
    req.set_mac(j.interface.mac);
    req.set_mtu(j.interface.mtu);
    for (const HostInterface::Address& a : j.interface.addresses) {
      agentpb::IpPrefix* p = req.add_addresses();
      p->set_address(a.ip);
      p->set_prefix_len(a.prefix_len);
    }
    for (const HostInterface::Route& r : j.interface.routes) {
      agentpb::Route* out = req.add_routes();
      out->set_destination(r.destination);
      out->set_gateway(r.gateway);
      out->set_ipv6(r.ipv6);
    }
    Status configured = agent_->ConfigureInterface(req);
    if (!configured.ok()) return configured.error().Wrap("guest interface " + j.interface.name);
    Log().With("sandbox", id_).Info("network interface {} handed to the guest", j.interface.name);
  }
  return OkStatus();
}

void Sandbox::Destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  if (agent_) agent_->Close();
  if (vm_) {
    int code = vm_->Stop(kVmStopTimeout);
    Log().With("sandbox", id_).Debug("qemu stopped with code {}", code);
    vm_.reset();
  }
  network_.reset();  // after QEMU: its taps are gone, so only the host side is left to undo
  std::lock_guard<std::mutex> lock(mu_);
  mounts_.clear();  // unmount before the state directory is removed
}

Sandbox::~Sandbox() { Destroy(); }

std::string Sandbox::ConsoleTail(size_t max_bytes) const {
  auto text = ReadFile(state_.File("console.log"), 64 << 20);
  if (!text.ok()) return "";
  if (text->size() > max_bytes) return text->substr(text->size() - max_bytes);
  return *text;
}

}  // namespace cocoon::sandbox
