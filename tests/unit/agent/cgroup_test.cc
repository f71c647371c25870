// The cgroup v2 readers against a fake cgroup directory holding files as the kernel writes them.
#include "agent/cgroup.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/io.h"

namespace cocoon::agent {
namespace {

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-cgroup.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveTree(dir_); }

  void Put(const std::string& name, const std::string& text) {
    ASSERT_TRUE(MakeDirs(dir_ + "/" + name.substr(0, name.rfind('/') + 1)).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name, text).ok());
  }

  std::string dir_;
};

TEST(CgroupParseTest, FlatKeyedSkipsWhatIsNotANameAndANumber) {
  auto values = ParseFlatKeyed(
      "usage_usec 123\nuser_usec  45\n\nbroken\nneg -1\nthree a 1\nbig 18446744073709551615\n");
  EXPECT_EQ(values.size(), 3u);
  EXPECT_EQ(values["usage_usec"], 123u);
  EXPECT_EQ(values["user_usec"], 45u);
  EXPECT_EQ(values["big"], 18446744073709551615u);
  EXPECT_TRUE(ParseFlatKeyed("").empty());
}

TEST(CgroupParseTest, LimitMaxAndNumbers) {
  EXPECT_EQ(*ParseLimit("max\n", 77), 77u);
  EXPECT_EQ(*ParseLimit("67108864\n", 77), 67108864u);
  EXPECT_EQ(*ParseLimit("0", 77), 0u);
  auto bad = ParseLimit("12k\n", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("12k"), std::string::npos);
  EXPECT_FALSE(ParseLimit("", 0).ok());
}

TEST(CgroupParseTest, IoStatLines) {
  auto entries = ParseIoStat(
      "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
      "8:16 rbytes=1 wbytes=2 rios=3 wios=4\n"
      "garbage line\n"
      "7 rbytes=1\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].major(), 254u);
  EXPECT_EQ(entries[0].minor(), 0u);
  EXPECT_EQ(entries[0].rbytes(), 4096u);
  EXPECT_EQ(entries[0].wbytes(), 8192u);
  EXPECT_EQ(entries[0].rios(), 1u);
  EXPECT_EQ(entries[0].wios(), 2u);
  EXPECT_EQ(entries[1].major(), 8u);
  EXPECT_EQ(entries[1].minor(), 16u);
  EXPECT_EQ(entries[1].wios(), 4u);
}

TEST(CgroupParseTest, MeminfoFields) {
  std::string meminfo = "MemTotal:        2035916 kB\nMemFree: 1 kB\nSwapTotal:   0 kB\n";
  EXPECT_EQ(MeminfoBytes(meminfo, "MemTotal"), 2035916u * 1024);
  EXPECT_EQ(MeminfoBytes(meminfo, "SwapTotal"), 0u);
  EXPECT_EQ(MeminfoBytes(meminfo, "Nope"), 0u);
  EXPECT_EQ(MeminfoBytes("MemTotalX: 5 kB\n", "MemTotal"), 0u);
}

TEST_F(CgroupTest, EveryFileFillsItsFields) {
  Put("cpu.stat",
      "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 3\n"
      "throttled_usec 700\nnr_bursts 0\n");
  Put("memory.current", "8388608\n");
  Put("memory.max", "67108864\n");
  Put("memory.swap.current", "4096\n");
  Put("memory.swap.max", "max\n");
  Put("memory.stat",
      "anon 1\nfile 2\nkernel_stack 3\nslab 4\nsock 5\nshmem 6\nfile_mapped 7\nfile_dirty 8\n"
      "file_writeback 9\nanon_thp 10\ninactive_anon 11\nactive_anon 12\ninactive_file 13\n"
      "active_file 14\nunevictable 15\nslab_reclaimable 16\nslab_unreclaimable 17\n"
      "pgfault 18\npgmajfault 19\nworkingset_refault_anon 99\n");
  Put("memory.events", "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n");
  Put("pids.current", "7\n");
  Put("pids.max", "100\n");
  Put("io.stat", "254:0 rbytes=10 wbytes=20 rios=30 wios=40 dbytes=0 dios=0\n");

  auto m = ReadCgroupMetrics(dir_, MemoryTotals{1 << 30, 1 << 20});
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->cpu().usage_usec(), 5000u);
  EXPECT_EQ(m->cpu().user_usec(), 3000u);
  EXPECT_EQ(m->cpu().system_usec(), 2000u);
  EXPECT_EQ(m->cpu().nr_periods(), 10u);
  EXPECT_EQ(m->cpu().nr_throttled(), 3u);
  EXPECT_EQ(m->cpu().throttled_usec(), 700u);
  const auto& mem = m->memory();
  EXPECT_EQ(mem.usage(), 8388608u);
  EXPECT_EQ(mem.usage_limit(), 67108864u);
  EXPECT_EQ(mem.swap_usage(), 4096u);
  EXPECT_EQ(mem.swap_limit(), 1u << 20);  // "max": the guest's swap
  // memory.stat: each field got the value of the key of the same name.
  const uint64_t stat[] = {mem.anon(),
                           mem.file(),
                           mem.kernel_stack(),
                           mem.slab(),
                           mem.sock(),
                           mem.shmem(),
                           mem.file_mapped(),
                           mem.file_dirty(),
                           mem.file_writeback(),
                           mem.anon_thp(),
                           mem.inactive_anon(),
                           mem.active_anon(),
                           mem.inactive_file(),
                           mem.active_file(),
                           mem.unevictable(),
                           mem.slab_reclaimable(),
                           mem.slab_unreclaimable(),
                           mem.pgfault(),
                           mem.pgmajfault()};
  for (size_t i = 0; i < std::size(stat); ++i) EXPECT_EQ(stat[i], i + 1) << "field " << i;
  EXPECT_EQ(m->memory_events().low(), 1u);
  EXPECT_EQ(m->memory_events().high(), 2u);
  EXPECT_EQ(m->memory_events().max(), 3u);
  EXPECT_EQ(m->memory_events().oom(), 4u);
  EXPECT_EQ(m->memory_events().oom_kill(), 5u);
  EXPECT_EQ(m->pids().current(), 7u);
  EXPECT_EQ(m->pids().limit(), 100u);
  ASSERT_EQ(m->io().usage_size(), 1);
  EXPECT_EQ(m->io().usage(0).major(), 254u);
  EXPECT_EQ(m->io().usage(0).wios(), 40u);
}

TEST_F(CgroupTest, MaxMeansTheGuestsMemoryForMemoryAndZeroForPids) {
  Put("memory.max", "max\n");
  Put("pids.max", "max\n");
  auto m = ReadCgroupMetrics(dir_, MemoryTotals{123456789, 0});
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->memory().usage_limit(), 123456789u);
  EXPECT_EQ(m->pids().limit(), 0u);
}

TEST_F(CgroupTest, MissingControllersLeaveZeros) {
  // Only what the core cgroup always has.
  Put("cpu.stat", "usage_usec 9\nuser_usec 5\nsystem_usec 4\n");
  auto m = ReadCgroupMetrics(dir_, MemoryTotals{1 << 30, 0});
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->cpu().usage_usec(), 9u);
  EXPECT_EQ(m->cpu().nr_periods(), 0u);
  EXPECT_EQ(m->memory().usage(), 0u);
  EXPECT_EQ(m->memory().usage_limit(), 0u);
  EXPECT_EQ(m->memory().swap_limit(), 0u);
  EXPECT_EQ(m->pids().current(), 0u);
  EXPECT_EQ(m->memory_events().oom_kill(), 0u);
  EXPECT_EQ(m->io().usage_size(), 0);
}

TEST_F(CgroupTest, UnreadableOrCorruptFileIsAnError) {
  Put("memory.current", "lots\n");
  auto corrupt = ReadCgroupMetrics(dir_, MemoryTotals{});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message().find("lots"), std::string::npos);
  ASSERT_TRUE(RemoveTree(dir_ + "/memory.current").ok());
  // A directory where a file should be: read fails with EISDIR, not "missing".
  ASSERT_EQ(::mkdir((dir_ + "/memory.current").c_str(), 0755), 0);
  EXPECT_FALSE(ReadCgroupMetrics(dir_, MemoryTotals{}).ok());
}

TEST_F(CgroupTest, PidsOfTheWholeSubtreeSortedOnce) {
  Put("cgroup.procs", "30\n10\n");
  Put("sub/cgroup.procs", "20\n10\n");
  Put("sub/deeper/cgroup.procs", "5\n");
  Put("empty/cgroup.procs", "");
  auto pids = ListCgroupPids(dir_);
  ASSERT_TRUE(pids.ok()) << pids.error().message();
  EXPECT_EQ(*pids, (std::vector<uint32_t>{5, 10, 20, 30}));
}

TEST_F(CgroupTest, PidsOfAMissingCgroupIsAnError) {
  auto pids = ListCgroupPids(dir_ + "/nope");
  ASSERT_FALSE(pids.ok());
  EXPECT_EQ(pids.error().code(), Code::kNotFound);
}

TEST_F(CgroupTest, OomKillCounter) {
  EXPECT_EQ(ReadOomKills(dir_), 0u);  // no memory controller
  Put("memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n");
  EXPECT_EQ(ReadOomKills(dir_), 2u);
}

}  // namespace
}  // namespace cocoon::agent
