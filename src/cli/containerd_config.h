// `cocoon containerd-config`: registers the cocoon runtime in containerd's config.toml for the
// CRI plugin. The edit is textual (the user's comments, order and other tables stay as they are);
// toml++ is used only to learn what the file holds and to check the edited text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cocoon::cli {

inline constexpr char kCocoonRuntimeType[] = "io.containerd.cocoon.v2";
inline constexpr char kCocoonShimName[] = "containerd-shim-cocoon-v2";
inline constexpr char kDefaultContainerdConfig[] = "/etc/containerd/config.toml";

// What to register: runtimes.<name> with runtime_type, and optionally runtime_path and
// options.ConfigPath. An empty field is not written; an existing value for it is kept.
struct ContainerdRuntimeSpec {
  std::string name = "cocoon";
  std::string runtime_path;  // absolute shim path
  std::string config_path;   // cocoon config file, delivered to the shim as runtime options
};

struct ContainerdConfigEdit {
  std::string text;                  // the whole new file; equals the input when nothing changed
  std::vector<std::string> changes;  // "added ...", "set ... (was ...)"; empty: nothing changed
  std::vector<std::string> notes;    // things the user should know; not changes
  std::string table;                 // the runtime table's dotted path, as written in headers
};

// Checks that `name` can be a runtime name (a Kubernetes RuntimeClass handler: a DNS label).
Status ValidateRuntimeName(std::string_view name);

// The pure edit: `text` is the current file ("" when there is none), `file_name` names it in
// errors. Fails, naming the file and line, on malformed TOML, on a config version it does not
// know, and on a layout it cannot edit safely (then the message shows the lines to add by hand).
// Every edit is checked by parsing the result: it must equal the input with exactly the
// intended keys changed.
Result<ContainerdConfigEdit> EditContainerdConfig(std::string_view text, std::string_view file_name,
                                                  const ContainerdRuntimeSpec& spec);

// Looks `binary` up in the colon-separated `path_list` like execvp; "" when it is not there.
std::string FindOnPath(std::string_view binary, std::string_view path_list);

struct ContainerdConfigOptions {
  std::string file = kDefaultContainerdConfig;
  ContainerdRuntimeSpec runtime;
  bool dry_run = false;
};

// The file-level step: reads `options.file` (missing: a new version 2 file), edits, and unless
// dry_run or unchanged writes it atomically with its mode and owner kept. A symlink is followed,
// so the link stays a link. Writes nothing on any error.
Result<ContainerdConfigEdit> ApplyContainerdConfig(const ContainerdConfigOptions& options,
                                                   bool* created);

// The subcommand: applies the edit, prints what changed, warns when the shim cannot be found,
// and says how ctr and Kubernetes use the runtime. Returns the exit code.
int ContainerdConfigCommand(ContainerdConfigOptions options);

}  // namespace cocoon::cli
