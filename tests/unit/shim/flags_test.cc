#include "shim/flags.h"

#include <gtest/gtest.h>

namespace cocoon::shim {
namespace {

TEST(ShimFlags, ParsesContainerdStartArgv) {
  auto f = ParseFlags({"-namespace", "cocoon", "-address", "/srv/ctrd/containerd.sock",
                       "-publish-binary", "/usr/bin/containerd", "-id", "t1", "-debug", "start"});
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->ns, "cocoon");
  EXPECT_EQ(f->address, "/srv/ctrd/containerd.sock");
  EXPECT_EQ(f->publish_binary, "/usr/bin/containerd");
  EXPECT_EQ(f->id, "t1");
  EXPECT_TRUE(f->debug);
  EXPECT_EQ(f->action, "start");
  EXPECT_TRUE(f->bundle.empty());
}

TEST(ShimFlags, ParsesDeleteWithDoubleDashAndEquals) {
  auto f = ParseFlags({"--namespace=k8s.io", "-address=/a.sock", "--id", "c2", "-bundle=/run/b",
                       "-debug=false", "delete"});
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->ns, "k8s.io");
  EXPECT_EQ(f->address, "/a.sock");
  EXPECT_EQ(f->id, "c2");
  EXPECT_EQ(f->bundle, "/run/b");
  EXPECT_FALSE(f->debug);
  EXPECT_EQ(f->action, "delete");
}

TEST(ShimFlags, DaemonFlags) {
  auto f = ParseFlags({"-namespace", "n", "-id", "x", "-bundle", "/b", "-socket", "/run/s/1",
                       "-config", "/etc/cocoon/c.toml", "serve"});
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->socket, "/run/s/1");
  EXPECT_EQ(f->config, "/etc/cocoon/c.toml");
  EXPECT_EQ(f->action, "serve");
}

TEST(ShimFlags, ValueMayStartWithDash) {
  auto f = ParseFlags({"-namespace", "n", "-id", "-weird", "start"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->id, "-weird");
}

TEST(ShimFlags, VersionNeedsNoAction) {
  auto f = ParseFlags({"-v"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->version);
  EXPECT_TRUE(f->action.empty());
}

TEST(ShimFlags, RejectsBadInputWithClearMessages) {
  auto unknown = ParseFlags({"-namespace", "n", "-id", "x", "-socket-dir", "/s", "start"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message(), "flag provided but not defined: -socket-dir");
  auto missing = ParseFlags({"-namespace", "n", "-id"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "flag needs an argument: -id");
  auto action = ParseFlags({"-namespace", "n", "-id", "x", "run"});
  ASSERT_FALSE(action.ok());
  EXPECT_NE(action.error().message().find("unknown action \"run\""), std::string::npos);
  EXPECT_FALSE(ParseFlags({"-namespace", "n", "-id", "x"}).ok());
  EXPECT_FALSE(ParseFlags({"-id", "x", "start"}).ok());
  EXPECT_FALSE(ParseFlags({"-namespace", "n", "start"}).ok());
  EXPECT_FALSE(ParseFlags({"-namespace", "n", "-id", "x", "-debug=maybe", "start"}).ok());
  EXPECT_FALSE(ParseFlags({"-namespace", "n", "-id", "x", "start", "extra"}).ok());
}

}  // namespace
}  // namespace cocoon::shim
