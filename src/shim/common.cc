#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <nlohmann/json.hpp>

#include "common/io.h"
#include "common/log.h"
#include "shim/commands.h"
#include "shim/socket.h"

namespace cocoon::shim {

void LogToBundleFifo(const std::string& bundle, bool debug) {
  // Nobody may read the FIFO while containerd restarts: a write must then fail, not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  SetLogLevel(debug ? LogLevel::kDebug : LogLevel::kInfo);
  int fd = ::open((bundle + "/log").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    SetLogFd(-1);
    return;
  }
  (void)SetNonblocking(fd, false);
  // Limitation: the fd stays open for the life of the process (the logger has no owner for it).
  SetLogFd(fd);
}

std::string BundleDir(const ShimFlags& flags) {
  if (!flags.bundle.empty()) return flags.bundle;
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return ".";
  return buf;
}

std::string GroupForBundle(const ShimFlags& flags, const std::string& bundle) {
  nlohmann::json spec;
  if (auto text = ReadFile(bundle + "/config.json"); text.ok()) {
    spec = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  }
  return GroupKey(spec, flags.id);
}

std::string SocketForBundle(const ShimFlags& flags, const std::string& bundle) {
  return SocketPath(flags.address, flags.ns, GroupForBundle(flags, bundle));
}

std::string ShimStateRoot(const std::string& state_root, const std::string& ns) {
  return state_root + "/.containerd/" + ns;
}

}  // namespace cocoon::shim
