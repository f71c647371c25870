// The long-lived shim daemon: serves containerd.task.v2.Task on the socket `start` bound (fd 3)
// until Shutdown finds no container left, then stops every VM, removes the socket and exits.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "common/io.h"
#include "common/log.h"
#include "sandbox/config.h"
#include "sandbox/mounts.h"
#include "shim/commands.h"
#include "shim/events.h"
#include "shim/task_service.h"
#include "shim/vm_backend.h"
#include "ttrpc/server.h"
#include "vmm/accel.h"

namespace cocoon::shim {
namespace {

// A daemon nobody uses (containerd failed after `start`, or crashed) must not live forever.
constexpr auto kIdleExit = std::chrono::seconds(60);
constexpr int kListenFd = 3;

class SocketFile {
 public:
  explicit SocketFile(std::string path) : path_(std::move(path)) {}
  ~SocketFile() { Remove(); }
  // Once removed, a later `start` of the same group may bind a new daemon's socket at this path:
  // it must not be unlinked a second time.
  void Remove() {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
  }

 private:
  std::string path_;
};

}  // namespace

int RunDaemon(const ShimFlags& flags) {
  UniqueFd listener(kListenFd);
  // Inherited without close-on-exec; QEMU must not inherit it too, or the socket would keep
  // accepting after a crash of this daemon and `delete` would take the daemon for alive.
  (void)SetCloexec(kListenFd, true);
  SocketFile socket(flags.socket);
  LogToBundleFifo(flags.bundle, flags.debug);
  Logger log = Log().With("runtime", "io.containerd.cocoon.v2").With("id", flags.id);
  if (Status valid = ValidateId(flags.ns); !valid.ok()) {
    log.Error("namespace: {}", valid.error().message());
    return 1;
  }
  // Before any thread: every mount we make (rootfs, 9p shares) then dies with this process.
  Status ns = sandbox::EnterPrivateMountNamespace();
  if (!ns.ok()) {
    log.Error("{}", ns.error().message());
    return 1;
  }
  // Limitation: the options of a later CreateTaskRequest are not compared with these; a daemon
  // serves with the config its `start` was given.
  auto config = sandbox::LoadConfig(flags.config);
  if (!config.ok()) {
    log.Error("{}", config.error().message());
    return 1;
  }
  Status assets = sandbox::ResolveAssets(&*config);
  if (!assets.ok()) {
    log.Error("{}", assets.error().message());
    return 1;
  }
  config->accel = vmm::DetectAccelerator();
  config->state_root = ShimStateRoot(config->state_root, flags.ns);
  log.Info("shim daemon serving on {} (accelerator: {})", flags.socket,
           config->accel->accel == vmm::Accel::kTcg ? "tcg" : "kvm");

  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  EventPublisher events(flags.ns, ttrpc_address != nullptr ? ttrpc_address : "");
  VmBackend backend(std::move(*config));
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  TaskService service(&backend, &events, [&] {
    std::lock_guard<std::mutex> lock(mu);
    // Gone before the Shutdown reply: the `delete` containerd runs next then knows this daemon
    // is leaving, and a new `start` of the group starts a new one rather than joining us.
    socket.Remove();
    done = true;
    cv.notify_all();
  });
  backend.SetOomHandler([&service](const std::string& id) { service.ReportOom(id); });
  ttrpc::Server server;
  service.Register(&server);
  std::thread serving([&] {
    Status st = server.ServeListener(std::move(listener));
    if (!st.ok()) log.Error("serving stopped: {}", st.error().message());
  });

  {
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      if (!cv.wait_for(lock, kIdleExit, [&] { return done; }) && service.size() == 0) {
        log.Warn("no container for {} s: exiting", kIdleExit.count());
        break;
      }
    }
  }
  // Let the Shutdown reply leave before the connections close (containerd tolerates either).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  service.Stop();
  backend.DestroyAll();
  server.Shutdown();
  serving.join();
  events.Close(std::chrono::seconds(2));
  log.Info("shim daemon exiting");
  return 0;
}

}  // namespace cocoon::shim
