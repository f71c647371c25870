// `cocoon containerd-config`: the file handling and messages around EditContainerdConfig.
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/containerd_config.h"
#include "common/io.h"
#include "sandbox/config.h"

namespace cocoon::cli {
namespace {

std::string Absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return std::filesystem::absolute(path).lexically_normal().string();
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

void Warn(const std::string& message) {
  std::fprintf(stderr, "cocoon: warning: %s\n", message.c_str());
}

// containerd runs the shim from runtime_path, else looks it up on its own PATH (section 1.2 of
// the shim contract). Only this process's PATH can be checked here.
void CheckShim(const ContainerdRuntimeSpec& spec) {
  const char* env_path = std::getenv("PATH");
  std::string on_path = FindOnPath(kCocoonShimName, env_path ? env_path : "");
  if (!spec.runtime_path.empty() && !IsExecutableFile(spec.runtime_path)) {
    Warn(spec.runtime_path +
         " (--shim) is not an executable file: containerd will fail to start "
         "containers with this runtime until it is");
  }
  if (!on_path.empty()) {
    std::printf("shim: %s (found on PATH)\n", on_path.c_str());
    return;
  }
  std::string beside = sandbox::ExecutableDir() + "/" + kCocoonShimName;
  std::string hint = IsExecutableFile(beside) ? " (it is at " + beside + ")" : "";
  if (spec.runtime_path.empty()) {
    Warn(std::string(kCocoonShimName) + " is not on PATH" + hint +
         ": containerd will not find it; install it into /usr/local/bin or give --shim PATH");
  } else {
    Warn(std::string(kCocoonShimName) + " is not on PATH" + hint +
         ": CRI uses runtime_path, but `ctr run --runtime " + kCocoonRuntimeType +
         "` needs it on containerd's PATH (or use `ctr run --runtime " + spec.runtime_path + "`)");
  }
}

// Mode and owner of the old file: the atomic rename replaces the inode, so they are set again.
// The new file briefly has the umask-reduced mode and our owner, never more access than before
// for others than root.
Status RestoreAttributes(const std::string& path, const struct stat& old) {
  if (::chmod(path.c_str(), old.st_mode & 07777) != 0)
    return Error::FromErrno(errno, "chmod " + path);
  if ((old.st_uid != ::geteuid() || old.st_gid != ::getegid()) &&
      ::chown(path.c_str(), old.st_uid, old.st_gid) != 0) {
    return Error::FromErrno(errno, "chown " + path);
  }
  return OkStatus();
}

}  // namespace

std::string FindOnPath(std::string_view binary, std::string_view path_list) {
  size_t start = 0;
  while (start <= path_list.size()) {
    size_t end = path_list.find(':', start);
    if (end == std::string_view::npos) end = path_list.size();
    std::string dir(path_list.substr(start, end - start));
    std::string candidate = fmt::format("{}/{}", dir.empty() ? "." : dir, binary);
    if (IsExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

Result<ContainerdConfigEdit> ApplyContainerdConfig(const ContainerdConfigOptions& options,
                                                   bool* created) {
  std::string path = options.file;
  std::string text;
  struct stat old {};
  bool exists = ::stat(path.c_str(), &old) == 0;
  if (exists) {
    if (!S_ISREG(old.st_mode)) {
      return Error(Code::kInvalidArgument, path + " is not a regular file");
    }
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) == nullptr) {
      return Error::FromErrno(errno, "resolve " + path);
    }
    path = resolved;  // write through a symlink, not over it
    COCOON_ASSIGN_OR_RETURN(text, ReadFile(path));
  } else if (errno != ENOENT) {
    return Error::FromErrno(errno, "stat " + path);
  }
  COCOON_ASSIGN_OR_RETURN(ContainerdConfigEdit edit,
                          EditContainerdConfig(text, options.file, options.runtime));
  *created = !exists && !edit.changes.empty();
  if (edit.changes.empty() || options.dry_run) return edit;

  if (exists && ::access(path.c_str(), W_OK) != 0) {
    return Error::FromErrno(errno, "cannot write " + path);
  }
  if (!exists) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (!dir.empty()) COCOON_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  }
  Status written = WriteFileAtomic(path, edit.text, exists ? (old.st_mode & 07777) : 0644);
  if (!written.ok()) {
    return Error(written.error().code(), "cannot write " + path + ": " + written.error().message());
  }
  if (exists) COCOON_RETURN_IF_ERROR(RestoreAttributes(path, old));
  return edit;
}

int ContainerdConfigCommand(ContainerdConfigOptions options) {
  options.runtime.runtime_path = Absolute(options.runtime.runtime_path);
  options.runtime.config_path = Absolute(options.runtime.config_path);
  if (!options.runtime.config_path.empty() && !PathExists(options.runtime.config_path)) {
    Warn(options.runtime.config_path +
         " (--cocoon-config) does not exist yet; the shim fails "
         "to start containers until it does");
  }
  bool created = false;
  auto edit = ApplyContainerdConfig(options, &created);
  if (!edit.ok()) return Fail(edit.error().message());

  const char* verb = options.dry_run ? "would be " : "";
  if (edit->changes.empty()) {
    std::printf("%s: runtime %s already registered, nothing changed\n", options.file.c_str(),
                options.runtime.name.c_str());
  } else {
    std::printf("%s: %s%s\n", options.file.c_str(), verb, created ? "created" : "changed");
    for (const auto& c : edit->changes) std::printf("  %s%s\n", verb, c.c_str());
  }
  for (const auto& n : edit->notes) std::printf("note: %s\n", n.c_str());
  if (options.dry_run && !edit->changes.empty()) {
    std::printf("dry run: %s was not written\n", options.file.c_str());
  }
  CheckShim(options.runtime);
  std::printf(
      "CRI (kubelet, crictl): restart containerd, then use a RuntimeClass with handler: %s\n"
      "ctr does not read this table; it names the runtime itself:\n"
      "  ctr run --runtime %s IMAGE ID COMMAND...\n",
      options.runtime.name.c_str(), kCocoonRuntimeType);
  return 0;
}

}  // namespace cocoon::cli
