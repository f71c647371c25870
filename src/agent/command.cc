#include "agent/command.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/io.h"
#include "common/process.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

Result<int> RunCommand(Reaper* reaper, const CommandSpec& spec) {
  SpawnOptions options;
  options.argv = spec.argv;
  options.fds = spec.fds;
  COCOON_ASSIGN_OR_RETURN(pid_t pid, SpawnProcess(options));
  Result<ExitRecord> exit = reaper->WaitFor(pid, spec.timeout);
  if (exit.ok()) return exit->wait_status;
  ::kill(pid, SIGKILL);
  // After SIGKILL the exit is a matter of the kernel's scheduling; wait for it so no zombie or
  // stray status is left behind.
  Result<ExitRecord> killed = reaper->WaitFor(pid, std::chrono::seconds(10));
  (void)killed;
  return Error(Code::kDeadlineExceeded, spec.argv[0] + " did not finish within " +
                                            std::to_string(spec.timeout.count()) + " ms");
}

Result<std::string> RunCommandOutput(Reaper* reaper, const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout, size_t limit) {
  // Output goes to an unlinked temporary file, not a pipe: nothing has to read concurrently, and
  // a chatty program can never block on a full pipe.
  char path[] = "/tmp/cocoon-agent-out.XXXXXX";
  UniqueFd out(::mkostemp(path, O_CLOEXEC));
  if (!out) return Error::FromErrno(errno, "create temporary file");
  ::unlink(path);
  CommandSpec spec;
  spec.argv = argv;
  spec.fds = {{1, out.get()}};
  spec.timeout = timeout;
  COCOON_ASSIGN_OR_RETURN(int status, RunCommand(reaper, spec));
  int code = ExitCodeFromWaitStatus(status);
  if (code != 0) {
    return Error(Code::kUnknown, argv[0] + " exited with status " + std::to_string(code));
  }
  std::string text;
  char buf[8192];
  for (off_t off = 0; text.size() < limit;) {
    ssize_t n = ::pread(out.get(), buf, sizeof(buf), off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  if (text.size() > limit) text.resize(limit);
  return text;
}

}  // namespace cocoon::agent
