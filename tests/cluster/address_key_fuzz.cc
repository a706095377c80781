// Fuzz target for AddressOfKey: the keys of the address bucket come from the cluster,
// written by any ingest node (or by anyone who can write the bucket); whatever is taken for
// an address must be a routable one whose key comes back the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/cluster/address_book.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::cluster;
  const std::string_view key(reinterpret_cast<const char*>(data), size);
  const auto addr = AddressOfKey(key);
  if (!addr) return 0;
  if (!RoutableAddress(*addr) || AddressKey(*addr) != key) __builtin_trap();
  return 0;
}
