#include "sandbox/state_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/io.h"

namespace cocoon::sandbox {
namespace {

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(root_).ok()); }
  std::string root_;
};

TEST_F(StateDirTest, CreatedPrivateAndRemovedOnDestruction) {
  {
    auto d = StateDir::Create(root_, "sb1");
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_EQ(d->path(), root_ + "/sb1");
    EXPECT_TRUE(PathExists(d->File("owner.json")));
    EXPECT_TRUE(OwnerAlive(d->path()));
    struct stat st;
    ASSERT_EQ(::stat(d->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
  }
  EXPECT_FALSE(PathExists(root_ + "/sb1"));
}

TEST_F(StateDirTest, LiveOwnerMeansAlreadyExists) {
  auto first = StateDir::Create(root_, "sb1");
  ASSERT_TRUE(first.ok());
  auto second = StateDir::Create(root_, "sb1");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), Code::kAlreadyExists);
  EXPECT_TRUE(PathExists(root_ + "/sb1/owner.json")) << "the live sandbox's state was touched";
}

TEST_F(StateDirTest, DeadOwnersLeftoversAreReplaced) {
  ASSERT_TRUE(MakeDirs(root_ + "/sb1/share/x", 0700).ok());
  // A pid with a start time no live process has: what a SIGKILLed cocoon leaves behind.
  ASSERT_TRUE(
      WriteFileAtomic(root_ + "/sb1/owner.json", R"({"owner_pid": 1, "owner_start": "-1"})").ok());
  EXPECT_FALSE(OwnerAlive(root_ + "/sb1"));
  auto d = StateDir::Create(root_, "sb1");
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_FALSE(PathExists(root_ + "/sb1/share/x"));
  EXPECT_TRUE(OwnerAlive(d->path()));
}

}  // namespace
}  // namespace cocoon::sandbox
