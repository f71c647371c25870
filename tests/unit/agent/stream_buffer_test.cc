#include "agent/stream_buffer.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace cocoon::agent {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(StreamBufferTest, EofOnlyAfterEverythingWasRead) {
  StreamBuffer b(100);
  b.Append("hello");
  b.SetEof();
  auto first = b.Read(3);
  EXPECT_EQ(first.data, "hel");
  EXPECT_FALSE(first.eof);
  auto rest = b.Read(100);
  EXPECT_EQ(rest.data, "lo");
  EXPECT_TRUE(rest.eof);
  auto after = b.Read(100);
  EXPECT_EQ(after.data, "");
  EXPECT_TRUE(after.eof);
}

TEST(StreamBufferTest, ReadBlocksUntilDataAndTimesOut) {
  StreamBuffer b(100);
  auto start = Clock::now();
  auto timed_out = b.Read(10, Clock::now() + milliseconds(100));
  EXPECT_EQ(timed_out.data, "");
  EXPECT_FALSE(timed_out.eof);
  EXPECT_GE(Clock::now() - start, milliseconds(95));
  auto reader = std::async(std::launch::async, [&] { return b.Read(10); });
  std::this_thread::sleep_for(milliseconds(50));
  b.Append("x");
  EXPECT_EQ(reader.get().data, "x");
}

TEST(StreamBufferTest, ProducerWaitsForSpace) {
  StreamBuffer b(8);
  EXPECT_EQ(b.WaitForSpace(), 8u);
  b.Append("12345678");
  auto producer = std::async(std::launch::async, [&] { return b.WaitForSpace(); });
  EXPECT_EQ(producer.wait_for(milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(b.Read(3).data, "123");
  EXPECT_EQ(producer.get(), 3u);
}

TEST(StreamBufferTest, AbortWakesEveryone) {
  StreamBuffer b(4);
  b.Append("abcd");
  auto producer = std::async(std::launch::async, [&] { return b.WaitForSpace(); });
  StreamBuffer empty(4);
  auto reader = std::async(std::launch::async, [&] { return empty.Read(10); });
  std::this_thread::sleep_for(milliseconds(50));
  b.Abort();
  empty.Abort();
  EXPECT_EQ(producer.get(), 0u);
  EXPECT_TRUE(reader.get().eof);
  EXPECT_TRUE(b.WaitSourceEof(Clock::now()));
}

TEST(StreamBufferTest, InterruptedReaderTakesNothing) {
  StreamBuffer b(100);
  auto reader = std::async(std::launch::async, [&] { return b.Read(10); });
  std::this_thread::sleep_for(milliseconds(50));
  b.InterruptReaders();
  auto chunk = reader.get();
  EXPECT_EQ(chunk.data, "");
  EXPECT_FALSE(chunk.eof);
  b.Append("kept");
  EXPECT_EQ(b.Read(10).data, "kept");  // later readers are not affected
}

TEST(StreamBufferTest, LargeVolumeKeepsOrder) {
  StreamBuffer b(1000);
  std::string expected;
  for (int i = 0; i < 20000; ++i) expected += std::to_string(i) + ",";
  auto producer = std::async(std::launch::async, [&] {
    size_t pos = 0;
    while (pos < expected.size()) {
      size_t space = b.WaitForSpace();
      size_t n = std::min(space, expected.size() - pos);
      b.Append(std::string_view(expected).substr(pos, n));
      pos += n;
    }
    b.SetEof();
  });
  std::string got;
  for (;;) {
    auto chunk = b.Read(333);
    got += chunk.data;
    if (chunk.eof) break;
  }
  producer.get();
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace cocoon::agent
