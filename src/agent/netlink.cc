#include "agent/netlink.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace cocoon::agent {
namespace {

// Appends `payload` to a netlink message, padded to the netlink alignment.
void Append(std::vector<uint8_t>* msg, const void* payload, size_t len) {
  const auto* p = static_cast<const uint8_t*>(payload);
  msg->insert(msg->end(), p, p + len);
  msg->resize(NLMSG_ALIGN(msg->size()), 0);
}

void AddAttr(std::vector<uint8_t>* msg, uint16_t type, const void* data, size_t len) {
  rtattr attr{};
  attr.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  attr.rta_type = type;
  size_t start = msg->size();
  msg->insert(msg->end(), reinterpret_cast<uint8_t*>(&attr),
              reinterpret_cast<uint8_t*>(&attr) + sizeof(attr));
  msg->resize(start + RTA_LENGTH(0));
  const auto* p = static_cast<const uint8_t*>(data);
  msg->insert(msg->end(), p, p + len);
  msg->resize(NLMSG_ALIGN(msg->size()), 0);
}

// A request: header first (its length is fixed up by Finish), then the family header.
template <typename FamilyHeader>
std::vector<uint8_t> Begin(uint16_t type, uint16_t flags, const FamilyHeader& family) {
  std::vector<uint8_t> msg;
  nlmsghdr hdr{};
  hdr.nlmsg_type = type;
  hdr.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  Append(&msg, &hdr, sizeof(hdr));
  Append(&msg, &family, sizeof(family));
  return msg;
}

nlmsghdr* Header(std::vector<uint8_t>* msg) { return reinterpret_cast<nlmsghdr*>(msg->data()); }

}  // namespace

Result<MacAddress> ParseMac(const std::string& text) {
  MacAddress mac{};
  unsigned int b[6];
  char tail;
  if (text.size() != 17 || std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1],
                                       &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
    return Error(Code::kInvalidArgument, "'" + text + "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
  }
  for (size_t i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

std::string FormatMac(const MacAddress& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

Result<IpAddr> ParseIp(const std::string& text) {
  IpAddr addr;
  if (::inet_pton(AF_INET, text.c_str(), addr.bytes.data()) == 1) {
    addr.family = AF_INET;
  } else if (::inet_pton(AF_INET6, text.c_str(), addr.bytes.data()) == 1) {
    addr.family = AF_INET6;
  } else {
    return Error(Code::kInvalidArgument, "'" + text + "' is not an IPv4 or IPv6 address");
  }
  return addr;
}

Result<Netlink> Netlink::Open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return Error::FromErrno(errno, "netlink socket");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return Error::FromErrno(errno, "bind netlink socket");
  }
  return Netlink(std::move(fd));
}

Status Netlink::Transact(std::vector<uint8_t>* msg, const char* what) {
  nlmsghdr* hdr = Header(msg);
  hdr->nlmsg_len = static_cast<uint32_t>(msg->size());
  hdr->nlmsg_seq = ++seq_;
  if (::send(fd_.get(), msg->data(), msg->size(), 0) < 0) {
    return Error::FromErrno(errno, std::string("netlink send (") + what + ")");
  }
  std::vector<uint8_t> buf(8192);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, std::string("netlink recv (") + what + ")");
    }
    auto len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq_ || h->nlmsg_type != NLMSG_ERROR) continue;
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
      if (err->error == 0) return OkStatus();
      return Error::FromErrno(-err->error, what);
    }
  }
}

Result<std::vector<LinkInfo>> Netlink::ListLinks() {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  std::vector<uint8_t> msg = Begin(RTM_GETLINK, NLM_F_DUMP, ifi);
  Header(&msg)->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  Header(&msg)->nlmsg_len = static_cast<uint32_t>(msg.size());
  Header(&msg)->nlmsg_seq = ++seq_;
  if (::send(fd_.get(), msg.data(), msg.size(), 0) < 0) {
    return Error::FromErrno(errno, "netlink send (list links)");
  }
  std::vector<LinkInfo> links;
  std::vector<uint8_t> buf(32768);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "netlink recv (list links)");
    }
    auto len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq_) continue;
      if (h->nlmsg_type == NLMSG_DONE) return links;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return Error::FromErrno(-err->error, "list links");
      }
      if (h->nlmsg_type != RTM_NEWLINK) continue;
      const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
      LinkInfo link;
      link.index = info->ifi_index;
      link.up = (info->ifi_flags & IFF_UP) != 0;
      auto attr_len = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(info); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
        const void* data = RTA_DATA(a);
        size_t size = RTA_PAYLOAD(a);
        if (a->rta_type == IFLA_IFNAME) {
          link.name.assign(static_cast<const char*>(data),
                           strnlen(static_cast<const char*>(data), size));
        } else if (a->rta_type == IFLA_ADDRESS && size == 6) {
          MacAddress mac;
          std::memcpy(mac.data(), data, 6);
          link.mac = mac;
        } else if (a->rta_type == IFLA_MTU && size == sizeof(uint32_t)) {
          std::memcpy(&link.mtu, data, sizeof(uint32_t));
        }
      }
      links.push_back(std::move(link));
    }
  }
}

Status Netlink::ChangeLink(int index, const LinkChange& change) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  if (change.up) {
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = *change.up ? IFF_UP : 0;
  }
  std::vector<uint8_t> msg = Begin(RTM_NEWLINK, 0, ifi);
  if (change.name) AddAttr(&msg, IFLA_IFNAME, change.name->c_str(), change.name->size() + 1);
  if (change.mac) AddAttr(&msg, IFLA_ADDRESS, change.mac->data(), change.mac->size());
  if (change.mtu) AddAttr(&msg, IFLA_MTU, &*change.mtu, sizeof(uint32_t));
  return Transact(&msg, "change link");
}

Status Netlink::AddAddress(int index, const IpAddr& addr, uint8_t prefix_len) {
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(addr.family);
  ifa.ifa_prefixlen = prefix_len;
  ifa.ifa_index = static_cast<uint32_t>(index);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  if (addr.family == AF_INET6) ifa.ifa_flags = IFA_F_NODAD;
  std::vector<uint8_t> msg = Begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifa);
  AddAttr(&msg, IFA_LOCAL, addr.bytes.data(), addr.size());
  AddAttr(&msg, IFA_ADDRESS, addr.bytes.data(), addr.size());
  if (addr.family == AF_INET6) {
    uint32_t flags = IFA_F_NODAD;
    AddAttr(&msg, IFA_FLAGS, &flags, sizeof(flags));
  }
  return Transact(&msg, "add address");
}

Status Netlink::AddRoute(const RouteSpec& route) {
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(route.family);
  rtm.rtm_dst_len = route.destination ? route.prefix_len : 0;
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_protocol = RTPROT_BOOT;
  rtm.rtm_type = RTN_UNICAST;
  rtm.rtm_scope = route.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  std::vector<uint8_t> msg = Begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, rtm);
  if (route.destination) {
    AddAttr(&msg, RTA_DST, route.destination->bytes.data(), route.destination->size());
  }
  if (route.gateway) AddAttr(&msg, RTA_GATEWAY, route.gateway->bytes.data(), route.gateway->size());
  if (route.oif != 0) {
    auto oif = static_cast<uint32_t>(route.oif);
    AddAttr(&msg, RTA_OIF, &oif, sizeof(oif));
  }
  return Transact(&msg, "add route");
}

}  // namespace cocoon::agent
