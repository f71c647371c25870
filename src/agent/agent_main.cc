#include "agent/agent_main.h"

#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <thread>

#include "agent/boot.h"
#include "agent/crun_runtime.h"
#include "agent/guest_info.h"
#include "agent/port.h"
#include "agent/reaper.h"
#include "agent/service.h"
#include "agent/service_ttrpc.h"
#include "common/io.h"
#include "common/log.h"
#include "ttrpc/server.h"

#ifndef COCOON_VERSION
#define COCOON_VERSION "0.0.0"
#endif

namespace cocoon::agent {

namespace {

bool g_pid1 = false;

// Power off for good. As PID 1 exiting would panic the kernel, so reboot(2) instead: QEMU runs
// with -no-reboot, so a reboot ends the VM.
[[noreturn]] void PowerOff(int code) {
  ::sync();
  if (g_pid1) {
    ::reboot(RB_AUTOBOOT);
    // Still here: reboot refused. Wait for the host to kill the VM rather than panic it.
    for (;;) ::pause();
  }
  ::_exit(code);
}

[[noreturn]] void Fatal(const std::string& message) {
  Log().Error("fatal: {}; powering off", message);
  PowerOff(1);
}

void OnCrashSignal(int sig) {
  // Only async-signal-safe calls here.
  const char msg[] = "cocoon-agent: fatal signal, powering off\n";
  ssize_t n = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)n;
  if (!g_pid1) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  ::sync();
  ::reboot(RB_AUTOBOOT);
  ::_exit(1);
}

void InstallCrashHandlers() {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    struct sigaction sa {};
    sa.sa_handler = OnCrashSignal;
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, nullptr);
  }
  std::set_terminate([] { Fatal("uncaught exception or std::terminate"); });
}

struct Options {
  PortLocation port;
  std::string port_path;    // skip discovery
  std::string listen_path;  // serve on a Unix socket instead (development outside a VM)
  CrunConfig crun;
  std::string state_dir = "/run/cocoon";
  bool boot = true;
};

constexpr const char* kUsage =
    "options: --sysfs DIR --dev DIR --port-name NAME --port PATH --listen SOCKET --crun PATH "
    "--crun-root DIR --state-dir DIR --no-boot";

Result<Options> ParseArgs(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string*> with_value = {
      {"--sysfs", &o.port.sysfs_root},     {"--dev", &o.port.dev_root},
      {"--port-name", &o.port.name},       {"--port", &o.port_path},
      {"--listen", &o.listen_path},        {"--crun", &o.crun.binary},
      {"--crun-root", &o.crun.state_root}, {"--state-dir", &o.state_dir}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-boot") {
      o.boot = false;
      continue;
    }
    auto it = with_value.find(arg);
    if (it == with_value.end()) {
      return Error(Code::kInvalidArgument, "unknown option " + arg + " (" + kUsage + ")");
    }
    if (i + 1 >= argc) return Error(Code::kInvalidArgument, arg + " needs a value");
    *it->second = argv[++i];
  }
  o.crun.scratch_dir = o.state_dir + "/crun";
  return o;
}

[[noreturn]] void ServePort(ttrpc::Server* server, AgentService* service, const std::string& path) {
  for (;;) {
    Result<UniqueFd> fd = OpenPort(path, std::chrono::seconds(10));
    if (!fd.ok()) Fatal(fd.error().message());
    WaitForHost(fd->get());
    Log().Info("host connected on {}", path);
    Status served = server->ServeConnection(std::move(*fd));
    // Limitation: a read whose reply was already being written when the host went away loses
    // that chunk; ttRPC has no acknowledgement to detect it. Later reads lose nothing.
    service->InterruptPendingReads();
    if (served.ok()) {
      Log().Info("host disconnected");
    } else {
      Log().Warn("connection ended: {}", served.error().message());
    }
  }
}

}  // namespace

int AgentMain(int argc, char** argv) {
  g_pid1 = ::getpid() == 1;
  // Before any thread exists, so that every thread inherits the mask and SIGCHLD reaches only
  // the reaper's signalfd.
  if (Status st = Reaper::BlockChildSignal(); !st.ok()) Fatal(st.error().message());
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an error value, not a death
  if (g_pid1) InstallCrashHandlers();

  Result<Options> options = ParseArgs(argc, argv);
  if (!options.ok()) {
    if (g_pid1) Fatal(options.error().message());
    Log().Error("{}", options.error().message());
    return 2;
  }
  if (g_pid1 && options->boot) {
    SetUpConsole();
    Result<std::string> cmdline = ReadFile("/proc/cmdline", 64 << 10);
    // /proc is not mounted yet on the first read; BootGuest mounts it, then read again.
    BootConfig config = ParseKernelCmdline(cmdline.ok() ? *cmdline : "");
    if (Status st = BootGuest(config); !st.ok()) Fatal(st.error().message());
    cmdline = ReadFile("/proc/cmdline", 64 << 10);
    config = ParseKernelCmdline(cmdline.ok() ? *cmdline : "");
    SetLogLevel(config.log_level);
  }
  Log().Info("cocoon-agent {} starting pid={} uptime={:.3f}s", COCOON_VERSION, ::getpid(),
             UptimeSeconds());

  Reaper reaper;
  if (Status st = reaper.Start(); !st.ok()) Fatal(st.error().message());
  CrunRuntime runtime(options->crun, &reaper);
  AgentOptions agent_options;
  agent_options.agent_version = COCOON_VERSION;
  agent_options.bundle_root = options->state_dir + "/bundles";
  agent_options.on_shutdown = [] {
    Log().Info("powering off");
    // Every process but init gets SIGKILL, so that no container writes after the sync.
    if (g_pid1) ::kill(-1, SIGKILL);
    PowerOff(0);
  };
  if (Status st = MakeDirs(agent_options.bundle_root, 0700); !st.ok()) {
    Fatal(st.error().message());
  }
  AgentService service(agent_options, &runtime, &reaper);
  ttrpc::Server server;
  RegisterAgentService(&server, &service);

  if (!options->listen_path.empty()) {
    Result<UniqueFd> listener = ListenUnix(options->listen_path);
    if (!listener.ok()) Fatal(listener.error().message());
    service.SetReadyUptime(UptimeSeconds());
    Log().Info("agent ready on {}", options->listen_path);
    Status served = server.ServeListener(std::move(*listener));
    if (!served.ok()) Fatal(served.error().message());
    PowerOff(0);
  }
  std::string path = options->port_path;
  if (path.empty()) {
    Result<std::string> found = WaitForPort(options->port, std::chrono::seconds(10));
    if (!found.ok()) Fatal(found.error().message());
    path = *found;
  }
  service.SetReadyUptime(UptimeSeconds());
  Log().Info("agent ready on {} uptime={:.3f}s", path, UptimeSeconds());
  ServePort(&server, &service, path);
}

}  // namespace cocoon::agent
