// Builds a tiny initramfs (newc cpio, uncompressed) around the host's static busybox, for tests
// that boot a real guest kernel without the cocoon agent.
#pragma once

#include <string>

#include "common/result.h"

namespace cocoon::vmm::testing {

// Writes to `path` an initramfs whose /init is `init_script` (run by /bin/busybox sh) and whose
// /bin holds busybox and links for the applets the scripts use.
Status WriteBusyboxInitramfs(const std::string& path, const std::string& init_script,
                             const std::string& busybox = "/bin/busybox");

}  // namespace cocoon::vmm::testing
