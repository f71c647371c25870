// Server and client over pipe pairs: fds that are not sockets, as a virtio-serial port is not.
#include <gtest/gtest.h>

#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"

namespace cocoon::ttrpc {
namespace {

using namespace std::chrono_literals;

struct PipePair {
  PipePair() {
    EXPECT_TRUE(MakePipe(&to_server_read, &to_server_write).ok());
    EXPECT_TRUE(MakePipe(&to_client_read, &to_client_write).ok());
  }
  UniqueFd to_server_read, to_server_write, to_client_read, to_client_write;
};

class PipeTest : public ::testing::Test {
 protected:
  PipeTest() {
    server_.RegisterRaw("test.Svc", "Echo",
                        [](const CallContext&, const std::string& p) -> Result<std::string> {
                          return "echo:" + p;
                        });
  }
  void Serve(UniqueFd read_fd, UniqueFd write_fd) {
    serve_ = std::thread([this, r = std::move(read_fd), w = std::move(write_fd)]() mutable {
      result_ = server_.ServeConnection(std::move(r), std::move(w));
      done_ = true;
    });
  }
  // Shuts down and checks that this ended ServeConnection promptly.
  void ShutdownPromptly() {
    auto start = std::chrono::steady_clock::now();
    server_.Shutdown();
    serve_.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_TRUE(done_.load());
  }

  Server server_;
  std::thread serve_;
  Status result_;
  std::atomic<bool> done_{false};
};

TEST_F(PipeTest, RoundTripAndShutdownUnblocksTheReader) {
  PipePair p;
  Serve(std::move(p.to_server_read), std::move(p.to_client_write));
  Client client(std::move(p.to_client_read), std::move(p.to_server_write));
  for (int i = 0; i < 3; ++i) {
    Result<std::string> r = client.CallRaw("test.Svc", "Echo", std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, "echo:" + std::to_string(i));
  }
  std::this_thread::sleep_for(20ms);  // let the server go back to waiting in its read
  ShutdownPromptly();
  EXPECT_TRUE(result_.ok());
  // The server closed its write end: the client sees the connection end.
  Result<std::string> r = client.CallRaw("test.Svc", "Echo", "late");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("connection closed"), std::string::npos);
}

TEST_F(PipeTest, ShutdownUnblocksAWriteToAPeerThatDoesNotRead) {
  // The response (1 MiB) is far larger than a pipe buffer and nobody reads it, so the handler's
  // write blocks until Shutdown() wakes it.
  server_.RegisterRaw("test.Svc", "Big", [](const CallContext&, const std::string&) {
    return Result<std::string>(std::string(1 << 20, 'b'));
  });
  PipePair p;
  Serve(std::move(p.to_server_read), std::move(p.to_client_write));
  test_util::RawPeer peer(std::move(p.to_client_read), std::move(p.to_server_write));
  peer.Send(test_util::RequestFrame(1, "test.Svc", "Big", ""));
  EXPECT_EQ(peer.Read(kHeaderSize).size(), kHeaderSize);  // the write has begun
  ShutdownPromptly();
}

TEST_F(PipeTest, EndOfInputEndsTheConnection) {
  PipePair p;
  Serve(std::move(p.to_server_read), std::move(p.to_client_write));
  test_util::RawPeer peer(std::move(p.to_client_read), std::move(p.to_server_write));
  peer.Send(test_util::RequestFrame(1, "test.Svc", "Echo", "x"));
  ASSERT_TRUE(peer.ReadFrame().has_value());
  peer.Close();
  for (int i = 0; i < 500 && !done_.load(); ++i) std::this_thread::sleep_for(2ms);
  EXPECT_TRUE(done_.load());
  serve_.join();
  EXPECT_TRUE(result_.ok());
}

TEST_F(PipeTest, ClientFailsPendingCallWhenServerSideCloses) {
  PipePair p;
  test_util::RawPeer peer(std::move(p.to_server_read), std::move(p.to_client_write));
  Client client(std::move(p.to_client_read), std::move(p.to_server_write));
  std::thread closer([&] {
    ASSERT_TRUE(peer.ReadFrame().has_value());
    peer.Close();
  });
  Result<std::string> r = client.CallRaw("s", "m", "");
  closer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_TRUE(client.closed());
}

}  // namespace
}  // namespace cocoon::ttrpc
