#include "compare/probe.h"

#include <charconv>
#include <map>
#include <sstream>

namespace cocoon::compare {
namespace {

uint64_t Number(const std::string& text) {
  uint64_t n = 0;
  size_t start = text.find_first_not_of(' ');
  if (start == std::string::npos) return 0;
  std::from_chars(text.data() + start, text.data() + text.size(), n);
  return n;
}

}  // namespace

std::string ProbeScript(const std::string& marker) {
  // Only busybox applets, so the same script runs in the probe image and on the host. The grep
  // pattern cannot match its own command line (the bracket), only the marker process's.
  std::string pattern = marker.substr(0, marker.size() - 1) + "[" + marker.back() + "]";
  return "echo \"kernel_release=$(uname -r)\"\n"
         "echo \"proc_version=$(cat /proc/version)\"\n"
         "echo \"cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//')\"\n"
         "if dmesg > /tmp/.cocoon-probe-dmesg 2>/dev/null && [ -s /tmp/.cocoon-probe-dmesg ]; "
         "then\n"
         "  echo dmesg_readable=1\n"
         "  echo \"dmesg_linux=$(grep -m1 'Linux version' /tmp/.cocoon-probe-dmesg)\"\n"
         "else\n"
         "  echo dmesg_readable=0\n"
         "fi\n"
         "rm -f /tmp/.cocoon-probe-dmesg\n"
         "echo \"proc_entries=$(ls -1 /proc | wc -l)\"\n"
         "echo \"sys_modules=$(ls -1 /sys/module 2>/dev/null | wc -l)\"\n"
         "for i in $(ls /sys/class/net 2>/dev/null); do\n"
         "  d=$(readlink /sys/class/net/$i/device/driver 2>/dev/null)\n"
         "  echo \"net=$i:${d##*/}\"\n"
         "done\n"
         "echo \"host_marker=$(grep -l '" +
         pattern +
         "' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)\"\n"
         "echo \"mem_total_kib=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)\"\n"
         "echo probe_done=1\n";
}

Result<Isolation> ParseProbe(const std::string& output, const std::string& host_release) {
  std::map<std::string, std::string> kv;
  Isolation iso;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "net") {
      size_t colon = value.find(':');
      std::string driver = colon == std::string::npos ? "" : value.substr(colon + 1);
      iso.interfaces.push_back({value.substr(0, colon), driver.empty() ? "virtual" : driver});
      continue;
    }
    kv[key] = value;
  }
  for (const char* required : {"kernel_release", "proc_entries", "host_marker", "probe_done"}) {
    if (kv.count(required) == 0) {
      std::string head = output.substr(0, 400);
      return Error(Code::kInvalidArgument,
                   std::string("the probe printed no ") + required + " line: " + head);
    }
  }
  iso.kernel_release = kv["kernel_release"];
  iso.proc_version = kv["proc_version"];
  iso.cpu_model = kv["cpu_model"];
  iso.dmesg_readable = kv["dmesg_readable"] == "1";
  const std::string& linux_line = kv["dmesg_linux"];
  if (!iso.dmesg_readable) {
    iso.dmesg_source = "none";
  } else if (!host_release.empty() && linux_line.find(host_release) != std::string::npos) {
    iso.dmesg_source = "host";
  } else if (!iso.kernel_release.empty() &&
             linux_line.find(iso.kernel_release) != std::string::npos) {
    iso.dmesg_source = "own kernel";
  } else {
    iso.dmesg_source = "synthetic";
  }
  iso.proc_entries = Number(kv["proc_entries"]);
  iso.sys_modules = Number(kv["sys_modules"]);
  iso.host_pids_visible = Number(kv["host_marker"]) > 0;
  iso.mem_total_kib = Number(kv["mem_total_kib"]);
  return iso;
}

nlohmann::json Isolation::ToJson() const {
  nlohmann::json nics = nlohmann::json::array();
  for (const Nic& n : interfaces) nics.push_back({{"name", n.name}, {"driver", n.driver}});
  return {{"kernel_release", kernel_release},
          {"proc_version", proc_version},
          {"cpu_model", cpu_model},
          {"dmesg_readable", dmesg_readable},
          {"dmesg_source", dmesg_source},
          {"proc_entries", proc_entries},
          {"sys_modules", sys_modules},
          {"interfaces", nics},
          {"host_pids_visible", host_pids_visible},
          {"mem_total_mib", mem_total_kib / 1024}};
}

}  // namespace cocoon::compare
