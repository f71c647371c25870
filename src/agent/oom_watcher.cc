#include "agent/oom_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "common/log.h"

namespace cocoon::agent {

OomWatcher::~OomWatcher() { Stop(); }

Status OomWatcher::Start() {
  inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_) return Error::FromErrno(errno, "inotify_init1");
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return Error::FromErrno(errno, "eventfd");
  thread_ = std::thread([this] { Loop(); });
  return OkStatus();
}

void OomWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof(one));
    (void)n;
    thread_.join();
  }
}

Status OomWatcher::Watch(const std::string& id, const std::string& cgroup_dir) {
  if (!inotify_) return Error(Code::kFailedPrecondition, "the OOM watcher is not running");
  std::string file = cgroup_dir + "/memory.events";
  // The watch exists before the first read, so no change can fall between the two.
  int wd = ::inotify_add_watch(inotify_.get(), file.c_str(), IN_MODIFY);
  if (wd < 0) return Error::FromErrno(errno, "watch " + file);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto old = wd_by_id_.find(id); old != wd_by_id_.end() && old->second != wd) {
    by_wd_.erase(old->second);
    ::inotify_rm_watch(inotify_.get(), old->second);
  }
  wd_by_id_[id] = wd;
  Watched& w = by_wd_[wd];
  w = Watched{id, cgroup_dir, 0};
  CheckLocked(&w);
  return OkStatus();
}

void OomWatcher::Unwatch(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = wd_by_id_.find(id);
  if (it == wd_by_id_.end()) return;
  // The cgroup may already be gone, which removed the watch (IN_IGNORED); EINVAL then.
  ::inotify_rm_watch(inotify_.get(), it->second);
  by_wd_.erase(it->second);
  wd_by_id_.erase(it);
}

void OomWatcher::CheckLocked(Watched* w) {
  uint64_t kills = ReadOomKills(w->dir);
  if (kills <= w->oom_kills) return;
  Log().With("container", w->id).Warn("out of memory: oom_kill {} -> {}", w->oom_kills, kills);
  w->oom_kills = kills;
  // Several kills seen at once make one event, as containerd's own cgroup watcher does: the
  // event says "the OOM killer struck", the counter in Stats says how often.
  v1::GuestEvent event;
  event.set_container_id(w->id);
  event.set_kind(v1::GuestEvent::KIND_OOM);
  if (queue_.size() >= kMaxQueued) {
    Log().Warn("guest event queue full: dropping the oldest event");
    queue_.pop_front();
  }
  queue_.push_back(std::move(event));
  cv_.notify_all();
}

void OomWatcher::Check(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto wd = wd_by_id_.find(id);
  if (wd == wd_by_id_.end()) return;
  auto it = by_wd_.find(wd->second);
  if (it != by_wd_.end()) CheckLocked(&it->second);
}

void OomWatcher::OnChange(int wd) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_wd_.find(wd);
  if (it != by_wd_.end()) CheckLocked(&it->second);
}

void OomWatcher::Loop() {
  alignas(inotify_event) char buf[4096];
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Log().Error("OOM watcher: poll failed errno={}; no more OOM events", errno);
      return;
    }
    if (fds[1].revents != 0) return;
    ssize_t n = ::read(inotify_.get(), buf, sizeof(buf));
    if (n <= 0) continue;  // EAGAIN or EINTR
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_IGNORED) {
        // The cgroup was removed: the kernel dropped the watch.
        std::lock_guard<std::mutex> lock(mu_);
        auto it = by_wd_.find(ev->wd);
        if (it != by_wd_.end()) {
          auto id = wd_by_id_.find(it->second.id);
          if (id != wd_by_id_.end() && id->second == ev->wd) wd_by_id_.erase(id);
          by_wd_.erase(it);
        }
      } else if (ev->mask & IN_MODIFY) {
        OnChange(ev->wd);
      } else if (ev->mask & IN_Q_OVERFLOW) {
        // Some changes were lost: look at every watched cgroup again.
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [wd, w] : by_wd_) CheckLocked(&w);
      }
    }
  }
}

std::vector<v1::GuestEvent> OomWatcher::Take(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t interrupts = interrupts_;
  cv_.wait_until(lock, deadline,
                 [&] { return !queue_.empty() || stopped_ || interrupts_ != interrupts; });
  std::vector<v1::GuestEvent> events;
  if (interrupts_ != interrupts) return events;
  events.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  return events;
}

void OomWatcher::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++interrupts_;
  }
  cv_.notify_all();
}

}  // namespace cocoon::agent
