#include "agent/port.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <thread>

#include "common/io.h"

namespace cocoon::agent {

Result<std::string> FindPort(const PortLocation& where) {
  std::string class_dir = where.sysfs_root + "/class/virtio-ports";
  DIR* dir = ::opendir(class_dir.c_str());
  if (dir == nullptr) return Error::FromErrno(errno, "open " + class_dir);
  std::string found;
  while (dirent* e = ::readdir(dir)) {
    std::string entry = e->d_name;
    if (entry == "." || entry == "..") continue;
    Result<std::string> name = ReadFile(class_dir + "/" + entry + "/name", 256);
    if (!name.ok()) continue;  // unnamed ports have an empty or missing name
    std::string value = *name;
    while (!value.empty() && (value.back() == '\n' || value.back() == '\0')) value.pop_back();
    if (value == where.name) {
      found = entry;
      break;
    }
  }
  ::closedir(dir);
  if (found.empty()) {
    return Error(Code::kNotFound, "no virtio-serial port named " + where.name + " in " + class_dir);
  }
  std::string dev = where.dev_root + "/" + found;
  if (!PathExists(dev)) return Error(Code::kNotFound, "port " + found + " has no " + dev);
  return dev;
}

Result<std::string> WaitForPort(const PortLocation& where, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Result<std::string> path = FindPort(where);
    if (path.ok() || std::chrono::steady_clock::now() >= deadline) return path;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<UniqueFd> OpenPort(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (fd) return fd;
    int err = errno;
    if (err != EBUSY || std::chrono::steady_clock::now() >= deadline) {
      return Error::FromErrno(err, "open " + path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void WaitForHost(int port_fd) {
  // Limitation: the port gives no wake-up when the host attaches (only SIGIO), so this polls
  // every 20 ms while the host is away; the cost is a few wake-ups, and only then.
  for (;;) {
    pollfd pfd{port_fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return;  // let the server's read report the problem
    if (!(pfd.revents & POLLHUP)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace cocoon::agent
