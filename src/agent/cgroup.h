// A container's cgroup v2 directory in the guest, read for StatsContainer (the figures containerd
// expects), ListProcesses (the pids) and out-of-memory events (the oom_kill counter). The agent
// places every container at a path it chooses (see ContainerCgroupsPath), so these readers never
// have to ask crun where a container lives.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "proto/cgroups_v2_metrics.pb.h"

namespace cocoon::agent {

namespace cgv2 = ::io::containerd::cgroups::v2;

// What stands in for "max" in the limit files: the guest's own totals, from /proc/meminfo.
struct MemoryTotals {
  uint64_t memory = 0;  // MemTotal
  uint64_t swap = 0;    // SwapTotal
};

// "key value" lines (cpu.stat, memory.stat, memory.events). Lines that do not hold a name and an
// unsigned number are skipped: the kernel adds keys over time, and none may break the rest.
std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& text);

// A limit file holding one number or "max" (memory.max, pids.max): "max" becomes `if_max`.
Result<uint64_t> ParseLimit(const std::string& text, uint64_t if_max);

// io.stat: one line per device, "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...".
std::vector<cgv2::IOEntry> ParseIoStat(const std::string& text);

// Reads every file the Metrics message covers from `dir`. A missing file (its controller is not
// enabled for this cgroup, or swap is not built into the kernel) leaves its fields at 0; any
// other read error is returned.
Result<cgv2::Metrics> ReadCgroupMetrics(const std::string& dir, const MemoryTotals& totals);

// The pids in `dir`/cgroup.procs and in every cgroup below it (crun may nest one), sorted and
// without duplicates.
Result<std::vector<uint32_t>> ListCgroupPids(const std::string& dir);

// The oom_kill counter of `dir`/memory.events (which counts the whole subtree); 0 when the file
// is missing or unreadable.
uint64_t ReadOomKills(const std::string& dir);

// One "Name: N kB" line of /proc/meminfo, in bytes; 0 when absent.
uint64_t MeminfoBytes(const std::string& meminfo, const std::string& name);

}  // namespace cocoon::agent
