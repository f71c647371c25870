// `cocoon env`: the configuration in force and where each value came from.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "vmm/accel.h"

namespace cocoon::cli {

int EnvCommand(const GlobalOptions& global, bool json) {
  auto config = LoadEngineConfig(global);
  if (!config.ok()) return Fail(config.error().message());
  sandbox::EngineConfig resolved = *config;
  Status assets = sandbox::ResolveAssets(&resolved);
  vmm::AccelDecision accel = vmm::DetectAccelerator();

  std::vector<std::pair<std::string, std::string>> values = {
      {"config_file", resolved.config_file},
      {"state_root", resolved.state_root},
      {"qemu", resolved.qemu_binary},
      {"kernel", assets.ok() ? resolved.kernel : "(missing: " + assets.error().message() + ")"},
      {"initrd", assets.ok() ? resolved.initrd : "(missing)"},
      {"vcpus", std::to_string(resolved.default_vcpus)},
      {"memory_mib", std::to_string(resolved.default_memory_mib)},
      {"kernel_cmdline_extra", resolved.kernel_cmdline_extra},
      {"accelerator", vmm::AccelName(accel.accel)},
      {"accelerator_reason", accel.reason},
  };
  auto origin = [&](const std::string& key) -> std::string {
    for (const auto& [k, v] : resolved.origins) {
      if (k == key) return v;
    }
    return "";
  };
  if (json) {
    nlohmann::json doc = nlohmann::json::object();
    for (const auto& [k, v] : values) {
      doc[k] = {{"value", v}, {"origin", origin(k)}};
    }
    std::printf("%s\n", doc.dump(2).c_str());
    return 0;
  }
  for (const auto& [k, v] : values) {
    std::string o = origin(k);
    std::printf("%-22s %s%s\n", k.c_str(), v.c_str(), o.empty() ? "" : ("  [" + o + "]").c_str());
  }
  return 0;
}

}  // namespace cocoon::cli
