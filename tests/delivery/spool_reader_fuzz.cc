// Fuzz target: the spool's segment and state readers. Spool files are on-disk input that a
// crash, a full disk or bit rot may have mangled; reading them must never crash or read
// out of bounds, and what the scan reports must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "sensor/delivery/spool_format.h"

using tripline::delivery::RecordView;
using tripline::delivery::SegmentScan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  uint64_t records = 0;
  uint64_t prev_seq = 0;
  uint64_t prev_end = 0;
  SegmentScan scan = tripline::delivery::ScanSegment(bytes, [&](const RecordView& r) {
    // Records are in bounds, ordered, non-overlapping, and their payload lies inside.
    if (r.offset + r.size > size || r.seq <= prev_seq || r.offset < prev_end) std::abort();
    if (r.payload.data() < reinterpret_cast<const char*>(data) + r.offset) std::abort();
    prev_seq = r.seq;
    prev_end = r.offset + r.size;
    ++records;
  });
  if (scan.records != records) std::abort();
  if (scan.header_ok) {
    if (scan.valid_end > size || scan.valid_end + scan.torn_tail_bytes != size) std::abort();
    if (scan.valid_end < prev_end) std::abort();
  } else if (records != 0) {
    std::abort();
  }
  (void)tripline::delivery::DecodeState(bytes);
  return 0;
}
