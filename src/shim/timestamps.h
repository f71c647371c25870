// Exit times as containerd expects them (contract section 4.4): a process that has not exited
// carries Go's zero time (0001-01-01T00:00:00Z), sent explicitly because containerd 1.7 would
// decode a missing field as 1970-01-01.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <ctime>

namespace cocoon::shim {

inline constexpr int64_t kGoZeroTimeSeconds = -62135596800;

// Go's zero time.
google::protobuf::Timestamp NotExited();
// The wall-clock time now (UTC).
google::protobuf::Timestamp Now();
google::protobuf::Timestamp FromTimespec(const timespec& ts);

}  // namespace cocoon::shim
