// `delete`: containerd runs it after every teardown and after a shim crash. It must be
// idempotent, must spare a daemon that still serves, and must answer within 5 s (contract 1.6).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/ids.h"
#include "common/io.h"
#include "common/log.h"
#include "oci/spec.h"
#include "proto/containerd_task.pb.h"
#include "sandbox/config.h"
#include "sandbox/network.h"
#include "sandbox/state_dir.h"
#include "shim/commands.h"
#include "shim/rootfs.h"
#include "shim/task_service.h"
#include "shim/timestamps.h"
#include "ttrpc/client.h"

namespace cocoon::shim {
namespace {

// With the daemon gone (its socket refuses connections), its VM's state directory and a QEMU
// that outlived it are leftovers. OwnerAlive is no guide here: a SIGKILLed daemon may linger as a
// zombie that nobody reaps yet, with the same pid and start time.
void CleanSandboxState(const std::string& ns, const std::string& key) {
  auto config = sandbox::LoadConfig();
  std::string root = config.ok() ? config->state_root : sandbox::EngineConfig().state_root;
  // Neither may name a path outside the root.
  if (!ValidateId(ns).ok() || !ValidateId(key).ok()) return;
  std::string dir = ShimStateRoot(root, ns) + "/" + key;
  if (!PathExists(dir)) return;
  Status cleaned = sandbox::CleanStale(dir);
  if (!cleaned.ok()) {
    std::fprintf(stderr, "cocoon: clean %s: %s\n", dir.c_str(), cleaned.error().message().c_str());
  }
}

// 'R', 'S', 'Z'... for a live or zombie process, 0 when there is none.
char ProcessState(const std::string& pid) {
  auto stat = ReadFile("/proc/" + pid + "/stat");
  if (!stat.ok()) return 0;
  size_t close = stat->rfind(')');  // the state letter follows the command name
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  return (*stat)[close + 2];
}

// Whether a daemon answers on the group's socket. Connecting is not enough: a SIGKILLed daemon on
// its way out can still accept (seen under load), but only a live one answers a call. A daemon
// that is leaving after its last Shutdown has already removed its socket.
bool DaemonAnswers(const std::string& socket, const std::string& id) {
  if (!PathExists(socket)) return false;
  auto fd = ConnectUnix(socket, std::chrono::milliseconds(500));
  if (!fd.ok()) return false;
  ttrpc::Client client(std::move(*fd));
  ::containerd::task::v2::ConnectRequest req;
  req.set_id(id);
  ttrpc::CallOptions opts;
  opts.timeout = std::chrono::seconds(1);
  return client.Call<::containerd::task::v2::ConnectResponse>(kTaskService, "Connect", req, opts)
      .ok();
}

// A daemon that does not answer may still be stopping its VMs: give the pid `start` recorded up to
// 2 s (well inside containerd's 5 s) to go, so its cleanup and ours do not race.
void WaitForDaemonExit(const std::string& bundle) {
  auto pid = ReadFile(bundle + "/shim.pid");
  if (!pid.ok() || pid->empty()) return;
  for (int i = 0; i < 100; ++i) {
    char state = ProcessState(*pid);
    if (state == 0 || state == 'Z' || state == 'X') return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The redirects a crashed daemon left on the interfaces of a network namespace it did not make
// (CRI's): its taps went with QEMU, the namespace and its veth outlive it. A namespace cocoon made
// went with QEMU, everything in it included.
void CleanNetwork(const std::string& bundle) {
  auto spec = oci::LoadBundle(bundle);
  if (!spec.ok()) return;  // no readable bundle: nothing to tell where the namespace is
  auto net = sandbox::NetworkFromSpec(spec->spec);
  if (!net.ok() || net->mode != sandbox::NetworkRequest::Mode::kPath) return;
  Status scrubbed = sandbox::ScrubNamespace(net->path);
  if (!scrubbed.ok()) {
    std::fprintf(stderr, "cocoon: clean network namespace %s: %s\n", net->path.c_str(),
                 scrubbed.error().message().c_str());
  }
}

}  // namespace

std::string DeleteResponseBytes(uint32_t pid) {
  ::containerd::task::v2::DeleteResponse resp;
  resp.set_pid(pid);
  resp.set_exit_status(128 + 9);  // as runc: the process is gone, as if SIGKILLed
  *resp.mutable_exited_at() = Now();
  return resp.SerializeAsString();
}

int RunDelete(const ShimFlags& flags) {
  SetLogFd(-1);  // stdout carries the response; stderr is for cleanup warnings only
  std::string bundle = BundleDir(flags);
  std::string socket = SocketForBundle(flags, bundle);
  if (!DaemonAnswers(socket, flags.id)) {
    WaitForDaemonExit(bundle);
    if (PathExists(socket)) ::unlink(socket.c_str());
    CleanSandboxState(flags.ns, GroupForBundle(flags, bundle));
    CleanNetwork(bundle);
  }
  // The daemon mounts in a private namespace; this is for mounts made anywhere else.
  UnmountAll(bundle + "/rootfs");
  std::string out = DeleteResponseBytes(0);
  if (!WriteAll(STDOUT_FILENO, out).ok()) return 1;
  return 0;
}

}  // namespace cocoon::shim
