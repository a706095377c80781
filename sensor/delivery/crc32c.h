// CRC-32C (Castagnoli), the checksum of the spool's on-disk records.
//
// CRC-32C rather than zlib's CRC-32 because x86-64 (SSE4.2) and ARMv8 compute it in
// hardware; the software fallback is table-driven. Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tripline::delivery {

// Extends `crc` (the CRC of earlier bytes, 0 to start) over data[0, n).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

// A CRC stored next to the data it covers is masked (as LevelDB does) so that the CRC of
// a string that itself contains CRCs does not degenerate.
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t UnmaskCrc(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace tripline::delivery
