#include "ttrpc/status.h"

#include <string>

namespace cocoon::ttrpc {
namespace {

constexpr int kLastKnownCode = static_cast<int>(Code::kDataLoss);

}  // namespace

void ToWireStatus(const Error& error, ::ttrpc::RpcStatus* out) {
  out->Clear();
  if (error.code() == Code::kOk) return;
  // cocoon::Code uses the gRPC numbers, so the value goes on the wire as it is.
  out->set_code(static_cast<int32_t>(error.code()));
  out->set_message(error.message());
}

Status FromWireStatus(const ::ttrpc::RpcStatus& status) {
  int code = status.code();
  if (code == 0) return OkStatus();
  if (code < 0 || code > kLastKnownCode) {
    // A code cocoon cannot name (16 UNAUTHENTICATED, or garbage) must still fail the call; the
    // number is kept in the message so that it is not lost.
    return Error(Code::kUnknown,
                 "remote status code " + std::to_string(code) + ": " + status.message());
  }
  return Error(static_cast<Code>(code), status.message());
}

}  // namespace cocoon::ttrpc
