#include "sandbox/state_dir.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/io.h"
#include "common/log.h"

namespace cocoon::sandbox {
namespace {

// Field 22 of /proc/<pid>/stat: start time in clock ticks. Together with the pid it names a
// process uniquely, so a recycled pid is never mistaken for the owner.
std::string StartTime(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return "";
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream in(stat->substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i) {
  }
  return field;
}

bool SameProcess(const nlohmann::json& j, const char* pid_key, const char* start_key) {
  if (!j.contains(pid_key) || !j[pid_key].is_number_integer()) return false;
  pid_t pid = j[pid_key].get<pid_t>();
  if (pid <= 0) return false;
  std::string start = StartTime(pid);
  return !start.empty() && start == j.value(start_key, "");
}

nlohmann::json ReadOwner(const std::string& dir) {
  auto text = ReadFile(dir + "/owner.json", 65536);
  if (!text.ok()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace

bool OwnerAlive(const std::string& dir) {
  return SameProcess(ReadOwner(dir), "owner_pid", "owner_start");
}

Status CleanStale(const std::string& dir) {
  nlohmann::json owner = ReadOwner(dir);
  if (SameProcess(owner, "vm_pid", "vm_start")) {
    pid_t pid = owner["vm_pid"].get<pid_t>();
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return RemoveTree(dir);
}

Result<StateDir> StateDir::Create(const std::string& state_root, const std::string& id) {
  COCOON_RETURN_IF_ERROR(MakeDirs(state_root, 0711));
  std::string path = state_root + "/" + id;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::mkdir(path.c_str(), 0700) == 0) break;
    if (errno != EEXIST) return Error::FromErrno(errno, "create state directory " + path);
    if (OwnerAlive(path)) {
      return Error(Code::kAlreadyExists, "container " + id + " already exists (" + path + ")");
    }
    Log().With("sandbox", id).Warn("removing stale state of a dead owner at {}", path);
    Status st = CleanStale(path);
    if (!st.ok()) return st.error().Wrap("remove stale state of " + id);
    if (attempt == 1) return Error(Code::kAlreadyExists, "state directory " + path + " reappeared");
  }
  StateDir dir(path);
  nlohmann::json owner = {{"owner_pid", ::getpid()}, {"owner_start", StartTime(::getpid())}};
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir.File("owner.json"), owner.dump(), 0600));
  return dir;
}

Status StateDir::RecordVmPid(pid_t pid) {
  nlohmann::json owner = ReadOwner(path_);
  owner["vm_pid"] = pid;
  owner["vm_start"] = StartTime(pid);
  return WriteFileAtomic(File("owner.json"), owner.dump(), 0600);
}

StateDir::~StateDir() {
  if (path_.empty()) return;
  Status st = RemoveTree(path_);
  if (!st.ok()) Log().Warn("could not remove state directory: {}", st.error().message());
}

}  // namespace cocoon::sandbox
