#include "common/result.h"

#include <gtest/gtest.h>

namespace cocoon {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Error(Code::kInvalidArgument, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  COCOON_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, ValueAndError) {
  Result<int> ok = Half(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 4);
  Result<int> bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "odd");
}

TEST(ResultTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).error().message(), "odd");
}

TEST(ResultTest, FromErrnoMapsCodeAndText) {
  Error e = Error::FromErrno(ENOENT, "open /x");
  EXPECT_EQ(e.code(), Code::kNotFound);
  EXPECT_EQ(e.message(), "open /x: No such file or directory");
  EXPECT_EQ(e.sys_errno(), ENOENT);
  EXPECT_EQ(e.Wrap("config").message(), "config: open /x: No such file or directory");
}

}  // namespace
}  // namespace cocoon
