// `cocoon run`: like `runc run`, in the foreground with stdio attached, but the container lives
// in its own VM. The container's exit code becomes ours; SIGINT, SIGTERM and SIGHUP are forwarded.
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "common/ids.h"
#include "common/io.h"
#include "common/log.h"
#include "oci/hooks.h"
#include "oci/spec.h"
#include "sandbox/mounts.h"
#include "sandbox/sandbox.h"
#include "sandbox/stdio_relay.h"
#include "vmm/accel.h"

namespace cocoon::cli {
namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// Puts our terminal in raw mode while the container owns a pty, restoring it on every path.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Handles SIGINT, SIGTERM, SIGHUP and friends for the whole run. Before the container exists a
// signal cancels the VM boot and is remembered; once Attach()ed, signals go to the container's
// init process and SIGWINCH resizes its pty.
class SignalHandler {
 public:
  explicit SignalHandler(sandbox::Canceller* cancel) : cancel_(cancel) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~SignalHandler() {
    stop_ = true;
    thread_.join();
  }

  void Attach(sandbox::AgentClient* agent, std::string id, bool tty) {
    std::lock_guard<std::mutex> lock(mu_);
    agent_ = agent;
    id_ = std::move(id);
    tty_ = tty;
  }
  // Detaches before the agent connection goes away.
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    agent_ = nullptr;
  }
  // The first signal that arrived before Attach(), or 0.
  int early_signal() const {
    std::lock_guard<std::mutex> lock(mu_);
    return early_signal_;
  }

 private:
  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kForwardedSignals) sigaddset(&set, s);
    sigaddset(&set, SIGWINCH);
    while (!stop_) {
      timespec tick{0, 100 * 1000 * 1000};
      int sig = ::sigtimedwait(&set, nullptr, &tick);
      if (sig > 0) Handle(sig);
    }
  }
  void Handle(int sig) {
    std::lock_guard<std::mutex> lock(mu_);
    if (agent_ == nullptr) {
      if (sig == SIGWINCH) return;
      if (early_signal_ == 0) early_signal_ = sig;
      cancel_->Cancel();
      return;
    }
    if (sig == SIGWINCH) {
      winsize ws{};
      if (tty_ && ::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        (void)agent_->ResizeTty(id_, "", ws.ws_row, ws.ws_col);
      }
      return;
    }
    Status st = agent_->Signal(id_, "", sig);
    Log()
        .With("container", id_)
        .Debug("forwarded signal {}: {}", sig, st.ok() ? "ok" : st.error().message());
  }

  sandbox::Canceller* cancel_;
  mutable std::mutex mu_;
  sandbox::AgentClient* agent_ = nullptr;
  std::string id_;
  bool tty_ = false;
  int early_signal_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwardedSignals) sigaddset(&set, s);
  sigaddset(&set, SIGWINCH);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Says once per state root and host boot (the state root lives on /run) that VMs run under TCG,
// so a user learns why they are slow without every run's stderr carrying the line.
void NoticeAccelerator(const sandbox::EngineConfig& config) {
  if (config.accel->accel != vmm::Accel::kTcg) return;
  std::string marker = config.state_root + "/.tcg-notice";
  if (PathExists(marker)) return;
  std::fprintf(stderr,
               "cocoon: notice: no usable KVM (%s); VMs run under TCG software emulation, "
               "which is slower\n",
               config.accel->reason.c_str());
  if (MakeDirs(config.state_root, 0711).ok()) (void)WriteFileAtomic(marker, "", 0644);
}

// Writes the start-up breakdown as JSON when COCOON_TIMINGS_FILE names a file (bench/ uses it).
void WriteTimings(const sandbox::StartTimeline& t, double created, double started, double exited,
                  double stopped) {
  const char* path = std::getenv("COCOON_TIMINGS_FILE");
  if (path == nullptr || *path == '\0') return;
  nlohmann::json doc = {{"qemu_spawned_ms", t.qemu_spawned_ms},
                        {"kernel_entered_ms", t.kernel_entered_ms},
                        {"agent_ready_ms", t.agent_ready_ms},
                        {"container_created_ms", created},
                        {"process_started_ms", started},
                        {"exit_reported_ms", exited},
                        {"vm_stopped_ms", stopped}};
  (void)WriteFileAtomic(path, doc.dump() + "\n");
}

// The bundle's OCI hooks, run on the host around the container in the VM, as runc runs them. The
// pid in their state is QEMU's, which lives in the sandbox's network namespace (for hooks that
// set up networking through /proc/<pid>/ns/net).
struct BundleHooks {
  oci::Hooks hooks;
  oci::State state;

  Status Run(oci::HookKind kind, const char* status, pid_t pid) {
    state.status = status;
    state.pid = pid;
    return oci::RunHooks(kind, hooks.of(kind), state);
  }
};

Result<BundleHooks> LoadHooks(const oci::Bundle& bundle, const std::string& id) {
  BundleHooks h;
  COCOON_ASSIGN_OR_RETURN(h.hooks, oci::ParseHooks(bundle.spec));
  h.state.id = id;
  h.state.bundle = bundle.dir;
  if (auto a = bundle.spec.find("annotations"); a != bundle.spec.end() && a->is_object()) {
    h.state.annotations = *a;
  }
  return h;
}

}  // namespace

int RunCommand(const GlobalOptions& global, const RunOptions& options) {
  Status id_ok = ValidateId(options.id);
  if (!id_ok.ok()) return Fail(id_ok.error().message());
  auto bundle = oci::LoadBundle(options.bundle);
  if (!bundle.ok()) return Fail(bundle.error().message());
  auto hooks = LoadHooks(*bundle, options.id);
  if (!hooks.ok()) return Fail(hooks.error().Wrap("bundle " + bundle->dir).message());
  auto config = LoadEngineConfig(global);
  if (!config.ok()) return Fail(config.error().message());
  Status assets = sandbox::ResolveAssets(&*config);
  if (!assets.ok()) return Fail(assets.error().message());
  config->accel = vmm::DetectAccelerator();
  NoticeAccelerator(*config);

  // Both must happen before the first thread exists (see EnterPrivateMountNamespace).
  Status ns = sandbox::EnterPrivateMountNamespace();
  if (!ns.ok()) return Fail(ns.error().message());
  BlockSignals();

  Logger log = Log().With("sandbox", options.id).With("container", options.id);
  sandbox::Canceller cancel;
  SignalHandler signals(&cancel);
  oci::VmResources resources =
      oci::ResourcesFromSpec(bundle->spec, {config->default_vcpus, config->default_memory_mib});
  auto network = sandbox::NetworkFromSpec(bundle->spec);
  if (!network.ok()) return Fail(network.error().Wrap("bundle " + bundle->dir).message());
  auto sb = sandbox::Sandbox::Create(*config, options.id, resources, *network, &cancel);
  // A signal before the container exists ends the run as if the process had been killed by it.
  if (int sig = signals.early_signal(); sig != 0) return 128 + sig;
  if (!sb.ok()) return Fail(sb.error().message());
  sandbox::Sandbox& sandbox = **sb;
  const auto& timeline = sandbox.timeline();

  auto pid = sandbox.CreateContainer(options.id, *bundle, /*stdin_pipe=*/true);
  if (!pid.ok()) return Fail(pid.error().message());
  if (std::string skipped = oci::SkippedHooksWarning(hooks->hooks); !skipped.empty()) {
    log.Warn("{}", skipped);
  }
  // The runtime environment exists (VM booted, container created): prestart, then createRuntime.
  Status hooked = hooks->Run(oci::HookKind::kPrestart, "created", sandbox.vm_pid());
  if (hooked.ok()) hooked = hooks->Run(oci::HookKind::kCreateRuntime, "created", sandbox.vm_pid());
  if (!hooked.ok()) {
    sandbox.Destroy();
    return Fail(hooked.error().message());
  }
  double created_ms = timeline.Since(std::chrono::steady_clock::now());

  bool tty = bundle->terminal;
  std::optional<RawTerminal> raw;
  if (tty && ::isatty(STDIN_FILENO)) {
    raw.emplace(STDIN_FILENO);
    winsize ws{};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      (void)sandbox.agent().ResizeTty(options.id, "", ws.ws_row, ws.ws_col);
    }
  }

  sandbox::StdioRelay relay(&sandbox.agent(), options.id, "");
  Status relay_ok = relay.Start(STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO);
  if (!relay_ok.ok()) return Fail(relay_ok.error().message());

  signals.Attach(&sandbox.agent(), options.id, tty);
  if (int sig = signals.early_signal(); sig != 0) {
    signals.Detach();
    sandbox.Destroy();
    return 128 + sig;
  }
  Status started = sandbox.ConnectNetwork();
  if (started.ok()) started = sandbox.agent().StartContainer(options.id);
  if (!started.ok()) {
    signals.Detach();
    sandbox.Destroy();
    return Fail(started.error().message());
  }
  double started_ms = timeline.Since(std::chrono::steady_clock::now());
  // A poststart or poststop failure is only logged: the process already runs, or is gone.
  if (Status st = hooks->Run(oci::HookKind::kPoststart, "running", sandbox.vm_pid()); !st.ok()) {
    log.Warn("{}", st.error().message());
  }

  auto waited = sandbox.agent().Wait(options.id, "");
  signals.Detach();
  if (!waited.ok()) {
    std::string tail = sandbox.ConsoleTail();
    sandbox.Destroy();
    relay.Stop();
    raw.reset();
    return Fail(waited.error().message() +
                (tail.empty() ? "" : "\n--- end of the guest console ---\n" + tail));
  }
  int exit_code = waited->exit_code();
  double exited_ms = timeline.Since(std::chrono::steady_clock::now());
  // The agent reports an exit only after the output pipes are drained, so the relays finish at
  // once; the bound covers a daemonized grandchild that keeps a pipe open.
  if (!relay.WaitOutputDone(std::chrono::seconds(2))) {
    log.Warn("output still open after the process exited; closing it");
  }
  pid_t vm_pid = sandbox.vm_pid();
  sandbox.Destroy();  // closes the agent connection, which ends any relay call still pending
  relay.Stop();
  raw.reset();
  if (Status st = hooks->Run(oci::HookKind::kPoststop, "stopped", vm_pid); !st.ok()) {
    log.Warn("{}", st.error().message());
  }
  WriteTimings(timeline, created_ms, started_ms, exited_ms,
               timeline.Since(std::chrono::steady_clock::now()));
  return exit_code;
}

}  // namespace cocoon::cli
