#include "agent/crun_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>

#include "agent/command.h"
#include "agent/console_socket.h"
#include "common/io.h"
#include "common/log.h"
#include "common/process.h"

namespace cocoon::agent {

namespace {

constexpr size_t kMaxMessage = 2048;

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<pid_t> ReadPidFile(const std::string& path) {
  COCOON_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 64));
  text = Trim(text);
  long pid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (ec != std::errc() || end != text.data() + text.size() || pid <= 0 || pid > (1L << 22)) {
    return Error(Code::kInternal, "pid file " + path + " does not hold a pid: '" + text + "'");
  }
  return static_cast<pid_t>(pid);
}

std::string CrunMessageFromLog(const std::string& log_text) {
  std::string text = Trim(log_text);
  // Several lines are possible (a warning, then the error); the last ones matter most.
  if (text.size() > kMaxMessage) text = "..." + text.substr(text.size() - kMaxMessage);
  for (char& c : text) {
    if (c == '\n') c = ';';
  }
  return text;
}

CrunRuntime::CrunRuntime(CrunConfig config, Reaper* reaper)
    : config_(std::move(config)), reaper_(reaper) {}

std::string CrunRuntime::ScratchPath(const std::string& suffix) {
  return config_.scratch_dir + "/" + std::to_string(seq_.fetch_add(1)) + suffix;
}

Status CrunRuntime::Run(const std::string& what, const std::vector<std::string>& args,
                        const LaunchStdio* stdio) {
  COCOON_RETURN_IF_ERROR(MakeDirs(config_.scratch_dir, 0700));
  std::string log_path = ScratchPath(".log");
  CommandSpec spec;
  spec.argv = {config_.binary, "--root", config_.state_root, "--log", log_path};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = config_.timeout;
  // For control commands crun's stderr goes to a file of its own: errors that happen before
  // crun opens its log (bad arguments) are only there.
  std::string err_path = log_path + ".stderr";
  UniqueFd err_file;
  if (stdio != nullptr) {
    if (stdio->stdin_fd >= 0) spec.fds.emplace_back(0, stdio->stdin_fd);
    if (stdio->stdout_fd >= 0) spec.fds.emplace_back(1, stdio->stdout_fd);
    if (stdio->stderr_fd >= 0) spec.fds.emplace_back(2, stdio->stderr_fd);
  } else {
    err_file.reset(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!err_file) return Error::FromErrno(errno, "create " + err_path);
    spec.fds.emplace_back(2, err_file.get());
  }
  Log().Debug("running crun {}", what);
  Result<int> status = RunCommand(reaper_, spec);
  err_file.reset();
  std::string log_text;
  if (Result<std::string> text = ReadFile(log_path, 1 << 20); text.ok()) log_text = *text;
  if (log_text.empty() && stdio == nullptr) {
    Result<std::string> err_text = ReadFile(err_path, 1 << 20);
    if (err_text.ok()) log_text = *err_text;
  }
  ::unlink(log_path.c_str());
  ::unlink(err_path.c_str());
  if (!status.ok()) return status.error().Wrap("crun " + what);
  int code = ExitCodeFromWaitStatus(*status);
  if (code == 0) return OkStatus();
  std::string message = CrunMessageFromLog(log_text);
  if (message.empty()) message = "exited with status " + std::to_string(code);
  return Error(Code::kUnknown, "crun " + what + ": " + message);
}

Result<Launched> CrunRuntime::Launch(const std::string& what, std::vector<std::string> args,
                                     const std::string& pid_file, const LaunchStdio& stdio,
                                     const std::function<void(pid_t)>& undo) {
  std::unique_ptr<ConsoleSocket> console;
  if (stdio.terminal) {
    COCOON_RETURN_IF_ERROR(MakeDirs(config_.scratch_dir, 0700));
    console = std::make_unique<ConsoleSocket>();
    COCOON_RETURN_IF_ERROR(console->Listen(ScratchPath(".sock")));
    // The option goes before the container id, which is the last argument.
    args.insert(args.end() - 1, {"--console-socket", console->path()});
  }
  ::unlink(pid_file.c_str());
  LaunchStdio run_stdio = stdio;
  if (stdio.terminal) run_stdio = LaunchStdio{};  // crun's own stdio: /dev/null
  COCOON_RETURN_IF_ERROR(Run(what, args, &run_stdio));
  Launched launched;
  Result<pid_t> pid = ReadPidFile(pid_file);
  ::unlink(pid_file.c_str());
  if (!pid.ok()) {
    undo(-1);
    return pid.error().Wrap("crun " + what);
  }
  launched.pid = *pid;
  if (console) {
    Result<UniqueFd> master = console->ReceiveFd(config_.console_timeout);
    if (!master.ok()) {
      undo(launched.pid);
      return master.error().Wrap("crun " + what + ": terminal");
    }
    launched.pty_master = std::move(*master);
  }
  return launched;
}

Result<Launched> CrunRuntime::Create(const std::string& id, const std::string& bundle_dir,
                                     const LaunchStdio& stdio) {
  std::string pid_file = bundle_dir + "/init.pid";
  return Launch("create", {"create", "--bundle", bundle_dir, "--pid-file", pid_file, id}, pid_file,
                stdio, [this, &id](pid_t) {
                  Status deleted = Delete(id);
                  if (!deleted.ok()) Log().Warn("cleanup: {}", deleted.error().message());
                });
}

Status CrunRuntime::Start(const std::string& id) { return Run("start", {"start", id}, nullptr); }

Result<Launched> CrunRuntime::Exec(const std::string& id, const std::string& process_json_path,
                                   const std::string& work_dir, const LaunchStdio& stdio) {
  std::string pid_file = work_dir + "/exec.pid";
  return Launch("exec",
                {"exec", "--process", process_json_path, "--detach", "--pid-file", pid_file, id},
                pid_file, stdio, [](pid_t pid) {
                  // Without a pid the process cannot be found; it ends with its container.
                  if (pid > 0) ::kill(pid, SIGKILL);
                });
}

Status CrunRuntime::KillAll(const std::string& id, int sig) {
  return Run("kill", {"kill", "--all", id, std::to_string(sig)}, nullptr);
}

Status CrunRuntime::Delete(const std::string& id) {
  return Run("delete", {"delete", "--force", id}, nullptr);
}

Status CrunRuntime::Pause(const std::string& id) { return Run("pause", {"pause", id}, nullptr); }

Status CrunRuntime::Resume(const std::string& id) { return Run("resume", {"resume", id}, nullptr); }

Status CrunRuntime::Update(const std::string& id, const std::string& resources_path) {
  return Run("update", {"update", "--resources", resources_path, id}, nullptr);
}

std::string CrunRuntime::Version() {
  Result<std::string> out =
      RunCommandOutput(reaper_, {config_.binary, "--version"}, std::chrono::seconds(10));
  if (!out.ok()) return "unknown (" + out.error().message() + ")";
  std::string text = *out;
  return Trim(text.substr(0, text.find('\n')));
}

}  // namespace cocoon::agent
