// `cocoon compare`: the same isolation probe and cost measurements through containerd in every
// runtime found (runc, cocoon, gVisor's runsc, crun), so that they can be compared side by side.
// A runtime that is missing or fails is reported with its error; the others still run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "compare/report.h"

namespace cocoon::compare {

struct Options {
  int runs = 5;          // start-time runs per runtime (1-99)
  int requests = 50;     // sequential HTTP requests
  int http_seconds = 3;  // throughput test length
  std::string address;   // an existing containerd; empty: start a private one
  std::string ns = "cocoon-compare";
  std::string image;  // empty: build the probe image locally
  std::vector<std::string> runtimes = {"runc", "cocoon", "gvisor", "crun"};
  std::string work_dir;  // scratch (private containerd, image); removed afterwards
  std::string shim_dir;  // where containerd-shim-cocoon-v2 is
  std::function<void(const std::string&)> progress;  // one line at a time
};

// Checks the options: runs and requests in range, known runtime names, an absolute work_dir.
Status Validate(const Options& options);

Result<Report> Run(const Options& options);

}  // namespace cocoon::compare
