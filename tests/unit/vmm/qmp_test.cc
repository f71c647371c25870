#include "vmm/qmp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <functional>
#include <optional>
#include <thread>

#include "common/io.h"
#include "test_dir.h"

namespace cocoon::vmm {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kGreeting[] =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
    "\n";

// The QEMU side of a QMP connection, played by a thread running a script.
class Peer {
 public:
  explicit Peer(UniqueFd fd) : fd_(std::move(fd)) {}

  std::optional<Json> ReadRequest() {
    std::string line;
    char c;
    for (;;) {
      ssize_t n = ::read(fd_.get(), &c, 1);
      if (n <= 0) return std::nullopt;
      if (c == '\n') break;
      line += c;
    }
    auto request = Json::parse(line, nullptr, false);
    EXPECT_FALSE(request.is_discarded()) << line;
    return request;
  }
  // MSG_NOSIGNAL: a client that hung up must not kill the test binary with SIGPIPE.
  bool TryWrite(std::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      text.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void Write(std::string_view text) { EXPECT_TRUE(TryWrite(text)); }
  void Reply(const Json& request, const Json& body) {
    Json reply = body;
    reply["id"] = request["id"];
    Write(reply.dump() + "\n");
  }
  // Greeting plus the capabilities exchange.
  void Handshake() {
    Write(kGreeting);
    auto request = ReadRequest();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ((*request)["execute"], "qmp_capabilities");
    Reply(*request, {{"return", Json::object()}});
  }
  void Close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

// Runs `script` as the QEMU end. Declare before the client: the client's fd must close first so
// a script blocked on a read sees EOF and the thread can be joined.
class FakeQemu {
 public:
  explicit FakeQemu(std::function<void(Peer&)> script) {
    UniqueFd peer_fd;
    EXPECT_TRUE(MakeSocketPair(&client_fd_, &peer_fd).ok());
    thread_ = std::thread([script = std::move(script), fd = std::move(peer_fd)]() mutable {
      Peer peer(std::move(fd));
      script(peer);
    });
  }
  ~FakeQemu() { thread_.join(); }
  UniqueFd TakeClientFd() { return std::move(client_fd_); }

 private:
  UniqueFd client_fd_;
  std::thread thread_;
};

TEST(QmpClientTest, ExecuteReturnsValueAndSkipsEvents) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ((*request)["execute"], "query-status");
    EXPECT_FALSE(request->contains("arguments"));
    peer.Write(R"({"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}})"
               "\n");
    peer.Write("\n");
    peer.Reply(*request, {{"return", {{"status", "running"}, {"running", true}}}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto result = client->Execute("query-status");
  ASSERT_TRUE(result.ok()) << result.error().message();
  EXPECT_EQ((*result)["status"], "running");
}

TEST(QmpClientTest, ArgumentsAreSent) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ((*request)["arguments"]["id"], "agent");
    peer.Reply(*request, {{"return", Json::object()}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(client->Execute("chardev-remove", {{"id", "agent"}}).ok());
}

TEST(QmpClientTest, ErrorReplyBecomesError) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    peer.Reply(*request,
               {{"error",
                 {{"class", "CommandNotFound"}, {"desc", "The command nope has not been found"}}}});
    request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    peer.Reply(*request, {{"error", {{"class", "GenericError"}, {"desc", "bad"}}}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto result = client->Execute("nope");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::kUnimplemented);
  EXPECT_EQ(result.error().message(),
            "qmp nope: CommandNotFound: The command nope has not been found");
  Status powerdown = client->SystemPowerdown();
  ASSERT_FALSE(powerdown.ok());
  EXPECT_EQ(powerdown.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(powerdown.error().message(), "qmp system_powerdown: GenericError: bad");
}

TEST(QmpClientTest, RepliesToOtherIdsAreSkipped) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    peer.Write(R"({"return": {"stale": true}, "id": 999})"
               "\n");
    peer.Reply(*request, {{"return", {{"stale", false}}}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto result = client->Execute("query-x");
  ASSERT_TRUE(result.ok()) << result.error().message();
  EXPECT_EQ((*result)["stale"], false);
}

TEST(QmpClientTest, GarbledReplyIsDataLoss) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    ASSERT_TRUE(peer.ReadRequest().has_value());
    peer.Write("{\"return\": {\"status\": \"runn\x01\n");
    ASSERT_TRUE(peer.ReadRequest().has_value());
    peer.Write("[1, 2, 3]\n");
    ASSERT_TRUE(peer.ReadRequest().has_value());
    peer.Write("{\"neither\": 1}\n");
    ASSERT_TRUE(peer.ReadRequest().has_value());
    peer.Write("{\"error\": \"not an object\"}\n");
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  for (const char* want : {"malformed QMP message", "malformed QMP message",
                           "unexpected QMP reply to query-status", "unexpected QMP reply"}) {
    auto result = client->Execute("query-status");
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), Code::kDataLoss);
    EXPECT_THAT(result.error().message(), HasSubstr(want));
  }
}

TEST(QmpClientTest, PeerClosingMidCommandIsUnavailable) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    ASSERT_TRUE(peer.ReadRequest().has_value());
    peer.Write(R"({"return": {"partial")");
    peer.Close();
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto result = client->Execute("query-status");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::kUnavailable);
  // Writing to the closed peer must fail, not raise SIGPIPE.
  auto again = client->Execute("query-status");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kUnavailable);
}

TEST(QmpClientTest, SilentPeerTimesOut) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    ASSERT_TRUE(peer.ReadRequest().has_value());
    // Events keep coming but the reply never does: the deadline still applies.
    while (peer.TryWrite(R"({"event": "RTC_CHANGE", "data": {}})"
                         "\n")) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  client->set_timeout(milliseconds(150));
  auto start = std::chrono::steady_clock::now();
  auto result = client->Execute("query-status");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::kDeadlineExceeded);
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(1000));
}

TEST(QmpClientTest, OversizedMessageIsRejected) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    ASSERT_TRUE(peer.ReadRequest().has_value());
    std::string huge = R"({"return": ")" + std::string(QmpClient::kMaxMessageBytes + 10, 'a');
    // The client gives up part-way and closes, so this write may fail; that is fine.
    (void)peer.TryWrite(huge);
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  auto result = client->Execute("query-status");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), Code::kResourceExhausted);
  EXPECT_THAT(result.error().message(), HasSubstr("longer than 1048576 bytes"));
}

TEST(QmpClientTest, MissingGreetingFails) {
  FakeQemu qemu([](Peer& peer) {
    peer.Write(R"({"return": {}})"
               "\n");
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.error().message(), HasSubstr("expected a QMP greeting"));
}

TEST(QmpClientTest, PeerClosedBeforeGreetingFails) {
  FakeQemu qemu([](Peer& peer) { peer.Close(); });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code(), Code::kUnavailable);
}

TEST(QmpClientTest, QuitAcceptsEofBeforeReply) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ((*request)["execute"], "quit");
    peer.Write(R"({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}})"
               "\n");
    peer.Close();
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  Status quit = client->Quit();
  EXPECT_TRUE(quit.ok()) << quit.error().message();
}

TEST(QmpClientTest, QuitWithReply) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    peer.Reply(*request, {{"return", Json::object()}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(client->Quit().ok());
}

TEST(QmpClientTest, QuitRefusedIsError) {
  FakeQemu qemu([](Peer& peer) {
    peer.Handshake();
    auto request = peer.ReadRequest();
    ASSERT_TRUE(request.has_value());
    peer.Reply(*request, {{"error", {{"class", "GenericError"}, {"desc", "no"}}}});
  });
  auto client = QmpClient::FromFd(qemu.TakeClientFd(), milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_FALSE(client->Quit().ok());
}

TEST(QmpClientTest, ConnectOverUnixSocket) {
  testing::TestDir dir;
  ASSERT_TRUE(dir.ok());
  std::string path = dir.Join("qmp.sock");
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  std::thread server([&] {
    int fd = ::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(fd, 0);
    Peer peer{UniqueFd(fd)};
    peer.Handshake();
    peer.ReadRequest();  // until the client closes
  });
  {
    auto client = QmpClient::Connect(path, milliseconds(2000));
    EXPECT_TRUE(client.ok()) << client.error().message();
  }
  server.join();
}

TEST(QmpClientTest, ConnectToMissingSocketTimesOut) {
  testing::TestDir dir;
  ASSERT_TRUE(dir.ok());
  auto client = QmpClient::Connect(dir.Join("absent.sock"), milliseconds(50));
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.error().message(), HasSubstr("absent.sock"));
}

}  // namespace
}  // namespace cocoon::vmm
