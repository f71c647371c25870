// The isolation probe of `cocoon compare`: one shell script, run the same way on the host and in
// a container of each runtime, prints `key=value` lines; parsing them gives what the container
// sees of the kernel, the CPU, the kernel log, /proc, /sys/module, the network and the host's
// processes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace cocoon::compare {

// The script, for `sh -c`. `marker` is a word that only a host process made by the caller carries
// in its command line: a container that can find it sees host processes.
std::string ProbeScript(const std::string& marker);

struct Isolation {
  std::string kernel_release;
  std::string proc_version;
  std::string cpu_model;
  bool dmesg_readable = false;
  std::string dmesg_source;  // "host", "own kernel", "synthetic" or "none"
  uint64_t proc_entries = 0;
  uint64_t sys_modules = 0;
  struct Nic {
    std::string name;
    std::string driver;  // "virtual" for one without a device (veth, bridge, lo)
  };
  std::vector<Nic> interfaces;
  bool host_pids_visible = false;
  uint64_t mem_total_kib = 0;

  nlohmann::json ToJson() const;
};

// Parses the script's output; `host_release` tells whose log a readable dmesg shows.
// INVALID_ARGUMENT when a line the script always prints is missing.
Result<Isolation> ParseProbe(const std::string& output, const std::string& host_release);

}  // namespace cocoon::compare
