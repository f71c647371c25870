// The one place where a cocoon Error becomes a ttRPC wire status and back.
#pragma once

#include "common/result.h"
#include "proto/ttrpc.pb.h"

namespace cocoon::ttrpc {

// Fills `out` from `error` (code and message); an OK status leaves `out` cleared.
void ToWireStatus(const Error& error, ::ttrpc::RpcStatus* out);
// Converts a received status into an Error (code 0 -> std::nullopt semantics via ok Status).
Status FromWireStatus(const ::ttrpc::RpcStatus& status);

}  // namespace cocoon::ttrpc
