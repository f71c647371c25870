// `cocoon spec`: writes a default config.json, as `runc spec` does, with two conveniences: the
// process arguments after `--` and --tty.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/io.h"

namespace cocoon::cli {
namespace {

nlohmann::json DefaultSpec(const std::vector<std::string>& args, bool tty) {
  using nlohmann::json;
  json caps = {"CAP_AUDIT_WRITE",  "CAP_KILL",    "CAP_NET_BIND_SERVICE", "CAP_CHOWN",
               "CAP_DAC_OVERRIDE", "CAP_FOWNER",  "CAP_FSETID",           "CAP_SETGID",
               "CAP_SETUID",       "CAP_SETPCAP", "CAP_NET_RAW",          "CAP_SYS_CHROOT",
               "CAP_MKNOD",        "CAP_SETFCAP"};
  json mount_list = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"},
       {"type", "sysfs"},
       {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      {{"destination", "/sys/fs/cgroup"},
       {"type", "cgroup"},
       {"source", "cgroup"},
       {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
  });
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", tty},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "cocoon"},
      {"mounts", mount_list},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}},
          {{"type", "cgroup"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
}

}  // namespace

int SpecCommand(const SpecOptions& options) {
  std::string path = options.bundle + "/config.json";
  if (PathExists(path)) return Fail("File " + path + " exists. Remove it first");
  std::vector<std::string> args = options.args;
  if (args.empty()) args = {"sh"};
  Status st = WriteFileAtomic(path, DefaultSpec(args, options.tty).dump(2) + "\n", 0644);
  if (!st.ok()) return Fail(st.error().message());
  return 0;
}

}  // namespace cocoon::cli
