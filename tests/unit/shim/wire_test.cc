// Wire bytes containerd depends on: DeleteResponse from `delete`, the Go zero time for "not
// exited", and a Forward request byte for byte as in the contract's example (section 6.3).
#include <gtest/gtest.h>

#include "proto/containerd_events.pb.h"
#include "proto/containerd_task.pb.h"
#include "shim/commands.h"
#include "shim/events.h"
#include "shim/timestamps.h"

namespace cocoon::shim {
namespace {

TEST(DeleteResponse, ExitStatus137AndNow) {
  std::string bytes = DeleteResponseBytes(0);
  // Field 2 (exit_status) varint 137 = 0x10 0x89 0x01; pid 0 is omitted; field 3 follows.
  ASSERT_GE(bytes.size(), 5u);
  EXPECT_EQ(bytes.substr(0, 3), std::string("\x10\x89\x01", 3));
  EXPECT_EQ(bytes[3], '\x1a');
  ::containerd::task::v2::DeleteResponse resp;
  ASSERT_TRUE(resp.ParseFromString(bytes));
  EXPECT_EQ(resp.exit_status(), 137u);
  EXPECT_GT(resp.exited_at().seconds(), 1700000000);
  std::string with_pid = DeleteResponseBytes(4242);
  EXPECT_EQ(with_pid.substr(0, 3), std::string("\x08\x92\x21", 3));
}

TEST(Timestamps, NotExitedIsGoZeroTimeSentExplicitly) {
  google::protobuf::Timestamp t = NotExited();
  EXPECT_EQ(t.seconds(), -62135596800);
  EXPECT_EQ(t.nanos(), 0);
  taskpb::WaitResponse resp;
  *resp.mutable_exited_at() = t;
  // exited_at is present on the wire (field 2, 10-byte negative varint), not omitted.
  std::string bytes = resp.SerializeAsString();
  ASSERT_EQ(bytes.size(), 2u + 1u + 10u);
  EXPECT_EQ(bytes.substr(0, 3), std::string("\x12\x0b\x08", 3));
  timespec ts{1700000000, 5};
  EXPECT_EQ(FromTimespec(ts).seconds(), 1700000000);
  EXPECT_EQ(FromTimespec(ts).nanos(), 5);
}

TEST(Events, ForwardRequestMatchesContainerdBytes) {
  ::containerd::events::TaskExit exit;
  exit.set_container_id("t1");
  exit.set_id("t1");
  exit.set_pid(1234);
  exit.set_exit_status(3);
  exit.mutable_exited_at()->set_seconds(1700000000);
  exit.mutable_exited_at()->set_nanos(5);
  forwardpb::ForwardRequest req = MakeForwardRequest("default", "/tasks/exit", exit);
  req.mutable_envelope()->mutable_timestamp()->set_seconds(1700000000);
  req.mutable_envelope()->mutable_timestamp()->set_nanos(6);
  const std::string ts = "\x08\x80\xe2\xcf\xaa\x06";
  std::string expected = std::string("\x0a\x57", 2) + "\x0a\x08" + ts + "\x10\x06" + "\x12\x07" +
                         "default" + "\x1a\x0b" + "/tasks/exit" + "\x22\x35" + "\x0a\x1a" +
                         "containerd.events.TaskExit" + "\x12\x17" + "\x0a\x02" + "t1" +
                         "\x12\x02" + "t1" + "\x18\xd2\x09" + "\x20\x03" + "\x2a\x08" + ts +
                         "\x10\x05";
  EXPECT_EQ(req.SerializeAsString(), expected);
}

}  // namespace
}  // namespace cocoon::shim
