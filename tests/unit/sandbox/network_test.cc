#include "sandbox/network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/process.h"

namespace cocoon::sandbox {
namespace {

using nlohmann::json;

// Shapes as iproute2 6.1 prints them for a CNI bridge interface.
constexpr char kAddrs[] = R"([
  {"ifindex":1,"ifname":"lo","mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00",
   "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
  {"ifindex":2,"ifname":"cocoon_tap0","mtu":1500,"link_type":"ether","address":"16:ef:be:66:04:0a",
   "addr_info":[]},
  {"ifindex":3,"link_index":7,"ifname":"eth0","mtu":1450,"link_type":"ether",
   "address":"aa:bb:cc:dd:ee:01","link_netnsid":0,
   "addr_info":[{"family":"inet","local":"10.88.0.5","prefixlen":16,"broadcast":"10.88.255.255",
                 "scope":"global","label":"eth0"},
                {"family":"inet6","local":"fd00:88::5","prefixlen":64,"scope":"global"},
                {"family":"inet6","local":"fe80::a8bb:ccff:fedd:ee01","prefixlen":64,
                 "scope":"link"}]},
  {"ifindex":4,"ifname":"eth1","mtu":1500,"link_type":"ether","address":"aa:bb:cc:dd:ee:02",
   "addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}
])";
constexpr char kRoutes4[] = R"([
  {"dst":"default","gateway":"10.88.0.1","dev":"eth0","flags":[]},
  {"dst":"10.88.0.0/16","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.88.0.5"},
  {"dst":"192.168.7.0/24","gateway":"10.88.0.9","dev":"eth0","flags":[]}
])";
constexpr char kRoutes6[] = R"([
  {"dst":"fd00:88::/64","dev":"eth0","protocol":"kernel","metric":256,"pref":"medium"},
  {"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"pref":"medium"},
  {"dst":"default","gateway":"fd00:88::1","dev":"eth0","metric":1024,"pref":"medium"}
])";

TEST(ParseInterfacesTest, KeepsCniInterfacesWithGlobalAddressesAndTheirRoutes) {
  auto found = ParseInterfaces(kAddrs, kRoutes4, kRoutes6);
  ASSERT_TRUE(found.ok()) << found.error().message();
  ASSERT_EQ(found->size(), 1u);  // lo, the tap and eth1 (link-local only) are left out
  const HostInterface& i = (*found)[0];
  EXPECT_EQ(i.name, "eth0");
  EXPECT_EQ(i.mac, "aa:bb:cc:dd:ee:01");
  EXPECT_EQ(i.mtu, 1450u);
  ASSERT_EQ(i.addresses.size(), 2u);
  EXPECT_EQ(i.addresses[0].ip, "10.88.0.5");
  EXPECT_EQ(i.addresses[0].prefix_len, 16u);
  EXPECT_EQ(i.addresses[1].ip, "fd00:88::5");
  EXPECT_EQ(i.addresses[1].prefix_len, 64u);
  // Kernel-made subnet routes and link-local ones stay behind: the guest derives them itself.
  ASSERT_EQ(i.routes.size(), 3u);
  EXPECT_EQ(i.routes[0].destination, "default");
  EXPECT_EQ(i.routes[0].gateway, "10.88.0.1");
  EXPECT_FALSE(i.routes[0].ipv6);
  EXPECT_EQ(i.routes[1].destination, "192.168.7.0/24");
  EXPECT_EQ(i.routes[2].destination, "default");
  EXPECT_EQ(i.routes[2].gateway, "fd00:88::1");
  EXPECT_TRUE(i.routes[2].ipv6);
}

TEST(ParseInterfacesTest, EmptyNamespaceHasNothingToJoin) {
  auto found = ParseInterfaces(
      R"([{"ifindex":1,"ifname":"lo","link_type":"loopback","addr_info":[]}])", "[]", "[]");
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_TRUE(found->empty());
}

TEST(ParseInterfacesTest, MalformedOutputIsAnError) {
  struct Case {
    const char *addrs, *routes4, *label;
  } cases[] = {
      {"not json", "[]", "the address list is not a list"},
      {"{}", "[]", "the address list is not a list"},
      {"[]", "{\"dst\":1}", "the IPv4 routes is not a list"},
      {"[1]", "[]", "a link is not an object"},
      {R"([{"mtu":1}])", "[]", "a link has no ifname"},
      {R"([{"ifname":"e","link_type":"ether","addr_info":[{"scope":"global","local":"1.2.3.4"}]}])",
       "[]", "an address of e has no local or prefixlen"},
      {"[]", R"([{"dev":"eth0"}])", "a route has no dst"},
  };
  for (const Case& c : cases) {
    auto found = ParseInterfaces(c.addrs, c.routes4, "[]");
    ASSERT_FALSE(found.ok()) << c.label;
    EXPECT_EQ(found.error().code(), Code::kInvalidArgument);
    EXPECT_THAT(found.error().message(), ::testing::HasSubstr(c.label));
  }
}

TEST(NetworkFromSpecTest, ModesFromLinuxNamespaces) {
  auto mode = [](const char* text) {
    auto r = NetworkFromSpec(json::parse(text));
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? r->mode : NetworkRequest::Mode::kNone;
  };
  using Mode = NetworkRequest::Mode;
  EXPECT_EQ(mode("{}"), Mode::kNone);
  EXPECT_EQ(mode(R"({"linux":{"namespaces":[{"type":"pid"}]}})"), Mode::kNone);
  EXPECT_EQ(mode(R"({"linux":{"namespaces":[{"type":"network"}]}})"), Mode::kNew);
  EXPECT_EQ(mode(R"({"linux":{"namespaces":[{"type":"network","path":""}]}})"), Mode::kNew);
  auto p = NetworkFromSpec(
      json::parse(R"({"linux":{"namespaces":[{"type":"network","path":"/var/run/netns/a"}]}})"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->mode, Mode::kPath);
  EXPECT_EQ(p->path, "/var/run/netns/a");
}

TEST(NetworkFromSpecTest, MalformedEntriesAreErrors) {
  for (const char* text : {R"({"linux":{"namespaces":{}}})",
                           R"({"linux":{"namespaces":[{"type":"network","path":"rel/ns"}]}})",
                           R"({"linux":{"namespaces":[{"type":"network","path":7}]}})"}) {
    auto r = NetworkFromSpec(json::parse(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  }
}

TEST(BootMacTest, LocallyAdministeredAndDistinct) {
  EXPECT_EQ(BootMac(0), "02:63:6f:00:00:00");
  EXPECT_EQ(BootMac(3), "02:63:6f:00:00:03");
}

// The real thing, as root: a namespace of our own with a veth standing in for CNI's interface.
class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "PodNetwork tests need root (netns, tap, tc)";
  }
  static std::string In(const PodNetwork& net, const std::vector<std::string>& argv) {
    auto r = RunCapture(argv, true, 1 << 20, net.netns_fd());
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->output : "";
  }
};

TEST_F(PodNetworkTest, PathThatIsNotANamespaceIsRefused) {
  auto net = PodNetwork::Open({NetworkRequest::Mode::kPath, "/etc/hostname"}, 1);
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(net.error().message(), ::testing::HasSubstr("is not a network namespace"));
  auto missing = PodNetwork::Open({NetworkRequest::Mode::kPath, "/nonexistent/ns"}, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), ::testing::HasSubstr("/nonexistent/ns"));
}

TEST_F(PodNetworkTest, JoinsAnInterfaceToTheTapBothWays) {
  auto opened = PodNetwork::Open({NetworkRequest::Mode::kNew, ""}, 1);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  PodNetwork& net = **opened;
  ASSERT_EQ(net.taps().size(), 1u);
  EXPECT_EQ(net.taps()[0].name, "cocoon_tap0");
  EXPECT_THAT(In(net, {"ip", "link", "show", "cocoon_tap0"}), ::testing::HasSubstr("UP"));
  // Nothing with an address yet: nothing to join.
  auto none = net.JoinNewInterfaces();
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->empty());

  // What CNI's bridge plugin leaves: a veth with an address and a default route.
  In(net, {"ip", "link", "add", "eth0", "mtu", "1400", "type", "veth", "peer", "name", "peer0"});
  In(net, {"ip", "addr", "add", "10.99.0.5/24", "dev", "eth0"});
  In(net, {"ip", "link", "set", "eth0", "up"});
  In(net, {"ip", "link", "set", "peer0", "up"});
  In(net, {"ip", "route", "add", "default", "via", "10.99.0.1"});
  auto joined = net.JoinNewInterfaces();
  ASSERT_TRUE(joined.ok()) << joined.error().message();
  ASSERT_EQ(joined->size(), 1u);
  EXPECT_EQ((*joined)[0].boot_mac, BootMac(0));
  EXPECT_EQ((*joined)[0].interface.name, "eth0");
  EXPECT_EQ((*joined)[0].interface.mtu, 1400u);
  EXPECT_THAT(In(net, {"tc", "filter", "show", "dev", "eth0", "ingress"}),
              ::testing::HasSubstr("Egress Redirect to device cocoon_tap0"));
  EXPECT_THAT(In(net, {"tc", "filter", "show", "dev", "cocoon_tap0", "ingress"}),
              ::testing::HasSubstr("Egress Redirect to device eth0"));
  EXPECT_THAT(In(net, {"ip", "link", "show", "cocoon_tap0"}), ::testing::HasSubstr("mtu 1400"));

  // A second call finds nothing new; a second interface has no NIC left and is named.
  auto again = net.JoinNewInterfaces();
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(again->empty());
  In(net, {"ip", "addr", "add", "10.98.0.5/24", "dev", "peer0"});
  auto extra = net.JoinNewInterfaces();
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(extra.error().message(), ::testing::HasSubstr("not joined: peer0"));
}

TEST_F(PodNetworkTest, TeardownRemovesTheIngressQdiscOfANamespaceItDidNotMake) {
  // A namespace that outlives cocoon, as CRI's does: a bind-mounted one from `ip netns add`.
  const std::string name = "cocoon-ut-" + std::to_string(::getpid());
  auto added = RunCapture({"ip", "netns", "add", name});
  ASSERT_TRUE(added.ok() && added->exit_code == 0) << (added.ok() ? added->output : "");
  const std::string path = "/run/netns/" + name;
  {
    auto opened = PodNetwork::Open({NetworkRequest::Mode::kPath, path}, 1);
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    PodNetwork& net = **opened;
    In(net, {"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"});
    In(net, {"ip", "addr", "add", "10.97.0.5/24", "dev", "eth0"});
    auto joined = net.JoinNewInterfaces();
    ASSERT_TRUE(joined.ok()) << joined.error().message();
    ASSERT_EQ(joined->size(), 1u);
    net.ReleaseTapFds();  // no QEMU here: the tap goes with our fd
  }
  auto qdiscs = RunCapture({"ip", "netns", "exec", name, "tc", "qdisc", "show", "dev", "eth0"});
  auto links = RunCapture({"ip", "-n", name, "link", "show"});
  (void)RunCapture({"ip", "netns", "del", name});
  ASSERT_TRUE(qdiscs.ok() && links.ok());
  EXPECT_THAT(qdiscs->output, ::testing::Not(::testing::HasSubstr("ingress")));
  EXPECT_THAT(links->output, ::testing::Not(::testing::HasSubstr("cocoon_tap")));
}

TEST_F(PodNetworkTest, ScrubRemovesOnlyCocoonsRedirectsAfterACrash) {
  const std::string name = "cocoon-ut-scrub-" + std::to_string(::getpid());
  auto added = RunCapture({"ip", "netns", "add", name});
  ASSERT_TRUE(added.ok() && added->exit_code == 0) << (added.ok() ? added->output : "");
  const std::string path = "/run/netns/" + name;
  auto opened = PodNetwork::Open({NetworkRequest::Mode::kPath, path}, 1);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  In(**opened, {"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"});
  In(**opened, {"ip", "addr", "add", "10.96.0.5/24", "dev", "eth0"});
  // Someone else's ingress qdisc on the peer, which the scrub must leave alone.
  In(**opened, {"tc", "qdisc", "add", "dev", "peer0", "ingress"});
  auto joined = (*opened)->JoinNewInterfaces();
  ASSERT_TRUE(joined.ok()) << joined.error().message();
  // A crash: `delete` scrubs while the dead daemon's state is still in place (the object is
  // destroyed only afterwards); its tap goes with the fds, as with QEMU's.
  (*opened)->ReleaseTapFds();
  Status scrubbed = ScrubNamespace(path);
  EXPECT_TRUE(scrubbed.ok()) << scrubbed.error().message();
  auto eth0 = RunCapture({"ip", "netns", "exec", name, "tc", "qdisc", "show", "dev", "eth0"});
  auto peer = RunCapture({"ip", "netns", "exec", name, "tc", "qdisc", "show", "dev", "peer0"});
  opened->reset();
  (void)RunCapture({"ip", "netns", "del", name});
  ASSERT_TRUE(eth0.ok() && peer.ok());
  EXPECT_THAT(eth0->output, ::testing::Not(::testing::HasSubstr("ingress")));
  EXPECT_THAT(peer->output, ::testing::HasSubstr("ingress"));
  EXPECT_TRUE(ScrubNamespace("/run/netns/" + name).ok()) << "a namespace that is gone";
}

}  // namespace
}  // namespace cocoon::sandbox
