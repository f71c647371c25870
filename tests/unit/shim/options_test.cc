#include "shim/options.h"

#include <gtest/gtest.h>

namespace cocoon::shim {
namespace {

TEST(RuntimeOptions, ConfigPathFromTheBytesContainerdSends) {
  // Observed from `ctr run --runtime-config-path /etc/cocoon/cocoon.toml` (contract 7.3).
  std::string any = std::string("\x0a\x19") + "runtimeoptions.v1.Options" + "\x12\x19" +
                    "\x12\x17" + "/etc/cocoon/cocoon.toml";
  EXPECT_EQ(ConfigPathFromOptions(any), "/etc/cocoon/cocoon.toml");
}

TEST(RuntimeOptions, AnythingElseMeansNoConfigPath) {
  EXPECT_EQ(ConfigPathFromOptions(""), "");
  const std::string runc_url = "containerd.runc.v1.Options";
  std::string runc = std::string("\x0a") + static_cast<char>(runc_url.size()) + runc_url +
                     std::string("\x12\x02\x12\x00", 4);
  EXPECT_EQ(ConfigPathFromOptions(runc), "");
  EXPECT_EQ(ConfigPathFromOptions("\xff\xff\xff"), "");
}

}  // namespace
}  // namespace cocoon::shim
