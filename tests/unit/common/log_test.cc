#include "common/log.h"

#include <gtest/gtest.h>

#include "common/io.h"

namespace cocoon {
namespace {

TEST(LogTest, LogfmtLineWithFields) {
  std::string line =
      FormatLogLine(LogLevel::kWarn, "vm \"x\" started", {{"sandbox", "s1"}, {"note", "a b"}});
  EXPECT_EQ(line.rfind("time=\"", 0), 0u);
  EXPECT_NE(line.find(" level=warning msg=\"vm \\\"x\\\" started\" sandbox=s1 note=\"a b\""),
            std::string::npos)
      << line;
}

TEST(LogTest, LevelFilterAndSink) {
  UniqueFd r, w;
  ASSERT_TRUE(MakePipe(&r, &w).ok());
  SetLogFd(w.get());
  SetLogLevel(LogLevel::kInfo);
  Log().With("container", "c1").Debug("hidden {}", 1);
  Log().With("container", "c1").Info("shown {}", 2);
  SetLogFd(2);
  w.reset();
  auto got = ReadFile("/dev/fd/" + std::to_string(r.get()));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->find("hidden"), std::string::npos);
  EXPECT_NE(got->find("msg=\"shown 2\" container=c1"), std::string::npos) << *got;
  LogLevel lvl;
  EXPECT_TRUE(ParseLogLevel("debug", &lvl));
  EXPECT_EQ(lvl, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud", &lvl));
}

}  // namespace
}  // namespace cocoon
