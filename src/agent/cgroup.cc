#include "agent/cgroup.h"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "common/io.h"

namespace cocoon::agent {

namespace {

namespace pb = ::google::protobuf;

// Cgroup files are small; the bound only guards against a runaway file.
constexpr size_t kMaxCgroupFile = 1 << 20;
// cgroup.procs of a busy container can be long; 16 MiB is about 2 million pids.
constexpr size_t kMaxProcsFile = 16 << 20;
// crun nests at most one level; anything deeper than this is not a container's doing.
constexpr int kMaxDepth = 16;

bool ParseU64(std::string_view text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Reads `path`; a missing file is an empty optional rather than an error.
Result<std::optional<std::string>> ReadOptional(const std::string& path) {
  Result<std::string> text = ReadFile(path, kMaxCgroupFile);
  if (text.ok()) return std::optional<std::string>(std::move(*text));
  // ENODEV: the file of a controller that was disabled while we held the path.
  if (text.error().sys_errno() == ENOENT || text.error().sys_errno() == ENODEV) {
    return std::optional<std::string>();
  }
  return text.error();
}

// Sets every uint64 field of `msg` whose name is a key of `values`. The proto's field names are
// the kernel's key names, so the table is the message's own descriptor.
void FillByName(const std::map<std::string, uint64_t>& values, pb::Message* msg) {
  const pb::Descriptor* desc = msg->GetDescriptor();
  const pb::Reflection* refl = msg->GetReflection();
  for (const auto& [key, value] : values) {
    const pb::FieldDescriptor* field = desc->FindFieldByName(key);
    if (field == nullptr || field->is_repeated() ||
        field->cpp_type() != pb::FieldDescriptor::CPPTYPE_UINT64) {
      continue;
    }
    refl->SetUInt64(msg, field, value);
  }
}

// Reads a flat-keyed file into `msg`; nothing when it is missing.
Status FillFromFile(const std::string& path, pb::Message* msg) {
  COCOON_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadOptional(path));
  if (text) FillByName(ParseFlatKeyed(*text), msg);
  return OkStatus();
}

// Reads a single-value file (memory.current) or a limit file; 0 when it is missing.
Result<uint64_t> ReadValue(const std::string& path, uint64_t if_max) {
  COCOON_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadOptional(path));
  if (!text) return uint64_t{0};
  return ParseLimit(*text, if_max);
}

Status AppendPids(const std::string& dir, int depth, std::vector<uint32_t>* pids) {
  COCOON_ASSIGN_OR_RETURN(std::string procs, ReadFile(dir + "/cgroup.procs", kMaxProcsFile));
  std::istringstream in(procs);
  std::string word;
  while (in >> word) {
    uint64_t pid = 0;
    if (ParseU64(word, &pid) && pid > 0 && pid <= UINT32_MAX) {
      pids->push_back(static_cast<uint32_t>(pid));
    }
  }
  if (depth >= kMaxDepth) return OkStatus();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::FromErrno(errno, "open " + dir);
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..") children.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const std::string& child : children) {
    Status st = AppendPids(child, depth + 1, pids);
    // A child cgroup may vanish while we look (its processes exited and crun removed it).
    if (!st.ok() && st.error().sys_errno() != ENOENT) return st;
  }
  return OkStatus();
}

}  // namespace

std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& text) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, value, extra;
    if (!(fields >> key >> value) || (fields >> extra)) continue;
    uint64_t n = 0;
    if (ParseU64(value, &n)) out[key] = n;
  }
  return out;
}

Result<uint64_t> ParseLimit(const std::string& text, uint64_t if_max) {
  std::string value = Trim(text);
  if (value == "max") return if_max;
  uint64_t n = 0;
  if (!ParseU64(value, &n)) {
    return Error(Code::kInternal, "cgroup value '" + value.substr(0, 64) + "' is not a number");
  }
  return n;
}

std::vector<cgv2::IOEntry> ParseIoStat(const std::string& text) {
  std::vector<cgv2::IOEntry> entries;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string device;
    if (!(fields >> device)) continue;
    size_t colon = device.find(':');
    uint64_t major = 0, minor = 0;
    if (colon == std::string::npos || !ParseU64(device.substr(0, colon), &major) ||
        !ParseU64(device.substr(colon + 1), &minor)) {
      continue;
    }
    std::map<std::string, uint64_t> values;
    std::string pair;
    while (fields >> pair) {
      size_t eq = pair.find('=');
      uint64_t n = 0;
      if (eq != std::string::npos && ParseU64(pair.substr(eq + 1), &n)) {
        values[pair.substr(0, eq)] = n;
      }
    }
    cgv2::IOEntry entry;
    entry.set_major(major);
    entry.set_minor(minor);
    FillByName(values, &entry);  // rbytes, wbytes, rios, wios; major/minor are not keys here
    entries.push_back(entry);
  }
  return entries;
}

Result<cgv2::Metrics> ReadCgroupMetrics(const std::string& dir, const MemoryTotals& totals) {
  cgv2::Metrics m;
  cgv2::PidsStat* pids = m.mutable_pids();
  COCOON_ASSIGN_OR_RETURN(uint64_t pids_current, ReadValue(dir + "/pids.current", 0));
  COCOON_ASSIGN_OR_RETURN(uint64_t pids_limit, ReadValue(dir + "/pids.max", 0));
  pids->set_current(pids_current);
  pids->set_limit(pids_limit);

  COCOON_RETURN_IF_ERROR(FillFromFile(dir + "/cpu.stat", m.mutable_cpu()));

  cgv2::MemoryStat* mem = m.mutable_memory();
  COCOON_RETURN_IF_ERROR(FillFromFile(dir + "/memory.stat", mem));
  COCOON_ASSIGN_OR_RETURN(uint64_t usage, ReadValue(dir + "/memory.current", 0));
  COCOON_ASSIGN_OR_RETURN(uint64_t limit, ReadValue(dir + "/memory.max", totals.memory));
  COCOON_ASSIGN_OR_RETURN(uint64_t swap, ReadValue(dir + "/memory.swap.current", 0));
  COCOON_ASSIGN_OR_RETURN(uint64_t swap_limit, ReadValue(dir + "/memory.swap.max", totals.swap));
  mem->set_usage(usage);
  mem->set_usage_limit(limit);
  mem->set_swap_usage(swap);
  mem->set_swap_limit(swap_limit);

  COCOON_RETURN_IF_ERROR(FillFromFile(dir + "/memory.events", m.mutable_memory_events()));

  COCOON_ASSIGN_OR_RETURN(std::optional<std::string> io, ReadOptional(dir + "/io.stat"));
  if (io) {
    for (cgv2::IOEntry& e : ParseIoStat(*io)) *m.mutable_io()->add_usage() = std::move(e);
  }
  return m;
}

Result<std::vector<uint32_t>> ListCgroupPids(const std::string& dir) {
  std::vector<uint32_t> pids;
  COCOON_RETURN_IF_ERROR(AppendPids(dir, 0, &pids));
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

uint64_t ReadOomKills(const std::string& dir) {
  Result<std::string> text = ReadFile(dir + "/memory.events", kMaxCgroupFile);
  if (!text.ok()) return 0;
  std::map<std::string, uint64_t> values = ParseFlatKeyed(*text);
  auto it = values.find("oom_kill");
  return it == values.end() ? 0 : it->second;
}

uint64_t MeminfoBytes(const std::string& meminfo, const std::string& name) {
  std::istringstream in(meminfo);
  std::string line;
  std::string prefix = name + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    uint64_t value = 0;
    std::string unit;
    if (!(fields >> value)) return 0;
    fields >> unit;
    return unit == "kB" ? value * 1024 : value;
  }
  return 0;
}

}  // namespace cocoon::agent
