// The pieces of `cocoon compare` that need no containers: probe parsing (and the probe run on this
// host), statistics, the HTTP client against a local server, process trees, options, and the
// report's JSON, table and SVG.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "compare/compare.h"
#include "compare/measure.h"
#include "compare/probe.h"
#include "compare/report.h"
#include "compare/runner.h"

namespace cocoon::compare {
namespace {

using ::testing::HasSubstr;

constexpr char kGuestProbe[] =
    "kernel_release=6.1.192\n"
    "proc_version=Linux version 6.1.192 (cocoon@build) #1\n"
    "cpu_model=QEMU TCG CPU version 2.5+\n"
    "dmesg_readable=1\n"
    "dmesg_linux=[    0.000000] Linux version 6.1.192 (cocoon@build) #1\n"
    "proc_entries=47\n"
    "sys_modules=24\n"
    "net=eth0:virtio_net\n"
    "net=lo:\n"
    "host_marker=0\n"
    "mem_total_kib=245760\n"
    "probe_done=1\n";

TEST(ParseProbeTest, GuestView) {
  auto iso = ParseProbe(kGuestProbe, "6.18.44");
  ASSERT_TRUE(iso.ok()) << iso.error().message();
  EXPECT_EQ(iso->kernel_release, "6.1.192");
  EXPECT_EQ(iso->cpu_model, "QEMU TCG CPU version 2.5+");
  EXPECT_TRUE(iso->dmesg_readable);
  EXPECT_EQ(iso->dmesg_source, "own kernel");
  EXPECT_EQ(iso->proc_entries, 47u);
  EXPECT_EQ(iso->sys_modules, 24u);
  ASSERT_EQ(iso->interfaces.size(), 2u);
  EXPECT_EQ(iso->interfaces[0].driver, "virtio_net");
  EXPECT_EQ(iso->interfaces[1].driver, "virtual");
  EXPECT_FALSE(iso->host_pids_visible);
  EXPECT_EQ(iso->ToJson()["mem_total_mib"], 240);
}

TEST(ParseProbeTest, WhoseLogDmesgShows) {
  std::string host_log = std::string(kGuestProbe);
  host_log.replace(host_log.find("dmesg_linux=") + 12, 30, "Linux version 6.18.44 (x)");
  auto host = ParseProbe(host_log, "6.18.44");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->dmesg_source, "host");
  std::string fake =
      "kernel_release=4.4.0\ndmesg_readable=1\ndmesg_linux=\nproc_entries=19\n"
      "host_marker=0\nprobe_done=1\n";
  EXPECT_EQ(ParseProbe(fake, "6.18.44")->dmesg_source, "synthetic");
  std::string none =
      "kernel_release=6.18.44\ndmesg_readable=0\nproc_entries=57\n"
      "host_marker=2\nprobe_done=1\n";
  auto refused = ParseProbe(none, "6.18.44");
  EXPECT_EQ(refused->dmesg_source, "none");
  EXPECT_TRUE(refused->host_pids_visible);
}

TEST(ParseProbeTest, CutShortOutputIsAnError) {
  auto r = ParseProbe("kernel_release=6.1\nproc_entries=3\n", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("no host_marker line"));
  EXPECT_FALSE(ParseProbe("ctr: failed to create shim task", "").ok());
}

// The script is the same everywhere; on this host it must see the marker process we start.
TEST(ProbeScriptTest, RunsOnTheHostAndFindsTheMarker) {
  const std::string marker = "cocoon-unit-marker-" + std::to_string(::getpid());
  SpawnOptions opts;
  opts.path = "/bin/sleep";
  opts.argv = {marker, "60"};
  auto sleeper = ChildProcess::Spawn(opts);
  ASSERT_TRUE(sleeper.ok());
  auto out = RunFor({"sh", "-c", ProbeScript(marker)}, std::chrono::seconds(30));
  ASSERT_TRUE(out.ok());
  auto iso = ParseProbe(out->out, "");
  ASSERT_TRUE(iso.ok()) << iso.error().message() << out->out;
  EXPECT_TRUE(iso->host_pids_visible);
  EXPECT_GT(iso->proc_entries, 5u);
  EXPECT_FALSE(iso->kernel_release.empty());
  sleeper->Kill();
  auto gone = RunFor({"sh", "-c", ProbeScript(marker)}, std::chrono::seconds(30));
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(ParseProbe(gone->out, "")->host_pids_visible) << "the probe found itself";
}

TEST(RunForTest, ExitCodeOutputAndTimeout) {
  auto ok = RunFor({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(10));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exit_code, 3);
  EXPECT_THAT(ok->out, HasSubstr("out"));
  EXPECT_THAT(ok->out, HasSubstr("err"));
  auto slow = RunFor({"sleep", "30"}, std::chrono::milliseconds(200));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code(), Code::kDeadlineExceeded);
  auto env = RunFor({"sh", "-c", "echo $COCOON_T"}, std::chrono::seconds(5), {"COCOON_T=yes"});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->out, "yes\n");
  EXPECT_FALSE(RunFor({"/nonexistent/prog"}, std::chrono::seconds(5)).ok());
}

TEST(RunForTest, StopRequestEndsCommandsButNotCleanup) {
  auto begin = std::chrono::steady_clock::now();
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    RequestStop();
  });
  auto slow = RunFor({"sleep", "30"}, std::chrono::seconds(30));
  stopper.join();
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code(), Code::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  EXPECT_TRUE(StopRequested());
  {
    IgnoreStop cleanup;
    auto rm = RunFor({"true"}, std::chrono::seconds(5));
    EXPECT_TRUE(rm.ok());
  }
  EXPECT_FALSE(RunFor({"true"}, std::chrono::seconds(5)).ok());
  ClearStop();
  EXPECT_TRUE(RunFor({"true"}, std::chrono::seconds(5)).ok());
}

TEST(SummarizeTest, NearestRankPercentiles) {
  Summary s = Summarize({5, 1, 4, 2, 3, 10, 6, 7, 8, 9});
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10);
  EXPECT_EQ(s.median, 5);
  EXPECT_EQ(s.p90, 9);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  Summary one = Summarize({42});
  EXPECT_EQ(one.median, 42);
  EXPECT_EQ(one.p90, 42);
}

// A one-thread HTTP server on loopback answering `reply` to every connection.
class TinyServer {
 public:
  explicit TinyServer(std::string reply) : reply_(std::move(reply)) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_.get(), 16);
    socklen_t len = sizeof(a);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_.get(), nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[1024];
        (void)::recv(c, buf, sizeof(buf), 0);
        (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  std::string reply_;
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HttpTest, GetAndThroughputAgainstALocalServer) {
  TinyServer server("HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n");
  auto ms = HttpGet("127.0.0.1", server.port(), "hello");
  ASSERT_TRUE(ms.ok()) << ms.error().message();
  EXPECT_GT(*ms, 0);
  auto wrong = HttpGet("127.0.0.1", server.port(), "other page");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message(), HasSubstr("unexpected HTTP reply"));
  auto rps = HttpThroughput("127.0.0.1", server.port(), "hello", 2, std::chrono::milliseconds(300));
  ASSERT_TRUE(rps.ok()) << rps.error().message();
  EXPECT_GT(*rps, 10);
}

TEST(HttpTest, ErrorsAreClear) {
  TinyServer server("HTTP/1.0 404 Not Found\r\n\r\nhello");
  EXPECT_FALSE(HttpGet("127.0.0.1", server.port(), "hello").ok());
  EXPECT_EQ(HttpGet("not-an-ip", 80, "").error().code(), Code::kInvalidArgument);
  // Nothing listens on port 1 of loopback.
  auto refused = HttpGet("127.0.0.1", 1, "", std::chrono::milliseconds(500));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("connect to 127.0.0.1"));
  auto none = HttpThroughput("127.0.0.1", 1, "", 1, std::chrono::milliseconds(100));
  EXPECT_FALSE(none.ok());
}

TEST(ProcessTreeTest, TreesAncestorsAndPss) {
  std::map<pid_t, pid_t> parents = {{10, 1}, {11, 10}, {12, 11}, {13, 10}, {20, 1}};
  std::vector<pid_t> tree = ProcessTree(10, parents);
  std::sort(tree.begin(), tree.end());
  EXPECT_EQ(tree, (std::vector<pid_t>{10, 11, 12, 13}));
  auto live = ProcessParents();
  ASSERT_TRUE(live.count(::getpid()));
  EXPECT_EQ(live[::getpid()], ::getppid());
  auto pss = PssKib(::getpid());
  ASSERT_TRUE(pss.ok()) << pss.error().message();
  EXPECT_GT(*pss, 0u);
  EXPECT_EQ(AncestorNamed(::getpid(), "no-such-process-name", live), 0);
  EXPECT_EQ(AncestorNamed(::getpid(), "compare_test", live), ::getpid());
}

TEST(OptionsTest, ValidateNamesTheProblem) {
  Options o;
  o.work_dir = "/tmp/x";
  EXPECT_TRUE(Validate(o).ok());
  o.runs = 0;
  EXPECT_THAT(Validate(o).error().message(), HasSubstr("--runs must be 1 to 99"));
  o.runs = 3;
  o.runtimes = {"runc", "kata"};
  EXPECT_THAT(Validate(o).error().message(), HasSubstr("unknown runtime 'kata'"));
  o.runtimes = {"runc"};
  o.work_dir = "relative";
  EXPECT_FALSE(Validate(o).ok());
}

Report SampleReport() {
  Report r;
  r.date = "2026-12-04T09:00:00Z";
  r.hostname = "h<1>";
  r.runs = 3;
  r.requests = 2;
  r.host =
      *ParseProbe("kernel_release=6.18.44\nproc_entries=125\nhost_marker=1\nprobe_done=1\n", "");
  RuntimeResult runc;
  runc.name = "runc";
  runc.available = true;
  runc.isolation = *ParseProbe(
      "kernel_release=6.18.44\nproc_entries=57\nhost_marker=0\nprobe_done=1\n", "6.18.44");
  runc.cost.startup_ms = {98, 102, 99};
  runc.cost.latency_ms = {0.3, 0.4};
  runc.cost.requests_per_s = 4755;
  runc.cost.idle_pss_mib = 13.4;
  RuntimeResult cocoon = runc;
  cocoon.name = "cocoon";
  cocoon.isolation = *ParseProbe(kGuestProbe, "6.18.44");
  cocoon.cost.startup_ms = {1307, 1360, 1290};
  cocoon.cost.requests_per_s.reset();
  cocoon.cost.errors = {"HTTP: no CNI plugins"};
  RuntimeResult crun;
  crun.name = "crun";
  crun.available = true;
  crun.error = "the probe container failed: cgroups in hybrid mode";
  RuntimeResult gvisor;
  gvisor.name = "gvisor";
  gvisor.error = "runsc is not installed";
  r.runtimes = {runc, cocoon, crun, gvisor};
  return r;
}

TEST(ReportTest, JsonHasTheDocumentedShape) {
  nlohmann::json j = ToJson(SampleReport());
  EXPECT_EQ(j["host"]["kernel_release"], "6.18.44");
  EXPECT_EQ(j["runtimes"]["runc"]["isolation"]["kernel_release"], "6.18.44");
  EXPECT_EQ(j["runtimes"]["cocoon"]["isolation"]["kernel_release"], "6.1.192");
  EXPECT_EQ(j["runtimes"]["cocoon"]["isolation"]["host_pids_visible"], false);
  EXPECT_EQ(j["runtimes"]["runc"]["cost"]["startup_median_ms"], 99.0);
  EXPECT_TRUE(j["runtimes"]["runc"]["cost"]["http_latency_avg_ms"].is_number());
  EXPECT_TRUE(j["runtimes"]["runc"]["cost"]["idle_memory_pss_mib"].is_number());
  EXPECT_TRUE(j["runtimes"]["cocoon"]["cost"]["http_requests_per_s"].is_null());
  EXPECT_EQ(j["runtimes"]["cocoon"]["cost"]["errors"][0], "HTTP: no CNI plugins");
  EXPECT_TRUE(j["runtimes"]["crun"]["available"].get<bool>());
  EXPECT_TRUE(j["runtimes"]["crun"]["isolation"].is_null());
  EXPECT_FALSE(j["runtimes"]["gvisor"]["available"].get<bool>());
  EXPECT_EQ(j["runtimes"]["gvisor"]["error"], "runsc is not installed");
}

TEST(ReportTest, TableAndSvgs) {
  Report r = SampleReport();
  std::string table = ToTable(r);
  EXPECT_THAT(table, HasSubstr("6.1.192"));
  EXPECT_THAT(table, HasSubstr("missing"));  // gvisor
  EXPECT_THAT(table, HasSubstr("failed"));   // crun
  EXPECT_THAT(table, HasSubstr("gvisor: runsc is not installed"));
  std::string start = StartupSvg(r);
  EXPECT_EQ(start.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_THAT(start, HasSubstr(">cocoon</text>"));
  EXPECT_EQ(std::count(start.begin(), start.end(), '\n') > 5, true);
  EXPECT_THAT(start, HasSubstr("</svg>"));
  std::string lat = LatencySvg(r);
  EXPECT_THAT(lat, HasSubstr(">runc</text>"));
  EXPECT_THAT(lat, ::testing::Not(HasSubstr(">gvisor</text>")));  // nothing measured
  // Text is escaped: the hostname is not in the SVGs, but a runtime name with '<' would be.
  r.runtimes[0].name = "a<b";
  EXPECT_THAT(StartupSvg(r), HasSubstr("a&lt;b"));
}

TEST(ReportTest, WritesTheReportFiles) {
  char tmpl[] = "/tmp/compare-report-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/out";
  ASSERT_TRUE(WriteReport(SampleReport(), dir).ok());
  for (const char* f : {"report.md", "report.json", "startup.svg", "latency.svg"}) {
    EXPECT_EQ(::access((dir + "/" + f).c_str(), R_OK), 0) << f;
  }
  auto out = RunFor({"grep", "-c", "startup.svg\\|latency.svg", dir + "/report.md"},
                    std::chrono::seconds(5));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->out, "2\n");
  (void)RunFor({"rm", "-rf", tmpl}, std::chrono::seconds(5));
}

}  // namespace
}  // namespace cocoon::compare
