#include "common/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace cocoon {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

Status ReadExact(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read");
    }
    if (n == 0) {
      if (got == 0) return Error(Code::kOutOfRange, "end of stream");
      return Error(Code::kDataLoss, "stream ended after " + std::to_string(got) + " of " +
                                        std::to_string(len) + " bytes");
    }
    got += static_cast<size_t>(n);
  }
  return OkStatus();
}

Result<std::string> ReadFile(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::FromErrno(errno, "open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      return Error(Code::kResourceExhausted,
                   path + " is larger than " + std::to_string(limit) + " bytes");
    }
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return Error::FromErrno(errno, "create " + tmp);
  Status st = WriteAll(fd.get(), data);
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Error::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe2");
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return OkStatus();
}

Status MakeSocketPair(UniqueFd* a, UniqueFd* b) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Error::FromErrno(errno, "socketpair");
  }
  a->reset(fds[0]);
  b->reset(fds[1]);
  return OkStatus();
}

static Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error(Code::kInvalidArgument, "socket path '" + path + "' is empty or longer than " +
                                             std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout) {
  COCOON_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Error::FromErrno(errno, "socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    int err = errno;
    bool retry = err == ENOENT || err == ECONNREFUSED || err == EAGAIN || err == EINTR;
    if (!retry || std::chrono::steady_clock::now() >= deadline) {
      return Error::FromErrno(err, "connect " + path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  COCOON_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::FromErrno(errno, "socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Error::FromErrno(errno, "bind " + path);
  }
  if (::listen(fd.get(), backlog) != 0) return Error::FromErrno(errno, "listen " + path);
  return fd;
}

Status SetCloexec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return Error::FromErrno(errno, "fcntl F_GETFD");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) != 0) return Error::FromErrno(errno, "fcntl F_SETFD");
  return OkStatus();
}

Status SetNonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Error::FromErrno(errno, "fcntl F_GETFL");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return Error::FromErrno(errno, "fcntl F_SETFL");
  return OkStatus();
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return Error(Code::kInvalidArgument, "empty directory path");
  size_t pos = 0;
  for (;;) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (!part.empty() && ::mkdir(part.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return Error::FromErrno(errno, "mkdir " + part);
    }
    if (pos == std::string::npos) break;
  }
  return OkStatus();
}

static Status RemoveAt(int parent_fd, const char* name, dev_t dev) {
  struct stat st;
  if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return OkStatus();
    return Error::FromErrno(errno, std::string("stat ") + name);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) {
      return Error(Code::kFailedPrecondition,
                   std::string("refusing to remove ") + name + ": it is a mount point");
    }
    int dfd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return Error::FromErrno(errno, std::string("open ") + name);
    DIR* dir = ::fdopendir(dfd);
    if (dir == nullptr) {
      ::close(dfd);
      return Error::FromErrno(errno, "fdopendir");
    }
    Status result;
    while (dirent* ent = ::readdir(dir)) {
      if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
      Status st2 = RemoveAt(dfd, ent->d_name, dev);
      if (!st2.ok() && result.ok()) result = st2;
    }
    ::closedir(dir);
    if (!result.ok()) return result;
    if (::unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return Error::FromErrno(errno, std::string("rmdir ") + name);
    }
    return OkStatus();
  }
  if (::unlinkat(parent_fd, name, 0) != 0 && errno != ENOENT) {
    return Error::FromErrno(errno, std::string("unlink ") + name);
  }
  return OkStatus();
}

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return OkStatus();
    return Error::FromErrno(errno, "stat " + path);
  }
  Status s = RemoveAt(AT_FDCWD, path.c_str(), st.st_dev);
  return s.ok() ? s : s.error().Wrap("remove " + path);
}

bool PathExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace cocoon
