// The three modes of containerd-shim-cocoon-v2. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <string>

#include "shim/flags.h"

namespace cocoon::shim {

// `start` (contract 1.4): binds the socket, spawns the daemon, prints only its address.
int RunStart(const ShimFlags& flags);
// `delete` (contract 1.6): idempotent cleanup; DeleteResponse on stdout.
int RunDelete(const ShimFlags& flags);
// The daemon `start` spawns: serves containerd.task.v2.Task on the socket passed as fd 3.
int RunDaemon(const ShimFlags& flags);

// Points the logger at <bundle>/log, the FIFO containerd copies into its own log (contract 1.8).
// Logging is silenced when the FIFO cannot be opened: stdout/stderr are never used.
void LogToBundleFifo(const std::string& bundle, bool debug);

// The bundle: -bundle, or the working directory (containerd runs us in it).
std::string BundleDir(const ShimFlags& flags);

// The group this container belongs to (config.json's annotations; else the container id).
std::string GroupForBundle(const ShimFlags& flags, const std::string& bundle);

// The daemon's socket for this container (config.json's annotations pick the group).
std::string SocketForBundle(const ShimFlags& flags, const std::string& bundle);

// Where the shim keeps its sandboxes' state directories: one folder per containerd namespace
// under the configured root, so equal ids in two namespaces do not collide. The folder name is
// not a valid sandbox id, so `cocoon run` state never collides with it either.
std::string ShimStateRoot(const std::string& state_root, const std::string& ns);

// The serialized DeleteResponse `delete` prints: exit_status 137, exited_at now.
std::string DeleteResponseBytes(uint32_t pid);

}  // namespace cocoon::shim
