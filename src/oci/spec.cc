#include "oci/spec.h"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>

#include "common/io.h"

namespace cocoon::oci {
namespace {

using nlohmann::json;

Error Invalid(const std::string& what) { return Error(Code::kInvalidArgument, what); }

bool IsBindMount(const json& m) {
  if (m.value("type", "") == "bind") return true;
  if (auto it = m.find("options"); it != m.end() && it->is_array()) {
    for (const auto& o : *it) {
      if (o.is_string() && (o == "bind" || o == "rbind")) return true;
    }
  }
  return false;
}

bool HasOption(const json& m, const char* opt) {
  if (auto it = m.find("options"); it != m.end() && it->is_array()) {
    for (const auto& o : *it) {
      if (o.is_string() && o == opt) return true;
    }
  }
  return false;
}

std::string Absolute(const std::string& base, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  return base + "/" + path;
}

}  // namespace

Status ValidateSpec(const json& spec) {
  if (!spec.is_object()) return Invalid("config.json: the top level must be an object");
  if (auto v = spec.find("ociVersion"); v == spec.end() || !v->is_string()) {
    return Invalid("config.json: ociVersion (string) is missing");
  }
  auto process = spec.find("process");
  if (process == spec.end() || !process->is_object()) {
    return Invalid("config.json: process is missing");
  }
  auto args = process->find("args");
  if (args == process->end() || !args->is_array() || args->empty()) {
    return Invalid("config.json: process.args is missing or empty");
  }
  for (const auto& a : *args) {
    if (!a.is_string()) return Invalid("config.json: process.args must hold only strings");
  }
  if (auto t = process->find("terminal"); t != process->end() && !t->is_boolean()) {
    return Invalid("config.json: process.terminal must be a boolean");
  }
  if (auto e = process->find("env"); e != process->end()) {
    if (!e->is_array()) return Invalid("config.json: process.env must be an array");
    for (const auto& v : *e) {
      if (!v.is_string()) return Invalid("config.json: process.env must hold only strings");
    }
  }
  auto root = spec.find("root");
  if (root == spec.end() || !root->is_object() || !root->contains("path") ||
      !(*root)["path"].is_string() || (*root)["path"].get<std::string>().empty()) {
    return Invalid("config.json: root.path is missing");
  }
  if (auto mounts = spec.find("mounts"); mounts != spec.end()) {
    if (!mounts->is_array()) return Invalid("config.json: mounts must be an array");
    for (const auto& m : *mounts) {
      if (!m.is_object() || !m.contains("destination") || !m["destination"].is_string()) {
        return Invalid("config.json: every mount needs a destination");
      }
      if (m.contains("source") && !m["source"].is_string()) {
        return Invalid("config.json: mount source of " + m["destination"].get<std::string>() +
                       " must be a string");
      }
    }
  }
  return OkStatus();
}

Result<Bundle> LoadBundle(const std::string& dir_in) {
  std::string dir = dir_in;
  if (dir.empty()) return Invalid("bundle directory is empty");
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return Error::FromErrno(errno, "bundle " + dir);
  }
  dir = resolved;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Invalid("bundle " + dir + " is not a directory");
  }
  auto text = ReadFile(dir + "/config.json", 4 << 20);
  if (!text.ok()) return text.error().Wrap("bundle " + dir);
  Bundle b;
  b.dir = dir;
  try {
    b.spec = json::parse(*text);
  } catch (const json::parse_error& e) {
    return Invalid("bundle " + dir + ": config.json is not valid JSON: " + e.what());
  }
  Status valid = ValidateSpec(b.spec);
  if (!valid.ok()) return valid.error().Wrap("bundle " + dir);
  b.rootfs = Absolute(dir, b.spec["root"]["path"].get<std::string>());
  if (::stat(b.rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Invalid("bundle " + dir + ": root.path " + b.rootfs + " is not a directory");
  }
  b.terminal = b.spec["process"].value("terminal", false);
  return b;
}

VmResources ResourcesFromSpec(const json& spec, const VmResources& defaults) {
  VmResources r = defaults;
  const json* res = nullptr;
  if (auto l = spec.find("linux"); l != spec.end() && l->is_object()) {
    if (auto it = l->find("resources"); it != l->end() && it->is_object()) res = &*it;
  }
  if (res == nullptr) return r;
  if (auto cpu = res->find("cpu"); cpu != res->end() && cpu->is_object()) {
    int64_t quota = cpu->value("quota", int64_t{0});
    uint64_t period = cpu->value("period", uint64_t{0});
    if (quota > 0 && period > 0) {
      double n = std::ceil(static_cast<double>(quota) / static_cast<double>(period));
      r.vcpus = static_cast<uint32_t>(std::clamp(n, 1.0, 32.0));
    }
  }
  if (auto mem = res->find("memory"); mem != res->end() && mem->is_object()) {
    int64_t limit = mem->value("limit", int64_t{0});
    if (limit > 0) {
      // The guest kernel, agent and page cache need room beyond the container's own limit.
      constexpr uint64_t kGuestOverheadMib = 128;
      uint64_t mib = (static_cast<uint64_t>(limit) + (1 << 20) - 1) >> 20;
      r.memory_mib = std::clamp<uint64_t>(mib + kGuestOverheadMib, 128, 65536);
    }
  }
  return r;
}

Result<GuestSpec> RewriteForGuest(const Bundle& bundle, const std::string& container_id) {
  GuestSpec out;
  out.spec = bundle.spec;
  json& spec = out.spec;
  const std::string share_base = container_id;
  const std::string guest_base = std::string(kGuestShareRoot) + "/" + container_id;

  // Shared writable even for a read-only root: crun makes missing mount points (an /etc/hosts the
  // image lacks) before it remounts the root read-only, as runc does; a read-only share would
  // refuse them. root.readonly stays in the spec, so the container still sees a read-only root.
  out.binds.push_back({bundle.rootfs, share_base + "/rootfs", /*read_only=*/false});
  spec["root"]["path"] = guest_base + "/rootfs";

  if (auto mounts = spec.find("mounts"); mounts != spec.end()) {
    int n = 0;
    for (auto& m : *mounts) {
      if (!IsBindMount(m)) continue;
      std::string source = Absolute(bundle.dir, m.value("source", ""));
      struct stat st;
      if (::stat(source.c_str(), &st) != 0) {
        return Error::FromErrno(
            errno, "bind mount source " + source + " for " + m["destination"].get<std::string>());
      }
      std::string rel = share_base + "/mounts/" + std::to_string(n++);
      out.binds.push_back({source, rel, HasOption(m, "ro")});
      m["source"] = std::string(kGuestShareRoot) + "/" + rel;
    }
  }
  // Hooks are host programs: the front ends run them on the host; crun must not run them again.
  spec.erase("hooks");
  if (auto l = spec.find("linux"); l != spec.end() && l->is_object()) {
    if (auto ns = l->find("namespaces"); ns != l->end() && ns->is_array()) {
      json kept = json::array();
      for (auto& n : *ns) {
        // The VM is the pod's network namespace: its containers share the guest's, where the
        // agent gives the NIC the CNI interface's identity. A new one would hold only loopback.
        if (n.is_object() && n.value("type", "") == "network") continue;
        n.erase("path");  // host namespace files mean nothing in the guest
        kept.push_back(n);
      }
      *ns = std::move(kept);
    }
    if (auto cg = l->find("cgroupsPath"); cg != l->end()) {
      if (!cg->is_string() || cg->get<std::string>().find(':') != std::string::npos) {
        l->erase("cgroupsPath");  // "slice:prefix:name" needs systemd, which the guest lacks
      }
    }
  }
  return out;
}

}  // namespace cocoon::oci
