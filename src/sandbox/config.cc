#include "sandbox/config.h"

#include <unistd.h>

#include <toml++/toml.h>
#include <climits>
#include <cstdlib>

#include "common/io.h"

namespace cocoon::sandbox {
namespace {

void SetOrigin(EngineConfig* c, const std::string& key, const std::string& origin) {
  for (auto& [k, v] : c->origins) {
    if (k == key) {
      v = origin;
      return;
    }
  }
  c->origins.emplace_back(key, origin);
}

Status ApplyFile(const std::string& path, EngineConfig* c) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Error(Code::kInvalidArgument, "config " + path + ": " + std::string(e.description()) +
                                             " at line " + std::to_string(e.source().begin.line));
  }
  for (const auto& [key, node] : table) {
    std::string k(key.str());
    auto bad_type = [&](const char* want) {
      return Error(Code::kInvalidArgument, "config " + path + ": " + k + " must be " + want);
    };
    if (k == "state_root" || k == "qemu" || k == "kernel" || k == "initrd" ||
        k == "kernel_cmdline_extra") {
      auto v = node.value<std::string>();
      if (!v) return bad_type("a string");
      if (k == "state_root") c->state_root = *v;
      if (k == "qemu") c->qemu_binary = *v;
      if (k == "kernel") c->kernel = *v;
      if (k == "initrd") c->initrd = *v;
      if (k == "kernel_cmdline_extra") c->kernel_cmdline_extra = *v;
    } else if (k == "vcpus" || k == "memory_mib") {
      auto v = node.value<int64_t>();
      if (!v || *v <= 0) return bad_type("a positive integer");
      if (k == "vcpus") c->default_vcpus = static_cast<uint32_t>(*v);
      if (k == "memory_mib") c->default_memory_mib = static_cast<uint64_t>(*v);
    } else {
      return Error(Code::kInvalidArgument, "config " + path + ": unknown key '" + k + "'");
    }
    SetOrigin(c, k, "file");
  }
  return OkStatus();
}

Status ApplyEnv(EngineConfig* c) {
  struct Var {
    const char* name;
    const char* key;
    std::string* target;
  };
  for (const Var& v :
       {Var{"COCOON_STATE_ROOT", "state_root", &c->state_root},
        Var{"COCOON_QEMU", "qemu", &c->qemu_binary}, Var{"COCOON_KERNEL", "kernel", &c->kernel},
        Var{"COCOON_INITRD", "initrd", &c->initrd}}) {
    if (const char* val = std::getenv(v.name); val != nullptr && *val != '\0') {
      *v.target = val;
      SetOrigin(c, v.key, std::string("env ") + v.name);
    }
  }
  for (auto [name, key] :
       {std::pair{"COCOON_VCPUS", "vcpus"}, {"COCOON_MEMORY_MIB", "memory_mib"}}) {
    const char* val = std::getenv(name);
    if (val == nullptr || *val == '\0') continue;
    char* end = nullptr;
    long long n = std::strtoll(val, &end, 10);
    if (*end != '\0' || n <= 0) {
      return Error(Code::kInvalidArgument,
                   std::string(name) + "='" + val + "' is not a positive integer");
    }
    if (std::string(key) == "vcpus") c->default_vcpus = static_cast<uint32_t>(n);
    if (std::string(key) == "memory_mib") c->default_memory_mib = static_cast<uint64_t>(n);
    SetOrigin(c, key, std::string("env ") + name);
  }
  return OkStatus();
}

}  // namespace

Result<EngineConfig> LoadConfig(const std::string& path) {
  EngineConfig c;
  for (const char* k :
       {"state_root", "qemu", "kernel", "initrd", "vcpus", "memory_mib", "kernel_cmdline_extra"}) {
    c.origins.emplace_back(k, "default");
  }
  std::string file = path;
  if (file.empty() && PathExists(kDefaultConfigPath)) file = kDefaultConfigPath;
  if (!file.empty()) {
    if (!PathExists(file)) return Error(Code::kNotFound, "config file " + file + " does not exist");
    COCOON_RETURN_IF_ERROR(ApplyFile(file, &c));
    c.config_file = file;
  }
  COCOON_RETURN_IF_ERROR(ApplyEnv(&c));
  if (c.default_vcpus > 32) return Error(Code::kInvalidArgument, "vcpus must be at most 32");
  if (c.default_memory_mib < 64) {
    return Error(Code::kInvalidArgument, "memory_mib must be at least 64");
  }
  return c;
}

std::string ExecutableDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

Status ResolveAssets(EngineConfig* config) {
  std::string exe_dir = ExecutableDir();
  std::string prefix = exe_dir.substr(0, exe_dir.rfind('/'));
  std::vector<std::string> dirs = {prefix + "/guest", prefix + "/share/cocoon",
                                   "/usr/local/share/cocoon", "/usr/share/cocoon"};
  auto find = [&](std::string* target, const char* name, const char* env) -> Status {
    if (!target->empty()) {
      if (!PathExists(*target)) {
        return Error(Code::kNotFound, std::string("guest ") + name + " " + *target +
                                          " does not exist (set by " + env + " or config)");
      }
      return OkStatus();
    }
    std::string looked;
    const char* file = std::string(name) == "kernel" ? "kernel" : "initramfs.cpio";
    for (const auto& d : dirs) {
      std::string p = d + "/" + file;
      if (PathExists(p)) {
        char resolved[PATH_MAX];
        *target = ::realpath(p.c_str(), resolved) ? resolved : p;
        return OkStatus();
      }
      looked += (looked.empty() ? "" : ", ") + p;
    }
    return Error(Code::kNotFound, std::string("guest ") + name + " not found (looked at " + looked +
                                      "); build it with scripts/setup.sh or set " + env);
  };
  COCOON_RETURN_IF_ERROR(find(&config->kernel, "kernel", "COCOON_KERNEL"));
  COCOON_RETURN_IF_ERROR(find(&config->initrd, "initramfs", "COCOON_INITRD"));
  return OkStatus();
}

}  // namespace cocoon::sandbox
