// FNV-1a, 64 bits: a stable hash of bytes, the same on every node, build and run. For
// partitioning, checksums of records and ids derived from content; not for secrets or
// for tables an attacker fills (use a keyed hash there).
#pragma once

#include <cstdint>
#include <string_view>

namespace tripline {

inline constexpr uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1aPrime = 0x100000001b3ull;

// `h` continues a hash over earlier bytes.
constexpr uint64_t Fnv1a64(std::string_view bytes, uint64_t h = kFnv1aOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnv1aPrime;
  }
  return h;
}

}  // namespace tripline
