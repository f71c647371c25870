// Bind mounts that place host paths (container rootfs, volumes) into the sandbox's 9p share.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace cocoon::sandbox {

// Moves the calling process into a private mount namespace whose mounts are slaves of the host's.
// Every mount cocoon then makes is invisible to the host and vanishes with the namespace's last
// process, so even a SIGKILLed cocoon leaves no mount behind. Must run before any thread starts
// (unshare(CLONE_NEWNS) fails in a process with threads).
Status EnterPrivateMountNamespace();

// One bind mount, unmounted (lazily) when destroyed.
class BindMount {
 public:
  // Creates `target` (a directory, or an empty file when `source` is a file) and bind-mounts
  // `source` on it recursively; read-only when asked.
  static Result<BindMount> Create(const std::string& source, const std::string& target,
                                  bool read_only);
  BindMount(BindMount&& other) noexcept : target_(std::move(other.target_)) {
    other.target_.clear();
  }
  BindMount& operator=(BindMount&&) = delete;
  BindMount(const BindMount&) = delete;
  ~BindMount();

  const std::string& target() const { return target_; }

 private:
  explicit BindMount(std::string target) : target_(std::move(target)) {}
  std::string target_;
};

}  // namespace cocoon::sandbox
