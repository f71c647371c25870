#include "compare/image.h"

#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "common/io.h"

namespace cocoon::compare {
namespace {

using nlohmann::json;
constexpr auto kToolTimeout = std::chrono::seconds(60);

Status Tool(const std::vector<std::string>& argv) {
  COCOON_ASSIGN_OR_RETURN(Output o, RunFor(argv, kToolTimeout));
  if (o.exit_code != 0) {
    return Error(Code::kUnknown, "`" + argv[0] + "` failed building the probe image: " + o.out);
  }
  return OkStatus();
}

struct Blob {
  std::string digest;  // "sha256:..."
  uint64_t size = 0;
};

// Moves `file` into the layout's blob store under its digest.
Result<Blob> StoreBlob(const std::string& layout, const std::string& file) {
  COCOON_ASSIGN_OR_RETURN(Output sum, RunFor({"sha256sum", file}, kToolTimeout));
  std::string hex = sum.out.substr(0, sum.out.find(' '));
  if (sum.exit_code != 0 || hex.size() != 64) {
    return Error(Code::kUnknown, "sha256sum " + file + ": " + sum.out);
  }
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return Error::FromErrno(errno, "stat " + file);
  std::string target = layout + "/blobs/sha256/" + hex;
  if (::rename(file.c_str(), target.c_str()) != 0) return Error::FromErrno(errno, "store " + file);
  return Blob{"sha256:" + hex, static_cast<uint64_t>(st.st_size)};
}

Result<Blob> StoreJson(const std::string& layout, const std::string& scratch, const json& doc) {
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(scratch, doc.dump()));
  return StoreBlob(layout, scratch);
}

Status MakeRootfs(const std::string& rootfs, const std::string& busybox) {
  for (const char* d : {"bin", "etc", "tmp", "proc", "sys", "dev", "www", "root"}) {
    COCOON_RETURN_IF_ERROR(MakeDirs(rootfs + "/" + d));
  }
  COCOON_RETURN_IF_ERROR(Tool({"cp", busybox, rootfs + "/bin/busybox"}));
  COCOON_ASSIGN_OR_RETURN(Output list, RunFor({busybox, "--list"}, kToolTimeout));
  if (list.exit_code != 0) return Error(Code::kUnknown, busybox + " --list: " + list.out);
  std::istringstream applets(list.out);
  for (std::string applet; std::getline(applets, applet);) {
    if (applet.empty() || applet == "busybox" || applet.find('/') != std::string::npos) continue;
    std::string link = rootfs + "/bin/" + applet;
    if (::symlink("busybox", link.c_str()) != 0 && errno != EEXIST) {
      return Error::FromErrno(errno, "link " + link);
    }
  }
  COCOON_RETURN_IF_ERROR(
      WriteFileAtomic(rootfs + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"));
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(rootfs + "/etc/group", "root:x:0:\n"));
  return WriteFileAtomic(rootfs + "/www/index.html", kProbePage);
}

}  // namespace

Result<std::string> ImportProbeImage(const Ctr& ctr, const std::string& work_dir,
                                     const std::string& busybox) {
  const std::string dir = work_dir + "/image";
  const std::string layout = dir + "/layout";
  (void)RemoveTree(dir);
  COCOON_RETURN_IF_ERROR(MakeDirs(layout + "/blobs/sha256"));
  COCOON_RETURN_IF_ERROR(MakeRootfs(dir + "/rootfs", busybox));
  // Pinned names, times and owners: the same busybox gives the same image digest.
  COCOON_RETURN_IF_ERROR(
      Tool({"tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C",
            dir + "/rootfs", "-cf", dir + "/layer.tar", "."}));
  COCOON_ASSIGN_OR_RETURN(Blob layer, StoreBlob(layout, dir + "/layer.tar"));
  json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"config", {{"Env", {"PATH=/bin"}}, {"Cmd", {"sh"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.digest}}}}};
  COCOON_ASSIGN_OR_RETURN(Blob cfg, StoreJson(layout, dir + "/config.json", config));
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", cfg.digest},
                     {"size", cfg.size}}},
                   {"layers",
                    {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                      {"digest", layer.digest},
                      {"size", layer.size}}}}};
  COCOON_ASSIGN_OR_RETURN(Blob man, StoreJson(layout, dir + "/manifest.json", manifest));
  json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", man.digest},
                   {"size", man.size},
                   {"platform", {{"architecture", "amd64"}, {"os", "linux"}}},
                   {"annotations", {{"io.containerd.image.name", kProbeImage}}}}}}};
  COCOON_RETURN_IF_ERROR(WriteFileAtomic(layout + "/index.json", index.dump()));
  COCOON_RETURN_IF_ERROR(
      WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  COCOON_RETURN_IF_ERROR(Tool({"tar", "-C", layout, "-cf", dir + "/image.tar", "."}));
  COCOON_RETURN_IF_ERROR(ctr.Run({"images", "import", dir + "/image.tar"}));
  return std::string(kProbeImage);
}

}  // namespace cocoon::compare
