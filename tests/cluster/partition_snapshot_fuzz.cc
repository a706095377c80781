// Fuzz target for the partition snapshots a worker loads from the cluster: a head and the
// joined chunks, damaged or hostile, must be a clear error; what decodes encodes again to
// the same bytes' meaning.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/cluster/partition_snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto head = DecodeSnapshotHead(bytes);
  if (!head.ok()) {
    if (!head.status().IsCorruption()) __builtin_trap();
  } else {
    const auto again = DecodeSnapshotHead(EncodeSnapshotHead(*head));
    if (!again.ok() || again->generation() != head->generation() ||
        again->chunks() != head->chunks() || again->bytes() != head->bytes() ||
        again->checksum() != head->checksum() || again->writer() != head->writer() ||
        again->attempt() != head->attempt()) {
      __builtin_trap();
    }
  }
  // The same bytes as a snapshot's body, under a head that matches them.
  tripline::v1::SnapshotHead h;
  h.set_generation(1);
  h.set_chunks(static_cast<uint32_t>(size / kSnapshotChunkBytes + 1));
  h.set_bytes(size);
  h.set_checksum(SnapshotChecksum(bytes));
  h.set_writer("fuzz");
  const auto s = DecodePartitionSnapshot(bytes, h, 3);
  if (!s.ok()) {
    if (!s.status().IsCorruption()) __builtin_trap();
    return 0;
  }
  if (s->partition() != 3) __builtin_trap();
  // Another size or checksum is refused.
  h.set_checksum(h.checksum() + 1);
  if (DecodePartitionSnapshot(bytes, h, 3).ok()) __builtin_trap();
  return 0;
}
