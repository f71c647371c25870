// The container's stdio FIFOs, opened as contract section 5.6 recommends: stdin read-only without
// blocking; stdout/stderr write-only, plus a read handle on each so that writes never fail with
// EPIPE while the client is detached.
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::shim {

struct FifoSet {
  UniqueFd in, out, err;
  UniqueFd out_keep, err_keep;  // our own read handles; never read

  // -1 when the stream is not wanted.
  int in_fd() const { return in ? in.get() : -1; }
  int out_fd() const { return out ? out.get() : -1; }
  int err_fd() const { return err ? err.get() : -1; }
  // Closing the write ends is how the client learns the output is complete.
  void Close();
};

// Empty paths are skipped.
Result<FifoSet> OpenFifos(const std::string& stdin_path, const std::string& stdout_path,
                          const std::string& stderr_path);

}  // namespace cocoon::shim
