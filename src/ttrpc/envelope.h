// The ttRPC envelope (Request and Response messages inside a frame), as the server and the client
// build and check it. Pure functions over bytes, shared with the fuzz target.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "proto/ttrpc.pb.h"
#include "ttrpc/frame.h"

namespace cocoon::ttrpc {

// Checks a received Request frame the way the Go server does (spec 2.3, 2.7) and decodes it.
// The error is the status to answer with on the frame's stream id: INVALID_ARGUMENT for an even
// stream id or an envelope that does not parse. Callers handle oversized and non-Request frames
// before this.
Result<::ttrpc::Request> DecodeRequestFrame(const Frame& frame);

// Encodes the Response envelope for a handler's result. Success: only the payload, so an empty
// payload gives zero bytes, as the Go server sends. Error: code and message, no payload.
std::string EncodeResponse(const Result<std::string>& result);

// The answer to send in place of a response whose envelope would exceed kMaxMessageSize.
Error ResponseTooLarge(size_t size);

// Decodes a Response envelope into the call's result: the payload, or the remote status as an
// Error. An envelope that does not parse is INTERNAL.
Result<std::string> DecodeResponse(std::string_view data);

// Message for frames whose length is over kMaxMessageSize (RESOURCE_EXHAUSTED).
std::string OversizedMessage(uint64_t length);

}  // namespace cocoon::ttrpc
