#include "agent/port.h"

#include <stdlib.h>

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/io.h"

namespace cocoon::agent {
namespace {

class PortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-port.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    where_.sysfs_root = root_ + "/sys";
    where_.dev_root = root_ + "/dev";
    ASSERT_TRUE(MakeDirs(where_.sysfs_root + "/class/virtio-ports").ok());
    ASSERT_TRUE(MakeDirs(where_.dev_root).ok());
  }
  void TearDown() override { (void)RemoveTree(root_); }

  void AddPort(const std::string& dev, const std::string& name, bool with_node = true) {
    std::string dir = where_.sysfs_root + "/class/virtio-ports/" + dev;
    ASSERT_TRUE(MakeDirs(dir).ok());
    ASSERT_TRUE(WriteFileAtomic(dir + "/name", name).ok());
    if (with_node) {
      ASSERT_TRUE(WriteFileAtomic(where_.dev_root + "/" + dev, "").ok());
    }
  }

  std::string root_;
  PortLocation where_;
};

TEST_F(PortTest, FindsThePortByName) {
  AddPort("vport0p0", "");
  AddPort("vport0p1", "org.qemu.guest_agent.0\n");
  AddPort("vport0p2", "cocoon.agent\n");
  auto path = FindPort(where_);
  ASSERT_TRUE(path.ok()) << path.error().message();
  EXPECT_EQ(*path, where_.dev_root + "/vport0p2");
}

TEST_F(PortTest, NoSuchPortIsNotFound) {
  AddPort("vport0p1", "something.else\n");
  auto path = FindPort(where_);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code(), Code::kNotFound);
  EXPECT_NE(path.error().message().find("cocoon.agent"), std::string::npos);
}

TEST_F(PortTest, PortWithoutDeviceNodeIsNotFoundYet) {
  AddPort("vport1p1", "cocoon.agent", /*with_node=*/false);
  auto path = FindPort(where_);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().code(), Code::kNotFound);
}

TEST_F(PortTest, WaitForPortSeesALatePort) {
  auto late = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    AddPort("vport2p1", "cocoon.agent\n");
  });
  auto path = WaitForPort(where_, std::chrono::seconds(5));
  late.get();
  ASSERT_TRUE(path.ok()) << path.error().message();
  EXPECT_EQ(*path, where_.dev_root + "/vport2p1");
}

TEST_F(PortTest, WaitForPortGivesUp) {
  auto start = std::chrono::steady_clock::now();
  auto path = WaitForPort(where_, std::chrono::milliseconds(100));
  ASSERT_FALSE(path.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
}

TEST_F(PortTest, MissingSysfsClassIsAnError) {
  where_.sysfs_root = root_ + "/nothing";
  EXPECT_FALSE(FindPort(where_).ok());
}

}  // namespace
}  // namespace cocoon::agent
