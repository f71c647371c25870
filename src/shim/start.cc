// `start`: containerd reads our stdout and stderr together and takes the whole text as the
// address, so nothing but the address is ever printed on success (contract 1.4).
#include <limits.h>
#include <unistd.h>

#include <cstdio>

#include "common/io.h"
#include "common/log.h"
#include "common/process.h"
#include "sandbox/config.h"
#include "shim/commands.h"
#include "shim/options.h"
#include "shim/socket.h"

namespace cocoon::shim {
namespace {

// The runtime options Any (or nothing), read to EOF.
std::string ReadStdin() {
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(STDIN_FILENO, buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
  return data;
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "containerd-shim-cocoon-v2";
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "containerd-shim-cocoon-v2 start: %s\n", message.c_str());
  return 1;
}

Result<std::string> StartDaemon(const ShimFlags& flags, const std::string& bundle,
                                const std::string& socket, const std::string& config_path) {
  if (socket.size() > kMaxSocketPath) {
    return Error(Code::kInvalidArgument, "socket path longer than 106 bytes: " + socket);
  }
  COCOON_RETURN_IF_ERROR(MakeDirs(kSocketDir, 0711));
  std::string address = "unix://" + socket;
  if (PathExists(socket)) {
    // A live daemon for this group: hand out its address (grouping, contract 1.5).
    if (ConnectUnix(socket, std::chrono::milliseconds(200)).ok()) return address;
    ::unlink(socket.c_str());  // left by a daemon that is gone
  }
  COCOON_ASSIGN_OR_RETURN(UniqueFd listener, ListenUnix(socket));
  SpawnOptions opts;
  opts.argv = {SelfExe(),
               "-namespace",
               flags.ns,
               "-address",
               flags.address,
               "-publish-binary",
               flags.publish_binary,
               "-id",
               flags.id,
               "-bundle",
               bundle,
               "-socket",
               socket};
  if (flags.debug) opts.argv.push_back("-debug");
  if (!config_path.empty()) {
    opts.argv.push_back("-config");
    opts.argv.push_back(config_path);
  }
  opts.argv.push_back("serve");
  // Bound before we print the address, so containerd's connect cannot race the daemon's start.
  opts.fds = {{3, listener.get()}};  // 0, 1, 2 become /dev/null: containerd's pipe must close
  opts.cwd = bundle;
  opts.new_session = true;
  auto pid = SpawnProcess(opts);
  if (!pid.ok()) {
    ::unlink(socket.c_str());
    return pid.error();
  }
  // Not reaped: we exit right away and the daemon is re-parented.
  (void)WriteFileAtomic(bundle + "/shim.pid", std::to_string(*pid), 0644);
  return address;
}

}  // namespace

int RunStart(const ShimFlags& flags) {
  std::string config_path = ConfigPathFromOptions(ReadStdin());
  if (!config_path.empty()) {
    // Checked here, where containerd shows the message; the daemon could only log it.
    auto config = sandbox::LoadConfig(config_path);
    if (!config.ok()) return Fail(config.error().message());
  }
  std::string bundle = BundleDir(flags);
  LogToBundleFifo(bundle, flags.debug);
  std::string socket = SocketForBundle(flags, bundle);
  auto address = StartDaemon(flags, bundle, socket, config_path);
  if (!address.ok()) return Fail(address.error().message());
  Status written = WriteFileAtomic(bundle + "/address", *address, 0644);
  if (!written.ok()) return Fail(written.error().message());
  std::fputs(address->c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace cocoon::shim
