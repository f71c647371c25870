#include "sandbox/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/io.h"

namespace cocoon::sandbox {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* v : {"COCOON_STATE_ROOT", "COCOON_QEMU", "COCOON_KERNEL", "COCOON_INITRD",
                          "COCOON_VCPUS", "COCOON_MEMORY_MIB"}) {
      ::unsetenv(v);
    }
  }
  void TearDown() override {
    ::unsetenv("COCOON_VCPUS");
    ::unsetenv("COCOON_KERNEL");
    ASSERT_TRUE(RemoveTree(dir_).ok());
  }
  std::string Write(const std::string& text) {
    std::string path = dir_ + "/cocoon.toml";
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }
  static std::string Origin(const EngineConfig& c, const std::string& key) {
    for (const auto& [k, v] : c.origins) {
      if (k == key) return v;
    }
    return "";
  }
  std::string dir_;
};

TEST_F(ConfigTest, FileThenEnvironment) {
  std::string path = Write("vcpus = 2\nmemory_mib = 512\nkernel_cmdline_extra = \"a=1\"\n");
  ::setenv("COCOON_VCPUS", "3", 1);
  auto c = LoadConfig(path);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->config_file, path);
  EXPECT_EQ(c->default_vcpus, 3u);
  EXPECT_EQ(Origin(*c, "vcpus"), "env COCOON_VCPUS");
  EXPECT_EQ(c->default_memory_mib, 512u);
  EXPECT_EQ(Origin(*c, "memory_mib"), "file");
  EXPECT_EQ(c->kernel_cmdline_extra, "a=1");
  EXPECT_EQ(c->state_root, "/run/cocoon");
  EXPECT_EQ(Origin(*c, "state_root"), "default");
}

TEST_F(ConfigTest, BadFilesNameTheProblem) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c :
       {Case{"vcpus = ", "line 1"}, Case{"colour = \"red\"", "unknown key 'colour'"},
        Case{"vcpus = \"two\"", "vcpus must be a positive integer"},
        Case{"kernel = 3", "kernel must be a string"},
        Case{"vcpus = 64", "vcpus must be at most 32"},
        Case{"memory_mib = 16", "memory_mib must be at least 64"}}) {
    auto r = LoadConfig(Write(c.text));
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << c.text;
    EXPECT_NE(r.error().message().find(c.expect), std::string::npos) << r.error().message();
  }
  auto missing = LoadConfig(dir_ + "/absent.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST_F(ConfigTest, BadEnvironmentValue) {
  ::setenv("COCOON_VCPUS", "many", 1);
  auto r = LoadConfig(Write(""));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("COCOON_VCPUS='many'"), std::string::npos);
}

TEST_F(ConfigTest, ResolveAssetsReportsAMissingConfiguredKernel) {
  ::setenv("COCOON_KERNEL", "/nonexistent/kernel", 1);
  auto c = LoadConfig(Write(""));
  ASSERT_TRUE(c.ok());
  Status st = ResolveAssets(&*c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kNotFound);
  EXPECT_NE(st.error().message().find("/nonexistent/kernel does not exist"), std::string::npos);
}

TEST_F(ConfigTest, ResolveAssetsUsesConfiguredFiles) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/k", "k").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/i", "i").ok());
  auto c = LoadConfig(Write("kernel = \"" + dir_ + "/k\"\ninitrd = \"" + dir_ + "/i\"\n"));
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(ResolveAssets(&*c).ok());
  EXPECT_EQ(c->kernel, dir_ + "/k");
  EXPECT_EQ(c->initrd, dir_ + "/i");
}

}  // namespace
}  // namespace cocoon::sandbox
