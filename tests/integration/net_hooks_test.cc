// `cocoon run` with networking and OCI hooks: hooks run on the host with the state on stdin, a
// prestart hook can plumb the sandbox's network namespace (as CNI-by-hook tools do) and the
// container then reaches the host over it; a spec without a network namespace gets loopback only.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/io.h"
#include "harness.h"

namespace cocoon::itest {
namespace {

class NetHooksTest : public CocoonTest {
 protected:
  // A hook running `script` under /bin/sh.
  static nlohmann::json ShellHook(const std::string& script) {
    return {{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}};
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static bool HostHasLink(const std::string& name) {
    auto r = RunCapture({"ip", "-o", "link", "show"});
    return r.ok() && r->output.find(name) != std::string::npos;
  }
};

TEST_F(NetHooksTest, HooksRunOnTheHostWithTheStateOnStdin) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo in-container"});
  const std::string dir = work_;
  EditSpec(bundle, [&](nlohmann::json& spec) {
    spec["annotations"] = {{"org.example/test", "yes"}};
    spec["hooks"] = {
        {"prestart", {ShellHook("cat > " + dir + "/prestart.json")}},
        {"createRuntime", {ShellHook("cat > " + dir + "/createRuntime.json")}},
        {"poststart", {ShellHook("cat > " + dir + "/poststart.json")}},
        {"poststop", {ShellHook("cat > " + dir + "/poststop.json")}},
        {"createContainer", {ShellHook("touch " + dir + "/in-vm-hook-ran")}},
    };
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "in-container\n");
  for (auto [kind, status] : {std::pair{"prestart", "created"},
                              {"createRuntime", "created"},
                              {"poststart", "running"},
                              {"poststop", "stopped"}}) {
    auto state = nlohmann::json::parse(Slurp(dir + "/" + kind + ".json"), nullptr, false);
    ASSERT_TRUE(state.is_object()) << kind << " hook got no state";
    EXPECT_EQ(state["id"], id) << kind;
    EXPECT_EQ(state["status"], status) << kind;
    EXPECT_EQ(state["bundle"], bundle) << kind;
    EXPECT_EQ(state["annotations"]["org.example/test"], "yes") << kind;
    EXPECT_GT(state.value("pid", 0), 0) << kind;
    EXPECT_TRUE(state.contains("ociVersion")) << kind;
  }
  // A hook that belongs inside the container's namespaces is skipped with a warning.
  EXPECT_FALSE(PathExists(dir + "/in-vm-hook-ran"));
  EXPECT_NE(o.err.find("createContainer hooks are not run"), std::string::npos) << o.err;
}

TEST_F(NetHooksTest, FailingPrestartHookFailsTheRunAndLeavesNothing) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo must-not-run"});
  EditSpec(bundle, [&](nlohmann::json& spec) {
    spec["hooks"] = {{"prestart", {ShellHook("echo no-network-for-you >&2; exit 3")}}};
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("prestart hook 0"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("no-network-for-you"), std::string::npos) << o.err;
  ExpectNoLeftovers(id);
}

TEST_F(NetHooksTest, MalformedHooksAreRefusedBeforeBoot) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"true"});
  EditSpec(bundle, [&](nlohmann::json& spec) {
    spec["hooks"] = {{"prestart", {{{"path", "relative/hook"}}}}};
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find("hooks.prestart[0].path"), std::string::npos) << o.err;
  ExpectNoLeftovers(id);
}

// What a CNI-by-hook tool does: the prestart hook finds the namespace through the state's pid and
// plumbs a veth into it (IPv4 and IPv6); cocoon then hands that interface to the guest. The
// spec's hostname and the /etc/hosts and /etc/resolv.conf it bind-mounts (as CRI does) are the
// container's.
TEST_F(NetHooksTest, PrestartHookPlumbsTheNetworkAndTheContainerUsesIt) {
  std::string id = NewId();
  const std::string host_if = "cocoon-hk" + std::to_string(::getpid() % 100000);
  std::string bundle = MakeBundle(
      {"sh", "-c",
       "ip -o link show | wc -l; ip -o link show eth0; ip -o addr show eth0 scope global; "
       "ip route; ip -6 route; ping -c 1 -W 5 10.232.0.1; ping6 -c 1 -W 5 fd00:232::1; "
       "hostname; cat /etc/hosts /etc/resolv.conf; "
       "touch /written 2>/dev/null && echo root-writable || echo root-read-only"});
  std::string plumb =
      "pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p') && "
      "ip link add " +
      host_if +
      " mtu 1400 type veth peer name eth0 mtu 1400 netns $pid && "
      "ip addr add 10.232.0.1/24 dev " +
      host_if +
      " && "
      "ip -6 addr add fd00:232::1/64 dev " +
      host_if + " nodad && ip link set " + host_if +
      " up && nsenter --net=/proc/$pid/ns/net sh -c "
      "'ip addr add 10.232.0.2/24 dev eth0 && ip -6 addr add fd00:232::2/64 dev eth0 nodad && "
      "ip link set eth0 up && ip route add default via 10.232.0.1 && "
      "ip -6 route add default via fd00:232::1'";
  ASSERT_TRUE(WriteFileAtomic(work_ + "/hosts", "10.232.0.2 web-1\n").ok());
  ASSERT_TRUE(WriteFileAtomic(work_ + "/resolv.conf", "nameserver 10.232.0.53\n").ok());
  EditSpec(bundle, [&](nlohmann::json& spec) {
    spec["hooks"] = {{"prestart", {ShellHook(plumb)}}};
    spec["hostname"] = "web-1";
    for (const char* f : {"hosts", "resolv.conf"}) {
      spec["mounts"].push_back({{"destination", std::string("/etc/") + f},
                                {"type", "bind"},
                                {"source", work_ + "/" + f},
                                {"options", {"rbind", "ro"}}});
    }
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  std::istringstream lines(o.out);
  std::string count;
  std::getline(lines, count);
  EXPECT_EQ(count, "2") << "the guest has more than lo and eth0: " << o.out;
  for (const char* want :
       {"mtu 1400", "inet 10.232.0.2/24", "inet6 fd00:232::2/64", "default via 10.232.0.1 dev eth0",
        "default via fd00:232::1 dev eth0",
        "--- 10.232.0.1 ping statistics ---\n1 packets transmitted, 1 packets received",
        "--- fd00:232::1 ping statistics ---\n1 packets transmitted, 1 packets received",
        "\nweb-1\n", "10.232.0.2 web-1\n", "nameserver 10.232.0.53\n", "root-read-only"}) {
    EXPECT_NE(o.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << o.out;
  }
  // The namespace went with the VM, and the veth with it.
  EXPECT_FALSE(HostHasLink(host_if));
  ExpectNoLeftovers(id);
}

TEST_F(NetHooksTest, NoNetworkNamespaceMeansLoopbackOnly) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"ip", "-o", "link", "show"});
  EditSpec(bundle, [](nlohmann::json& spec) {
    auto& ns = spec["linux"]["namespaces"];
    nlohmann::json kept = nlohmann::json::array();
    for (const auto& n : ns) {
      if (n["type"] != "network") kept.push_back(n);
    }
    ns = kept;
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("1: lo:"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("eth0"), std::string::npos)
      << "a NIC without a network namespace: " << o.out;
  ExpectNoLeftovers(id);
}

TEST_F(NetHooksTest, NetworkNamespacePathThatIsNotOneIsRefused) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"true"});
  EditSpec(bundle, [](nlohmann::json& spec) {
    for (auto& n : spec["linux"]["namespaces"]) {
      if (n["type"] == "network") n["path"] = "/etc/hostname";
    }
  });
  Outcome o = Cocoon({"run", "--bundle", bundle, id});
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find("/etc/hostname is not a network namespace"), std::string::npos) << o.err;
  ExpectNoLeftovers(id);
}

}  // namespace
}  // namespace cocoon::itest
