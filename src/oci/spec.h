// The OCI runtime spec as cocoon needs it: load and validate a bundle's config.json, derive VM
// resources, and rewrite the spec for the guest (paths under the 9p share, host-only parts
// removed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace cocoon::oci {

// Where the agent mounts the sandbox's 9p share inside the guest.
inline constexpr char kGuestShareRoot[] = "/run/cocoon/share";

struct Bundle {
  std::string dir;        // absolute bundle directory
  nlohmann::json spec;    // parsed config.json
  std::string rootfs;     // absolute host path of root.path
  bool terminal = false;  // process.terminal
};

// Reads and validates <dir>/config.json. Errors name the bundle and the offending field.
Result<Bundle> LoadBundle(const std::string& dir);

// Checks what cocoon relies on: ociVersion, a process with non-empty string args, a root.path,
// well-typed mounts. Returns INVALID_ARGUMENT naming the first problem.
Status ValidateSpec(const nlohmann::json& spec);

struct VmResources {
  uint32_t vcpus = 1;
  uint64_t memory_mib = 256;
};

// vCPUs from linux.resources.cpu quota/period (rounded up), memory from
// linux.resources.memory.limit plus the guest's own overhead; `defaults` where the spec is silent.
VmResources ResourcesFromSpec(const nlohmann::json& spec, const VmResources& defaults);

// A host path that must appear in the share so the guest can bind-mount it.
struct ShareBind {
  std::string host_source;  // absolute host path (file or directory)
  std::string share_path;   // path relative to the share root
  bool read_only = false;
};

struct GuestSpec {
  nlohmann::json spec;           // the spec the agent hands to crun
  std::vector<ShareBind> binds;  // rootfs first, then bind mounts in spec order
};

// Rewrites `bundle.spec` for container `container_id` in the guest: root.path and bind-mount
// sources move under kGuestShareRoot/<id>/, hooks are dropped (host programs), namespace
// paths (host files) are dropped, the network namespace is dropped (containers share the guest's,
// which stands for the pod's), systemd-style cgroupsPath is dropped (no systemd in the guest).
Result<GuestSpec> RewriteForGuest(const Bundle& bundle, const std::string& container_id);

}  // namespace cocoon::oci
