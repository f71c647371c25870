#include "sandbox/mounts.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstring>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::sandbox {

Status EnterPrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) return Error::FromErrno(errno, "unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return Error::FromErrno(errno, "make / a slave mount");
  }
  return OkStatus();
}

Result<BindMount> BindMount::Create(const std::string& source, const std::string& target,
                                    bool read_only) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return Error::FromErrno(errno, "bind source " + source);
  std::string parent = target.substr(0, target.rfind('/'));
  COCOON_RETURN_IF_ERROR(MakeDirs(parent, 0755));
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) {
      return Error::FromErrno(errno, "mkdir " + target);
    }
  } else {
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Error::FromErrno(errno, "create " + target);
    ::close(fd);
  }
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Error::FromErrno(errno, "bind mount " + source + " on " + target);
  }
  BindMount m(target);
  if (read_only && ::mount(nullptr, target.c_str(), nullptr,
                           MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, nullptr) != 0) {
    return Error::FromErrno(errno, "remount " + target + " read-only");
  }
  return m;
}

BindMount::~BindMount() {
  if (target_.empty()) return;
  if (::umount2(target_.c_str(), MNT_DETACH) != 0) {
    Log().Warn("umount {}: {}", target_, std::strerror(errno));
  }
}

}  // namespace cocoon::sandbox
