// The probe image of `cocoon compare`, built on the spot: no registry is needed (or reachable on
// many hosts). A busybox rootfs (the host's static busybox, one link per applet, /etc/passwd,
// /etc/group, a page under /www for the HTTP server), packed as an OCI image layout with pinned
// timestamps and imported into containerd.
#pragma once

#include <string>

#include "common/result.h"
#include "compare/runner.h"

namespace cocoon::compare {

inline constexpr char kProbeImage[] = "docker.io/cocoon/compare-probe:1";
// The page the HTTP server in the probe image answers with.
inline constexpr char kProbePage[] = "hello from cocoon compare\n";

// Builds the image under `work_dir` from `busybox` (a static binary) and imports it. Returns
// the image reference.
Result<std::string> ImportProbeImage(const Ctr& ctr, const std::string& work_dir,
                                     const std::string& busybox = "/bin/busybox");

}  // namespace cocoon::compare
