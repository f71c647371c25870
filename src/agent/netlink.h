// A minimal rtnetlink client for the guest: the agent configures the VM's NIC itself because the
// guest image has no `ip` tool. Only what ConfigureInterface needs: list links, change a link,
// add an address, add a route. Works in whatever network namespace the calling thread is in.
#pragma once

#include <net/if.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cocoon::agent {

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56" (either case) to bytes; INVALID_ARGUMENT otherwise.
Result<MacAddress> ParseMac(const std::string& text);
std::string FormatMac(const MacAddress& mac);

// An IPv4 or IPv6 address in network byte order.
struct IpAddr {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};
  size_t size() const { return family == AF_INET6 ? 16 : 4; }
};
// "10.0.0.1" or "fd00::1"; INVALID_ARGUMENT otherwise.
Result<IpAddr> ParseIp(const std::string& text);

struct LinkInfo {
  int index = 0;
  std::string name;
  std::optional<MacAddress> mac;
  uint32_t mtu = 0;
  bool up = false;
};

struct LinkChange {
  std::optional<std::string> name;
  std::optional<MacAddress> mac;
  std::optional<uint32_t> mtu;
  std::optional<bool> up;
};

struct RouteSpec {
  int family = AF_INET;
  std::optional<IpAddr> destination;  // none: the default route
  uint8_t prefix_len = 0;
  std::optional<IpAddr> gateway;  // none: on-link (scope link)
  int oif = 0;
};

class Netlink {
 public:
  static Result<Netlink> Open();

  Result<std::vector<LinkInfo>> ListLinks();
  Status ChangeLink(int index, const LinkChange& change);
  // Adds `addr/prefix_len` to the link; an address already present is not an error. IPv6
  // addresses skip duplicate address detection: the host side already owns them.
  Status AddAddress(int index, const IpAddr& addr, uint8_t prefix_len);
  // Adds or replaces a route in the main table.
  Status AddRoute(const RouteSpec& route);

 private:
  explicit Netlink(UniqueFd fd) : fd_(std::move(fd)) {}
  // Sends one request and waits for its acknowledgement (the kernel's errno on failure).
  Status Transact(std::vector<uint8_t>* msg, const char* what);

  UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace cocoon::agent
