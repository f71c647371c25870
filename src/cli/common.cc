#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"

namespace cocoon::cli {

int Fail(const std::string& message) {
  std::fprintf(stderr, "cocoon: %s\n", message.c_str());
  return 1;
}

Result<sandbox::EngineConfig> LoadEngineConfig(const GlobalOptions& global) {
  COCOON_ASSIGN_OR_RETURN(sandbox::EngineConfig config, sandbox::LoadConfig(global.config_path));
  if (!global.root.empty()) {
    config.state_root = global.root;
    for (auto& [k, v] : config.origins) {
      if (k == "state_root") v = "flag --root";
    }
  }
  return config;
}

}  // namespace cocoon::cli
