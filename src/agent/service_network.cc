// Protocol 1.2: the guest's network interfaces. The host joins each CNI interface of the pod's
// network namespace to a tap that backs one of the VM's NICs; here the NIC takes that interface's
// identity (name, MAC, MTU, addresses, routes), so packets redirected from the host interface
// reach a guest that answers for the same addresses.
#include <net/if.h>

#include <algorithm>

#include "agent/netlink.h"
#include "agent/service.h"
#include "common/log.h"

namespace cocoon::agent {
namespace {

constexpr size_t kMaxAddresses = 64;
constexpr size_t kMaxRoutes = 256;
constexpr uint32_t kMinMtu = 68;  // IPv4's minimum; IPv6 needs 1280, which the kernel enforces
constexpr uint32_t kMaxMtu = 65535;

Error Invalid(const std::string& what) { return Error(Code::kInvalidArgument, what); }

Status CheckName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return Invalid("interface name '" + name + "' must be 1 to " + std::to_string(IFNAMSIZ - 1) +
                   " characters");
  }
  for (char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) {
      return Invalid("interface name '" + name + "' contains '/', ':', a space or a control byte");
    }
  }
  if (name == "." || name == "..") return Invalid("interface name '" + name + "' is reserved");
  return OkStatus();
}

Result<uint8_t> CheckPrefix(const IpAddr& addr, uint32_t len, const std::string& text) {
  uint32_t max = addr.family == AF_INET6 ? 128 : 32;
  if (len > max) {
    return Invalid("prefix length " + std::to_string(len) + " of " + text + " exceeds " +
                   std::to_string(max));
  }
  return static_cast<uint8_t>(len);
}

// "default", or "a.b.c.d/n" / "x::/n"; a bare address is a host route.
Result<RouteSpec> ParseRoute(const v1::Route& r, int oif) {
  RouteSpec spec;
  spec.family = r.ipv6() ? AF_INET6 : AF_INET;
  spec.oif = oif;
  const std::string& dst = r.destination();
  if (dst != "default") {
    size_t slash = dst.find('/');
    COCOON_ASSIGN_OR_RETURN(IpAddr addr, ParseIp(dst.substr(0, slash)));
    uint32_t len = addr.family == AF_INET6 ? 128 : 32;
    if (slash != std::string::npos) {
      const std::string digits = dst.substr(slash + 1);
      if (digits.empty() || digits.size() > 3 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Invalid("route destination '" + dst + "' has no valid prefix length");
      }
      len = static_cast<uint32_t>(std::stoul(digits));
    }
    COCOON_ASSIGN_OR_RETURN(spec.prefix_len, CheckPrefix(addr, len, dst));
    spec.destination = addr;
  }
  if (!r.gateway().empty()) {
    COCOON_ASSIGN_OR_RETURN(IpAddr gw, ParseIp(r.gateway()));
    spec.gateway = gw;
  }
  auto wrong_family = [&](const IpAddr& a) { return a.family != spec.family; };
  if ((spec.destination && wrong_family(*spec.destination)) ||
      (spec.gateway && wrong_family(*spec.gateway))) {
    return Invalid("route to " + dst + " mixes IPv4 and IPv6 (ipv6=" +
                   (r.ipv6() ? std::string("true") : std::string("false")) + ")");
  }
  return spec;
}

// Everything in the request checked before the first change, so a bad request changes nothing.
struct InterfacePlan {
  MacAddress boot_mac{};
  MacAddress mac{};
  std::vector<std::pair<IpAddr, uint8_t>> addresses;
  std::vector<v1::Route> routes;  // parsed once the interface index is known
};

Result<InterfacePlan> Plan(const v1::ConfigureInterfaceRequest& req) {
  InterfacePlan plan;
  COCOON_ASSIGN_OR_RETURN(plan.boot_mac, ParseMac(req.boot_mac()));
  COCOON_ASSIGN_OR_RETURN(plan.mac, ParseMac(req.mac()));
  COCOON_RETURN_IF_ERROR(CheckName(req.name()));
  if (req.mtu() != 0 && (req.mtu() < kMinMtu || req.mtu() > kMaxMtu)) {
    return Invalid("mtu " + std::to_string(req.mtu()) + " is outside " + std::to_string(kMinMtu) +
                   "-" + std::to_string(kMaxMtu));
  }
  if (req.addresses_size() > static_cast<int>(kMaxAddresses) ||
      req.routes_size() > static_cast<int>(kMaxRoutes)) {
    return Invalid("too many addresses or routes (at most " + std::to_string(kMaxAddresses) +
                   " and " + std::to_string(kMaxRoutes) + ")");
  }
  for (const v1::IpPrefix& a : req.addresses()) {
    COCOON_ASSIGN_OR_RETURN(IpAddr addr, ParseIp(a.address()));
    COCOON_ASSIGN_OR_RETURN(uint8_t len, CheckPrefix(addr, a.prefix_len(), a.address()));
    plan.addresses.emplace_back(addr, len);
  }
  for (const v1::Route& r : req.routes()) {
    COCOON_RETURN_IF_ERROR(ParseRoute(r, 0));
    plan.routes.push_back(r);
  }
  return plan;
}

}  // namespace

Result<v1::Empty> AgentService::ConfigureInterface(const v1::ConfigureInterfaceRequest& req) {
  COCOON_ASSIGN_OR_RETURN(InterfacePlan plan, Plan(req));
  std::lock_guard<std::mutex> lock(net_mu_);
  COCOON_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  COCOON_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, nl.ListLinks());
  // The NIC still has its boot MAC, or already carries the requested identity (a repeated call
  // after a host-side retry).
  auto it = std::find_if(links.begin(), links.end(),
                         [&](const LinkInfo& l) { return l.mac && *l.mac == plan.boot_mac; });
  if (it == links.end()) {
    it = std::find_if(links.begin(), links.end(), [&](const LinkInfo& l) {
      return l.mac && *l.mac == plan.mac && l.name == req.name();
    });
  }
  if (it == links.end()) {
    return Error(Code::kNotFound,
                 "no guest network interface has the boot MAC " + FormatMac(plan.boot_mac));
  }
  const LinkInfo link = *it;
  // A name taken by another interface would make the rename fail with a vaguer EEXIST.
  for (const LinkInfo& other : links) {
    if (other.index != link.index && other.name == req.name()) {
      return Error(Code::kAlreadyExists, "guest interface name " + req.name() + " is taken");
    }
  }
  // Name and MAC change only while the link is down.
  if (link.up) COCOON_RETURN_IF_ERROR(nl.ChangeLink(link.index, {.up = false}));
  LinkChange change;
  if (link.name != req.name()) change.name = req.name();
  change.mac = plan.mac;
  if (req.mtu() != 0) change.mtu = req.mtu();
  COCOON_RETURN_IF_ERROR(nl.ChangeLink(link.index, change));
  COCOON_RETURN_IF_ERROR(nl.ChangeLink(link.index, {.up = true}));
  for (const auto& [addr, len] : plan.addresses) {
    COCOON_RETURN_IF_ERROR(nl.AddAddress(link.index, addr, len));
  }
  // On-link routes first: a route through a gateway needs the gateway's network to be reachable.
  for (bool via_gateway : {false, true}) {
    for (const v1::Route& r : plan.routes) {
      if (r.gateway().empty() == via_gateway) continue;
      COCOON_ASSIGN_OR_RETURN(RouteSpec spec, ParseRoute(r, link.index));
      Status added = nl.AddRoute(spec);
      if (!added.ok()) return added.error().Wrap("route to " + r.destination());
    }
  }
  Log()
      .With("interface", req.name())
      .Info("configured: mac {}, {} address(es), {} route(s)", FormatMac(plan.mac),
            plan.addresses.size(), plan.routes.size());
  return v1::Empty();
}

}  // namespace cocoon::agent
