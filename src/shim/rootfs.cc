#include "shim/rootfs.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "common/log.h"

namespace cocoon::shim {

MountOptions ParseMountOptions(const std::vector<std::string>& options) {
  // Flag options; everything else goes to the filesystem as data.
  static const std::map<std::string, std::pair<bool, unsigned long>> kFlags = {
      {"ro", {true, MS_RDONLY}},       {"rw", {false, MS_RDONLY}},
      {"nosuid", {true, MS_NOSUID}},   {"suid", {false, MS_NOSUID}},
      {"nodev", {true, MS_NODEV}},     {"dev", {false, MS_NODEV}},
      {"noexec", {true, MS_NOEXEC}},   {"exec", {false, MS_NOEXEC}},
      {"noatime", {true, MS_NOATIME}}, {"relatime", {true, MS_RELATIME}},
      {"bind", {true, MS_BIND}},       {"rbind", {true, MS_BIND | MS_REC}},
      {"sync", {true, MS_SYNCHRONOUS}}};
  MountOptions out;
  for (const std::string& opt : options) {
    auto it = kFlags.find(opt);
    if (it == kFlags.end()) {
      if (opt == "defaults") continue;
      if (!out.data.empty()) out.data += ",";
      out.data += opt;
      continue;
    }
    if (it->second.first) {
      out.flags |= it->second.second;
    } else {
      out.flags &= ~it->second.second;
    }
    if (opt == "rbind") out.recursive_bind = true;
  }
  return out;
}

RootfsMounts& RootfsMounts::operator=(RootfsMounts&& other) noexcept {
  if (this != &other) {
    Unmount();
    targets_ = std::move(other.targets_);
    other.targets_.clear();
  }
  return *this;
}

void RootfsMounts::Unmount() {
  for (auto it = targets_.rbegin(); it != targets_.rend(); ++it) {
    if (::umount2(it->c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      Log().Warn("unmount {}: {}", *it, std::strerror(errno));
    }
  }
  targets_.clear();
}

Result<RootfsMounts> RootfsMounts::Mount(const std::vector<mountpb::Mount>& mounts,
                                         const std::string& target) {
  RootfsMounts done;
  for (const mountpb::Mount& m : mounts) {
    std::vector<std::string> opts(m.options().begin(), m.options().end());
    MountOptions mo = ParseMountOptions(opts);
    std::string type = m.type();
    if (type == "bind" || type == "rbind") {
      mo.flags |= MS_BIND | (type == "rbind" ? MS_REC : 0);
      type = "none";
    } else if (type != "overlay") {
      // Limitation: block-device snapshotters (devmapper) and others are not supported yet.
      return Error(Code::kInvalidArgument, "cocoon: rootfs mount type \"" + m.type() +
                                               "\" is not supported (overlay, bind)");
    }
    unsigned long first = mo.flags;
    // A read-only bind needs a second, remounting call: the first one ignores MS_RDONLY.
    if (mo.flags & MS_BIND) first &= ~MS_RDONLY;
    if (::mount(m.source().c_str(), target.c_str(), type.c_str(), first,
                mo.data.empty() || (mo.flags & MS_BIND) ? nullptr : mo.data.c_str()) != 0) {
      return Error::FromErrno(errno, "mount " + m.type() + " " + m.source() + " on " + target);
    }
    done.targets_.push_back(target);
    if ((mo.flags & MS_BIND) && (mo.flags & MS_RDONLY)) {
      if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) !=
          0) {
        return Error::FromErrno(errno, "remount " + target + " read-only");
      }
    }
  }
  return done;
}

void UnmountAll(const std::string& path) {
  // Stacked mounts come off one at a time; a bound keeps a weird state from looping forever.
  for (int i = 0; i < 16; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
      if (errno != EINVAL && errno != ENOENT) {
        Log().Warn("unmount {}: {}", path, std::strerror(errno));
      }
      return;
    }
  }
}

}  // namespace cocoon::shim
