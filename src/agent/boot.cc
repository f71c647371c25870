#include "agent/boot.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <sstream>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::agent {

namespace {

Status Mount(const char* source, const char* target, const char* type, unsigned long flags,
             const char* data) {
  COCOON_RETURN_IF_ERROR(MakeDirs(target, 0755));
  if (::mount(source, target, type, flags, data) != 0) {
    // EBUSY: already mounted (the kernel or an earlier attempt did it), which is what we want.
    if (errno == EBUSY) return OkStatus();
    return Error::FromErrno(errno, std::string("mount ") + type + " on " + target);
  }
  return OkStatus();
}

void Warn(const Status& status) {
  if (!status.ok()) Log().Warn("boot: {}", status.error().message());
}

constexpr unsigned long kNoExecFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

}  // namespace

BootConfig ParseKernelCmdline(const std::string& cmdline) {
  BootConfig config;
  std::istringstream in(cmdline);
  std::string word;
  while (in >> word) {
    size_t eq = word.find('=');
    if (word.rfind("cocoon.", 0) != 0 || eq == std::string::npos) continue;
    std::string key = word.substr(7, eq - 7);
    std::string value = word.substr(eq + 1);
    if (key == "share_cache" && !value.empty()) {
      config.share_cache = value;
    } else if (key == "share_msize") {
      uint32_t msize = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), msize);
      if (ec == std::errc() && end == value.data() + value.size() && msize >= 4096) {
        config.share_msize = msize;
      }
    } else if (key == "log") {
      LogLevel level;
      if (ParseLogLevel(value, &level)) config.log_level = level;
    } else if (key == "hostname" && !value.empty() && value.size() < 64) {
      config.hostname = value;
    }
  }
  return config;
}

std::string ShareMountOptions(const BootConfig& config) {
  return "trans=virtio,version=9p2000.L,msize=" + std::to_string(config.share_msize) +
         ",cache=" + config.share_cache;
}

int SetUpConsole() {
  Status dev = Mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  int fd = ::open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0) {
    SetLogFd(fd);
    // Plain (not CLOEXEC) duplicates as stdout/stderr, and /dev/null as stdin: children get
    // their stdio explicitly, but a crash message of our own must still reach the console.
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0 && null_fd != STDIN_FILENO) {
      ::dup2(null_fd, STDIN_FILENO);
      ::close(null_fd);
    }
  }
  Warn(dev);
  return fd;
}

std::string EnableCgroupControllers(const std::string& cgroup_root) {
  Result<std::string> available = ReadFile(cgroup_root + "/cgroup.controllers", 4096);
  if (!available.ok()) {
    Log().Warn("boot: cgroup controllers unknown: {}", available.error().message());
    return "";
  }
  std::istringstream in(*available);
  std::string name, enabled;
  std::string control = cgroup_root + "/cgroup.subtree_control";
  while (in >> name) {
    // One controller per write: a controller the kernel refuses must not block the others.
    UniqueFd fd(::open(control.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd && WriteAll(fd.get(), "+" + name).ok()) {
      enabled += (enabled.empty() ? "" : " ") + name;
    } else {
      Log().Warn("boot: cgroup controller {} not enabled errno={}", name, errno);
    }
  }
  return enabled;
}

Status BringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket for loopback");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return Error::FromErrno(errno, "get lo flags");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return Error::FromErrno(errno, "set lo up");
  return OkStatus();
}

Status MakeRootPivotable() {
  constexpr const char* kBindDir = "/.cocoon-root";
  if (::mkdir(kBindDir, 0700) != 0 && errno != EEXIST) {
    return Error::FromErrno(errno, std::string("mkdir ") + kBindDir);
  }
  if (::mount("/", kBindDir, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Error::FromErrno(errno, "bind / for a pivotable root");
  }
  if (::chdir(kBindDir) != 0) return Error::FromErrno(errno, std::string("chdir ") + kBindDir);
  if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) {
    return Error::FromErrno(errno, "move the root bind mount to /");
  }
  if (::chroot(".") != 0) return Error::FromErrno(errno, "chroot into the moved root");
  if (::chdir("/") != 0) return Error::FromErrno(errno, "chdir /");
  return OkStatus();
}

Status BootGuest(const BootConfig& config) {
  // Before anything else is mounted, so every later mount lands in the new root.
  Warn(MakeRootPivotable());
  // Without /proc neither crun nor the agent's own bookkeeping can work: the one fatal step.
  COCOON_RETURN_IF_ERROR(Mount("proc", "/proc", "proc", kNoExecFlags, nullptr));
  Warn(Mount("sysfs", "/sys", "sysfs", kNoExecFlags, nullptr));
  Warn(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  if (::symlink("pts/ptmx", "/dev/ptmx") != 0 && errno != EEXIST) {
    // devtmpfs has a ptmx node of its own; a failed symlink only means the old node stays.
    Log().Warn("boot: /dev/ptmx symlink: errno={}", errno);
  }
  Warn(Mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  Warn(Mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  Warn(Mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  Status cgroup = Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", kNoExecFlags, "nsdelegate");
  Warn(cgroup);
  if (cgroup.ok()) {
    std::string enabled = EnableCgroupControllers("/sys/fs/cgroup");
    Log().Info("boot: cgroup2 controllers enabled: {}", enabled.empty() ? "none" : enabled);
  }
  std::string options = ShareMountOptions(config);
  Status share = Mount(kShareTag, kShareMountPoint, "9p", MS_NOSUID | MS_NODEV, options.c_str());
  if (share.ok()) {
    Log().Info("boot: share {} mounted on {} ({})", kShareTag, kShareMountPoint, options);
  } else {
    // A sandbox without a share (nothing to run from the host's disk yet) is still useful.
    Log().Warn("boot: no 9p share: {}", share.error().message());
  }
  if (::sethostname(config.hostname.data(), config.hostname.size()) != 0) {
    Log().Warn("boot: sethostname errno={}", errno);
  }
  Warn(BringUpLoopback());
  return OkStatus();
}

}  // namespace cocoon::agent
