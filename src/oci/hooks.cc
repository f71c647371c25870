#include "oci/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/io.h"
#include "common/log.h"
#include "common/process.h"
#include "common/unique_fd.h"

namespace cocoon::oci {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The runtime-spec version whose state format hooks get (the one `cocoon spec` writes).
constexpr char kStateOciVersion[] = "1.0.2";

Error Invalid(const std::string& msg) { return Error(Code::kInvalidArgument, msg); }

Result<std::vector<std::string>> StringList(const json& hook, const char* field,
                                            const std::string& where) {
  std::vector<std::string> out;
  auto it = hook.find(field);
  if (it == hook.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid(where + "." + field + ": must be an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string()) {
      return Invalid(where + "." + field + "[" + std::to_string(i) + "]: must be a string, got " +
                     v.dump());
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<Hook> ParseHook(const json& h, const std::string& where) {
  if (!h.is_object()) return Invalid(where + ": must be an object, got " + h.dump());
  Hook hook;
  auto path = h.find("path");
  if (path == h.end() || !path->is_string()) {
    return Invalid(where + ".path: a string is required");
  }
  hook.path = path->get<std::string>();
  if (hook.path.empty() || hook.path[0] != '/') {
    return Invalid(where + ".path: must be an absolute path, got \"" + hook.path + "\"");
  }
  COCOON_ASSIGN_OR_RETURN(hook.args, StringList(h, "args", where));
  COCOON_ASSIGN_OR_RETURN(hook.env, StringList(h, "env", where));
  if (auto t = h.find("timeout"); t != h.end() && !t->is_null()) {
    if (!t->is_number_integer() || t->get<int64_t>() <= 0 || t->get<int64_t>() > INT32_MAX) {
      return Invalid(where + ".timeout: must be a positive whole number of seconds, got " +
                     t->dump());
    }
    hook.timeout = static_cast<int>(t->get<int64_t>());
  }
  return hook;
}

// Keeps the last kHookOutputTail bytes of what a hook wrote.
void AppendTail(std::string* tail, const char* data, size_t n) {
  tail->append(data, n);
  if (tail->size() > kHookOutputTail) tail->erase(0, tail->size() - kHookOutputTail);
}

// Reads what is there now; closes `fd` at end of stream.
void Drain(UniqueFd* fd, std::string* tail) {
  char buf[4096];
  while (*fd) {
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n > 0) {
      AppendTail(tail, buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      fd->reset();  // end of stream, or an error that will not go away
    }
  }
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string DescribeEnd(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return "was killed by signal " + std::to_string(sig) +
           (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

const char* HookKindName(HookKind kind) {
  switch (kind) {
    case HookKind::kPrestart:
      return "prestart";
    case HookKind::kCreateRuntime:
      return "createRuntime";
    case HookKind::kCreateContainer:
      return "createContainer";
    case HookKind::kStartContainer:
      return "startContainer";
    case HookKind::kPoststart:
      return "poststart";
    case HookKind::kPoststop:
      return "poststop";
  }
  return "unknown";
}

bool Hooks::empty() const {
  return std::all_of(by_kind.begin(), by_kind.end(), [](const auto& v) { return v.empty(); });
}

Result<Hooks> ParseHooks(const json& spec) {
  Hooks out;
  auto it = spec.find("hooks");
  if (it == spec.end() || it->is_null()) return out;
  if (!it->is_object()) return Invalid("hooks: must be an object, got " + it->dump());
  for (size_t k = 0; k < kHookKinds; ++k) {
    auto kind = static_cast<HookKind>(k);
    std::string where = std::string("hooks.") + HookKindName(kind);
    auto list = it->find(HookKindName(kind));
    if (list == it->end() || list->is_null()) continue;
    if (!list->is_array()) return Invalid(where + ": must be an array, got " + list->dump());
    for (size_t i = 0; i < list->size(); ++i) {
      COCOON_ASSIGN_OR_RETURN(Hook hook,
                              ParseHook((*list)[i], where + "[" + std::to_string(i) + "]"));
      out.of(kind).push_back(std::move(hook));
    }
  }
  return out;
}

std::string StateJson(const State& state) {
  json doc = {{"ociVersion", kStateOciVersion}, {"id", state.id}, {"status", state.status}};
  if (state.pid > 0) doc["pid"] = state.pid;
  doc["bundle"] = state.bundle;
  doc["annotations"] = state.annotations.is_object() ? state.annotations : json::object();
  return doc.dump();
}

Status RunHook(HookKind kind, size_t index, const Hook& hook, const State& state) {
  const std::string what =
      std::string(HookKindName(kind)) + " hook " + std::to_string(index) + " (" + hook.path + ")";
  // The state goes in through a memfd rather than a pipe: the hook gets all of it however large
  // the annotations are, and a hook that never reads stdin cannot block or SIGPIPE us.
  UniqueFd in(::memfd_create("cocoon-hook-state", MFD_CLOEXEC));
  if (!in) return Error::FromErrno(errno, "memfd_create").Wrap(what);
  COCOON_RETURN_IF_ERROR(WriteAll(in.get(), StateJson(state)));
  if (::lseek(in.get(), 0, SEEK_SET) != 0) return Error::FromErrno(errno, "lseek").Wrap(what);
  UniqueFd out_r, out_w, err_r, err_w;
  COCOON_RETURN_IF_ERROR(MakePipe(&out_r, &out_w));
  COCOON_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));
  COCOON_RETURN_IF_ERROR(SetNonblocking(out_r.get(), true));
  COCOON_RETURN_IF_ERROR(SetNonblocking(err_r.get(), true));

  SpawnOptions opts;
  opts.path = hook.path;
  opts.argv = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  opts.env = hook.env;  // exactly the hook's, never ours
  opts.fds = {{0, in.get()}, {1, out_w.get()}, {2, err_w.get()}};
  // Its own process group, so a timeout kills what it started too.
  opts.new_process_group = true;
  auto spawned = ChildProcess::Spawn(opts);
  if (!spawned.ok()) return spawned.error().Wrap(what);
  ChildProcess child = std::move(*spawned);
  in.reset();
  out_w.reset();
  err_w.reset();

  const auto deadline =
      hook.timeout ? Clock::now() + std::chrono::seconds(*hook.timeout) : Clock::time_point::max();
  std::string out_tail, err_tail;
  std::optional<int> status;
  bool timed_out = false;
  for (;;) {
    // A short tick: the wait ends when the hook exits, even if something it started keeps the
    // pipes open.
    auto tick = std::chrono::milliseconds(10);
    if (deadline != Clock::time_point::max()) {
      tick =
          std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                     std::chrono::milliseconds(0), tick);
    }
    pollfd fds[2];
    nfds_t n = 0;
    for (UniqueFd* fd : {&out_r, &err_r}) {
      if (*fd) fds[n++] = {fd->get(), POLLIN, 0};
    }
    if (n > 0) {
      ::poll(fds, n, static_cast<int>(tick.count()));
      Drain(&out_r, &out_tail);
      Drain(&err_r, &err_tail);
      status = child.WaitFor(std::chrono::milliseconds(0));
    } else {
      status = child.WaitFor(tick);
    }
    if (status) break;
    if (Clock::now() >= deadline) {
      ::kill(-child.pid(), SIGKILL);
      child.Kill();
      timed_out = true;
      break;
    }
  }
  Drain(&out_r, &out_tail);
  Drain(&err_r, &err_tail);

  Logger log = Log().With("container", state.id);
  if (!timed_out && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) {
    log.Debug("{} succeeded", what);
    return OkStatus();
  }
  std::string msg =
      timed_out ? what + " timed out after " + std::to_string(*hook.timeout) + "s and was killed"
                : what + " " + DescribeEnd(*status);
  std::string err = Trimmed(err_tail);
  std::string out = Trimmed(out_tail);
  if (!err.empty()) {
    msg += "; stderr: " + err;
  } else if (!out.empty()) {
    msg += "; stdout: " + out;
  }
  return Error(timed_out ? Code::kDeadlineExceeded : Code::kFailedPrecondition, msg);
}

std::string SkippedHooksWarning(const Hooks& hooks) {
  std::string kinds;
  for (HookKind kind : {HookKind::kCreateContainer, HookKind::kStartContainer}) {
    if (hooks.of(kind).empty()) continue;
    kinds += std::string(kinds.empty() ? "" : " and ") + HookKindName(kind);
  }
  if (kinds.empty()) return "";
  return kinds + " hooks are not run: they would have to run inside the VM";
}

Status RunHooks(HookKind kind, const std::vector<Hook>& hooks, const State& state) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    COCOON_RETURN_IF_ERROR(RunHook(kind, i, hooks[i], state));
  }
  return OkStatus();
}

}  // namespace cocoon::oci
