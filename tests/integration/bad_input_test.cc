// Bad input to `cocoon run`: one clear message, a non-zero exit, and nothing left behind.
#include <signal.h>

#include "common/io.h"
#include "harness.h"

namespace cocoon::itest {
namespace {

using BadInputTest = CocoonTest;

void ExpectFailure(const Outcome& o, const std::string& expect) {
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find(expect), std::string::npos) << "stderr: " << o.err;
  EXPECT_EQ(o.err.rfind("cocoon: ", 0), 0u) << o.err;
}

TEST_F(BadInputTest, MissingBundle) {
  std::string id = NewId();
  ExpectFailure(Cocoon({"run", "--bundle", work_ + "/absent", id}), "No such file or directory");
}

TEST_F(BadInputTest, MalformedConfigJson) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"true"});
  ASSERT_TRUE(WriteFileAtomic(bundle + "/config.json", "{\"ociVersion\": \"1.0.2\",").ok());
  ExpectFailure(Cocoon({"run", "--bundle", bundle, id}), "config.json is not valid JSON");
}

TEST_F(BadInputTest, NoProcessArgs) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"true"});
  EditSpec(bundle, [](nlohmann::json& spec) { spec["process"].erase("args"); });
  ExpectFailure(Cocoon({"run", "--bundle", bundle, id}), "process.args is missing");
}

TEST_F(BadInputTest, InvalidIds) {
  std::string bundle = MakeBundle({"true"});
  ExpectFailure(Cocoon({"run", "--bundle", bundle, "../x"}), "invalid id '../x'");
  ExpectFailure(Cocoon({"run", "--bundle", bundle, ""}), "invalid id: it is empty");
  ExpectFailure(Cocoon({"run", "--bundle", bundle, std::string(300, 'a')}),
                "300 characters, the limit is 64");
  EXPECT_FALSE(PathExists(root_ + "/x"));
  EXPECT_FALSE(PathExists(work_ + "/x"));
}

TEST_F(BadInputTest, MissingKernel) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"true"});
  ExpectFailure(Cocoon({"run", "--bundle", bundle, id}, "", {"COCOON_KERNEL=/nonexistent/kernel"}),
                "guest kernel /nonexistent/kernel does not exist");
}

TEST_F(BadInputTest, DuplicateIdWhileRunning) {
  std::string id = NewId();
  std::string bundle = MakeBundle({"sh", "-c", "echo ready; sleep 600"});
  int out_fd = -1;
  ChildProcess first = StartCocoon({"run", "--bundle", bundle, id}, &out_fd);
  UniqueFd out(out_fd);
  char buf[64];
  ASSERT_GT(::read(out.get(), buf, sizeof(buf)), 0);
  Outcome second = Cocoon({"run", "--bundle", bundle, id});
  ExpectFailure(second, "already exists");
  EXPECT_TRUE(PathExists(root_ + "/" + id)) << "the failed run removed the live sandbox's state";
  ASSERT_TRUE(first.Signal(SIGKILL).ok());
  (void)first.Wait();
  // The SIGKILLed owner leaves a stale directory; the teardown check needs it gone, as any
  // later run of the id would do.
  Outcome reuse = Cocoon({"run", "--bundle", MakeBundle({"true"}), id});
  EXPECT_EQ(reuse.exit_code, 0) << reuse.err;
}

}  // namespace
}  // namespace cocoon::itest
