// ServeListener on a Unix socket in a temporary directory: connections, Shutdown, and the
// SO_PEERCRED check.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>

#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"

namespace cocoon::ttrpc {
namespace {

using namespace std::chrono_literals;

class ListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cocoon-ttrpc-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ttrpc.sock";
    server_.RegisterRaw("test.Svc", "Echo",
                        [](const CallContext&, const std::string& p) -> Result<std::string> {
                          return "echo:" + p;
                        });
    Result<UniqueFd> listen_fd = ListenUnix(path_);
    ASSERT_TRUE(listen_fd.ok()) << listen_fd.error().message();
    serve_ = std::thread([this, fd = std::move(*listen_fd)]() mutable {
      listener_result_ = server_.ServeListener(std::move(fd));
    });
  }
  void TearDown() override {
    server_.Shutdown();
    if (serve_.joinable()) serve_.join();
    EXPECT_TRUE(RemoveTree(dir_).ok());
  }
  std::unique_ptr<Client> Connect() {
    Result<UniqueFd> fd = ConnectUnix(path_, 2s);
    EXPECT_TRUE(fd.ok());
    return std::make_unique<Client>(fd.ok() ? std::move(*fd) : UniqueFd());
  }

  std::string dir_;
  std::string path_;
  Server server_;
  std::thread serve_;
  Status listener_result_;
};

TEST_F(ListenerTest, ServesManyConnectionsUntilShutdown) {
  std::unique_ptr<Client> a = Connect();
  std::unique_ptr<Client> b = Connect();
  for (int i = 0; i < 3; ++i) {
    Result<std::string> ra = a->CallRaw("test.Svc", "Echo", "a" + std::to_string(i));
    Result<std::string> rb = b->CallRaw("test.Svc", "Echo", "b" + std::to_string(i));
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(*ra, "echo:a" + std::to_string(i));
    EXPECT_EQ(*rb, "echo:b" + std::to_string(i));
  }
  auto start = std::chrono::steady_clock::now();
  server_.Shutdown();
  serve_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(listener_result_.ok());
  // Both connections were shut down with the server.
  Result<std::string> after = a->CallRaw("test.Svc", "Echo", "x");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code(), Code::kUnavailable);
  Status again = server_.ServeListener(UniqueFd(::socket(AF_UNIX, SOCK_STREAM, 0)));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kCancelled);
}

// A peer under another uid/gid is closed without an answer. Needs root to switch ids.
TEST_F(ListenerTest, RejectsPeerWithOtherCredentials) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0777), 0);
  std::string request = test_util::RequestFrame(1, "test.Svc", "Echo", "x");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only system calls from here: the parent has threads. Exit 0 means "closed, no answer".
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::signal(SIGPIPE, SIG_IGN);  // the server may close before our write: that is a pass
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::_exit(3);
    }
    if (::write(fd, request.data(), request.size()) < 0) ::_exit(0);  // already closed
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) ::_exit(4);
    char c;
    ::_exit(::read(fd, &c, 1) <= 0 ? 0 : 5);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  // Our own uid is still served.
  std::unique_ptr<Client> ok = Connect();
  Result<std::string> r = ok->CallRaw("test.Svc", "Echo", "me");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "echo:me");
}

}  // namespace
}  // namespace cocoon::ttrpc
