// Cancels a long operation (VM boot) from another thread, e.g. when the user presses Ctrl-C.
#pragma once

#include <functional>
#include <mutex>

namespace cocoon::sandbox {

class Canceller {
 public:
  // Runs the hook (if any) once; later SetHook calls run their hook at once.
  void Cancel() {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return;
      cancelled_ = true;
      hook = std::move(hook_);
    }
    if (hook) hook();
  }
  bool cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }
  // Installs what Cancel() must do to interrupt the operation now in progress.
  void SetHook(std::function<void()> hook) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!cancelled_) {
        hook_ = std::move(hook);
        return;
      }
    }
    hook();
  }
  void ClearHook() {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = nullptr;
  }

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> hook_;
};

}  // namespace cocoon::sandbox
