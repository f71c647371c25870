// cocoon: run OCI bundles in lightweight VMs with runc-like semantics.
#include <fcntl.h>
#include <signal.h>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/containerd_config.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using cocoon::cli::GlobalOptions;
  // A reader that goes away (cocoon run | head) must not kill us before cleanup.
  ::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"cocoon: run containers in their own lightweight virtual machines"};
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--root", global.root, "state directory root (default /run/cocoon)");
  app.add_option("--config", global.config_path, "configuration file (TOML)");
  app.add_flag("--debug", global.debug, "log debug messages");
  app.add_option("--log", global.log_file, "append logs to this file instead of stderr");

  cocoon::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "create and run a container in its own VM");
  run_cmd->add_option("-b,--bundle", run.bundle, "path to the OCI bundle (default: .)");
  run_cmd->add_option("id", run.id, "container id")->required();

  auto* check_cmd = app.add_subcommand("check", "check that this host can run cocoon VMs");
  bool env_json = false;
  auto* env_cmd = app.add_subcommand("env", "print the effective configuration");
  env_cmd->add_flag("--json", env_json, "print JSON");
  cocoon::cli::SpecOptions spec;
  auto* spec_cmd = app.add_subcommand("spec", "write a default config.json (like runc spec)");
  spec_cmd->add_option("-b,--bundle", spec.bundle, "bundle directory (default: .)");
  spec_cmd->add_flag("--tty", spec.tty, "give the process a terminal");
  spec_cmd->add_option("args", spec.args, "process arguments (after --; default: sh)");
  auto* version_cmd = app.add_subcommand("version", "print version information");
  cocoon::cli::ContainerdConfigOptions ctrd;
  auto* ctrd_cmd = app.add_subcommand("containerd-config",
                                      "register the cocoon runtime for containerd's CRI plugin");
  ctrd_cmd->add_option("--file", ctrd.file, "containerd config file")->capture_default_str();
  ctrd_cmd->add_option("--runtime-name", ctrd.runtime.name, "runtime (RuntimeClass handler) name")
      ->capture_default_str();
  ctrd_cmd->add_option("--shim", ctrd.runtime.runtime_path,
                       "shim path for runtime_path (default: containerd searches its PATH)");
  ctrd_cmd->add_option("--cocoon-config", ctrd.runtime.config_path,
                       "cocoon config file for the shim (options ConfigPath)");
  ctrd_cmd->add_flag("--dry-run", ctrd.dry_run, "say what would change; write nothing");

  cocoon::cli::CompareOptions cmp;
  auto* cmp_cmd = app.add_subcommand(
      "compare", "compare isolation and cost with runc, gVisor and crun through containerd");
  cmp_cmd->add_option("--runs", cmp.runs, "start-time runs per runtime")->capture_default_str();
  cmp_cmd->add_option("--requests", cmp.requests, "sequential HTTP requests")
      ->capture_default_str();
  cmp_cmd->add_option("--http-seconds", cmp.http_seconds, "length of the throughput test")
      ->capture_default_str();
  cmp_cmd->add_option("--address", cmp.address,
                      "an existing containerd socket (default: start a private containerd)");
  cmp_cmd->add_option("--namespace", cmp.ns, "containerd namespace")->capture_default_str();
  cmp_cmd->add_option("--image", cmp.image,
                      "probe image already in containerd, with busybox (default: build one)");
  cmp_cmd->add_option("--runtimes", cmp.runtimes, "comma-separated runtimes")
      ->capture_default_str();
  cmp_cmd->add_flag("--json", cmp.json, "print one JSON document instead of the table");
  cmp_cmd->add_option("--report", cmp.report_dir,
                      "write report.md, report.json and SVG charts into this directory");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (global.debug) cocoon::SetLogLevel(cocoon::LogLevel::kDebug);
  if (!global.log_file.empty()) {
    int fd = ::open(global.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return cocoon::cli::Fail("cannot open log file " + global.log_file);
    cocoon::SetLogFd(fd);
  }

  if (*run_cmd) return cocoon::cli::RunCommand(global, run);
  if (*check_cmd) return cocoon::cli::CheckCommand(global);
  if (*env_cmd) return cocoon::cli::EnvCommand(global, env_json);
  if (*spec_cmd) return cocoon::cli::SpecCommand(spec);
  if (*version_cmd) return cocoon::cli::VersionCommand();
  if (*ctrd_cmd) return cocoon::cli::ContainerdConfigCommand(ctrd);
  if (*cmp_cmd) return cocoon::cli::CompareCommand(cmp);
  return 1;
}
