#include "shim/rootfs.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

namespace cocoon::shim {
namespace {

TEST(MountOptions, FlagsAndData) {
  MountOptions o = ParseMountOptions(
      {"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/a:/b", "ro", "nosuid"});
  EXPECT_EQ(o.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b");
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID));
  MountOptions b = ParseMountOptions({"rbind", "ro", "rw"});
  EXPECT_TRUE(b.recursive_bind);
  EXPECT_EQ(b.flags, static_cast<unsigned long>(MS_BIND | MS_REC));
  EXPECT_TRUE(b.data.empty());
}

TEST(RootfsMounts, RejectsUnsupportedTypeAndMountsNothingForEmptyList) {
  mountpb::Mount m;
  m.set_type("ext4");
  m.set_source("/dev/vdb");
  auto r = RootfsMounts::Mount({m}, "/nonexistent-target");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("\"ext4\" is not supported"), std::string::npos);
  EXPECT_TRUE(RootfsMounts::Mount({}, "/nonexistent-target").ok());
}

}  // namespace
}  // namespace cocoon::shim
