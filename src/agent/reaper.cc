#include "agent/reaper.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>

#include <memory>

#include "common/log.h"

namespace cocoon::agent {

int64_t UnixNanosNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Reaper::~Reaper() { Stop(); }

Status Reaper::BlockChildSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  int rc = ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (rc != 0) return Error::FromErrno(rc, "block SIGCHLD");
  return OkStatus();
}

Status Reaper::Start() {
  if (thread_.joinable()) return Error(Code::kFailedPrecondition, "reaper already started");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  signal_fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return Error::FromErrno(errno, "signalfd");
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) return Error::FromErrno(errno, "eventfd");
  thread_ = std::thread([this] { Loop(); });
  return OkStatus();
}

void Reaper::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
  (void)n;  // an eventfd write of 1 cannot fail short of overflow
  thread_.join();
  signal_fd_.reset();
  stop_fd_.reset();
}

void Reaper::Loop() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    // The timeout is a safety net: a SIGCHLD delivered to a thread that does not block it never
    // reaches the signalfd (possible in tests, where threads exist before the mask is set).
    int rc = ::poll(fds, 2, static_cast<int>(kPollInterval.count()));
    if (rc < 0 && errno != EINTR) {
      Log().Error("reaper: poll failed errno={}", errno);
      return;
    }
    if (rc > 0 && (fds[1].revents & POLLIN)) return;
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo info;
      while (::read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
      }
    }
    ReapAll();
  }
}

void Reaper::ReapAll() {
  // SIGCHLD coalesces, so one signal can stand for many exits: reap until nothing is left.
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;  // 0: children left but none exited; ECHILD: no children
    Deliver(pid, ExitRecord{status, UnixNanosNow()});
  }
}

void Reaper::Deliver(pid_t pid, const ExitRecord& record) {
  ExitCallback callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watchers_.find(pid);
    if (it == watchers_.end()) {
      auto now = std::chrono::steady_clock::now();
      PruneLocked(now);
      unclaimed_[pid] = Unclaimed{record, now};
      return;
    }
    callback = std::move(it->second);
    watchers_.erase(it);
  }
  callback(record);
}

void Reaper::PruneLocked(std::chrono::steady_clock::time_point now) {
  if (now - last_prune_ >= std::chrono::seconds(1)) {
    last_prune_ = now;
    for (auto it = unclaimed_.begin(); it != unclaimed_.end();) {
      it = (now - it->second.at > kUnclaimedTtl) ? unclaimed_.erase(it) : std::next(it);
    }
  }
  while (unclaimed_.size() >= kMaxUnclaimed) {
    auto oldest = unclaimed_.begin();
    for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
      if (it->second.at < oldest->second.at) oldest = it;
    }
    unclaimed_.erase(oldest);
  }
}

void Reaper::Watch(pid_t pid, ExitCallback on_exit) {
  ExitRecord record;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = unclaimed_.find(pid);
    if (it == unclaimed_.end()) {
      watchers_[pid] = std::move(on_exit);
      return;
    }
    record = it->second.record;
    unclaimed_.erase(it);
  }
  on_exit(record);
}

void Reaper::Unwatch(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(pid);
}

Result<ExitRecord> Reaper::WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<ExitRecord> record;
  };
  auto slot = std::make_shared<Slot>();
  Watch(pid, [slot](const ExitRecord& r) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->record = r;
    slot->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(slot->mu);
  if (!slot->cv.wait_for(lock, timeout, [&] { return slot->record.has_value(); })) {
    lock.unlock();
    Unwatch(pid);
    lock.lock();
    // The exit may have been delivered between the timeout and Unwatch.
    if (slot->record) return *slot->record;
    return Error(Code::kDeadlineExceeded, "process " + std::to_string(pid) +
                                              " still running after " +
                                              std::to_string(timeout.count()) + " ms");
  }
  return *slot->record;
}

size_t Reaper::unclaimed_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unclaimed_.size();
}

}  // namespace cocoon::agent
