// Engine configuration: compiled defaults, then /etc/cocoon/cocoon.toml (or an explicit path), then
// COCOON_* environment variables. `cocoon env` prints the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "vmm/accel.h"

namespace cocoon::sandbox {

inline constexpr char kDefaultConfigPath[] = "/etc/cocoon/cocoon.toml";

struct EngineConfig {
  std::string state_root = "/run/cocoon";
  std::string qemu_binary = "qemu-system-x86_64";
  std::string kernel;  // resolved by ResolveAssets when empty
  std::string initrd;
  uint32_t default_vcpus = 1;
  uint64_t default_memory_mib = 256;
  std::string kernel_cmdline_extra;
  std::string config_file;  // the file that was read, or "" if none
  // The accelerator decision, made once by the front end (which may tell the user about it);
  // Sandbox::Create detects it itself when this is unset.
  std::optional<vmm::AccelDecision> accel;
  // Where each setting came from, for `cocoon env`: "default", "file", or "env".
  std::vector<std::pair<std::string, std::string>> origins;
};

// Loads the configuration. `path` empty means kDefaultConfigPath if it exists. A file that exists
// but does not parse, or holds unknown keys or wrongly typed values, is an error naming it.
Result<EngineConfig> LoadConfig(const std::string& path = "");

// Fills kernel and initrd when not configured: next to the executable in the build tree
// (<exe>/../guest/) or installed (<exe>/../share/cocoon/), then /usr/share/cocoon. Errors list
// every place looked at and how to build the assets.
Status ResolveAssets(EngineConfig* config);

// Directory of the running executable.
std::string ExecutableDir();

}  // namespace cocoon::sandbox
