// Partition snapshots: a worker's correlation state of one partition, kept in the cluster
// so that whichever worker holds the partition next goes on from it (docs/scale-out.md).
//
// A snapshot is a tripline.v1.PartitionSnapshot (the stream position fed through, the
// sensors' positions, the correlator's state and the learned baselines), written to the
// key-value bucket tl-snapshots in chunks ("snap.<p>.<generation>.<writer>.<i>", 256 KiB
// each: a value must fit a NATS message) under a head ("snap.<p>": generation, chunk count, size,
// FNV-1a checksum). The chunks are written first, then the head by compare-and-set on the
// revision the writer last read or wrote: a worker that lost the partition cannot replace
// its successor's snapshot, and a reader never sees a head whose chunks are not all there.
// The previous generation's chunks are deleted after the head moved.
//
// Threading: one SnapshotStore per worker thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "aggregator/cluster/jetstream.h"
#include "common/status.h"
#include "tripline/v1/cluster.pb.h"

namespace tripline::cluster {

inline constexpr const char* kSnapshotsBucket = "tl-snapshots";
inline constexpr size_t kSnapshotChunkBytes = 256 * 1024;

// What the head of a partition's snapshot was when read or written: the compare-and-set
// token of the next write. revision 0: no snapshot yet.
struct SnapshotVersion {
  uint64_t revision = 0;
  uint64_t generation = 0;
};

struct LoadedSnapshot {
  std::optional<v1::PartitionSnapshot> snapshot;  // nullopt: none written yet
  SnapshotVersion version;
};

// The head's bytes and back: Corruption naming what is wrong for anything EncodeSnapshotHead
// does not write.
std::string EncodeSnapshotHead(const v1::SnapshotHead& head);
Result<v1::SnapshotHead> DecodeSnapshotHead(std::string_view bytes);
// A snapshot's bytes (the joined chunks) checked against its head and parsed: Corruption
// when the size or checksum differ, it does not parse, or it is another partition's.
Result<v1::PartitionSnapshot> DecodePartitionSnapshot(std::string_view bytes,
                                                      const v1::SnapshotHead& head,
                                                      uint32_t partition);
uint64_t SnapshotChecksum(std::string_view bytes);

class SnapshotStore {
 public:
  // `kv` (bucket tl-snapshots) is not owned and must outlive the store. `writer` is the
  // worker's lease owner name, unique to this run of it (lease.h's ValidLeaseName). With
  // `js` (not owned) a snapshot's chunks are published all at once and acknowledged
  // together; without it, one Put after another.
  SnapshotStore(KeyValue* kv, std::string writer, JetStream* js = nullptr);

  // The partition's latest snapshot and the version to write the next one over.
  Result<LoadedSnapshot> Load(uint32_t partition);
  // Writes `snapshot` if the head is still at `over`, or over this writer's own later head
  // (a save whose outcome it was not told); Aborted when another worker wrote one since
  // (this worker no longer owns the partition). The new version.
  Result<SnapshotVersion> Save(const v1::PartitionSnapshot& snapshot, SnapshotVersion over);

 private:
  KeyValue* kv_;
  std::string writer_;
  JetStream* js_;
  Result<SnapshotVersion> SaveOver(const v1::PartitionSnapshot& snapshot, SnapshotVersion over);

  uint64_t attempts_ = 0;  // chunks published, for their message ids
  uint64_t saves_ = 0;     // saves begun, for their chunks' keys
};

}  // namespace tripline::cluster
