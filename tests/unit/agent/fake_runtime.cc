#include "fake_runtime.h"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/io.h"
#include "common/process.h"

namespace cocoon::agent::testing {

namespace {

Result<std::pair<std::vector<std::string>, bool>> ReadProcess(const nlohmann::json& process) {
  std::vector<std::string> args;
  for (const auto& a : process.at("args")) args.push_back(a.get<std::string>());
  bool terminal = process.value("terminal", false);
  return std::make_pair(args, terminal);
}

}  // namespace

void FakeRuntime::FailNextCreate(std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_create_ = std::move(message);
}

void FakeRuntime::FailNextControl(std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_control_ = std::move(message);
}

void FakeRuntime::set_exec_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  exec_delay_ = delay;
}

void FakeRuntime::set_cgroup_root(std::string root) {
  std::lock_guard<std::mutex> lock(mu_);
  cgroup_root_ = std::move(root);
}

std::vector<std::string> FakeRuntime::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::vector<std::string> FakeRuntime::updates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return updates_;
}

Status FakeRuntime::MakeCgroup(const std::string& id, const std::string& dir) {
  // Figures as a small idle container shows them; tests overwrite what they check.
  const std::pair<const char*, const char*> files[] = {
      {"memory.current", "1048576\n"},
      {"memory.max", "max\n"},
      {"memory.stat", "anon 524288\nfile 262144\nkernel_stack 16384\npgfault 42\n"},
      {"memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
      {"pids.current", "1\n"},
      {"pids.max", "max\n"},
      {"cpu.stat", "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n"},
  };
  COCOON_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  for (const auto& [name, content] : files) {
    COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + name, content));
  }
  cgroups_[id] = dir;
  WriteProcsLocked(id);
  return OkStatus();
}

void FakeRuntime::WriteProcsLocked(const std::string& id) {
  auto it = cgroups_.find(id);
  if (it == cgroups_.end()) return;
  std::string procs;
  for (pid_t pid : pids_[id]) procs += std::to_string(pid) + "\n";
  (void)WriteFileAtomic(it->second + "/cgroup.procs", procs);
}

Status FakeRuntime::TakeControlFailureLocked(const std::string& what) {
  if (fail_next_control_.empty()) return OkStatus();
  std::string message = std::move(fail_next_control_);
  fail_next_control_.clear();
  return Error(Code::kUnknown, "fake " + what + ": " + message);
}

void FakeRuntime::SignalGroupsLocked(const std::string& id, int sig) {
  for (pid_t pid : pids_[id]) ::kill(-pid, sig);
}

Status FakeRuntime::Pause(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back("pause " + id);
  COCOON_RETURN_IF_ERROR(TakeControlFailureLocked("pause"));
  SignalGroupsLocked(id, SIGSTOP);
  return OkStatus();
}

Status FakeRuntime::Resume(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back("resume " + id);
  COCOON_RETURN_IF_ERROR(TakeControlFailureLocked("resume"));
  SignalGroupsLocked(id, SIGCONT);
  return OkStatus();
}

Status FakeRuntime::Update(const std::string& id, const std::string& resources_path) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back("update " + id);
  COCOON_RETURN_IF_ERROR(TakeControlFailureLocked("update"));
  COCOON_ASSIGN_OR_RETURN(std::string text, ReadFile(resources_path));
  updates_.push_back(text);
  auto resources = nlohmann::json::parse(text);
  auto cgroup = cgroups_.find(id);
  if (cgroup != cgroups_.end() && resources.contains("memory") &&
      resources["memory"].contains("limit")) {
    std::string limit = std::to_string(resources["memory"]["limit"].get<int64_t>());
    COCOON_RETURN_IF_ERROR(WriteFileAtomic(cgroup->second + "/memory.max", limit + "\n"));
  }
  return OkStatus();
}

Result<Launched> FakeRuntime::Spawn(const std::vector<std::string>& argv, bool terminal,
                                    const LaunchStdio& stdio) {
  SpawnOptions options;
  options.argv = argv;
  options.new_process_group = true;
  Launched launched;
  UniqueFd slave;
  if (terminal) {
    int master_fd = -1, slave_fd = -1;
    if (::openpty(&master_fd, &slave_fd, nullptr, nullptr, nullptr) != 0) {
      return Error::FromErrno(errno, "openpty");
    }
    launched.pty_master.reset(master_fd);
    slave.reset(slave_fd);
    (void)SetCloexec(master_fd, true);
    (void)SetCloexec(slave_fd, true);
    options.fds = {{0, slave_fd}, {1, slave_fd}, {2, slave_fd}};
  } else {
    if (stdio.stdin_fd >= 0) options.fds.emplace_back(0, stdio.stdin_fd);
    if (stdio.stdout_fd >= 0) options.fds.emplace_back(1, stdio.stdout_fd);
    if (stdio.stderr_fd >= 0) options.fds.emplace_back(2, stdio.stderr_fd);
  }
  COCOON_ASSIGN_OR_RETURN(launched.pid, SpawnProcess(options));
  return launched;
}

Result<Launched> FakeRuntime::Create(const std::string& id, const std::string& bundle_dir,
                                     const LaunchStdio& stdio) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("create " + id);
    if (!fail_next_create_.empty()) {
      std::string message = std::move(fail_next_create_);
      fail_next_create_.clear();
      return Error(Code::kUnknown, "fake create: " + message);
    }
  }
  COCOON_ASSIGN_OR_RETURN(std::string text, ReadFile(bundle_dir + "/config.json"));
  auto spec = nlohmann::json::parse(text);
  COCOON_ASSIGN_OR_RETURN(auto process, ReadProcess(spec.at("process")));
  std::string gate = bundle_dir + "/start.fifo";
  if (::mkfifo(gate.c_str(), 0600) != 0) return Error::FromErrno(errno, "mkfifo " + gate);
  // The gate: the process waits on the FIFO (as crun's init waits on exec.fifo) until Start.
  std::vector<std::string> argv = {"/bin/sh", "-c", "read _ < \"$0\"; exec \"$@\"", gate};
  argv.insert(argv.end(), process.first.begin(), process.first.end());
  COCOON_ASSIGN_OR_RETURN(Launched launched, Spawn(argv, process.second, stdio));
  std::lock_guard<std::mutex> lock(mu_);
  pids_[id].push_back(launched.pid);
  gates_[id] = gate;
  if (!cgroup_root_.empty()) {
    std::string path = spec.value("/linux/cgroupsPath"_json_pointer, std::string());
    Status made = path.empty() ? Status(Error(Code::kInvalidArgument, "no linux.cgroupsPath"))
                               : MakeCgroup(id, cgroup_root_ + path);
    if (!made.ok()) {
      ::kill(-launched.pid, SIGKILL);
      return made.error().Wrap("fake create");
    }
  }
  return launched;
}

Status FakeRuntime::Start(const std::string& id) {
  std::string gate;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("start " + id);
    if (!gates_.count(id)) return Error(Code::kNotFound, "fake start: no container " + id);
    gate = gates_[id];
  }
  // Non-blocking open fails with ENXIO until the shell has opened its end.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    UniqueFd fd(::open(gate.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd) return WriteAll(fd.get(), "go\n");
    if (errno != ENXIO || std::chrono::steady_clock::now() > deadline) {
      return Error::FromErrno(errno, "fake start: open " + gate);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<Launched> FakeRuntime::Exec(const std::string& id, const std::string& process_json_path,
                                   const std::string& work_dir, const LaunchStdio& stdio) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("exec " + id);
    delay = exec_delay_;
  }
  std::this_thread::sleep_for(delay);
  COCOON_ASSIGN_OR_RETURN(std::string text, ReadFile(process_json_path));
  COCOON_ASSIGN_OR_RETURN(auto process, ReadProcess(nlohmann::json::parse(text)));
  COCOON_ASSIGN_OR_RETURN(Launched launched, Spawn(process.first, process.second, stdio));
  std::lock_guard<std::mutex> lock(mu_);
  pids_[id].push_back(launched.pid);
  WriteProcsLocked(id);
  return launched;
}

Status FakeRuntime::KillAll(const std::string& id, int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back("kill-all " + id + " " + std::to_string(sig));
  for (pid_t pid : pids_[id]) ::kill(-pid, sig);
  return OkStatus();
}

Status FakeRuntime::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back("delete " + id);
  for (pid_t pid : pids_[id]) ::kill(-pid, SIGKILL);  // stopped ("paused") ones too
  pids_.erase(id);
  gates_.erase(id);
  if (auto cgroup = cgroups_.find(id); cgroup != cgroups_.end()) {
    (void)RemoveTree(cgroup->second);
    cgroups_.erase(cgroup);
  }
  return OkStatus();
}

}  // namespace cocoon::agent::testing
