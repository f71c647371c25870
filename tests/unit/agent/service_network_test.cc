// ConfigureInterface (protocol 1.2) against the real kernel: each test runs the call on a thread
// inside a network namespace of its own that holds a tap standing in for the VM's NIC. Needs root.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/netlink.h"
#include "agent/service.h"
#include "common/io.h"
#include "common/process.h"
#include "fake_runtime.h"

namespace cocoon::agent::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kBootMac[] = "02:63:6f:00:00:00";

class ConfigureInterfaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_FAIL() << "needs root (network namespaces, tap devices)";
    char tmpl[] = "/tmp/agent-net-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The reaper is not started: it would reap the `ip` children RunCapture waits for, and
    // ConfigureInterface starts no process.
    AgentOptions options;
    options.bundle_root = dir_ + "/bundles";
    options.meminfo_path = dir_ + "/meminfo";
    options.cgroup_root = dir_ + "/cgroup";
    service_ = std::make_unique<AgentService>(options, &runtime_, &reaper_);
  }
  void TearDown() override {
    service_.reset();
    if (!dir_.empty()) (void)RemoveTree(dir_);
  }

  // Runs `body` in a fresh network namespace that has a tap "eth0" with kBootMac, down, as the
  // guest kernel leaves the VM's NIC.
  void InGuestLikeNamespace(const std::function<void()>& body) {
    std::thread worker([&] {
      ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
      UniqueFd tap(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
      ASSERT_TRUE(tap) << std::strerror(errno);
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
      ASSERT_EQ(::ioctl(tap.get(), TUNSETIFF, &ifr), 0) << std::strerror(errno);
      ASSERT_EQ(Ip({"link", "set", "eth0", "address", kBootMac}), "");
      ASSERT_EQ(Ip({"link", "set", "lo", "up"}), "");
      body();
    });
    worker.join();
  }

  // `ip ARGS...` in the calling thread's namespace (a forked child inherits it).
  static std::string Ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    auto r = RunCapture(args);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->output : "";
  }

  static v1::ConfigureInterfaceRequest Request() {
    v1::ConfigureInterfaceRequest req;
    req.set_boot_mac(kBootMac);
    req.set_name("eth0");
    req.set_mac("aa:bb:cc:dd:ee:01");
    req.set_mtu(1400);
    auto* a4 = req.add_addresses();
    a4->set_address("10.88.0.5");
    a4->set_prefix_len(16);
    auto* a6 = req.add_addresses();
    a6->set_address("fd00:88::5");
    a6->set_prefix_len(64);
    auto* r4 = req.add_routes();  // listed before its gateway's network on purpose
    r4->set_destination("default");
    r4->set_gateway("10.88.0.1");
    auto* net = req.add_routes();
    net->set_destination("192.168.7.0/24");
    auto* r6 = req.add_routes();
    r6->set_destination("default");
    r6->set_gateway("fd00:88::1");
    r6->set_ipv6(true);
    return req;
  }

  std::string dir_;
  Reaper reaper_;
  FakeRuntime runtime_;
  std::unique_ptr<AgentService> service_;
};

TEST_F(ConfigureInterfaceTest, NicTakesTheHostInterfacesIdentity) {
  InGuestLikeNamespace([&] {
    auto done = service_->ConfigureInterface(Request());
    ASSERT_TRUE(done.ok()) << done.error().message();
    std::string link = Ip({"link", "show", "eth0"});
    EXPECT_THAT(link, HasSubstr("aa:bb:cc:dd:ee:01"));
    EXPECT_THAT(link, HasSubstr("mtu 1400"));
    EXPECT_THAT(link, HasSubstr(",UP"));
    std::string addrs = Ip({"addr", "show", "eth0"});
    EXPECT_THAT(addrs, HasSubstr("inet 10.88.0.5/16"));
    EXPECT_THAT(addrs, HasSubstr("inet6 fd00:88::5/64"));
    std::string routes = Ip({"route", "show"});
    EXPECT_THAT(routes, HasSubstr("default via 10.88.0.1 dev eth0"));
    EXPECT_THAT(routes, HasSubstr("192.168.7.0/24 dev eth0"));
    EXPECT_THAT(Ip({"-6", "route", "show"}), HasSubstr("default via fd00:88::1 dev eth0"));
    // Repeated (a host retry): the NIC is found by its new identity and nothing fails.
    auto again = service_->ConfigureInterface(Request());
    EXPECT_TRUE(again.ok()) << again.error().message();
  });
}

TEST_F(ConfigureInterfaceTest, RenamesTheNic) {
  InGuestLikeNamespace([&] {
    v1::ConfigureInterfaceRequest req = Request();
    req.set_name("net1");
    auto done = service_->ConfigureInterface(req);
    ASSERT_TRUE(done.ok()) << done.error().message();
    EXPECT_THAT(Ip({"addr", "show", "net1"}), HasSubstr("inet 10.88.0.5/16"));
  });
}

TEST_F(ConfigureInterfaceTest, UnknownBootMacIsNotFound) {
  InGuestLikeNamespace([&] {
    v1::ConfigureInterfaceRequest req = Request();
    req.set_boot_mac("02:63:6f:00:00:09");
    auto done = service_->ConfigureInterface(req);
    ASSERT_FALSE(done.ok());
    EXPECT_EQ(done.error().code(), Code::kNotFound);
    EXPECT_THAT(done.error().message(), HasSubstr("boot MAC 02:63:6f:00:00:09"));
  });
}

TEST_F(ConfigureInterfaceTest, NameOfAnotherInterfaceIsRefused) {
  InGuestLikeNamespace([&] {
    v1::ConfigureInterfaceRequest req = Request();
    req.set_name("lo");
    auto done = service_->ConfigureInterface(req);
    ASSERT_FALSE(done.ok());
    EXPECT_EQ(done.error().code(), Code::kAlreadyExists);
  });
}

// Bad requests are refused whole, before anything changes.
TEST_F(ConfigureInterfaceTest, BadRequestsChangeNothing) {
  struct Case {
    std::function<void(v1::ConfigureInterfaceRequest*)> edit;
    const char* message;
  };
  const Case cases[] = {
      {[](auto* r) { r->set_mac("aa:bb"); }, "'aa:bb' is not a MAC address"},
      {[](auto* r) { r->set_boot_mac(""); }, "'' is not a MAC address"},
      {[](auto* r) { r->set_name(""); }, "interface name '' must be 1 to 15 characters"},
      {[](auto* r) { r->set_name("a-very-long-name0"); }, "must be 1 to 15 characters"},
      {[](auto* r) { r->set_name("a/b"); }, "contains '/'"},
      {[](auto* r) { r->set_mtu(20); }, "mtu 20 is outside 68-65535"},
      {[](auto* r) { r->mutable_addresses(0)->set_address("10.88.0"); },
       "'10.88.0' is not an IPv4 or IPv6 address"},
      {[](auto* r) { r->mutable_addresses(0)->set_prefix_len(33); },
       "prefix length 33 of 10.88.0.5 exceeds 32"},
      {[](auto* r) { r->mutable_routes(1)->set_destination("192.168.7.0/x"); },
       "has no valid prefix length"},
      {[](auto* r) { r->mutable_routes(0)->set_gateway("fd00::1"); }, "mixes IPv4 and IPv6"},
      {[](auto* r) {
         for (int i = 0; i < 300; ++i) r->add_routes()->set_destination("default");
       },
       "too many addresses or routes"},
  };
  InGuestLikeNamespace([&] {
    for (const Case& c : cases) {
      v1::ConfigureInterfaceRequest req = Request();
      c.edit(&req);
      auto done = service_->ConfigureInterface(req);
      ASSERT_FALSE(done.ok()) << c.message;
      EXPECT_EQ(done.error().code(), Code::kInvalidArgument) << c.message;
      EXPECT_THAT(done.error().message(), HasSubstr(c.message));
    }
    std::string link = Ip({"link", "show", "eth0"});
    EXPECT_THAT(link, HasSubstr(kBootMac));
    EXPECT_THAT(link, ::testing::Not(HasSubstr(",UP")));
    EXPECT_THAT(Ip({"addr", "show", "eth0"}), ::testing::Not(HasSubstr("inet ")));
  });
}

TEST(NetlinkParseTest, MacAndIpText) {
  auto mac = ParseMac("AA:bb:0c:dd:ee:0F");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(FormatMac(*mac), "aa:bb:0c:dd:ee:0f");
  EXPECT_FALSE(ParseMac("aa:bb:cc:dd:ee:ff:00").ok());
  EXPECT_FALSE(ParseMac("aa-bb-cc-dd-ee-ff").ok());
  auto v4 = ParseIp("10.1.2.3");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->size(), 4u);
  auto v6 = ParseIp("fd00::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->size(), 16u);
  EXPECT_FALSE(ParseIp("fd00::1/64").ok());
}

}  // namespace
}  // namespace cocoon::agent::testing
