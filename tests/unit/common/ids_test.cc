#include "common/ids.h"

#include <gtest/gtest.h>

#include <string>

namespace cocoon {
namespace {

TEST(IdsTest, AcceptsOrdinaryIds) {
  EXPECT_TRUE(ValidateId("abc").ok());
  EXPECT_TRUE(ValidateId("my-container_1.2").ok());
  EXPECT_TRUE(ValidateId(std::string(64, 'a')).ok());
}

TEST(IdsTest, RejectsDangerousIds) {
  for (std::string bad : {"", "../x", "a/b", ".", "..", ".hidden", "-rf", "a b", "x\n"}) {
    Status st = ValidateId(bad);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code(), Code::kInvalidArgument) << bad;
  }
  Status long_id = ValidateId(std::string(300, 'a'));
  ASSERT_FALSE(long_id.ok());
  EXPECT_NE(long_id.error().message().find("300 characters"), std::string::npos);
}

}  // namespace
}  // namespace cocoon
