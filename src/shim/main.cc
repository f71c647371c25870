// containerd-shim-cocoon-v2: the containerd runtime v2 shim for cocoon (io.containerd.cocoon.v2).
#include <cstdio>
#include <string>
#include <vector>

#include "cocoon_version.h"
#include "common/log.h"
#include "shim/commands.h"
#include "shim/flags.h"

int main(int argc, char** argv) {
  using namespace cocoon::shim;
  // Never the terminal or containerd's pipe: each mode decides where its log goes.
  cocoon::SetLogFd(-1);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = ParseFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "containerd-shim-cocoon-v2: %s\n", flags.error().message().c_str());
    return 2;
  }
  if (flags->version && flags->action.empty()) {
    std::printf("containerd-shim-cocoon-v2 %s\n", COCOON_VERSION);
    return 0;
  }
  if (flags->action == "start") return RunStart(*flags);
  if (flags->action == "delete") return RunDelete(*flags);
  return RunDaemon(*flags);
}
