// Out-of-memory events for GetEvents: every increase of a container's memory.events "oom_kill"
// counter becomes one queued KIND_OOM event, handed to exactly one GetEvents caller.
//
// Why inotify rather than polling: the host keeps a GetEvents call pending for the whole life of
// the sandbox, so a poll (say every 100 ms) would wake the guest ten times a second forever, and
// under TCG every guest wakeup costs host CPU. The kernel already announces each change of
// memory.events to inotify (cgroup_file_notify), so a thread blocked in poll(2) on one inotify
// fd costs nothing until an OOM kill actually happens.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/agent.pb.h"

namespace cocoon::agent {

class OomWatcher {
 public:
  // Queued events beyond this are dropped, oldest first (a host that never asks must not make
  // the agent grow without bound).
  static constexpr size_t kMaxQueued = 1024;

  OomWatcher() = default;
  ~OomWatcher();  // Stop()
  OomWatcher(const OomWatcher&) = delete;
  OomWatcher& operator=(const OomWatcher&) = delete;

  // Opens the inotify fd and starts the watching thread.
  Status Start();
  // Ends the thread and wakes every Take. Idempotent.
  void Stop();

  // Watches container `id`, whose cgroup is `cgroup_dir`. Counts from 0: the cgroup is new, so
  // kills that happened before this call (between crun create and now) are reported too. Returns
  // an error when there is nothing to watch (no memory controller: no memory.events).
  Status Watch(const std::string& id, const std::string& cgroup_dir);
  // Re-reads `id`'s counter now and queues what inotify has not reported yet: an init process
  // killed for memory can exit before the watcher thread wakes, and its exit must not overtake
  // its event.
  void Check(const std::string& id);
  // Stops watching `id`; its queued events stay queued.
  void Unwatch(const std::string& id);

  // Waits until at least one event is queued (or `deadline`, or Interrupt, or Stop) and returns
  // all queued events, removing them: each event reaches one caller only.
  std::vector<v1::GuestEvent> Take(std::chrono::steady_clock::time_point deadline);
  // Makes the Take calls now waiting return empty without taking anything: their connection is
  // gone and the events must stay for the next one.
  void Interrupt();

 private:
  struct Watched {
    std::string id;
    std::string dir;
    uint64_t oom_kills = 0;
  };

  void Loop();
  void OnChange(int wd);
  // Re-reads the counter; queues one event if it grew. Called with mu_ held.
  void CheckLocked(Watched* w);

  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: tells the thread to stop
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Watched> by_wd_;
  std::map<std::string, int> wd_by_id_;
  std::deque<v1::GuestEvent> queue_;
  uint64_t interrupts_ = 0;
  bool stopped_ = false;
};

}  // namespace cocoon::agent
