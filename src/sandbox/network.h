// Pod networking on the host (architecture decision 7). The VM's NICs are backed by taps that live
// in the pod's network namespace, and QEMU itself runs there, so its pid names that namespace for
// CNI. When a container starts, each CNI interface of the namespace that has addresses is joined
// to a free tap by tc redirects both ways, and the guest NIC takes the interface's identity.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::sandbox {

// What a spec asks of the network: no network namespace entry at all (the VM gets no NIC, the
// guest has loopback only), a new namespace (cocoon creates it), or the namespace at `path`.
struct NetworkRequest {
  enum class Mode { kNone, kNew, kPath };
  Mode mode = Mode::kNone;
  std::string path;
};
// Reads linux.namespaces; INVALID_ARGUMENT for a malformed network entry.
Result<NetworkRequest> NetworkFromSpec(const nlohmann::json& spec);

// Taps cocoon makes are named kTapPrefix<n>; CNI never makes such names, so they are skipped when
// the namespace is scanned.
inline constexpr char kTapPrefix[] = "cocoon_tap";

// A host interface the guest should stand in for, as the namespace shows it.
struct HostInterface {
  struct Address {
    std::string ip;
    uint32_t prefix_len = 0;
  };
  struct Route {
    std::string destination;  // "default" or a prefix
    std::string gateway;      // empty: on-link
    bool ipv6 = false;
  };
  std::string name;
  std::string mac;
  uint32_t mtu = 0;
  std::vector<Address> addresses;  // global scope only
  std::vector<Route> routes;       // through this interface, kernel-made ones left out
};

// Parses the JSON of `ip -j addr show`, `ip -j -4 route show` and `ip -j -6 route show` into the
// interfaces that have addresses to hand to the guest: loopback, cocoon's taps and interfaces
// without a global address are left out. INVALID_ARGUMENT when a document is not what ip prints.
Result<std::vector<HostInterface>> ParseInterfaces(const std::string& addr_json,
                                                   const std::string& routes4_json,
                                                   const std::string& routes6_json);

// After a crash: removes the ingress redirects cocoon added to the interfaces of the namespace at
// `path` (one it did not make, so it outlives the sandbox). A missing namespace is no error.
Status ScrubNamespace(const std::string& path);

// The boot MAC of NIC `index`: locally administered, so it can never clash with a real one.
std::string BootMac(size_t index);

class PodNetwork {
 public:
  // Opens (kPath) or creates (kNew) the namespace and makes `nics` taps in it. Not for kNone.
  static Result<std::unique_ptr<PodNetwork>> Open(const NetworkRequest& request, size_t nics);
  // Removes the tc state cocoon added to the host interfaces; the taps vanish with their last fd
  // (QEMU's), a namespace cocoon made with its last user.
  ~PodNetwork();
  PodNetwork(const PodNetwork&) = delete;
  PodNetwork& operator=(const PodNetwork&) = delete;

  int netns_fd() const { return netns_.get(); }
  struct Tap {
    std::string name;
    std::string boot_mac;
    UniqueFd fd;         // closed by ReleaseTapFds once QEMU holds its copy
    std::string joined;  // the host interface redirected to it; empty while free
  };
  const std::vector<Tap>& taps() const { return taps_; }
  // Drops cocoon's copies of the tap fds, so a tap goes away as soon as QEMU exits.
  void ReleaseTapFds();

  // Joins every interface of the namespace that is not joined yet to a free tap (tc redirect both
  // ways, tap MTU set to the interface's) and returns them with the boot MAC of their NIC. More
  // interfaces than free taps is an error naming the ones left over; those joined stay joined.
  struct Joined {
    std::string boot_mac;
    HostInterface interface;
  };
  Result<std::vector<Joined>> JoinNewInterfaces();

 private:
  PodNetwork(UniqueFd netns, bool owned) : netns_(std::move(netns)), owned_(owned) {}
  // Runs a program (`ip`, `tc`) in the namespace; its output, or an error quoting it.
  Result<std::string> Run(const std::vector<std::string>& argv) const;
  Status Redirect(const std::string& from, const std::string& to) const;

  UniqueFd netns_;
  bool owned_;  // created by cocoon
  std::mutex mu_;
  std::vector<Tap> taps_;
};

}  // namespace cocoon::sandbox
