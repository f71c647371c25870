#include "compare/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/io.h"
#include "common/log.h"

extern char** environ;

namespace cocoon::compare {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxOutput = 1 << 20;
// Polling step of RunFor, so that a stop request ends a long command soon.
constexpr int kPollMs = 100;

std::atomic<bool> g_stop{false};
thread_local bool t_ignore_stop = false;

bool Stopping() { return g_stop && !t_ignore_stop; }

// A command line for messages: a long argument (the probe script) shortened to its start.
std::string Joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    std::string shown = a.substr(0, std::min(a.find('\n'), size_t{48}));
    if (shown.size() < a.size()) shown += "...";
    s += (s.empty() ? "" : " ") + shown;
  }
  return s;
}

std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return x.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace

void RequestStop() { g_stop = true; }
bool StopRequested() { return g_stop; }
void ClearStop() { g_stop = false; }
IgnoreStop::IgnoreStop() : previous_(t_ignore_stop) { t_ignore_stop = true; }
IgnoreStop::~IgnoreStop() { t_ignore_stop = previous_; }

Result<Output> RunFor(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      const std::vector<std::string>& env_extra) {
  UniqueFd r, w;
  COCOON_RETURN_IF_ERROR(MakePipe(&r, &w));
  SpawnOptions opts;
  opts.argv = argv;
  opts.fds = {{1, w.get()}, {2, w.get()}};
  opts.new_process_group = true;  // a timeout kills what it started too
  if (!env_extra.empty()) opts.env = Environment(env_extra);
  COCOON_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(opts));
  w.reset();
  auto deadline = Clock::now() + timeout;
  Output result;
  char buf[8192];
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || Stopping()) {
      timed_out = true;
      break;
    }
    pollfd p{r.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), kPollMs)));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) continue;  // the deadline check ends it
    ssize_t got = ::read(r.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    result.out.append(buf, static_cast<size_t>(got));
    if (result.out.size() > kMaxOutput) result.out.erase(0, result.out.size() - kMaxOutput);
  }
  if (timed_out) {
    ::kill(-child.pid(), SIGKILL);
    child.Kill();
    if (Stopping()) return Error(Code::kCancelled, "`" + Joined(argv) + "` stopped: interrupted");
    return Error(Code::kDeadlineExceeded, "`" + Joined(argv) + "` took longer than " +
                                              std::to_string(timeout.count() / 1000) + " s");
  }
  // Output closed: the program is exiting (a daemon it left may hold the pipe no longer).
  COCOON_ASSIGN_OR_RETURN(int status, child.Wait());
  result.exit_code = ExitCodeFromWaitStatus(status);
  return result;
}

Result<std::unique_ptr<Containerd>> Containerd::StartPrivate(const std::string& dir,
                                                             const std::string& shim_dir) {
  COCOON_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::string sock = dir + "/containerd.sock";
  std::string config = "version = 2\nroot = \"" + dir + "/root\"\nstate = \"" + dir +
                       "/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                       "[grpc]\n  address = \"" +
                       sock + "\"\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" + dir +
                       "/opt\"\n";
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(dir + "/config.toml", config));
  UniqueFd log(
      ::open((dir + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return Error::FromErrno(errno, "create " + dir + "/containerd.log");
  const char* path = std::getenv("PATH");
  SpawnOptions opts;
  opts.argv = {"containerd", "--config", dir + "/config.toml"};
  opts.env =
      Environment({"PATH=" + shim_dir + ":" + (path ? path : "/usr/sbin:/usr/bin:/sbin:/bin")});
  opts.fds = {{1, log.get()}, {2, log.get()}};
  opts.new_process_group = true;
  auto child = ChildProcess::Spawn(opts);
  if (!child.ok()) return child.error().Wrap("start containerd (is it installed?)");
  std::unique_ptr<Containerd> c(new Containerd(sock));
  c->dir_ = dir;
  c->daemon_ = std::move(*child);
  for (int i = 0; i < 150; ++i) {
    auto v = RunFor({"ctr", "-a", sock, "version"}, std::chrono::seconds(5));
    if (v.ok() && v->exit_code == 0) return c;
    if (!c->daemon_.running() || c->daemon_.WaitFor(std::chrono::milliseconds(0))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto text = ReadFile(dir + "/containerd.log");
  std::string tail = text.ok() ? text->substr(text->size() > 2000 ? text->size() - 2000 : 0) : "";
  return Error(Code::kUnavailable, "containerd did not start: " + tail);
}

std::unique_ptr<Containerd> Containerd::External(const std::string& address) {
  return std::unique_ptr<Containerd>(new Containerd(address));
}

void Containerd::Stop() {
  if (dir_.empty()) return;
  IgnoreStop cleanup;
  if (daemon_.running()) {
    (void)daemon_.Signal(SIGTERM);
    if (!daemon_.WaitFor(std::chrono::seconds(10))) daemon_.Kill();
  }
  // Shims outlive containerd by design; these belong to this instance only.
  (void)RunFor({"pkill", "-KILL", "-f", "containerd-shim.* -address " + address_ + " "},
               std::chrono::seconds(5));
  std::ifstream mounts("/proc/self/mounts");
  std::vector<std::string> left;
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string dev, target;
    fields >> dev >> target;
    if (target.compare(0, dir_.size() + 1, dir_ + "/") == 0) left.push_back(target);
  }
  std::sort(left.rbegin(), left.rend());  // deepest first
  for (const std::string& m : left) ::umount2(m.c_str(), MNT_DETACH);
  dir_.clear();
}

Containerd::~Containerd() { Stop(); }

std::vector<std::string> Ctr::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ctr", "-a", address_, "-n", ns_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<Output> Ctr::RunRaw(const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout) const {
  return RunFor(Argv(args), timeout);
}

Result<std::string> Ctr::Run(const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout) const {
  COCOON_ASSIGN_OR_RETURN(Output o, RunRaw(args, timeout));
  if (o.exit_code != 0) {
    std::string said = o.out;
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    return Error(Code::kUnknown, "`ctr " + Joined(args) + "` failed (exit " +
                                     std::to_string(o.exit_code) + "): " + said);
  }
  return o.out;
}

void Ctr::Remove(const std::string& id) const {
  IgnoreStop cleanup;
  (void)RunRaw({"task", "kill", "-a", "-s", "SIGKILL", id}, std::chrono::seconds(20));
  for (int i = 0; i < 50; ++i) {
    auto rm = RunRaw({"task", "rm", "-f", id}, std::chrono::seconds(20));
    if (!rm.ok() || rm->exit_code == 0 || rm->out.find("not found") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  (void)RunRaw({"container", "rm", id}, std::chrono::seconds(20));
}

uint32_t Ctr::TaskPid(const std::string& id) const {
  auto ls = Run({"task", "ls"}, std::chrono::seconds(20));
  if (!ls.ok()) return 0;
  std::istringstream lines(*ls);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string task;
    uint32_t pid = 0;
    if (f >> task >> pid && task == id) return pid;
  }
  return 0;
}

}  // namespace cocoon::compare
