#include "common/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/io.h"
#include "common/unique_fd.h"

namespace cocoon {
namespace {

// Everything the child needs, prepared before fork: after fork in a threaded program only
// async-signal-safe calls are allowed.

[[noreturn]] void ChildFail(int err_fd, int err) {
  ssize_t ignored = ::write(err_fd, &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

void CloseFrom(int lowest, int keep) {
  // close_range is in glibc 2.34+; Debian 12 has 2.36.
  if (keep >= lowest) {
    if (keep > lowest)
      ::close_range(static_cast<unsigned>(lowest), static_cast<unsigned>(keep - 1), 0);
    ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
  } else {
    ::close_range(static_cast<unsigned>(lowest), ~0U, 0);
  }
}

}  // namespace

Result<pid_t> SpawnProcess(const SpawnOptions& options) {
  if (options.argv.empty()) return Error(Code::kInvalidArgument, "spawn: empty argv");
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& e : *options.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  int max_target = 2;
  for (const auto& [child_fd, parent_fd] : options.fds) max_target = std::max(max_target, child_fd);
  // Which fds below max_target the child keeps; every other one is closed, mapped or not, so an
  // fd the parent forgot to mark close-on-exec never leaks into the child.
  std::vector<char> keep(static_cast<size_t>(max_target) + 1, 0);
  for (int std_fd = 0; std_fd <= 2; ++std_fd) keep[static_cast<size_t>(std_fd)] = 1;
  for (const auto& [child_fd, parent_fd] : options.fds) keep[static_cast<size_t>(child_fd)] = 1;

  UniqueFd err_r, err_w;
  COCOON_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return Error::FromErrno(errno, "open /dev/null");

  pid_t pid = ::fork();
  if (pid < 0) return Error::FromErrno(errno, "fork");
  if (pid == 0) {
    int ef = err_w.get();
    if (options.netns_fd >= 0 && ::setns(options.netns_fd, CLONE_NEWNET) != 0) ChildFail(ef, errno);
    // Move every source fd above the target range first so dup2 cannot clobber a source.
    int base = std::max(max_target + 1, 64);
    int staged[64];
    size_t count = std::min<size_t>(options.fds.size(), 64);
    for (size_t i = 0; i < count; ++i) {
      staged[i] = ::fcntl(options.fds[i].second, F_DUPFD_CLOEXEC, base);
      if (staged[i] < 0) ChildFail(ef, errno);
    }
    int null_fd = ::fcntl(devnull.get(), F_DUPFD_CLOEXEC, base);
    int err_fd = ::fcntl(ef, F_DUPFD_CLOEXEC, base);
    if (null_fd < 0 || err_fd < 0) ChildFail(ef, errno);
    ef = err_fd;
    for (int std_fd = 0; std_fd <= 2; ++std_fd) {
      if (::dup2(null_fd, std_fd) < 0) ChildFail(ef, errno);
    }
    for (size_t i = 0; i < count; ++i) {
      if (::dup2(staged[i], options.fds[i].first) < 0) ChildFail(ef, errno);
    }
    for (int fd = 3; fd < max_target; ++fd) {
      if (keep[static_cast<size_t>(fd)] == 0 && fd != ef) ::close(fd);
    }
    CloseFrom(max_target + 1, ef);
    if (options.new_session && ::setsid() < 0) ChildFail(ef, errno);
    if (options.new_process_group && ::setpgid(0, 0) < 0) ChildFail(ef, errno);
    if (options.parent_death_signal != 0) ::prctl(PR_SET_PDEATHSIG, options.parent_death_signal);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ChildFail(ef, errno);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    if (!options.path.empty()) {
      ::execve(options.path.c_str(), argv.data(), options.env ? envp.data() : environ);
    } else if (options.env) {
      ::execvpe(argv[0], argv.data(), envp.data());
    } else {
      ::execvp(argv[0], argv.data());
    }
    ChildFail(ef, errno);
  }
  err_w.reset();
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(err_r.get(), &child_err, sizeof(child_err));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(child_err))) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error::FromErrno(child_err,
                            "execute " + (options.path.empty() ? options.argv[0] : options.path));
  }
  return pid;
}

int ExitCodeFromWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

Result<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  COCOON_ASSIGN_OR_RETURN(pid_t pid, SpawnProcess(options));
  return ChildProcess(pid);
}

Result<int> ChildProcess::Wait() {
  if (status_) return *status_;
  if (pid_ <= 0) return Error(Code::kFailedPrecondition, "no child process");
  int status;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno(errno, "waitpid " + std::to_string(pid_));
  }
  status_ = status;
  return status;
}

std::optional<int> ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int status;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

Status ChildProcess::Signal(int sig) {
  if (!running()) return Error(Code::kNotFound, "process already exited");
  if (::kill(pid_, sig) != 0) return Error::FromErrno(errno, "kill " + std::to_string(pid_));
  return OkStatus();
}

void ChildProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  (void)Wait();
}

Result<RunResult> RunCapture(const std::vector<std::string>& argv, bool merge_stderr, size_t limit,
                             int netns_fd) {
  UniqueFd r, w;
  COCOON_RETURN_IF_ERROR(MakePipe(&r, &w));
  SpawnOptions opts;
  opts.argv = argv;
  opts.netns_fd = netns_fd;
  opts.fds.emplace_back(1, w.get());
  if (merge_stderr) opts.fds.emplace_back(2, w.get());
  COCOON_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(opts));
  w.reset();
  RunResult result;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.output.size() < limit) {
      result.output.append(buf, std::min(static_cast<size_t>(n), limit - result.output.size()));
    }
  }
  COCOON_ASSIGN_OR_RETURN(int status, child.Wait());
  result.exit_code = ExitCodeFromWaitStatus(status);
  return result;
}

}  // namespace cocoon
