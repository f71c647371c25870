#include "vmm/accel.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/io.h"
#include "test_dir.h"

namespace cocoon::vmm {
namespace {

using testing::TestDir;

constexpr char kIntelWithVmx[] =
    "processor\t: 0\nvendor_id\t: GenuineIntel\n"
    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic vmx sse sse2 hypervisor\n"
    "vmx flags\t: vnmi preemption_timer\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n";
constexpr char kAmdWithSvm[] = "processor\t: 0\nflags\t\t: fpu vme svm lm\n";
// A nested PVM guest: hypervisor flag, no vmx/svm, yet /dev/kvm exists.
constexpr char kNoVirt[] =
    "processor\t: 0\nmodel name\t: Intel vmx svm lookalike\n"
    "flags\t\t: fpu vme de pse tsc msr svmx vmxe hypervisor\n";

class AccelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    // A regular file stands in for /dev/kvm: all the check asks is that it opens read-write.
    ASSERT_TRUE(WriteFileAtomic(kvm(), "").ok());
  }
  std::string Cpuinfo(const std::string& text) {
    std::string path = dir_.Join("cpuinfo");
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }
  std::string kvm() const { return dir_.Join("kvm"); }

  TestDir dir_;
};

TEST_F(AccelTest, VmxAndKvmGiveKvm) {
  AccelDecision d = DetectAccelerator(Cpuinfo(kIntelWithVmx), kvm());
  EXPECT_EQ(d.accel, Accel::kKvm);
  EXPECT_NE(d.reason.find("opens"), std::string::npos) << d.reason;
}

TEST_F(AccelTest, SvmAndKvmGiveKvm) {
  EXPECT_EQ(DetectAccelerator(Cpuinfo(kAmdWithSvm), kvm()).accel, Accel::kKvm);
}

TEST_F(AccelTest, NoVirtFlagGivesTcgEvenWithKvmDevice) {
  AccelDecision d = DetectAccelerator(Cpuinfo(kNoVirt), kvm());
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_NE(d.reason.find("no vmx/svm flag"), std::string::npos) << d.reason;
}

TEST_F(AccelTest, VmxOnlyOutsideFlagsLineGivesTcg) {
  std::string text = "processor\t: 0\nflags\t\t: fpu sse\nvmx flags\t: vnmi\n";
  EXPECT_EQ(DetectAccelerator(Cpuinfo(text), kvm()).accel, Accel::kTcg);
}

TEST_F(AccelTest, NoFlagsLineGivesTcg) {
  EXPECT_EQ(DetectAccelerator(Cpuinfo("processor\t: 0\n"), kvm()).accel, Accel::kTcg);
  EXPECT_EQ(DetectAccelerator(Cpuinfo(""), kvm()).accel, Accel::kTcg);
}

TEST_F(AccelTest, MissingKvmDeviceGivesTcg) {
  AccelDecision d = DetectAccelerator(Cpuinfo(kIntelWithVmx), dir_.Join("no-such-kvm"));
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_NE(d.reason.find("cannot open"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("No such file"), std::string::npos) << d.reason;
}

TEST_F(AccelTest, KvmPathThatCannotOpenReadWriteGivesTcg) {
  // A directory never opens read-write, even for root.
  std::string kvm_dir = dir_.Join("kvm-dir");
  ASSERT_EQ(::mkdir(kvm_dir.c_str(), 0700), 0);
  AccelDecision d = DetectAccelerator(Cpuinfo(kIntelWithVmx), kvm_dir);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_NE(d.reason.find("Is a directory"), std::string::npos) << d.reason;
}

TEST_F(AccelTest, UnreadableCpuinfoGivesTcg) {
  AccelDecision d = DetectAccelerator(dir_.Join("no-cpuinfo"), kvm());
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_NE(d.reason.find("cannot read CPU flags"), std::string::npos) << d.reason;
}

TEST_F(AccelTest, ClocksourceFixture) {
  std::string path = dir_.Join("current_clocksource");
  ASSERT_TRUE(WriteFileAtomic(path, "tsc\n").ok());
  EXPECT_TRUE(HostClocksourceIsTsc(path));
  ASSERT_TRUE(WriteFileAtomic(path, "kvm-clock\n").ok());
  EXPECT_FALSE(HostClocksourceIsTsc(path));
  ASSERT_TRUE(WriteFileAtomic(path, "tsc-early\n").ok());
  EXPECT_FALSE(HostClocksourceIsTsc(path));
  EXPECT_FALSE(HostClocksourceIsTsc(dir_.Join("absent")));
}

TEST(TscTest, MeasurementsAgree) {
  if (!HostClocksourceIsTsc()) GTEST_SKIP() << "the host clocksource is not the TSC";
  uint64_t a = MeasureTscKhz(std::chrono::milliseconds(20));
  uint64_t b = MeasureTscKhz(std::chrono::milliseconds(40));
  ASSERT_GT(a, 100000u);  // 100 MHz .. 10 GHz
  ASSERT_LT(a, 10000000u);
  // Two windows must agree to 0.01% (100 ppm, a cheap crystal's error): the guest clock runs at
  // this rate.
  EXPECT_NEAR(static_cast<double>(a), static_cast<double>(b), static_cast<double>(b) * 0.0001);
  auto cached = HostTscKhz();
  ASSERT_TRUE(cached.has_value());
  EXPECT_NEAR(static_cast<double>(*cached), static_cast<double>(b),
              static_cast<double>(b) * 0.0001);
  EXPECT_EQ(HostTscKhz(), cached);
}

TEST(AccelNameTest, Names) {
  EXPECT_STREQ(AccelName(Accel::kKvm), "kvm");
  EXPECT_STREQ(AccelName(Accel::kTcg), "tcg");
}

}  // namespace
}  // namespace cocoon::vmm
