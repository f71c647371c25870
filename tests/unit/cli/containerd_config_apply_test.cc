// The file step of `cocoon containerd-config`: create, keep mode and bytes, follow symlinks,
// dry run, refuse malformed or unwritable files without touching them.
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/containerd_config.h"
#include "common/io.h"

namespace cocoon::cli {
namespace {

using ::testing::HasSubstr;

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-cli-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!dir_.empty()) (void)RemoveTree(dir_);
  }

  ContainerdConfigOptions Options(const std::string& file, std::string shim = "") {
    ContainerdConfigOptions o;
    o.file = file;
    o.runtime.runtime_path = std::move(shim);
    return o;
  }

  std::string Read(const std::string& path) {
    auto text = ReadFile(path);
    EXPECT_TRUE(text.ok()) << path;
    return text.ok() ? *text : "";
  }

  static mode_t Mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::string dir_;
};

TEST_F(ApplyTest, MissingFileIsCreatedWithItsDirectory) {
  std::string file = dir_ + "/etc/containerd/config.toml";
  bool created = false;
  auto edit = ApplyContainerdConfig(Options(file), &created);
  ASSERT_TRUE(edit.ok()) << edit.error().message();
  EXPECT_TRUE(created);
  EXPECT_EQ(Read(file), edit->text);
  EXPECT_THAT(edit->text, HasSubstr("version = 2\n"));
  EXPECT_EQ(Mode(file), 0644u);
}

TEST_F(ApplyTest, ModeIsKeptAndSecondRunLeavesTheFileAlone) {
  std::string file = dir_ + "/config.toml";
  ASSERT_TRUE(WriteFileAtomic(file, "version = 2\n# mine\n", 0600).ok());
  ASSERT_EQ(::chmod(file.c_str(), 0640), 0);
  bool created = true;
  auto first = ApplyContainerdConfig(Options(file, "/s"), &created);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_FALSE(created);
  EXPECT_EQ(first->changes.size(), 2u);
  EXPECT_EQ(Mode(file), 0640u);
  EXPECT_EQ(Read(file).substr(0, 19), "version = 2\n# mine\n");

  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  auto second = ApplyContainerdConfig(Options(file, "/s"), &created);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->changes.empty());
  struct stat after {};
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);  // not even rewritten
  EXPECT_EQ(Read(file), first->text);
}

TEST_F(ApplyTest, MalformedFileIsNamedAndUntouched) {
  std::string file = dir_ + "/config.toml";
  std::string bad = "version = 2\n\n[grpc\naddress = 1\n";
  ASSERT_TRUE(WriteFileAtomic(file, bad).ok());
  bool created = false;
  auto edit = ApplyContainerdConfig(Options(file), &created);
  ASSERT_FALSE(edit.ok());
  EXPECT_THAT(edit.error().message(), HasSubstr(file + ":3:"));
  EXPECT_EQ(Read(file), bad);
}

TEST_F(ApplyTest, SymlinkStaysALinkToTheEditedFile) {
  std::string target = dir_ + "/real.toml";
  std::string link = dir_ + "/config.toml";
  ASSERT_TRUE(WriteFileAtomic(target, "version = 2\n").ok());
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  bool created = false;
  auto edit = ApplyContainerdConfig(Options(link), &created);
  ASSERT_TRUE(edit.ok()) << edit.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_THAT(Read(target), HasSubstr("io.containerd.cocoon.v2"));
}

TEST_F(ApplyTest, DryRunWritesNothing) {
  std::string file = dir_ + "/config.toml";
  ContainerdConfigOptions o = Options(file);
  o.dry_run = true;
  bool created = false;
  auto edit = ApplyContainerdConfig(o, &created);
  ASSERT_TRUE(edit.ok());
  EXPECT_TRUE(created);  // would be
  EXPECT_FALSE(edit->changes.empty());
  EXPECT_FALSE(PathExists(file));
}

TEST_F(ApplyTest, DirectoryIsNotAConfigFile) {
  bool created = false;
  auto edit = ApplyContainerdConfig(Options(dir_), &created);
  ASSERT_FALSE(edit.ok());
  EXPECT_THAT(edit.error().message(), HasSubstr("not a regular file"));
}

// Root may write anywhere, so the unwritable case runs in a child that drops to nobody.
TEST_F(ApplyTest, UnwritableFileIsReportedAndUntouched) {
  std::string file = dir_ + "/config.toml";
  std::string text = "version = 2\n";
  // Without root the test user owns the file, so only its mode can make it unwritable.
  mode_t mode = ::geteuid() == 0 ? 0644 : 0444;
  ASSERT_TRUE(WriteFileAtomic(file, text, mode).ok());
  ASSERT_EQ(::chmod(file.c_str(), mode), 0);
  std::string report = dir_ + "/report";
  ASSERT_TRUE(WriteFileAtomic(report, "").ok());
  ASSERT_EQ(::chmod(report.c_str(), 0666), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 &&
        (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)) {
      ::_exit(3);
    }
    bool created = false;
    auto edit = ApplyContainerdConfig(Options(file), &created);
    std::string message = edit.ok() ? "" : edit.error().message();
    FILE* f = ::fopen(report.c_str(), "w");
    if (f) {
      std::fputs(message.c_str(), f);
      std::fclose(f);
    }
    ::_exit(edit.ok() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the edit did not fail";
  EXPECT_THAT(Read(report), HasSubstr("cannot write " + file));
  EXPECT_EQ(Read(file), text);
  EXPECT_EQ(Mode(file), mode);
}

TEST(FindOnPath, FindsExecutablesOnly) {
  char tmpl[] = "/tmp/cocoon-path-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(WriteFileAtomic(dir + "/plain", "x", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/tool", "#!/bin/sh\n", 0755).ok());
  ASSERT_EQ(::chmod((dir + "/tool").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir + "/plain").c_str(), 0644), 0);
  EXPECT_EQ(FindOnPath("tool", "/nonexistent:" + dir), dir + "/tool");
  EXPECT_EQ(FindOnPath("tool", "/nonexistent"), "");
  EXPECT_EQ(FindOnPath("tool", ""), "");
  EXPECT_EQ(FindOnPath("plain", dir), "");  // no x bit: not even root may run it
  EXPECT_EQ(FindOnPath("plain", dir + "/sub"), "");
  (void)RemoveTree(dir);
}

}  // namespace
}  // namespace cocoon::cli
