#include "common/io.h"

#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

namespace cocoon {
namespace {

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-io-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(dir_).ok()); }
  std::string dir_;
};

TEST_F(IoTest, WriteAtomicThenRead) {
  std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "hello").ok());
  auto got = ReadFile(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
}

TEST_F(IoTest, ReadFileLimitAndMissing) {
  std::string path = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(100, 'x')).ok());
  EXPECT_EQ(ReadFile(path, 10).error().code(), Code::kResourceExhausted);
  EXPECT_EQ(ReadFile(dir_ + "/none").error().code(), Code::kNotFound);
}

TEST_F(IoTest, MakeDirsAndRemoveTree) {
  ASSERT_TRUE(MakeDirs(dir_ + "/a/b/c", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a/b/c/f", "x").ok());
  ASSERT_EQ(::symlink("/etc", (dir_ + "/a/link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(dir_ + "/a").ok());
  EXPECT_FALSE(PathExists(dir_ + "/a"));
  EXPECT_TRUE(PathExists("/etc/passwd"));  // the symlink was removed, not followed
  EXPECT_TRUE(RemoveTree(dir_ + "/missing").ok());
}

TEST_F(IoTest, RemoveTreeRefusesMountPoints) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount";
  std::string m = dir_ + "/m";
  ASSERT_TRUE(MakeDirs(m).ok());
  ASSERT_EQ(::mount("tmpfs", m.c_str(), "tmpfs", 0, nullptr), 0);
  ASSERT_TRUE(WriteFileAtomic(m + "/keep", "x").ok());
  Status st = RemoveTree(dir_);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(PathExists(m + "/keep"));
  ASSERT_EQ(::umount(m.c_str()), 0);
}

TEST_F(IoTest, ReadExactReportsShortStreams) {
  UniqueFd r, w;
  ASSERT_TRUE(MakePipe(&r, &w).ok());
  ASSERT_TRUE(WriteAll(w.get(), "abc").ok());
  w.reset();
  char buf[8];
  Status st = ReadExact(r.get(), buf, 8);
  EXPECT_EQ(st.error().code(), Code::kDataLoss);
  EXPECT_EQ(ReadExact(r.get(), buf, 1).error().code(), Code::kOutOfRange);
}

TEST_F(IoTest, UnixListenConnect) {
  std::string path = dir_ + "/s.sock";
  auto l = ListenUnix(path);
  ASSERT_TRUE(l.ok()) << l.error().message();
  auto c = ConnectUnix(path, std::chrono::milliseconds(100));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_FALSE(ConnectUnix(dir_ + "/none.sock", std::chrono::milliseconds(20)).ok());
  EXPECT_EQ(ListenUnix(std::string(200, 'x')).error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cocoon
