// Small, careful wrappers over POSIX I/O: full reads and writes, files, pipes, Unix sockets.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon {

// Writes all of `data`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data);
// Reads exactly `len` bytes. Returns kOutOfRange on EOF before the first byte, kDataLoss on EOF
// part-way.
Status ReadExact(int fd, void* buf, size_t len);

Result<std::string> ReadFile(const std::string& path, size_t limit = 16 << 20);
// Writes to a temporary file in the same directory, then renames, so readers never see half.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);

// Creates a pipe with O_CLOEXEC on both ends.
Status MakePipe(UniqueFd* read_end, UniqueFd* write_end);
// Creates a connected AF_UNIX stream socket pair with SOCK_CLOEXEC.
Status MakeSocketPair(UniqueFd* a, UniqueFd* b);
// Connects to a Unix stream socket at `path`, retrying until `timeout` while it does not exist or
// refuses connections.
Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout);
// Binds and listens on a Unix stream socket, replacing a stale socket file.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 64);

Status SetCloexec(int fd, bool on);
Status SetNonblocking(int fd, bool on);

// mkdir -p with the given mode for directories it creates.
Status MakeDirs(const std::string& path, int mode = 0755);
// rm -rf that refuses to cross into other filesystems (so a forgotten bind mount is never
// emptied). Missing paths are fine.
Status RemoveTree(const std::string& path);

bool PathExists(const std::string& path);

}  // namespace cocoon
