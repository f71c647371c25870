// The rootfs mounts of CreateTaskRequest (contract section 7.2), mounted in order onto
// <bundle>/rootfs: overlay (options passed to the kernel) and bind (with rbind/ro).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "proto/containerd_mount.pb.h"

namespace cocoon::shim {

namespace mountpb = ::containerd::types;

// Splits fstab-style options into mount(2) flags and the data string the filesystem gets.
struct MountOptions {
  unsigned long flags = 0;
  std::string data;
  bool recursive_bind = false;
};
MountOptions ParseMountOptions(const std::vector<std::string>& options);

// The mounts, undone (lazily, in reverse order) when destroyed.
class RootfsMounts {
 public:
  // An empty list mounts nothing (config.json's root.path is then already a directory).
  static Result<RootfsMounts> Mount(const std::vector<mountpb::Mount>& mounts,
                                    const std::string& target);
  RootfsMounts() = default;
  RootfsMounts(RootfsMounts&& other) noexcept : targets_(std::move(other.targets_)) {
    other.targets_.clear();
  }
  RootfsMounts& operator=(RootfsMounts&& other) noexcept;
  RootfsMounts(const RootfsMounts&) = delete;
  ~RootfsMounts() { Unmount(); }

  void Unmount();

 private:
  std::vector<std::string> targets_;
};

// Lazily unmounts everything stacked on `path`; ignores "not mounted". For `delete`.
void UnmountAll(const std::string& path);

}  // namespace cocoon::shim
