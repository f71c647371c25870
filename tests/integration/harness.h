// Test harness for integration tests: runs the real cocoon binary on busybox bundles and checks
// that nothing (QEMU process, mount, state directory) is left behind.
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/process.h"

namespace cocoon::itest {

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CocoonTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A fresh id unique to this test.
  std::string NewId();
  // Creates a busybox bundle running `args` (make-bundle.sh); returns its directory.
  std::string MakeBundle(const std::vector<std::string>& args, bool tty = false);
  // Rewrites <bundle>/config.json through `edit`.
  void EditSpec(const std::string& bundle, const std::function<void(nlohmann::json&)>& edit);
  // Runs `cocoon --root <root> <args...>` to completion with `input` on stdin.
  Outcome Cocoon(const std::vector<std::string>& args, const std::string& input = "",
                 const std::vector<std::string>& extra_env = {});
  // Starts cocoon without waiting; stdout goes to a pipe returned in *out_fd.
  ChildProcess StartCocoon(const std::vector<std::string>& args, int* out_fd);
  // Asserts that no QEMU process, mount or state directory of `id` remains.
  void ExpectNoLeftovers(const std::string& id);

  std::string root_;  // private state root for this test
  std::string work_;  // scratch directory (bundles)
  std::vector<std::string> ids_;
};

// Reads until EOF.
std::string ReadAllFd(int fd);
// pids of QEMU processes whose command line names sandbox `id`.
std::vector<pid_t> QemuPidsFor(const std::string& id);

}  // namespace cocoon::itest
