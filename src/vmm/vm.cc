#include "vmm/vm.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::vmm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Under TCG on a busy two-core host QEMU takes well under a second to build the machine; the
// margin covers a loaded CI machine.
constexpr milliseconds kStartTimeout{15000};
constexpr milliseconds kQmpTimeout{5000};
constexpr size_t kMaxStderrBytes = 16384;

std::string StderrPath(const QemuConfig& config) { return config.console_log + ".qemu"; }

milliseconds Left(Clock::time_point deadline) {
  return std::max(milliseconds(0),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

}  // namespace

Result<std::unique_ptr<Vm>> Vm::Launch(const QemuConfig& given) {
  QemuConfig config = given;
  if (config.accel == Accel::kTcg && config.guest_tsc_khz == 0) {
    config.guest_tsc_khz = HostTscKhz().value_or(0);
  }
  COCOON_ASSIGN_OR_RETURN(std::vector<std::string> argv, BuildQemuArgv(config));
  auto deadline = Clock::now() + kStartTimeout;
  // A socket file left by an earlier QEMU would accept nothing and only delay AwaitQmp.
  if (::unlink(config.qmp_socket.c_str()) != 0 && errno != ENOENT) {
    return Error::FromErrno(errno, "remove stale " + config.qmp_socket);
  }
  std::string stderr_path = StderrPath(config);
  UniqueFd err(::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!err) return Error::FromErrno(errno, "create " + stderr_path);

  SpawnOptions options;
  options.argv = std::move(argv);
  options.fds = {{2, err.get()}, {config.agent_fd, config.agent_fd}};
  for (const QemuConfig::Nic& nic : config.nics) options.fds.emplace_back(nic.tap_fd, nic.tap_fd);
  options.netns_fd = config.netns_fd;
  options.new_process_group = true;  // a terminal's Ctrl-C reaches cocoon, not QEMU
  // QEMU never outlives a crashed cocoon.
  // Limitation: the signal follows the calling thread, not the process (see vm.h).
  options.parent_death_signal = SIGKILL;
  auto child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.error().Wrap("launch QEMU");
  std::unique_ptr<Vm> vm(new Vm(config, std::move(child).value()));
  Log().With("vm", config.name).Debug("qemu started pid={}", vm->pid());
  // On error `vm` goes out of scope, which kills and reaps QEMU.
  COCOON_RETURN_IF_ERROR(vm->AwaitQmp(deadline));
  return vm;
}

// QEMU serves QMP only from its main loop, which starts after the machine is built (kernel and
// initrd loaded, devices created), so a QMP greeting proves that start-up succeeded.
Status Vm::AwaitQmp(Clock::time_point deadline) {
  for (;;) {
    if (child_.WaitFor(milliseconds(0))) {
      return Error(Code::kFailedPrecondition, StartFailure("QEMU exited during start-up"));
    }
    auto fd = ConnectUnix(config_.qmp_socket, milliseconds(0));
    if (fd.ok()) {
      auto qmp = QmpClient::FromFd(std::move(fd).value(), std::min(Left(deadline), kQmpTimeout));
      if (qmp.ok()) {
        qmp_.emplace(std::move(qmp).value());
        qmp_->set_timeout(kQmpTimeout);
        return OkStatus();
      }
      // The usual reason is QEMU exiting after it opened the socket; give it time to finish.
      if (child_.WaitFor(milliseconds(1000))) {
        return Error(Code::kFailedPrecondition, StartFailure("QEMU exited during start-up"));
      }
      return qmp.error().Wrap(StartFailure("QEMU's QMP socket did not answer"));
    }
    if (Clock::now() >= deadline) {
      return Error(Code::kDeadlineExceeded,
                   StartFailure("QEMU did not open its QMP socket within " +
                                std::to_string(kStartTimeout.count()) + " ms"));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

std::string Vm::StartFailure(const std::string& what) {
  std::string message = what;
  if (auto code = Exited()) message += " (exit code " + std::to_string(*code) + ")";
  std::string text = QemuStderr();
  message += text.empty() ? "; QEMU wrote nothing on stderr" : ": " + text;
  return message;
}

Vm::~Vm() {
  Kill();
  ::unlink(config_.qmp_socket.c_str());
}

int Vm::Stop(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (auto code = Exited()) return *code;
  bool asked = false;
  if (qmp_) {
    qmp_->set_timeout(std::min(timeout, kQmpTimeout));
    Status quit = qmp_->Quit();
    if (!quit.ok()) Log().With("vm", config_.name).Warn("qmp quit: {}", quit.error().message());
    asked = quit.ok();
    qmp_.reset();
  }
  // QEMU treats SIGTERM like "quit"; used when QMP is gone.
  if (!asked) (void)child_.Signal(SIGTERM);
  std::optional<int> status = child_.WaitFor(Left(deadline));
  if (!status) {
    Log().With("vm", config_.name).Warn("qemu pid={} did not quit in time; killing it", pid());
    child_.Kill();
    status = child_.WaitFor(milliseconds(0));
  }
  return status ? ExitCodeFromWaitStatus(*status) : 128 + SIGKILL;
}

void Vm::Kill() {
  qmp_.reset();
  child_.Kill();
}

std::optional<int> Vm::Exited() {
  std::optional<int> status = child_.WaitFor(milliseconds(0));
  if (!status) return std::nullopt;
  return ExitCodeFromWaitStatus(*status);
}

std::string Vm::QemuStderr() const {
  UniqueFd fd(::open(StderrPath(config_).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  std::string text(kMaxStderrBytes, '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace cocoon::vmm
