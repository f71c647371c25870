#include "oci/spec.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/io.h"

namespace cocoon::oci {
namespace {

using nlohmann::json;

json MinimalSpec() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {"args": ["sh", "-c", "true"], "cwd": "/", "terminal": false},
    "root": {"path": "rootfs", "readonly": true},
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}
    ],
    "hooks": {"prestart": [{"path": "/bin/true"}]},
    "linux": {
      "namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"},
                     {"type": "network", "path": "/proc/1/ns/net"}],
      "cgroupsPath": "system.slice:cocoon:x",
      "resources": {"cpu": {"quota": 150000, "period": 100000},
                    "memory": {"limit": 536870912}}
    }
  })");
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-oci-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(MakeDirs(dir_ + "/rootfs").ok());
    ASSERT_TRUE(MakeDirs(dir_ + "/data").ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(dir_).ok()); }
  void Write(const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json", text).ok());
  }
  std::string dir_;
};

TEST_F(BundleTest, LoadsValidBundle) {
  Write(MinimalSpec().dump());
  auto b = LoadBundle(dir_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(b->rootfs, dir_ + "/rootfs");
  EXPECT_FALSE(b->terminal);
}

TEST_F(BundleTest, MissingBundleAndConfig) {
  auto missing = LoadBundle(dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  auto no_config = LoadBundle(dir_);
  ASSERT_FALSE(no_config.ok());
  EXPECT_NE(no_config.error().message().find("config.json"), std::string::npos);
}

TEST_F(BundleTest, MalformedJsonNamesTheProblem) {
  Write("{\"ociVersion\": ");
  auto b = LoadBundle(dir_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), Code::kInvalidArgument);
  EXPECT_NE(b.error().message().find("not valid JSON"), std::string::npos);
}

TEST_F(BundleTest, MissingRootfsDirectory) {
  json s = MinimalSpec();
  s["root"]["path"] = "absent";
  Write(s.dump());
  auto b = LoadBundle(dir_);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("root.path"), std::string::npos);
}

TEST(ValidateSpecTest, RejectsEachMissingPiece) {
  struct Case {
    const char* what;
    std::function<void(json&)> mutate;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"no version", [](json& s) { s.erase("ociVersion"); }, "ociVersion"},
      {"no process", [](json& s) { s.erase("process"); }, "process is missing"},
      {"no args", [](json& s) { s["process"].erase("args"); }, "process.args"},
      {"empty args", [](json& s) { s["process"]["args"] = json::array(); }, "process.args"},
      {"number arg", [](json& s) { s["process"]["args"] = {1}; }, "only strings"},
      {"bad terminal", [](json& s) { s["process"]["terminal"] = "yes"; }, "terminal"},
      {"no root", [](json& s) { s.erase("root"); }, "root.path"},
      {"bad mounts", [](json& s) { s["mounts"] = json::object(); }, "mounts"},
      {"mount w/o dest", [](json& s) { s["mounts"] = {json::object()}; }, "destination"},
      {"array top", [](json& s) { s = json::array(); }, "object"},
  };
  for (auto& c : cases) {
    json s = MinimalSpec();
    c.mutate(s);
    Status st = ValidateSpec(s);
    ASSERT_FALSE(st.ok()) << c.what;
    EXPECT_EQ(st.error().code(), Code::kInvalidArgument) << c.what;
    EXPECT_NE(st.error().message().find(c.expect), std::string::npos)
        << c.what << ": " << st.error().message();
  }
}

TEST(ResourcesTest, FromSpecAndDefaults) {
  VmResources d{1, 256};
  VmResources r = ResourcesFromSpec(MinimalSpec(), d);
  EXPECT_EQ(r.vcpus, 2u);                // 1.5 CPUs rounds up
  EXPECT_EQ(r.memory_mib, 512u + 128u);  // limit plus guest overhead
  json bare = MinimalSpec();
  bare["linux"].erase("resources");
  r = ResourcesFromSpec(bare, d);
  EXPECT_EQ(r.vcpus, 1u);
  EXPECT_EQ(r.memory_mib, 256u);
}

TEST_F(BundleTest, RewriteMovesPathsUnderShare) {
  Write(MinimalSpec().dump());
  auto b = LoadBundle(dir_);
  ASSERT_TRUE(b.ok());
  auto g = RewriteForGuest(*b, "c1");
  ASSERT_TRUE(g.ok()) << g.error().message();
  const json& s = g->spec;
  EXPECT_EQ(s["root"]["path"], "/run/cocoon/share/c1/rootfs");
  EXPECT_EQ(s["mounts"][0]["source"], "proc");  // not a bind: untouched
  EXPECT_EQ(s["mounts"][1]["source"], "/run/cocoon/share/c1/mounts/0");
  EXPECT_FALSE(s.contains("hooks"));
  // The network namespace goes: containers share the guest's, which stands for the pod's.
  ASSERT_EQ(s["linux"]["namespaces"].size(), 1u);
  EXPECT_EQ(s["linux"]["namespaces"][0]["type"], "pid");
  EXPECT_FALSE(s["linux"]["namespaces"][0].contains("path"));
  EXPECT_FALSE(s["linux"].contains("cgroupsPath"));
  ASSERT_EQ(g->binds.size(), 2u);
  EXPECT_EQ(g->binds[0].host_source, dir_ + "/rootfs");
  EXPECT_EQ(g->binds[0].share_path, "c1/rootfs");
  // Writable on the share so crun can make mount points; crun makes the root read-only itself.
  EXPECT_FALSE(g->binds[0].read_only);
  EXPECT_TRUE(s["root"]["readonly"]);
  EXPECT_EQ(g->binds[1].host_source, dir_ + "/data");
  EXPECT_TRUE(g->binds[1].read_only);
}

TEST_F(BundleTest, RewriteFailsOnMissingBindSource) {
  json s = MinimalSpec();
  s["mounts"][1]["source"] = "/nonexistent/dir";
  Write(s.dump());
  auto b = LoadBundle(dir_);
  ASSERT_TRUE(b.ok());
  auto g = RewriteForGuest(*b, "c1");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message().find("/nonexistent/dir"), std::string::npos);
}

}  // namespace
}  // namespace cocoon::oci
