// OCI hooks: parsing and validation, and real /bin/sh hooks run with their args, env, stdin state
// and timeout.
#include "oci/hooks.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/io.h"

namespace cocoon::oci {
namespace {

using json = nlohmann::json;

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-hooks-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { (void)RemoveTree(dir); }

  std::string Read(const std::string& name) {
    auto text = ReadFile(dir + "/" + name);
    EXPECT_TRUE(text.ok()) << name << ": " << text.error().message();
    return text.ok() ? *text : "";
  }
  static Hook Sh(const std::string& script) {
    return Hook{"/bin/sh", {"sh", "-c", script}, {}, {}};
  }
  State TestState() {
    State s;
    s.id = "c1";
    s.status = "created";
    s.pid = 4242;
    s.bundle = dir;
    s.annotations = {{"io.example/key", "value"}};
    return s;
  }

  std::string dir;
};

Result<Hooks> Parse(const std::string& hooks_json) {
  return ParseHooks(json{{"ociVersion", "1.0.2"}, {"hooks", json::parse(hooks_json)}});
}

std::string ParseError(const std::string& hooks_json) {
  auto hooks = Parse(hooks_json);
  if (hooks.ok()) return "parsed";
  EXPECT_EQ(hooks.error().code(), Code::kInvalidArgument);
  return hooks.error().message();
}

TEST(ParseHooksTest, AbsentOrNullMeansNone) {
  auto none = ParseHooks(json{{"ociVersion", "1.0.2"}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto null = Parse("null");
  ASSERT_TRUE(null.ok());
  EXPECT_TRUE(null->empty());
}

TEST(ParseHooksTest, EveryKindWithAllFields) {
  auto hooks = Parse(R"({
    "prestart": [{"path": "/bin/a", "args": ["a", "-x"], "env": ["K=v"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/b"}, {"path": "/bin/c", "args": []}],
    "createContainer": [{"path": "/bin/d"}],
    "startContainer": [{"path": "/bin/e"}],
    "poststart": [{"path": "/bin/f"}],
    "poststop": [{"path": "/bin/g", "timeout": null}],
    "somethingNewer": [{"path": "relative is fine here: ignored"}]
  })");
  ASSERT_TRUE(hooks.ok()) << hooks.error().message();
  const auto& pre = hooks->of(HookKind::kPrestart);
  ASSERT_EQ(pre.size(), 1u);
  EXPECT_EQ(pre[0].path, "/bin/a");
  EXPECT_EQ(pre[0].args, (std::vector<std::string>{"a", "-x"}));
  EXPECT_EQ(pre[0].env, (std::vector<std::string>{"K=v"}));
  EXPECT_EQ(pre[0].timeout, 5);
  ASSERT_EQ(hooks->of(HookKind::kCreateRuntime).size(), 2u);
  EXPECT_EQ(hooks->of(HookKind::kCreateRuntime)[1].path, "/bin/c");
  EXPECT_EQ(hooks->of(HookKind::kCreateContainer)[0].path, "/bin/d");
  EXPECT_EQ(hooks->of(HookKind::kStartContainer)[0].path, "/bin/e");
  EXPECT_EQ(hooks->of(HookKind::kPoststart)[0].path, "/bin/f");
  EXPECT_FALSE(hooks->of(HookKind::kPoststop)[0].timeout.has_value());
  EXPECT_STREQ(HookKindName(HookKind::kCreateRuntime), "createRuntime");
}

TEST(ParseHooksTest, MalformedHooksNameKindIndexAndField) {
  EXPECT_EQ(ParseError(R"([])"), "hooks: must be an object, got []");
  EXPECT_EQ(ParseError(R"({"prestart": {"path": "/bin/a"}})"),
            R"(hooks.prestart: must be an array, got {"path":"/bin/a"})");
  EXPECT_EQ(ParseError(R"({"poststop": ["/bin/a"]})"),
            R"(hooks.poststop[0]: must be an object, got "/bin/a")");
  EXPECT_EQ(ParseError(R"({"prestart": [{"path": "/bin/a"}, {"args": ["x"]}]})"),
            "hooks.prestart[1].path: a string is required");
  EXPECT_EQ(ParseError(R"({"createRuntime": [{"path": "hook.sh"}]})"),
            R"(hooks.createRuntime[0].path: must be an absolute path, got "hook.sh")");
  EXPECT_EQ(ParseError(R"({"poststart": [{"path": "/a", "args": ["a", 1]}]})"),
            "hooks.poststart[0].args[1]: must be a string, got 1");
  EXPECT_EQ(ParseError(R"({"poststart": [{"path": "/a", "env": "K=v"}]})"),
            "hooks.poststart[0].env: must be an array of strings");
  EXPECT_EQ(ParseError(R"({"prestart": [{"path": "/a", "timeout": 0}]})"),
            "hooks.prestart[0].timeout: must be a positive whole number of seconds, got 0");
  EXPECT_EQ(ParseError(R"({"prestart": [{"path": "/a", "timeout": -3}]})"),
            "hooks.prestart[0].timeout: must be a positive whole number of seconds, got -3");
  EXPECT_EQ(ParseError(R"({"prestart": [{"path": "/a", "timeout": 1.5}]})"),
            "hooks.prestart[0].timeout: must be a positive whole number of seconds, got 1.5");
}

TEST(StateJsonTest, HasTheRuntimeSpecFields) {
  State s{"c1", "running", 77, "/b/c1", {{"a", "b"}}};
  EXPECT_EQ(json::parse(StateJson(s)),
            json::parse(R"({"ociVersion": "1.0.2", "id": "c1", "status": "running", "pid": 77,
                            "bundle": "/b/c1", "annotations": {"a": "b"}})"));
  s.pid = 0;
  s.annotations = nullptr;
  json doc = json::parse(StateJson(s));
  EXPECT_FALSE(doc.contains("pid"));
  EXPECT_EQ(doc["annotations"], json::object());
}

TEST_F(HooksTest, StateArrivesOnStdin) {
  Status st = RunHook(HookKind::kPrestart, 0, Sh("cat > '" + dir + "/state'"), TestState());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(json::parse(Read("state")), json::parse(StateJson(TestState())));
  EXPECT_EQ(json::parse(Read("state"))["pid"], 4242);
}

TEST_F(HooksTest, EnvIsExactlyTheHooks) {
  ASSERT_EQ(::setenv("COCOON_HOOKS_TEST_LEAK", "1", 1), 0);
  Hook hook = Sh("env > '" + dir + "/env'");
  hook.env = {"A=1", "B=two words"};
  Status st = RunHook(HookKind::kPoststart, 0, hook, TestState());
  ::unsetenv("COCOON_HOOKS_TEST_LEAK");
  ASSERT_TRUE(st.ok()) << st.error().message();
  std::istringstream lines(Read("env"));
  std::vector<std::string> env;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("PWD=", 0) != 0) env.push_back(line);  // the shell's own
  }
  std::sort(env.begin(), env.end());
  EXPECT_EQ(env, (std::vector<std::string>{"A=1", "B=two words"}));

  hook.env.clear();  // none at all, not ours
  st = RunHook(HookKind::kPoststart, 0, hook, TestState());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(Read("env").find("COCOON"), std::string::npos);
  EXPECT_EQ(Read("env").find("PATH="), std::string::npos);
}

TEST_F(HooksTest, ArgsAreHonouredArgv0Included) {
  Hook hook{"/bin/sh",
            {"custom-argv0", "-c", "tr '\\0' ' ' < /proc/$$/cmdline > \"$1\"", "sh", dir + "/argv"},
            {},
            {}};
  Status st = RunHook(HookKind::kCreateRuntime, 0, hook, TestState());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(Read("argv").rfind("custom-argv0 -c ", 0), 0u) << Read("argv");

  // No args: argv is just the path.
  std::string script = dir + "/hook.sh";
  ASSERT_TRUE(
      WriteFileAtomic(script, "#!/bin/sh\necho \"$0 $#\" > \"${0%/*}/noargs\"\n", 0755).ok());
  st = RunHook(HookKind::kCreateRuntime, 0, Hook{script, {}, {}, {}}, TestState());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(Read("noargs"), script + " 0\n");
}

TEST_F(HooksTest, NonZeroExitFailsWithStderrTail) {
  Status st =
      RunHook(HookKind::kPrestart, 2, Sh("echo to-stdout; echo boom >&2; exit 3"), TestState());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(st.error().message(), "prestart hook 2 (/bin/sh) exited with status 3; stderr: boom");

  st = RunHook(HookKind::kPrestart, 0, Sh("echo only-stdout; exit 1"), TestState());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "prestart hook 0 (/bin/sh) exited with status 1; stdout: only-stdout");

  st = RunHook(HookKind::kPoststop, 0, Sh("kill -TERM $$"), TestState());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "poststop hook 0 (/bin/sh) was killed by signal 15 (SIGTERM)");
}

TEST_F(HooksTest, OutputKeptIsBounded) {
  Status st =
      RunHook(HookKind::kPrestart, 0,
              Sh("head -c 200000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1"), TestState());
  ASSERT_FALSE(st.ok());
  const std::string& msg = st.error().message();
  EXPECT_LT(msg.size(), kHookOutputTail + 100);
  EXPECT_EQ(msg.substr(msg.size() - 4), "xEND");
}

TEST_F(HooksTest, TimeoutKillsTheHookAndItsChildren) {
  Hook hook = Sh("sleep 30 & echo $! > '" + dir + "/child'; wait");
  hook.timeout = 1;
  auto start = std::chrono::steady_clock::now();
  Status st = RunHook(HookKind::kCreateRuntime, 1, hook, TestState());
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kDeadlineExceeded);
  EXPECT_EQ(st.error().message(),
            "createRuntime hook 1 (/bin/sh) timed out after 1s and was killed");
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  pid_t child = std::stoi(Read("child"));
  // The orphaned sleep is gone (or a zombie until init reaps it).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    auto stat = ReadFile("/proc/" + std::to_string(child) + "/stat");
    gone = !stat.ok() || stat->find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "pid " << child << " survived the timeout";
}

TEST_F(HooksTest, ADaemonHoldingTheOutputDoesNotBlock) {
  auto start = std::chrono::steady_clock::now();
  Status st = RunHook(HookKind::kPoststart, 0,
                      Sh("sleep 30 & echo $! > '" + dir + "/daemon'; exit 0"), TestState());
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ::kill(std::stoi(Read("daemon")), SIGKILL);
}

TEST_F(HooksTest, MissingPathFails) {
  Status st =
      RunHook(HookKind::kPrestart, 0, Hook{dir + "/absent", {"absent"}, {}, {}}, TestState());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kNotFound);
  EXPECT_EQ(st.error().message().rfind(
                "prestart hook 0 (" + dir + "/absent): execute " + dir + "/absent: ", 0),
            0u)
      << st.error().message();
}

TEST_F(HooksTest, RunHooksStopsAtTheFirstFailure) {
  std::vector<Hook> hooks = {Sh("touch '" + dir + "/a'"), Sh("exit 7"),
                             Sh("touch '" + dir + "/c'")};
  Status st = RunHooks(HookKind::kPrestart, hooks, TestState());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "prestart hook 1 (/bin/sh) exited with status 7");
  EXPECT_TRUE(PathExists(dir + "/a"));
  EXPECT_FALSE(PathExists(dir + "/c"));
  EXPECT_TRUE(RunHooks(HookKind::kPrestart, {}, TestState()).ok());
}

}  // namespace
}  // namespace cocoon::oci
