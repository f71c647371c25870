// OCI lifecycle hooks run on the host, as runc runs them: each hook is a host program started with
// exactly its own args and env, the container's state JSON on stdin, and an optional timeout.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace cocoon::oci {

// The six kinds of the runtime spec, in the spec's order.
enum class HookKind {
  kPrestart,
  kCreateRuntime,
  kCreateContainer,
  kStartContainer,
  kPoststart,
  kPoststop,
};
inline constexpr size_t kHookKinds = 6;

// The key in config.json: "prestart", "createRuntime", ...
const char* HookKindName(HookKind kind);

struct Hook {
  std::string path;               // absolute host path of the program
  std::vector<std::string> args;  // argv, argv[0] included; empty means {path}
  std::vector<std::string> env;   // NAME=value, the hook's whole environment
  std::optional<int> timeout;     // seconds; none means the hook may run as long as it likes
};

struct Hooks {
  std::array<std::vector<Hook>, kHookKinds> by_kind;

  const std::vector<Hook>& of(HookKind kind) const { return by_kind[static_cast<size_t>(kind)]; }
  std::vector<Hook>& of(HookKind kind) { return by_kind[static_cast<size_t>(kind)]; }
  bool empty() const;
};

// Parses and validates `spec["hooks"]` (absent or null: no hooks). INVALID_ARGUMENT names the
// kind, the index and the field, e.g. "hooks.prestart[1].path: ...". Unknown kinds are ignored,
// as a newer spec may add some.
Result<Hooks> ParseHooks(const nlohmann::json& spec);

// The runtime state handed to hooks on stdin (runtime spec, "State").
struct State {
  std::string id;
  std::string status;  // "creating", "created", "running" or "stopped"
  int pid = 0;         // omitted from the JSON when 0
  std::string bundle;
  nlohmann::json annotations = nlohmann::json::object();
};

// The state as the JSON document hooks read: ociVersion, id, status, pid, bundle, annotations.
std::string StateJson(const State& state);

// How much of a hook's stdout and stderr is kept (the tail) for error messages.
inline constexpr size_t kHookOutputTail = 4096;

// Runs one hook to completion (in the caller's working directory, as runc does) and fails when it
// cannot be started (the errno's code), exits non-zero or dies by a signal (FAILED_PRECONDITION),
// or outlives its timeout (DEADLINE_EXCEEDED; it and its process group are then SIGKILLed and
// reaped). The error names the hook ("prestart hook 0 (/usr/bin/x)"), how it ended and the tail of
// its stderr (of stdout when stderr is empty). The wait ends when the hook exits, not when its
// output closes, so a daemon it leaves behind holding the pipes does not block the caller.
Status RunHook(HookKind kind, size_t index, const Hook& hook, const State& state);

// Limitation: createContainer and startContainer hooks must run in the container's namespaces,
// that is inside the VM, where the host programs they name do not exist; cocoon skips them rather
// than refusing every spec that carries one. This names the skipped kinds for a warning, or is
// empty when there are none.
std::string SkippedHooksWarning(const Hooks& hooks);

// Runs the hooks of one kind in order; stops at the first failure and returns it.
Status RunHooks(HookKind kind, const std::vector<Hook>& hooks, const State& state);

}  // namespace cocoon::oci
