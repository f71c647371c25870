#include "compare/compare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <sstream>
#include <thread>

#include "common/io.h"
#include "common/log.h"
#include "compare/image.h"
#include "compare/runner.h"

namespace cocoon::compare {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// The CNI network for the HTTP measurement. ctr 1.6 reads configurations only from
// /etc/cni/net.d and plugins only from /opt/cni/bin.
constexpr char kCniName[] = "cocoon-compare";
constexpr char kCniConf[] = "/etc/cni/net.d/00-cocoon-compare.conflist";
constexpr char kCniBridge[] = "cocoon-cmp0";
constexpr char kCniSubnet[] = "10.231.13";
constexpr char kCniPluginDir[] = "/usr/lib/cni";

std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A host process whose command line carries `marker`, for the "host pids visible" probe.
class HostMarker {
 public:
  static Result<HostMarker> Start(const std::string& marker) {
    SpawnOptions opts;
    opts.path = "/bin/sleep";
    opts.argv = {marker, "3600"};
    COCOON_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(opts));
    return HostMarker(std::move(child));
  }

 private:
  explicit HostMarker(ChildProcess child) : child_(std::move(child)) {}
  ChildProcess child_;  // killed with the object
};

// The bridge network, written for the run and removed after it with the bridge and the IPAM
// state. Refused when /etc/cni/net.d has configurations of others: ctr might pick one of them.
class CniNetwork {
 public:
  static Result<std::unique_ptr<CniNetwork>> Setup() {
    if (!PathExists(std::string(kCniPluginDir) + "/bridge")) {
      return Error(Code::kFailedPrecondition,
                   "no CNI plugins in /usr/lib/cni (install containernetworking-plugins)");
    }
    // Ours, left by an interrupted run, is simply rewritten.
    auto others = RunFor(
        {"sh", "-c", "ls /etc/cni/net.d 2>/dev/null | grep -vx '00-cocoon-compare.conflist'"},
        seconds(10));
    if (others.ok() && !others->out.empty()) {
      return Error(Code::kFailedPrecondition,
                   "/etc/cni/net.d already holds CNI configurations (" +
                       others->out.substr(0, 200) +
                       "); HTTP is measured only on a network of its own");
    }
    std::unique_ptr<CniNetwork> net(new CniNetwork());
    if (!PathExists("/opt/cni/bin")) {
      COCOON_RETURN_IF_ERROR(MakeDirs("/opt/cni"));
      if (::symlink(kCniPluginDir, "/opt/cni/bin") != 0) {
        return Error::FromErrno(errno, "link /opt/cni/bin to /usr/lib/cni");
      }
      net->made_bin_ = true;
    }
    net->made_etc_ = !PathExists("/etc/cni");
    COCOON_RETURN_IF_ERROR(MakeDirs("/etc/cni/net.d"));
    std::string conf = std::string(R"({"cniVersion": "1.0.0", "name": ")") + kCniName +
                       R"(", "plugins": [{"type": "bridge", "bridge": ")" + kCniBridge +
                       R"(", "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local",)" +
                       R"( "ranges": [[{"subnet": ")" + kCniSubnet +
                       R"(.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]})";
    COCOON_RETURN_IF_ERROR(WriteFileAtomic(kCniConf, conf + "\n"));
    net->made_conf_ = true;
    return net;
  }
  ~CniNetwork() {
    IgnoreStop cleanup;
    if (made_conf_) ::unlink(kCniConf);
    if (made_etc_) {
      ::rmdir("/etc/cni/net.d");
      ::rmdir("/etc/cni");
    }
    if (made_bin_) {
      ::unlink("/opt/cni/bin");
      ::rmdir("/opt/cni");
    }
    (void)RunFor({"ip", "link", "del", kCniBridge}, seconds(10));
    (void)RemoveTree(std::string("/var/lib/cni/networks/") + kCniName);
  }
  // The IPv4 address CNI gave container `id` of namespace `ns`, once its result is cached.
  static std::string Address(const std::string& ns, const std::string& id) {
    auto text =
        ReadFile("/var/lib/cni/results/" + std::string(kCniName) + "-" + ns + "-" + id + "-eth0");
    if (!text.ok()) return "";
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (doc.is_object() && doc.contains("result")) doc = doc["result"];
    if (!doc.is_object() || !doc["ips"].is_array()) return "";
    for (const auto& ip : doc["ips"]) {
      std::string a = ip.value("address", "");
      if (a.find('.') != std::string::npos) return a.substr(0, a.find('/'));
    }
    return "";
  }

 private:
  CniNetwork() = default;
  bool made_conf_ = false;
  bool made_etc_ = false;  // /etc/cni did not exist before
  bool made_bin_ = false;
};

// The `ctr run` options that select runtime `name`, or why it cannot be used here.
Result<std::vector<std::string>> RuntimeArgs(const std::string& name, const Options& o) {
  if (name == "runc") {
    if (FindInPath("runc").empty()) return Error(Code::kNotFound, "runc is not installed");
    return std::vector<std::string>{"--runtime", "io.containerd.runc.v2"};
  }
  if (name == "cocoon") {
    if (!PathExists(o.shim_dir + "/containerd-shim-cocoon-v2")) {
      return Error(Code::kNotFound, "containerd-shim-cocoon-v2 is not in " + o.shim_dir);
    }
    return std::vector<std::string>{"--runtime", "io.containerd.cocoon.v2"};
  }
  if (name == "gvisor") {
    if (FindInPath("runsc").empty()) return Error(Code::kNotFound, "runsc is not installed");
    // Debian ships no gVisor shim: runc's drives runsc. Only the ptrace platform works on hosts
    // without usable KVM, and its default network needs /proc/sys/net on a tmpfs in a private
    // mount namespace on recent host kernels.
    std::string wrapper = o.work_dir + "/runsc-wrapper";
    COCOON_RETURN_IF_ERROR(WriteFileAtomic(
        wrapper,
        "#!/bin/sh\nexec unshare --mount --propagation private sh -c \\\n"
        "  'mount -t tmpfs tmpfs /proc/sys/net && exec runsc --platform=ptrace \"$@\"' runsc "
        "\"$@\"\n",
        0755));
    return std::vector<std::string>{"--runtime", "io.containerd.runc.v2", "--runc-binary",
                                    wrapper,     "--runc-root",           o.work_dir + "/runsc"};
  }
  if (name == "crun") {
    std::string crun = FindInPath("crun");
    if (crun.empty()) return Error(Code::kNotFound, "crun is not installed");
    return std::vector<std::string>{"--runtime", "io.containerd.runc.v2", "--runc-binary", crun};
  }
  return Error(Code::kInvalidArgument, "unknown runtime " + name);
}

std::vector<std::string> RunArgv(const std::vector<std::string>& head,
                                 const std::vector<std::string>& runtime, const std::string& image,
                                 const std::string& id, const std::vector<std::string>& cmd) {
  std::vector<std::string> argv = head;
  argv.insert(argv.end(), runtime.begin(), runtime.end());
  argv.push_back(image);
  argv.push_back(id);
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

class Comparison {
 public:
  Comparison(const Options& o, const Ctr& ctr, std::string address, std::string snapshotter,
             std::string image, std::string marker, const CniNetwork* cni, std::string cni_error)
      : o_(o),
        ctr_(ctr),
        address_(std::move(address)),
        snapshotter_(std::move(snapshotter)),
        image_(std::move(image)),
        marker_(std::move(marker)),
        cni_(cni),
        cni_error_(std::move(cni_error)) {}

  RuntimeResult Measure(const std::string& name, const std::string& host_release) {
    RuntimeResult rt;
    rt.name = name;
    auto args = RuntimeArgs(name, o_);
    if (!args.ok()) {
      rt.error = args.error().message();
      Say(name + ": not available: " + rt.error);
      return rt;
    }
    rt.available = true;
    args_ = *args;
    prefix_ = "cmp-" + name;
    Say(name + ": isolation probe");
    auto probe = Probe(host_release);
    if (!probe.ok()) {
      rt.error = "the probe container failed: " + probe.error().message();
      Say(name + ": " + rt.error);
      return rt;
    }
    rt.isolation = *probe;
    Startup(&rt.cost, name);
    if (StopRequested()) return rt;
    Say(name + ": HTTP");
    Note(&rt.cost, "HTTP", Http(&rt.cost));
    if (StopRequested()) return rt;
    Say(name + ": idle memory");
    auto pss = IdlePss();
    if (pss.ok()) {
      rt.cost.idle_pss_mib = *pss;
    } else {
      Note(&rt.cost, "idle memory", pss.error());
    }
    return rt;
  }

 private:
  void Say(const std::string& line) const {
    if (o_.progress) o_.progress(line);
  }
  static void Note(Cost* c, const std::string& what, const Status& st) {
    if (!st.ok()) c->errors.push_back(what + ": " + st.error().message());
  }

  Result<Isolation> Probe(const std::string& host_release) {
    std::string id = prefix_ + "-probe";
    // On the CNI network when there is one, so that the interfaces are those a networked
    // container gets (ctr tears it down after a foreground --rm run).
    std::vector<std::string> extra = {"--rm"};
    if (cni_ != nullptr) extra.push_back("--cni");
    auto out = ctr_.Run(RunArgv(Head(extra), args_, image_, id, {"sh", "-c", ProbeScript(marker_)}),
                        seconds(180));
    if (!out.ok()) {
      ctr_.Remove(id);
      return out.error();
    }
    return ParseProbe(*out, host_release);
  }

  void Startup(Cost* c, const std::string& name) {
    for (int i = 1; i <= o_.runs; ++i) {
      Say(name + ": start time " + std::to_string(i) + "/" + std::to_string(o_.runs));
      // Two digits: gVisor refuses an id that is a prefix of another one.
      std::string id = prefix_ + "-s" + (i < 10 ? "0" : "") + std::to_string(i);
      auto begin = Clock::now();
      auto out =
          ctr_.Run(RunArgv(Head({"--rm"}), args_, image_, id, {"echo", "test"}), seconds(120));
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
      if (!out.ok() || out->find("test") == std::string::npos) {
        ctr_.Remove(id);
        c->errors.push_back("start time run " + std::to_string(i) + ": " +
                            (out.ok() ? "printed " + *out : out.error().message()));
        return;
      }
      c->startup_ms.push_back(ms);
    }
  }

  Status Http(Cost* c) {
    if (cni_ == nullptr) return Error(Code::kFailedPrecondition, cni_error_);
    std::string id = prefix_ + "-http";
    // In the foreground with --rm, ctr itself tears the network down when the task ends.
    std::string log_path = o_.work_dir + "/" + id + ".log";
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!log) return Error::FromErrno(errno, "create " + log_path);
    SpawnOptions opts;
    std::vector<std::string> head = {"ctr", "-a", address_, "-n", ctr_.ns()};
    for (const std::string& a : Head({"--rm", "--cni"})) head.push_back(a);
    opts.argv = RunArgv(head, args_, image_, id, {"httpd", "-f", "-p", "80", "-h", "/www"});
    opts.fds = {{1, log.get()}, {2, log.get()}};
    COCOON_ASSIGN_OR_RETURN(ChildProcess server, ChildProcess::Spawn(opts));
    Status measured = MeasureHttp(c, id, &server);
    IgnoreStop cleanup;
    (void)ctr_.RunRaw({"task", "kill", "-s", "SIGKILL", id}, seconds(20));
    if (!server.WaitFor(milliseconds(30000))) server.Kill();
    ctr_.Remove(id);
    if (!measured.ok()) {
      auto said = ReadFile(log_path, 4096);
      return Error(
          measured.error().code(),
          measured.error().message() + (said.ok() && !said->empty() ? "; ctr: " + *said : ""));
    }
    return measured;
  }

  Status MeasureHttp(Cost* c, const std::string& id, ChildProcess* server) {
    std::string ip;
    auto deadline = Clock::now() + seconds(90);
    Status ready = Error(Code::kDeadlineExceeded, "the HTTP server did not answer in 90 s");
    while (Clock::now() < deadline) {
      if (StopRequested()) return Error(Code::kCancelled, "interrupted");
      if (server->WaitFor(milliseconds(0))) {
        return Error(Code::kUnavailable, "the HTTP server container exited");
      }
      if (ip.empty()) ip = CniNetwork::Address(ctr_.ns(), id);
      if (!ip.empty() && HttpGet(ip, 80, kProbePage, seconds(2)).ok()) {
        ready = OkStatus();
        break;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    COCOON_RETURN_IF_ERROR(ready);
    for (int i = 0; i < o_.requests; ++i) {
      COCOON_ASSIGN_OR_RETURN(double ms, HttpGet(ip, 80, kProbePage));
      c->latency_ms.push_back(ms);
    }
    COCOON_ASSIGN_OR_RETURN(double rps,
                            HttpThroughput(ip, 80, kProbePage, 2, seconds(o_.http_seconds)));
    c->requests_per_s = rps;
    return OkStatus();
  }

  Result<double> IdlePss() {
    std::string id = prefix_ + "-idle";
    auto started =
        ctr_.Run(RunArgv(Head({"-d"}), args_, image_, id, {"sleep", "3600"}), seconds(120));
    if (!started.ok()) {
      ctr_.Remove(id);  // a failed or timed-out `run -d` can leave its container and task
      return started.error();
    }
    // Settled: the guest has booted and the shim sits idle.
    std::this_thread::sleep_for(seconds(3));
    Result<double> mib = Error(Code::kNotFound, "no task pid for " + id);
    if (uint32_t pid = ctr_.TaskPid(id); pid != 0) {
      auto parents = ProcessParents();
      pid_t shim = AncestorNamed(static_cast<pid_t>(pid), "containerd-shim", parents);
      if (shim == 0) {
        mib = Error(Code::kNotFound, "no shim above task pid " + std::to_string(pid));
      } else {
        uint64_t kib = 0;
        for (pid_t p : ProcessTree(shim, parents)) {
          auto pss = PssKib(p);  // a process that just went away counts nothing
          if (pss.ok()) kib += *pss;
        }
        mib = static_cast<double>(kib) / 1024.0;
      }
    }
    ctr_.Remove(id);
    return mib;
  }

  // `ctr run` with the snapshotter and `extra` options, then the runtime's.
  std::vector<std::string> Head(std::vector<std::string> extra) const {
    std::vector<std::string> head = {"run", "--snapshotter", snapshotter_};
    head.insert(head.end(), extra.begin(), extra.end());
    return head;
  }

  const Options& o_;
  const Ctr& ctr_;
  std::string address_;
  std::string snapshotter_;
  std::string image_;
  std::string marker_;
  const CniNetwork* cni_;
  std::string cni_error_;
  std::vector<std::string> args_;
  std::string prefix_;
};

}  // namespace

Status Validate(const Options& o) {
  if (o.runs < 1 || o.runs > 99) {
    return Error(Code::kInvalidArgument, "--runs must be 1 to 99, not " + std::to_string(o.runs));
  }
  if (o.requests < 1 || o.requests > 100000) {
    return Error(Code::kInvalidArgument, "--requests must be 1 to 100000");
  }
  if (o.http_seconds < 1 || o.http_seconds > 600) {
    return Error(Code::kInvalidArgument, "--http-seconds must be 1 to 600");
  }
  if (o.runtimes.empty()) return Error(Code::kInvalidArgument, "no runtime to compare");
  for (const std::string& r : o.runtimes) {
    if (r != "runc" && r != "cocoon" && r != "gvisor" && r != "crun") {
      return Error(Code::kInvalidArgument,
                   "unknown runtime '" + r + "' (known: runc, cocoon, gvisor, crun)");
    }
  }
  if (o.work_dir.empty() || o.work_dir[0] != '/') {
    return Error(Code::kInvalidArgument, "the work directory must be an absolute path");
  }
  return OkStatus();
}

Result<Report> Run(const Options& o) {
  COCOON_RETURN_IF_ERROR(Validate(o));
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  Report report;
  report.date = UtcNow();
  report.runs = o.runs;
  report.requests = o.requests;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  report.hostname = host;

  COCOON_RETURN_IF_ERROR(MakeDirs(o.work_dir, 0700));
  std::string marker = "cocoon-host-marker-" + std::to_string(::getpid());
  COCOON_ASSIGN_OR_RETURN(HostMarker host_marker, HostMarker::Start(marker));
  say("host: isolation probe");
  COCOON_ASSIGN_OR_RETURN(Output host_probe,
                          RunFor({"sh", "-c", ProbeScript(marker)}, seconds(60)));
  COCOON_ASSIGN_OR_RETURN(report.host, ParseProbe(host_probe.out, ""));

  std::unique_ptr<Containerd> containerd;
  if (o.address.empty()) {
    say("starting a private containerd");
    COCOON_ASSIGN_OR_RETURN(containerd,
                            Containerd::StartPrivate(o.work_dir + "/containerd", o.shim_dir));
  } else {
    containerd = Containerd::External(o.address);
  }
  Ctr ctr(containerd->address(), o.ns);
  // overlayfs where the containerd root supports it, else plain copies.
  std::string snapshotter = "native";
  if (auto plugins = ctr.Run({"plugins", "ls"}, seconds(30)); plugins.ok()) {
    std::istringstream lines(*plugins);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("overlayfs") != std::string::npos && line.find(" ok") != std::string::npos) {
        snapshotter = "overlayfs";
      }
    }
  }
  std::string image = o.image;
  if (image.empty()) {
    say("building the probe image");
    COCOON_ASSIGN_OR_RETURN(image, ImportProbeImage(ctr, o.work_dir));
  }
  (void)ctr.RunRaw({"images", "unpack", "--snapshotter", snapshotter, image}, seconds(120));
  std::string cni_error;
  auto cni = CniNetwork::Setup();
  if (!cni.ok()) cni_error = cni.error().message();
  Comparison cmp(o, ctr, containerd->address(), snapshotter, image, marker,
                 cni.ok() ? cni->get() : nullptr, cni_error);
  for (const std::string& name : o.runtimes) {
    report.runtimes.push_back(cmp.Measure(name, report.host.kernel_release));
    if (StopRequested()) break;
  }
  IgnoreStop cleanup;
  if (o.image.empty()) (void)ctr.RunRaw({"images", "rm", image}, seconds(60));
  if (StopRequested()) return Error(Code::kCancelled, "interrupted; what it started is cleaned up");
  return report;
}

}  // namespace cocoon::compare
