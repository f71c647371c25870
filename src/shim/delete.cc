// `delete`: containerd runs it after every teardown and after a shim crash. It must be
// idempotent, must spare a daemon that still serves, and must answer within 5 s (contract 1.6).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/io.h"
#include "common/log.h"
#include "proto/containerd_task.pb.h"
#include "sandbox/config.h"
#include "sandbox/state_dir.h"
#include "shim/commands.h"
#include "shim/rootfs.h"
#include "shim/timestamps.h"

namespace cocoon::shim {
namespace {

// With the daemon gone (its socket refuses connections), its VM's state directory and a QEMU
// that outlived it are leftovers. OwnerAlive is no guide here: a SIGKILLed daemon may linger as a
// zombie that nobody reaps yet, with the same pid and start time.
void CleanSandboxState(const std::string& id) {
  auto config = sandbox::LoadConfig();
  std::string root = config.ok() ? config->state_root : sandbox::EngineConfig().state_root;
  std::string dir = root + "/" + id;
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

// Whether the daemon serving this bundle still runs. containerd runs `delete` as soon as its
// connection closes, which after a Shutdown (or a SIGKILL) is while the daemon is still on its
// way out; seen under load: a killed daemon not yet a zombie and its socket still accepting. So
// the pid `start` recorded gets up to 2 s to go (well inside containerd's 5 s) before we judge.
// Limitation: a daemon shared by a group (later) would make every `delete` wait those 2 s.
bool DaemonAlive(const std::string& bundle, const std::string& socket) {
  if (auto pid = ReadFile(bundle + "/shim.pid"); pid.ok() && !pid->empty()) {
    for (int i = 0; i < 100; ++i) {
      char state = ProcessState(*pid);
      if (state == 0 || state == 'Z' || state == 'X') return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return PathExists(socket) && ConnectUnix(socket, std::chrono::milliseconds(500)).ok();
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
  if (!DaemonAlive(bundle, socket)) {
    if (PathExists(socket)) ::unlink(socket.c_str());
    CleanSandboxState(flags.id);
  }
  // The daemon mounts in a private namespace; this is for mounts made anywhere else.
  UnmountAll(bundle + "/rootfs");
  std::string out = DeleteResponseBytes(0);
  if (!WriteAll(STDOUT_FILENO, out).ok()) return 1;
  return 0;
}

}  // namespace cocoon::shim
