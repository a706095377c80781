// Fuzz target for DecodeLease: lease records come from the cluster's key-value store,
// written by any worker (or damaged); a bad one must be a clear error, and whatever
// decodes must encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/cluster/lease.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto r = DecodeLease(bytes);
  if (!r.ok()) {
    if (!r.status().IsCorruption() || r.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (r->owner.empty() || r->expires_ns < 0) __builtin_trap();
  const std::string again = EncodeLease(*r);
  const auto twice = DecodeLease(again);
  if (!twice.ok() || twice->owner != r->owner || twice->expires_ns != r->expires_ns)
    __builtin_trap();
  return 0;
}
