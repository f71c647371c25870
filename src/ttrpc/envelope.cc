#include "ttrpc/envelope.h"

#include "ttrpc/status.h"

namespace cocoon::ttrpc {

Result<::ttrpc::Request> DecodeRequestFrame(const Frame& frame) {
  // The texts below are the Go server's, which containerd users may already match on.
  if (frame.header.stream_id % 2 == 0) {
    return Error(Code::kInvalidArgument, "StreamID must be odd for client initiated streams");
  }
  ::ttrpc::Request req;
  if (!req.ParseFromArray(frame.data.data(), static_cast<int>(frame.data.size()))) {
    return Error(Code::kInvalidArgument, "unmarshal request error");
  }
  return req;
}

std::string EncodeResponse(const Result<std::string>& result) {
  ::ttrpc::Response resp;
  if (result.ok()) {
    if (!result->empty()) resp.set_payload(*result);
  } else {
    ToWireStatus(result.error(), resp.mutable_status());
  }
  return resp.SerializeAsString();
}

Error ResponseTooLarge(size_t size) {
  return Error(Code::kResourceExhausted, "response of " + std::to_string(size) +
                                             " bytes exceeds the maximum message size of " +
                                             std::to_string(kMaxMessageSize));
}

Result<std::string> DecodeResponse(std::string_view data) {
  ::ttrpc::Response resp;
  if (!resp.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return Error(Code::kInternal, "malformed ttrpc response envelope");
  }
  if (resp.has_status()) {
    Status st = FromWireStatus(resp.status());
    if (!st.ok()) return st.error();
  }
  return std::move(*resp.mutable_payload());
}

std::string OversizedMessage(uint64_t length) {
  return "message length " + std::to_string(length) + " exceeds maximum message size of " +
         std::to_string(kMaxMessageSize);
}

}  // namespace cocoon::ttrpc
