// The cocoon command line: one function per subcommand, each returning the process exit code.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "sandbox/config.h"

namespace cocoon::cli {

struct GlobalOptions {
  std::string root;         // state root override (runc's --root)
  std::string config_path;  // --config
  bool debug = false;
  std::string log_file;  // --log: write logs here instead of stderr
};

struct RunOptions {
  std::string id;
  std::string bundle = ".";
};

struct SpecOptions {
  std::string bundle = ".";
  bool tty = false;
  std::vector<std::string> args;
};

struct CompareOptions {
  int runs = 5;
  int requests = 50;
  int http_seconds = 3;
  std::string address;
  std::string ns = "cocoon-compare";
  std::string image;
  std::string runtimes = "runc,cocoon,gvisor,crun";
  bool json = false;
  std::string report_dir;
};

int RunCommand(const GlobalOptions& global, const RunOptions& options);
int CompareCommand(const CompareOptions& options);
int CheckCommand(const GlobalOptions& global);
int EnvCommand(const GlobalOptions& global, bool json);
int VersionCommand();
int SpecCommand(const SpecOptions& options);

// Loads the engine configuration with the global flags applied (assets not yet resolved).
Result<sandbox::EngineConfig> LoadEngineConfig(const GlobalOptions& global);

// Prints "cocoon: <message>" to stderr; returns 1, runc's exit code for its own errors.
int Fail(const std::string& message);

}  // namespace cocoon::cli
