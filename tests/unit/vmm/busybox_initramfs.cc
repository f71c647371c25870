#include "busybox_initramfs.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>

#include "common/io.h"

namespace cocoon::vmm::testing {
namespace {

// The "newc" format the kernel unpacks: a 110-byte ASCII header, the name, the data, each padded
// to 4 bytes; the archive ends with an entry named TRAILER!!!.
class CpioWriter {
 public:
  void Add(const std::string& name, uint32_t mode, const std::string& data = "",
           uint32_t rdev_major = 0, uint32_t rdev_minor = 0) {
    char header[111];
    std::snprintf(header, sizeof(header),
                  "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ++ino_, mode, 0, 0,
                  1, 0, static_cast<unsigned>(data.size()), 0, 0, rdev_major, rdev_minor,
                  static_cast<unsigned>(name.size() + 1), 0);
    out_.append(header, 110);
    out_.append(name);
    out_.push_back('\0');
    Pad();
    out_.append(data);
    Pad();
  }
  std::string Finish() {
    Add("TRAILER!!!", 0);
    return std::move(out_);
  }

 private:
  void Pad() { out_.append((4 - out_.size() % 4) % 4, '\0'); }
  std::string out_;
  uint32_t ino_ = 0;
};

constexpr const char* kApplets[] = {"sh",     "mount", "mknod", "cat",    "echo", "sleep",
                                    "reboot", "mkdir", "chown", "mkfifo", "stat", "ls"};

}  // namespace

Status WriteBusyboxInitramfs(const std::string& path, const std::string& init_script,
                             const std::string& busybox) {
  COCOON_ASSIGN_OR_RETURN(std::string busybox_bytes, ReadFile(busybox, 64 << 20));
  CpioWriter cpio;
  for (const char* dir : {"bin", "dev", "proc", "sys", "mnt"}) cpio.Add(dir, S_IFDIR | 0755);
  // The kernel opens /dev/console for init's stdio before anything is mounted.
  cpio.Add("dev/console", S_IFCHR | 0600, "", 5, 1);
  cpio.Add("bin/busybox", S_IFREG | 0755, busybox_bytes);
  for (const char* applet : kApplets) {
    cpio.Add(std::string("bin/") + applet, S_IFLNK | 0777, "busybox");
  }
  cpio.Add("init", S_IFREG | 0755, "#!/bin/busybox sh\n" + init_script);
  return WriteFileAtomic(path, cpio.Finish());
}

}  // namespace cocoon::vmm::testing
