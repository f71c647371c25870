#include <cstdio>

#include "cli/commands.h"
#include "cocoon_version.h"
#include "sandbox/agent_client.h"

namespace cocoon::cli {

int VersionCommand() {
  std::printf("cocoon version %s\nagent protocol: %u.%u\nspec: 1.0.2\n", COCOON_VERSION,
              sandbox::kAgentProtocolMajor, sandbox::kAgentProtocolMinor);
  return 0;
}

}  // namespace cocoon::cli
