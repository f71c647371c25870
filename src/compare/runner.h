// What `cocoon compare` drives: programs run with a deadline, a containerd (a private one it
// starts and stops, or one at a given address) and ctr against it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/result.h"

namespace cocoon::compare {

struct Output {
  int exit_code = 0;
  std::string out;  // stdout and stderr together, the tail kept when long
};

// Runs `argv` to completion, or kills it (and its process group) at `timeout`
// (DEADLINE_EXCEEDED) or once a stop is requested (CANCELLED). `env_extra` entries (NAME=value)
// are added to the inherited environment.
Result<Output> RunFor(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      const std::vector<std::string>& env_extra = {});

// Asks every RunFor now running or started later to give up (from a signal-handling thread), so
// that an interrupted comparison still cleans up; StopRequested tells the orchestration.
void RequestStop();
bool StopRequested();
void ClearStop();  // for a new comparison in the same process (tests)
// While one exists, RunFor on this thread ignores stop requests: cleanup must still run.
class IgnoreStop {
 public:
  IgnoreStop();
  ~IgnoreStop();
  IgnoreStop(const IgnoreStop&) = delete;
  IgnoreStop& operator=(const IgnoreStop&) = delete;

 private:
  bool previous_;
};

// A containerd for the comparison. Private: own root, state, socket and config under `dir`, CRI
// off, the directory holding the cocoon shim first on its PATH; Stop ends it, every shim it
// started and the mounts left under `dir`. External: only used, never stopped.
class Containerd {
 public:
  static Result<std::unique_ptr<Containerd>> StartPrivate(const std::string& dir,
                                                          const std::string& shim_dir);
  static std::unique_ptr<Containerd> External(const std::string& address);
  ~Containerd();  // Stop()
  Containerd(const Containerd&) = delete;
  Containerd& operator=(const Containerd&) = delete;

  const std::string& address() const { return address_; }
  void Stop();

 private:
  explicit Containerd(std::string address) : address_(std::move(address)) {}

  std::string address_;
  std::string dir_;  // empty: external
  ChildProcess daemon_;
};

// ctr against one containerd and namespace.
class Ctr {
 public:
  Ctr(std::string address, std::string ns) : address_(std::move(address)), ns_(std::move(ns)) {}
  // `ctr -a ADDRESS -n NS args...`; a non-zero exit is an error quoting ctr's output.
  Result<std::string> Run(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
  // The same, but a non-zero exit is returned, not an error.
  Result<Output> RunRaw(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
  // Kills, deletes the task and removes the container, ignoring what is already gone.
  void Remove(const std::string& id) const;
  // The task's pid as `ctr task ls` shows it; 0 when there is none.
  uint32_t TaskPid(const std::string& id) const;

  const std::string& ns() const { return ns_; }

 private:
  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  std::string address_;
  std::string ns_;
};

}  // namespace cocoon::compare
