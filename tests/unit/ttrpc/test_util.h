// Helpers for the ttRPC tests: a raw peer that speaks bytes on a real socket or pipe, and a server
// served on a thread.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/io.h"
#include "common/unique_fd.h"
#include "proto/ttrpc.pb.h"
#include "ttrpc/frame.h"
#include "ttrpc/server.h"

namespace cocoon::ttrpc::test_util {

using namespace std::chrono_literals;

// Long enough never to fire on a loaded machine, short enough that a hang fails the test.
inline constexpr std::chrono::milliseconds kWait = 5s;

inline std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Waits until `fd` is readable or `timeout` passes.
inline bool WaitReadable(int fd, std::chrono::milliseconds timeout) {
  pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

// The far end of a connection, driven byte by byte.
class RawPeer {
 public:
  RawPeer() = default;
  RawPeer(UniqueFd read_fd, UniqueFd write_fd)
      : read_fd_(std::move(read_fd)), write_fd_(std::move(write_fd)) {}
  explicit RawPeer(UniqueFd fd) : read_fd_(std::move(fd)) {}

  int rfd() const { return read_fd_.get(); }
  int wfd() const { return write_fd_ ? write_fd_.get() : read_fd_.get(); }

  void Send(std::string_view bytes) { ASSERT_TRUE(WriteAll(wfd(), bytes).ok()); }

  // Reads exactly n bytes, or returns what came before the timeout or end of stream.
  std::string Read(size_t n, std::chrono::milliseconds timeout = kWait) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !WaitReadable(rfd(), left)) break;
      char buf[4096];
      ssize_t got = ::read(rfd(), buf, std::min(sizeof(buf), n - out.size()));
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }

  // Reads one frame (header and data).
  std::optional<Frame> ReadFrame(std::chrono::milliseconds timeout = kWait) {
    std::string header = Read(kHeaderSize, timeout);
    if (header.size() != kHeaderSize) return std::nullopt;
    Frame f;
    f.header = DecodeHeader(header.data());
    f.data = Read(f.header.length, timeout);
    if (f.data.size() != f.header.length) return std::nullopt;
    return f;
  }

  // True when the other side closed the stream (read gives 0 or an error) within the timeout.
  bool SeesEof(std::chrono::milliseconds timeout = kWait) {
    if (!WaitReadable(rfd(), timeout)) return false;
    char c;
    return ::read(rfd(), &c, 1) <= 0;
  }

  // True when nothing arrives within `timeout`.
  bool Quiet(std::chrono::milliseconds timeout) { return !WaitReadable(rfd(), timeout); }

  void Close() {
    read_fd_.reset();
    write_fd_.reset();
  }

 private:
  UniqueFd read_fd_;
  UniqueFd write_fd_;
};

inline std::string RequestBytes(const std::string& service, const std::string& method,
                                const std::string& payload, int64_t timeout_nano = 0) {
  ::ttrpc::Request req;
  req.set_service(service);
  req.set_method(method);
  req.set_payload(payload);
  req.set_timeout_nano(timeout_nano);
  return req.SerializeAsString();
}

inline std::string RequestFrame(uint32_t stream_id, const std::string& service,
                                const std::string& method, const std::string& payload) {
  return EncodeFrame(stream_id, FrameType::kRequest, RequestBytes(service, method, payload));
}

// Parses a Response envelope, failing the test if it does not parse.
inline ::ttrpc::Response ParseResponse(const Frame& f) {
  ::ttrpc::Response resp;
  EXPECT_EQ(f.header.type, static_cast<uint8_t>(FrameType::kResponse));
  EXPECT_TRUE(resp.ParseFromString(f.data));
  return resp;
}

// A server serving one end of a socketpair on its own thread; the test holds the other end.
class ServedPair {
 public:
  explicit ServedPair(Server& server) : server_(server) {
    UniqueFd ours;
    UniqueFd theirs;
    EXPECT_TRUE(MakeSocketPair(&ours, &theirs).ok());
    peer_ = RawPeer(std::move(ours));
    thread_ = std::thread([this, fd = std::move(theirs)]() mutable {
      result_ = server_.ServeConnection(std::move(fd));
      done_ = true;
    });
  }
  ~ServedPair() { (void)Stop(); }

  RawPeer& peer() { return peer_; }
  // Shuts the server down and returns what ServeConnection returned.
  Status Stop() {
    server_.Shutdown();
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  // Waits for ServeConnection to return by itself (peer closed), without Shutdown.
  bool WaitServed(std::chrono::milliseconds timeout = kWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    if (!done_) return false;
    thread_.join();
    return true;
  }
  const Status& result() const { return result_; }

 private:
  Server& server_;
  RawPeer peer_;
  std::thread thread_;
  Status result_;
  std::atomic<bool> done_{false};
};

}  // namespace cocoon::ttrpc::test_util
