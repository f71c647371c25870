// The text edit of `cocoon containerd-config`: text in, text and change list out.
#include "cli/containerd_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <toml++/toml.h>

namespace cocoon::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTable[] = R"([plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cocoon])";
constexpr char kPrefix[] = R"(plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cocoon)";
const std::string kOptionsTable = std::string("[") + kPrefix + ".options]";

ContainerdRuntimeSpec Spec(std::string shim = "", std::string config = "") {
  return {.name = "cocoon", .runtime_path = std::move(shim), .config_path = std::move(config)};
}

ContainerdConfigEdit MustEdit(std::string_view text, const ContainerdRuntimeSpec& spec) {
  auto edit = EditContainerdConfig(text, "config.toml", spec);
  EXPECT_TRUE(edit.ok()) << edit.error().message();
  return edit.ok() ? *edit : ContainerdConfigEdit{};
}

std::string Key(const std::string& key) { return std::string(kPrefix) + "." + key; }

toml::table Parse(const std::string& text) {
  return toml::parse(std::string_view(text), std::string_view("out"));
}

std::optional<std::string> At(const toml::table& t, const std::string& runtime,
                              const std::string& key) {
  return t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"][runtime][key]
      .value<std::string>();
}

TEST(ContainerdConfigEdit, EmptyFileBecomesAVersion2Config) {
  auto edit = MustEdit("", Spec("/usr/local/bin/containerd-shim-cocoon-v2", "/etc/cocoon/c.toml"));
  EXPECT_EQ(edit.text, std::string("version = 2\n\n") + kTable +
                           "\n"
                           "  runtime_type = \"io.containerd.cocoon.v2\"\n"
                           "  runtime_path = \"/usr/local/bin/containerd-shim-cocoon-v2\"\n"
                           "  " +
                           kOptionsTable +
                           "\n"
                           "    ConfigPath = \"/etc/cocoon/c.toml\"\n");
  EXPECT_THAT(
      edit.changes,
      ElementsAre(
          "added version = 2", "added " + Key("runtime_type") + " = \"io.containerd.cocoon.v2\"",
          "added " + Key("runtime_path") + " = \"/usr/local/bin/containerd-shim-cocoon-v2\"",
          "added " + Key("options.ConfigPath") + " = \"/etc/cocoon/c.toml\""));
  EXPECT_EQ(edit.table, kPrefix);
}

TEST(ContainerdConfigEdit, CommentsOnlyFileKeepsItsComments) {
  std::string before = "# containerd config\n# nothing yet";
  auto edit = MustEdit(before, Spec());
  EXPECT_EQ(edit.text.substr(0, before.size() + 1), before + "\n");
  toml::table t = Parse(edit.text);
  EXPECT_EQ(t["version"].value<int64_t>(), 2);
  EXPECT_EQ(At(t, "cocoon", "runtime_type"), "io.containerd.cocoon.v2");
}

const char kUserConfig[] = R"(version = 2
# The user's own settings; must survive byte for byte.
root = "/var/lib/containerd"   # trailing comment

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
)";

TEST(ContainerdConfigEdit, Version2ConfigGetsTheTableAppended) {
  auto edit = MustEdit(kUserConfig, Spec("/opt/cocoon/bin/containerd-shim-cocoon-v2"));
  ASSERT_EQ(edit.text.substr(0, sizeof(kUserConfig) - 1), kUserConfig);
  EXPECT_EQ(edit.text.substr(sizeof(kUserConfig) - 1),
            std::string("\n") + kTable +
                "\n  runtime_type = \"io.containerd.cocoon.v2\"\n"
                "  runtime_path = \"/opt/cocoon/bin/containerd-shim-cocoon-v2\"\n");
  EXPECT_EQ(edit.changes.size(), 2u);
  toml::table t = Parse(edit.text);
  EXPECT_EQ(At(t, "runc", "runtime_type"), "io.containerd.runc.v2");
  EXPECT_EQ(At(t, "cocoon", "runtime_path"), "/opt/cocoon/bin/containerd-shim-cocoon-v2");
}

TEST(ContainerdConfigEdit, SecondRunChangesNothing) {
  auto spec = Spec("/opt/cocoon/bin/containerd-shim-cocoon-v2", "/etc/cocoon/cocoon.toml");
  auto first = MustEdit(kUserConfig, spec);
  auto second = MustEdit(first.text, spec);
  EXPECT_TRUE(second.changes.empty());
  EXPECT_EQ(second.text, first.text);
}

TEST(ContainerdConfigEdit, DifferentValuesAreReplacedWhereTheyStand) {
  std::string before = std::string("version = 2\n") + kTable +
                       "\n"
                       "  runtime_type = 'io.containerd.kata.v2'   # was kata\n"
                       "  runtime_path = \"/old/shim\"\n"
                       "  privileged_without_host_devices = true\n"
                       "[other]\n"
                       "  x = 1\n";
  auto edit = MustEdit(before, Spec("/new/shim"));
  EXPECT_EQ(edit.text, std::string("version = 2\n") + kTable +
                           "\n"
                           "  runtime_type = \"io.containerd.cocoon.v2\"   # was kata\n"
                           "  runtime_path = \"/new/shim\"\n"
                           "  privileged_without_host_devices = true\n"
                           "[other]\n"
                           "  x = 1\n");
  EXPECT_THAT(edit.changes,
              ElementsAre("set " + Key("runtime_type") +
                              " = \"io.containerd.cocoon.v2\" (was \"io.containerd.kata.v2\")",
                          "set " + Key("runtime_path") + " = \"/new/shim\" (was \"/old/shim\")"));
}

TEST(ContainerdConfigEdit, AValueOfAnotherTypeIsReplaced) {
  std::string before = std::string("version = 2\n") + kTable + "\nruntime_type = 42\n";
  auto edit = MustEdit(before, Spec());
  EXPECT_THAT(edit.changes, ElementsAre("set " + Key("runtime_type") +
                                        " = \"io.containerd.cocoon.v2\" (was 42)"));
  EXPECT_EQ(At(Parse(edit.text), "cocoon", "runtime_type"), "io.containerd.cocoon.v2");
}

TEST(ContainerdConfigEdit, MissingKeysGoUnderTheExistingHeader) {
  std::string before = std::string("version = 2\n    ") + kTable +
                       "  # indented header\n"
                       "      runtime_type = \"io.containerd.cocoon.v2\"\n"
                       "[later]\n";
  auto edit = MustEdit(before, Spec("/s", "/c"));
  EXPECT_EQ(edit.text, std::string("version = 2\n    ") + kTable +
                           "  # indented header\n"
                           "      runtime_path = \"/s\"\n"
                           "      runtime_type = \"io.containerd.cocoon.v2\"\n"
                           "[later]\n"
                           "\n" +
                           kOptionsTable +
                           "\n"
                           "  ConfigPath = \"/c\"\n");
  EXPECT_THAT(edit.changes, ElementsAre("added " + Key("runtime_path") + " = \"/s\"",
                                        "added " + Key("options.ConfigPath") + " = \"/c\""));
}

TEST(ContainerdConfigEdit, HeaderOnTheLastLineWithoutNewline) {
  std::string before = std::string("version = 2\n") + kTable;
  auto edit = MustEdit(before, Spec());
  EXPECT_EQ(edit.text, before + "\n  runtime_type = \"io.containerd.cocoon.v2\"\n");
}

TEST(ContainerdConfigEdit, TableImpliedByItsOptionsHeader) {
  std::string options_header = kTable;
  options_header.insert(options_header.size() - 1, ".options");
  std::string before = "version = 2\n" + options_header + "\n  TypeUrl = \"x\"\n";
  auto edit = MustEdit(before, Spec("", "/etc/cocoon/cocoon.toml"));
  EXPECT_EQ(edit.text, "version = 2\n" + options_header +
                           "\n"
                           "  ConfigPath = \"/etc/cocoon/cocoon.toml\"\n"
                           "  TypeUrl = \"x\"\n"
                           "\n" +
                           kTable + "\n  runtime_type = \"io.containerd.cocoon.v2\"\n");
  toml::table t = Parse(edit.text);
  EXPECT_EQ(t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["cocoon"]["options"]
             ["TypeUrl"]
                 .value<std::string>(),
            "x");
}

TEST(ContainerdConfigEdit, Version1ConfigUsesPluginsCri) {
  std::string before = "root = \"/var/lib/containerd\"\n[plugins.cri]\n  sandbox_image = \"p\"\n";
  auto edit = MustEdit(before, Spec());
  EXPECT_EQ(edit.text, before +
                           "\n[plugins.cri.containerd.runtimes.cocoon]\n"
                           "  runtime_type = \"io.containerd.cocoon.v2\"\n");
  EXPECT_EQ(edit.table, "plugins.cri.containerd.runtimes.cocoon");
  EXPECT_THAT(edit.notes, ElementsAre(HasSubstr("version 1 config")));
}

TEST(ContainerdConfigEdit, UnknownVersionIsRefused) {
  for (const char* text : {"version = 3\n", "version = \"2\"\n", "version = 0\n"}) {
    auto edit = EditContainerdConfig(text, "/etc/containerd/config.toml", Spec());
    ASSERT_FALSE(edit.ok()) << text;
    EXPECT_THAT(edit.error().message(), HasSubstr("/etc/containerd/config.toml:1: version = "));
  }
}

TEST(ContainerdConfigEdit, MalformedTomlNamesFileAndLine) {
  auto edit = EditContainerdConfig("version = 2\n[grpc]\naddress = \n", "/x/config.toml", Spec());
  ASSERT_FALSE(edit.ok());
  EXPECT_THAT(edit.error().message(), HasSubstr("/x/config.toml:3:"));
  EXPECT_THAT(edit.error().message(), HasSubstr("malformed TOML"));
}

TEST(ContainerdConfigEdit, InlineTableValueIsReplacedButNotExtended) {
  std::string runtimes = R"([plugins."io.containerd.grpc.v1.cri".containerd.runtimes])";
  std::string before =
      "version = 2\n" + runtimes + "\n  cocoon = { \"ñü\" = \"é\", runtime_type = \"old\" }\n";
  auto edit = MustEdit(before, Spec());
  EXPECT_EQ(edit.text, "version = 2\n" + runtimes +
                           "\n  cocoon = { \"ñü\" = \"é\", runtime_type = "
                           "\"io.containerd.cocoon.v2\" }\n");

  auto refused = EditContainerdConfig(before, "config.toml", Spec("/shim"));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("cannot edit config.toml safely"));
  EXPECT_THAT(refused.error().message(), HasSubstr("runtime_path = \"/shim\""));
}

TEST(ContainerdConfigEdit, DottedKeysTableIsRefusedWhenAKeyMustBeAdded) {
  std::string before = R"(version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  runtimes.cocoon.runtime_type = "io.containerd.cocoon.v2"
)";
  EXPECT_TRUE(MustEdit(before, Spec()).changes.empty());
  auto refused = EditContainerdConfig(before, "config.toml", Spec("/shim"));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("by hand"));
}

TEST(ContainerdConfigEdit, NonTableOnThePathIsRefused) {
  auto edit = EditContainerdConfig(
      "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\ncontainerd = \"x\"\n", "c.toml",
      Spec());
  ASSERT_FALSE(edit.ok());
  EXPECT_THAT(edit.error().message(), HasSubstr("c.toml:3: plugins.\"io.containerd.grpc.v1.cri\""
                                                ".containerd is not a table"));

  auto key_is_table = EditContainerdConfig(
      std::string("version = 2\n") + kTable + "\nruntime_path = { a = 1 }\n", "c.toml", Spec("/s"));
  ASSERT_FALSE(key_is_table.ok());
  EXPECT_THAT(key_is_table.error().message(), HasSubstr("is a table, expected a string"));
}

TEST(ContainerdConfigEdit, HeaderLookalikeInsideAMultiLineStringIsNotAHeader) {
  std::string before = std::string("version = 2\nnote = \"\"\"\n") + kTable + "\n\"\"\"\n";
  auto edit = MustEdit(before, Spec());
  EXPECT_EQ(edit.text, before + "\n" + kTable + "\n  runtime_type = \"io.containerd.cocoon.v2\"\n");
  EXPECT_EQ(Parse(edit.text)["note"].value<std::string>(), std::string(kTable) + "\n");
}

TEST(ContainerdConfigEdit, CrLfFilesGetCrLfLines) {
  std::string before = std::string("version = 2\r\n") + kTable + "\r\n";
  auto edit = MustEdit(before, Spec("/s"));
  EXPECT_EQ(edit.text, before +
                           "  runtime_type = \"io.containerd.cocoon.v2\"\r\n"
                           "  runtime_path = \"/s\"\r\n");
}

TEST(ContainerdConfigEdit, ValuesAreEscaped) {
  std::string odd = "/opt/a \"b\"\\c\td";
  auto edit = MustEdit("", Spec(odd));
  EXPECT_EQ(At(Parse(edit.text), "cocoon", "runtime_path"), odd);
}

TEST(ContainerdConfigEdit, NotesForDisabledCriAndKeptValues) {
  std::string before =
      std::string("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n") + kTable +
      "\nruntime_type = \"io.containerd.cocoon.v2\"\nruntime_path = \"/k\"\n";
  auto edit = MustEdit(before, Spec());
  EXPECT_TRUE(edit.changes.empty());
  EXPECT_THAT(edit.notes, ElementsAre(HasSubstr("CRI plugin is disabled"),
                                      "keeping " + Key("runtime_path") + " = \"/k\" (no --shim)"));
}

TEST(ContainerdConfigEdit, OtherRuntimeName) {
  ContainerdRuntimeSpec spec = Spec();
  spec.name = "cocoon-tcg";
  auto edit = MustEdit("version = 2\n", spec);
  EXPECT_EQ(At(Parse(edit.text), "cocoon-tcg", "runtime_type"), "io.containerd.cocoon.v2");
  EXPECT_THAT(edit.text, HasSubstr(".runtimes.cocoon-tcg]"));
}

TEST(ContainerdConfigEdit, RuntimeNameMustBeADnsLabel) {
  EXPECT_TRUE(ValidateRuntimeName("cocoon").ok());
  EXPECT_TRUE(ValidateRuntimeName("cocoon-2").ok());
  for (const char* bad : {"", "Cocoon", "co.coon", "-x", "x-", "a b", "co\"on"}) {
    EXPECT_FALSE(ValidateRuntimeName(bad).ok()) << bad;
    ContainerdRuntimeSpec spec = Spec();
    spec.name = bad;
    EXPECT_FALSE(EditContainerdConfig("", "c", spec).ok()) << bad;
  }
  EXPECT_FALSE(ValidateRuntimeName(std::string(64, 'a')).ok());
}

}  // namespace
}  // namespace cocoon::cli
