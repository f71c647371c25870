// The per-sandbox state directory <state_root>/<id>/ (mode 0700): console log, QMP socket, share
// directory and owner.json, which names the owning process so that a later command can tell a live
// sandbox from the leftovers of a killed one.
#pragma once

#include <string>

#include "common/result.h"

namespace cocoon::sandbox {

class StateDir {
 public:
  // Creates the directory. If it exists and its owner is alive: ALREADY_EXISTS. If its owner is
  // dead (killed cocoon), the leftovers are removed first.
  static Result<StateDir> Create(const std::string& state_root, const std::string& id);
  StateDir(StateDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  StateDir& operator=(StateDir&&) = delete;
  StateDir(const StateDir&) = delete;
  ~StateDir();  // removes the directory (refusing to descend into mounts)

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

  // Records a child (QEMU) pid in owner.json so stale cleanup can kill it.
  Status RecordVmPid(pid_t pid);

 private:
  explicit StateDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// True if the process recorded in <dir>/owner.json is still the same live process.
bool OwnerAlive(const std::string& dir);
// Kills a recorded VM pid if it still runs and removes the directory; used for stale state.
Status CleanStale(const std::string& dir);

}  // namespace cocoon::sandbox
