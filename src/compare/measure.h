// The cost measurements of `cocoon compare`: the numbers behind the start-time, HTTP and memory
// rows, each a small piece that can be tested without containers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace cocoon::compare {

struct Summary {
  double median = 0, p90 = 0, min = 0, max = 0, mean = 0;
};
// Nearest-rank percentiles of `values` (not empty).
Summary Summarize(std::vector<double> values);

// One HTTP/1.0 GET of `path` from host:port; the time from connect to the end of the reply, in
// milliseconds. Fails unless the status is 200 and the body holds `expect`.
Result<double> HttpGet(const std::string& ip, uint16_t port, const std::string& expect,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

// `connections` clients each sending GETs back to back for `duration`: completed requests per
// second (failed ones are not counted; all failing is an error).
Result<double> HttpThroughput(const std::string& ip, uint16_t port, const std::string& expect,
                              int connections, std::chrono::milliseconds duration);

// Proportional set size in KiB of one process (/proc/<pid>/smaps_rollup, "Pss:").
Result<uint64_t> PssKib(pid_t pid);

// Parent of every process in /proc (pid -> ppid), read once.
std::map<pid_t, pid_t> ProcessParents();
// `root` and all its descendants in `parents`.
std::vector<pid_t> ProcessTree(pid_t root, const std::map<pid_t, pid_t>& parents);
// The nearest ancestor of `pid` (itself included) whose name starts with `prefix`; 0 if none.
pid_t AncestorNamed(pid_t pid, const std::string& prefix, const std::map<pid_t, pid_t>& parents);

}  // namespace cocoon::compare
