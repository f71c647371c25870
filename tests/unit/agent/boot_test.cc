#include "agent/boot.h"

#include <stdlib.h>

#include <gtest/gtest.h>

#include "agent/guest_info.h"
#include "common/io.h"

namespace cocoon::agent {
namespace {

TEST(BootTest, CmdlineDefaults) {
  BootConfig c = ParseKernelCmdline("console=ttyS0 reboot=t panic=-1 quiet");
  EXPECT_EQ(c.share_cache, "none");
  EXPECT_EQ(c.share_msize, 262144u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.hostname, "cocoon");
  EXPECT_EQ(ShareMountOptions(c), "trans=virtio,version=9p2000.L,msize=262144,cache=none");
}

TEST(BootTest, CmdlineOverrides) {
  BootConfig c = ParseKernelCmdline(
      "console=ttyS0 cocoon.share_cache=mmap cocoon.share_msize=524288 cocoon.log=debug "
      "cocoon.hostname=pod1\n");
  EXPECT_EQ(c.share_cache, "mmap");
  EXPECT_EQ(c.share_msize, 524288u);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.hostname, "pod1");
}

TEST(BootTest, CmdlineIgnoresBadValues) {
  BootConfig c = ParseKernelCmdline("cocoon.share_msize=12x cocoon.log=loud cocoon.share_msize=1");
  EXPECT_EQ(c.share_msize, 262144u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
}

TEST(BootTest, EnablesEveryAvailableControllerOneByOne) {
  char tmpl[] = "/tmp/agent-cgroup.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  ASSERT_TRUE(WriteFileAtomic(root + "/cgroup.controllers", "cpuset cpu io memory pids\n").ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/cgroup.subtree_control", "").ok());
  EXPECT_EQ(EnableCgroupControllers(root), "cpuset cpu io memory pids");
  EXPECT_EQ(EnableCgroupControllers(root + "/missing"), "");
  (void)RemoveTree(root);
}

TEST(GuestInfoTest, ParsesMemTotal) {
  auto total = ParseMemTotal("MemTotal:        2030652 kB\nMemFree:  100 kB\n");
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(*total, 2030652ull * 1024);
  EXPECT_FALSE(ParseMemTotal("MemFree: 1 kB\n").ok());
  EXPECT_FALSE(ParseMemTotal("MemTotal: 1 MB\n").ok());
}

TEST(GuestInfoTest, KernelAndClock) {
  KernelInfo k = ReadKernelInfo();
  EXPECT_FALSE(k.release.empty());
  EXPECT_FALSE(k.version.empty());
  EXPECT_EQ(k.machine, "x86_64");
  EXPECT_GT(OnlineCpus(), 0u);
  EXPECT_GT(UptimeSeconds(), 0.0);
}

}  // namespace
}  // namespace cocoon::agent
