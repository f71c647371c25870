// `cocoon compare`: runs the comparison (src/compare) and shows it.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "common/io.h"
#include "compare/compare.h"
#include "compare/runner.h"
#include "sandbox/config.h"

namespace cocoon::cli {

namespace {

// SIGINT, SIGTERM and SIGHUP stop the comparison instead of killing cocoon, so that the private
// containerd, the containers and the CNI network it made are still removed.
// Limitation: a SIGKILLed compare cannot clean up: its private containerd (own process group),
// the shims and VMs it started and its work directory under /var/tmp stay until removed by hand;
// the next run rewrites only the CNI configuration it finds.
void StopOnSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every later thread inherits the mask
  std::thread([set] {
    int sig = 0;
    if (::sigwait(&set, &sig) == 0) {
      std::fprintf(stderr, "compare: signal %d: stopping and cleaning up\n", sig);
      compare::RequestStop();
    }
  }).detach();
}

}  // namespace

int CompareCommand(const CompareOptions& options) {
  if (::geteuid() != 0) return Fail("compare needs root (containerd, CNI, VMs)");
  StopOnSignals();
  compare::Options o;
  o.runs = options.runs;
  o.requests = options.requests;
  o.http_seconds = options.http_seconds;
  o.address = options.address;
  o.ns = options.ns;
  o.image = options.image;
  o.runtimes.clear();
  std::istringstream names(options.runtimes);
  for (std::string name; std::getline(names, name, ',');) {
    if (!name.empty()) o.runtimes.push_back(name);
  }
  o.shim_dir = sandbox::ExecutableDir();
  // The probe image and a private containerd live here for the run only.
  char tmpl[] = "/var/tmp/cocoon-compare.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Fail("cannot make a work directory under /var/tmp");
  o.work_dir = tmpl;
  o.progress = [](const std::string& line) { std::fprintf(stderr, "compare: %s\n", line.c_str()); };
  auto report = compare::Run(o);
  (void)RemoveTree(o.work_dir);
  if (!report.ok()) return Fail(report.error().message());
  if (!options.report_dir.empty()) {
    Status written = compare::WriteReport(*report, options.report_dir);
    if (!written.ok()) return Fail(written.error().Wrap("report").message());
    std::fprintf(stderr, "compare: report in %s/report.md\n", options.report_dir.c_str());
  }
  std::string out =
      options.json ? compare::ToJson(*report).dump(2) + "\n" : compare::ToTable(*report);
  return WriteAll(STDOUT_FILENO, out).ok() ? 0 : 1;
}

}  // namespace cocoon::cli
