#include "shim/stdio.h"

#include <fcntl.h>

#include "common/io.h"

namespace cocoon::shim {
namespace {

Result<UniqueFd> Open(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  return UniqueFd(fd);
}

Status OpenOutput(const std::string& path, UniqueFd* fd, UniqueFd* keep) {
  if (path.empty()) return OkStatus();
  // Our read handle first: the write-only open then never blocks waiting for a reader.
  COCOON_ASSIGN_OR_RETURN(*keep, Open(path, O_RDONLY | O_NONBLOCK));
  COCOON_ASSIGN_OR_RETURN(*fd, Open(path, O_WRONLY));
  return OkStatus();
}

}  // namespace

void FifoSet::Close() {
  in.reset();
  out.reset();
  err.reset();
  out_keep.reset();
  err_keep.reset();
}

Result<FifoSet> OpenFifos(const std::string& stdin_path, const std::string& stdout_path,
                          const std::string& stderr_path) {
  FifoSet set;
  if (!stdin_path.empty()) {
    COCOON_ASSIGN_OR_RETURN(set.in, Open(stdin_path, O_RDONLY | O_NONBLOCK));
    // The relay polls before reading, so blocking reads are fine from here on.
    COCOON_RETURN_IF_ERROR(SetNonblocking(set.in.get(), false));
  }
  COCOON_RETURN_IF_ERROR(OpenOutput(stdout_path, &set.out, &set.out_keep));
  // With a terminal the client passes stderr = "" (the pty merges both streams).
  if (stderr_path != stdout_path) {
    COCOON_RETURN_IF_ERROR(OpenOutput(stderr_path, &set.err, &set.err_keep));
  }
  return set;
}

}  // namespace cocoon::shim
