// Where a shim daemon listens (contract section 1.5): one socket per group (a pod's sandbox id,
// a cocoon group annotation, or the container id), hashed with containerd's address and namespace
// so that two containerd instances never share a daemon.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace cocoon::shim {

inline constexpr char kSocketDir[] = "/run/containerd/s";
inline constexpr char kSandboxIdAnnotation[] = "io.kubernetes.cri.sandbox-id";
inline constexpr char kGroupAnnotation[] = "io.containerd.cocoon.group";
// sun_path limit, as the Go shim library checks it.
inline constexpr size_t kMaxSocketPath = 106;

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// The grouping key: the sandbox-id annotation, else the cocoon group annotation, else `id`.
std::string GroupKey(const nlohmann::json& spec, const std::string& id);

// /run/containerd/s/<sha256(address + "/" + ns + "/" + key)> (76 bytes, under the limit).
std::string SocketPath(const std::string& address, const std::string& ns, const std::string& key);

}  // namespace cocoon::shim
