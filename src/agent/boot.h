// What PID 1 does before it can serve: the filesystems a Linux userland and crun expect, the
// console for logs, the host's 9p share, hostname and loopback. Only run when the agent is init.
#pragma once

#include <string>

#include "common/log.h"
#include "common/result.h"

namespace cocoon::agent {

inline constexpr const char* kShareTag = "cocoon";
inline constexpr const char* kShareMountPoint = "/run/cocoon/share";

// Knobs read from the kernel command line (cocoon.<name>=<value>); unknown words are ignored.
struct BootConfig {
  std::string share_cache = "none";      // cocoon.share_cache: 9p cache mode (none, loose, mmap...)
  uint32_t share_msize = 262144;         // cocoon.share_msize
  LogLevel log_level = LogLevel::kInfo;  // cocoon.log=debug|info|warn|error
  std::string hostname = "cocoon";       // cocoon.hostname
};

BootConfig ParseKernelCmdline(const std::string& cmdline);

// The 9p mount options for the share.
std::string ShareMountOptions(const BootConfig& config);

// Mounts /dev and opens /dev/console as the log sink (and as fds 1 and 2, so that anything
// written there, a crash report included, reaches the console). Returns the console fd or -1.
int SetUpConsole();

// Everything else. Fails only for what makes the guest unusable (no /proc); every other step
// logs a warning and goes on, so the host still gets an agent to ask.
Status BootGuest(const BootConfig& config);

// The initramfs root ("rootfs") is the one mount with no parent, and pivot_root(2), which crun
// uses to enter a container's root, refuses to run from it. This re-roots PID 1 onto a
// recursive bind mount of itself moved over "/": the same files, but a root with a parent. No
// copy, no re-exec.
Status MakeRootPivotable();

// Brings the loopback interface up (the kernel then adds 127.0.0.1).
Status BringUpLoopback();

// "+cpu +memory ..." written one by one to cgroup.subtree_control; returns the enabled ones.
std::string EnableCgroupControllers(const std::string& cgroup_root);

}  // namespace cocoon::agent
