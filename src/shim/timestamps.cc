#include "shim/timestamps.h"

namespace cocoon::shim {

google::protobuf::Timestamp NotExited() {
  google::protobuf::Timestamp t;
  t.set_seconds(kGoZeroTimeSeconds);
  t.set_nanos(0);
  return t;
}

google::protobuf::Timestamp FromTimespec(const timespec& ts) {
  google::protobuf::Timestamp t;
  t.set_seconds(ts.tv_sec);
  t.set_nanos(static_cast<int32_t>(ts.tv_nsec));
  return t;
}

google::protobuf::Timestamp Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return FromTimespec(ts);
}

}  // namespace cocoon::shim
