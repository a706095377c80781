// Fuzz target: arbitrary bytes as the URI names of a client certificate (split at NUL),
// through ParseIdentityUris. Must never crash; what it accepts holds its promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "aggregator/ingest/peer_identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> uris(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      uris.emplace_back();
    } else {
      uris.back().push_back(static_cast<char>(data[i]));
    }
  }
  auto id = tripline::ParseIdentityUris(uris);
  if (!id.ok()) return 0;
  if (id->unrestricted || (id->roles & ~7u) != 0) std::abort();
  for (const auto* list : {&id->hosts, &id->sensor_ids}) {
    for (const std::string& v : *list) {
      if (v.empty() || v.size() > 256) std::abort();
      for (unsigned char c : v) {
        if (c < 0x21 || c > 0x7e) std::abort();
      }
    }
  }
  return 0;
}
