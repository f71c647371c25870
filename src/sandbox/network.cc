#include "sandbox/network.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "common/log.h"
#include "common/process.h"

namespace cocoon::sandbox {
namespace {

using nlohmann::json;

constexpr size_t kMaxIpOutput = 4 << 20;
// Marks cocoon's redirect actions ("cocoon" in hex), so that after a crash `delete` can tell them
// from tc state of anyone else's.
constexpr char kRedirectCookie[] = "636f636f6f6e";

// Runs `fn` on a thread of its own that first joins the namespace, so the process's other threads
// stay where they are (a network namespace belongs to a thread, not to the process).
Status InNamespace(int netns_fd, const std::function<Status()>& fn) {
  Status result;
  std::thread worker([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = Error::FromErrno(errno, "enter the pod's network namespace");
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

Result<UniqueFd> NewNamespace() {
  Result<UniqueFd> out = Error(Code::kInternal, "no namespace");
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      out = Error::FromErrno(errno, "create a network namespace");
      return;
    }
    UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd) {
      out = Error::FromErrno(errno, "open the new network namespace");
      return;
    }
    out = std::move(fd);
  });
  worker.join();
  return out;
}

Result<UniqueFd> OpenNamespace(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::FromErrno(errno, "open network namespace " + path);
  // setns with CLONE_NEWNET refuses any other kind of file; finding out now gives a clear error
  // instead of a failed QEMU start.
  Status probe = InNamespace(fd.get(), [] { return OkStatus(); });
  if (!probe.ok()) {
    return Error(Code::kInvalidArgument, "network namespace path " + path +
                                             " is not a network namespace (" +
                                             probe.error().message() + ")");
  }
  return fd;
}

// A tap in the calling thread's namespace, brought up. IFF_VNET_HDR lets QEMU pass offloaded
// (large, checksum-pending) packets through instead of the kernel splitting them.
Result<UniqueFd> MakeTap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return Error::FromErrno(errno, "open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return Error::FromErrno(errno, "create tap " + name);
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket for tap " + name);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
    return Error::FromErrno(errno, "flags of " + name);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0)
    return Error::FromErrno(errno, "bring up " + name);
  return fd;
}

// Runs a program (`ip`, `tc`) in the namespace once; its stdout, or an error quoting what it
// printed. A JSON query (`-j`) keeps stderr out of its output, which is parsed; a change merges
// it, so a failure says why.
Result<std::string> RunInNamespace(int netns_fd, const std::vector<std::string>& argv) {
  bool json_query = std::find(argv.begin(), argv.end(), "-j") != argv.end();
  COCOON_ASSIGN_OR_RETURN(RunResult r,
                          RunCapture(argv, /*merge_stderr=*/!json_query, kMaxIpOutput, netns_fd));
  if (r.exit_code != 0) {
    std::string said = json_query ? std::string() : r.output.substr(0, 4096);
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Error(Code::kInternal, "`" + cmd + "` failed (exit " + std::to_string(r.exit_code) +
                                      ")" + (said.empty() ? "" : ": " + said));
  }
  return r.output;
}

Error Malformed(const std::string& what) {
  return Error(Code::kInvalidArgument, "unexpected `ip -j` output: " + what);
}

Result<json> ParseArray(const std::string& text, const char* what) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array()) return Malformed(std::string(what) + " is not a list");
  return doc;
}

std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Routes the kernel derives by itself (from an address) or that only make sense on the host side.
bool SkipRoute(const json& r, bool ipv6) {
  if (StringField(r, "protocol") == "kernel") return true;
  std::string dst = StringField(r, "dst");
  if (!ipv6) return false;
  return dst.rfind("fe80:", 0) == 0 || dst.rfind("ff00:", 0) == 0 || dst.rfind("multicast", 0) == 0;
}

Status AddRoutes(const json& routes, bool ipv6, std::vector<HostInterface>* out) {
  for (const json& r : routes) {
    if (!r.is_object()) return Malformed("a route is not an object");
    if (SkipRoute(r, ipv6)) continue;
    std::string dev = StringField(r, "dev");
    std::string dst = StringField(r, "dst");
    if (dst.empty()) return Malformed("a route has no dst");
    for (HostInterface& i : *out) {
      if (i.name == dev) i.routes.push_back({dst, StringField(r, "gateway"), ipv6});
    }
  }
  return OkStatus();
}

}  // namespace

Result<NetworkRequest> NetworkFromSpec(const json& spec) {
  NetworkRequest req;
  auto linux_it = spec.find("linux");
  if (linux_it == spec.end() || !linux_it->is_object()) return req;
  auto ns = linux_it->find("namespaces");
  if (ns == linux_it->end() || ns->is_null()) return req;
  if (!ns->is_array()) return Error(Code::kInvalidArgument, "linux.namespaces is not a list");
  for (const json& n : *ns) {
    if (!n.is_object() || StringField(n, "type") != "network") continue;
    auto path = n.find("path");
    if (path == n.end() || (path->is_string() && path->get<std::string>().empty())) {
      req.mode = NetworkRequest::Mode::kNew;
      return req;
    }
    if (!path->is_string() || path->get<std::string>()[0] != '/') {
      return Error(Code::kInvalidArgument,
                   "linux.namespaces: the network namespace path must be an absolute path");
    }
    req.mode = NetworkRequest::Mode::kPath;
    req.path = path->get<std::string>();
    return req;
  }
  return req;
}

Result<std::vector<HostInterface>> ParseInterfaces(const std::string& addr_json,
                                                   const std::string& routes4_json,
                                                   const std::string& routes6_json) {
  COCOON_ASSIGN_OR_RETURN(json links, ParseArray(addr_json, "the address list"));
  COCOON_ASSIGN_OR_RETURN(json routes4, ParseArray(routes4_json, "the IPv4 routes"));
  COCOON_ASSIGN_OR_RETURN(json routes6, ParseArray(routes6_json, "the IPv6 routes"));
  std::vector<HostInterface> out;
  for (const json& l : links) {
    if (!l.is_object()) return Malformed("a link is not an object");
    HostInterface i;
    i.name = StringField(l, "ifname");
    if (i.name.empty()) return Malformed("a link has no ifname");
    if (StringField(l, "link_type") != "ether" || i.name.rfind(kTapPrefix, 0) == 0) continue;
    i.mac = StringField(l, "address");
    i.mtu = l.value("mtu", 0u);
    auto infos = l.find("addr_info");
    if (infos == l.end() || !infos->is_array()) continue;
    for (const json& a : *infos) {
      // Link-local addresses belong to the host side of the link; the guest makes its own.
      if (!a.is_object() || StringField(a, "scope") != "global") continue;
      std::string ip = StringField(a, "local");
      auto len = a.find("prefixlen");
      if (ip.empty() || len == a.end() || !len->is_number_unsigned()) {
        return Malformed("an address of " + i.name + " has no local or prefixlen");
      }
      i.addresses.push_back({ip, len->get<uint32_t>()});
    }
    if (!i.addresses.empty()) out.push_back(std::move(i));
  }
  COCOON_RETURN_IF_ERROR(AddRoutes(routes4, false, &out));
  COCOON_RETURN_IF_ERROR(AddRoutes(routes6, true, &out));
  return out;
}

std::string BootMac(size_t index) { return fmt::format("02:63:6f:00:00:{:02x}", index & 0xff); }

Result<std::unique_ptr<PodNetwork>> PodNetwork::Open(const NetworkRequest& request, size_t nics) {
  UniqueFd netns;
  bool owned = request.mode == NetworkRequest::Mode::kNew;
  if (owned) {
    COCOON_ASSIGN_OR_RETURN(netns, NewNamespace());
  } else if (request.mode == NetworkRequest::Mode::kPath) {
    COCOON_ASSIGN_OR_RETURN(netns, OpenNamespace(request.path));
  } else {
    return Error(Code::kInvalidArgument, "the spec asks for no network namespace");
  }
  std::unique_ptr<PodNetwork> net(new PodNetwork(std::move(netns), owned));
  for (size_t n = 0; n < nics; ++n) {
    Tap tap;
    tap.name = kTapPrefix + std::to_string(n);
    tap.boot_mac = BootMac(n);
    COCOON_RETURN_IF_ERROR(InNamespace(net->netns_fd(), [&]() -> Status {
      COCOON_ASSIGN_OR_RETURN(tap.fd, MakeTap(tap.name));
      return OkStatus();
    }));
    net->taps_.push_back(std::move(tap));
  }
  return net;
}

PodNetwork::~PodNetwork() {
  // A namespace cocoon made goes with its last fd, everything in it included.
  if (owned_) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Tap& tap : taps_) {
    if (tap.joined.empty()) continue;
    // The tap's own qdisc went with the tap; the host interface outlives cocoon. It may be gone
    // already (CNI DEL first), which is fine.
    auto removed = Run({"tc", "qdisc", "del", "dev", tap.joined, "ingress"});
    if (!removed.ok()) {
      Log()
          .With("interface", tap.joined)
          .Debug("remove ingress qdisc: {}", removed.error().message());
    }
  }
}

Status ScrubNamespace(const std::string& path) {
  UniqueFd netns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) return OkStatus();  // gone: nothing is left in it
  COCOON_ASSIGN_OR_RETURN(std::string text,
                          RunInNamespace(netns.get(), {"ip", "-j", "link", "show"}));
  COCOON_ASSIGN_OR_RETURN(json links, ParseArray(text, "the link list"));
  for (const json& l : links) {
    std::string name = l.is_object() ? StringField(l, "ifname") : "";
    if (name.empty()) continue;
    auto filters =
        RunInNamespace(netns.get(), {"tc", "-j", "filter", "show", "dev", name, "ingress"});
    if (!filters.ok() || filters->find(kRedirectCookie) == std::string::npos) continue;
    COCOON_RETURN_IF_ERROR(
        RunInNamespace(netns.get(), {"tc", "qdisc", "del", "dev", name, "ingress"}));
    Log().With("interface", name).Info("removed the redirect of a sandbox that crashed");
  }
  return OkStatus();
}

void PodNetwork::ReleaseTapFds() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Tap& tap : taps_) tap.fd.reset();
}

Result<std::string> PodNetwork::Run(const std::vector<std::string>& argv) const {
  return RunInNamespace(netns_.get(), argv);
}

Status PodNetwork::Redirect(const std::string& from, const std::string& to) const {
  // A qdisc left from an earlier run would keep redirecting to a tap that no longer exists.
  (void)Run({"tc", "qdisc", "del", "dev", from, "ingress"});
  COCOON_RETURN_IF_ERROR(Run({"tc", "qdisc", "add", "dev", from, "ingress"}));
  // u32 matching nothing in particular matches every packet; it is in every kernel that has tc,
  // unlike matchall.
  COCOON_RETURN_IF_ERROR(Run({"tc",    "filter",   "add",    "dev",          from,     "parent",
                              "ffff:", "protocol", "all",    "u32",          "match",  "u8",
                              "0",     "0",        "action", "mirred",       "egress", "redirect",
                              "dev",   to,         "cookie", kRedirectCookie}));
  return OkStatus();
}

Result<std::vector<PodNetwork::Joined>> PodNetwork::JoinNewInterfaces() {
  std::lock_guard<std::mutex> lock(mu_);
  COCOON_ASSIGN_OR_RETURN(std::string addrs, Run({"ip", "-j", "addr", "show"}));
  COCOON_ASSIGN_OR_RETURN(std::string routes4, Run({"ip", "-j", "-4", "route", "show"}));
  COCOON_ASSIGN_OR_RETURN(std::string routes6, Run({"ip", "-j", "-6", "route", "show"}));
  COCOON_ASSIGN_OR_RETURN(std::vector<HostInterface> found,
                          ParseInterfaces(addrs, routes4, routes6));
  std::vector<Joined> joined;
  std::vector<std::string> left_over;
  for (HostInterface& iface : found) {
    bool known = false;
    Tap* free_tap = nullptr;
    for (Tap& tap : taps_) {
      known = known || tap.joined == iface.name;
      if (free_tap == nullptr && tap.joined.empty()) free_tap = &tap;
    }
    if (known) continue;
    if (free_tap == nullptr) {
      left_over.push_back(iface.name);
      continue;
    }
    if (iface.mtu != 0) {
      COCOON_RETURN_IF_ERROR(
          Run({"ip", "link", "set", "dev", free_tap->name, "mtu", std::to_string(iface.mtu)}));
    }
    // Marked joined before the filters exist, so the destructor also removes a half-made join.
    free_tap->joined = iface.name;
    COCOON_RETURN_IF_ERROR(Redirect(free_tap->name, iface.name));
    COCOON_RETURN_IF_ERROR(Redirect(iface.name, free_tap->name));
    Log()
        .With("interface", iface.name)
        .Info("joined to {} ({} address(es))", free_tap->name, iface.addresses.size());
    joined.push_back({free_tap->boot_mac, std::move(iface)});
  }
  if (!left_over.empty()) {
    std::string names;
    for (const std::string& n : left_over) names += (names.empty() ? "" : ", ") + n;
    return Error(Code::kFailedPrecondition,
                 "the pod's network namespace has more interfaces than the VM has NICs (" +
                     std::to_string(taps_.size()) + "); not joined: " + names);
  }
  return joined;
}

}  // namespace cocoon::sandbox
