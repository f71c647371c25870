#include "shim/socket.h"

#include <gtest/gtest.h>

namespace cocoon::shim {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Several blocks, and a length whose padding spills into an extra block.
  EXPECT_EQ(Sha256Hex(std::string(200, 'a')),
            "c2a908d98f5df987ade41b5fce213067efbcc21ef2240212a41e54b5e7c28ae5");
}

TEST(SocketPath, HashesAddressNamespaceAndKey) {
  std::string path = SocketPath("/run/containerd/containerd.sock", "default", "t1");
  EXPECT_EQ(path,
            "/run/containerd/s/df6a0c5cd2e9a1a16d9a3f2447365d9fc6021bc1d3d9a4caa2f5b2c4f773758f");
  EXPECT_LE(path.size(), kMaxSocketPath);
  EXPECT_NE(path, SocketPath("/other/containerd.sock", "default", "t1"));
  EXPECT_NE(path, SocketPath("/run/containerd/containerd.sock", "k8s.io", "t1"));
}

TEST(GroupKey, SandboxIdThenGroupThenId) {
  nlohmann::json spec = {
      {"annotations",
       {{"io.kubernetes.cri.sandbox-id", "pod1"}, {"io.containerd.cocoon.group", "g"}}}};
  EXPECT_EQ(GroupKey(spec, "c1"), "pod1");
  spec["annotations"].erase("io.kubernetes.cri.sandbox-id");
  EXPECT_EQ(GroupKey(spec, "c1"), "g");
  spec["annotations"]["io.containerd.cocoon.group"] = "";
  EXPECT_EQ(GroupKey(spec, "c1"), "c1");
  EXPECT_EQ(GroupKey(nlohmann::json(), "c1"), "c1");
  EXPECT_EQ(GroupKey(nlohmann::json{{"annotations", 3}}, "c1"), "c1");
}

}  // namespace
}  // namespace cocoon::shim
