// Command-line flags of containerd-shim-cocoon-v2, parsed the way Go's `flag` package does
// (containerd passes `-namespace ns -address a ... start`), also accepting `--flag` and
// `-flag=value` (contract section 1.3).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace cocoon::shim {

struct ShimFlags {
  std::string ns;  // -namespace
  std::string address;
  std::string publish_binary;
  std::string id;
  std::string bundle;
  std::string socket;  // -socket: only for the daemon that `start` spawns (not containerd)
  std::string config;  // -config: likewise; the cocoon config file named by the runtime options
  bool debug = false;
  bool version = false;
  std::string action;  // "start", "delete", "serve" or "" (with -v)
};

// Parses argv without argv[0]. Unknown flags, a flag without its value and unknown actions are
// INVALID_ARGUMENT with a message naming them.
Result<ShimFlags> ParseFlags(const std::vector<std::string>& args);

}  // namespace cocoon::shim
