// What the response services (response_service.h, orders_service.h) share in handling a
// call: finishing a unary call at once, and the check of text a person or sensor sends.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <string_view>

namespace tripline::response {

// Finishes a unary call with `status` and returns its reactor.
inline grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, grpc::Status status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

// No control characters: what goes into the audit trail and onto an operator's terminal.
inline bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c != 0x7f; });
}

}  // namespace tripline::response
