#include "aggregator/cluster/partition_snapshot.h"

#include <algorithm>
#include <vector>

#include "aggregator/cluster/lease.h"
#include "common/fnv.h"

namespace tripline::cluster {
namespace {

// A head read while its writer replaces the chunks: read again this many times.
constexpr int kLoadRounds = 5;
constexpr uint32_t kMaxChunks = 64 * 1024;  // 16 GiB of state: far past any partition
// How long a snapshot's chunks may take to be acknowledged, republished as need be.
constexpr int64_t kChunksDeadlineMs = 10'000;

Status Bad(std::string_view what) {
  return Status::Corruption("partition snapshot: " + std::string(what));
}

std::string HeadKey(uint32_t partition) { return "snap." + std::to_string(partition); }

// Chunks carry the writer and its save: two workers writing over the same version, or one
// worker trying a save again, never share a key.
std::string ChunkKey(uint32_t partition, const v1::SnapshotHead& head, uint32_t i) {
  std::string key = "snap." + std::to_string(partition) + "." + std::to_string(head.generation()) +
                    "." + head.writer() + ".";
  if (head.attempt() != 0) key += "a" + std::to_string(head.attempt()) + ".";
  return key + std::to_string(i);
}

}  // namespace

uint64_t SnapshotChecksum(std::string_view bytes) { return Fnv1a64(bytes); }

std::string EncodeSnapshotHead(const v1::SnapshotHead& head) { return head.SerializeAsString(); }

Result<v1::SnapshotHead> DecodeSnapshotHead(std::string_view bytes) {
  v1::SnapshotHead head;
  if (!head.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Bad("the head is not a tripline.v1.SnapshotHead");
  }
  if (head.generation() == 0) return Bad("the head has no generation");
  if (!ValidLeaseName(head.writer())) return Bad("the head's writer is not a valid name");
  if (head.chunks() == 0 || head.chunks() > kMaxChunks) {
    return Bad("the head names " + std::to_string(head.chunks()) + " chunks");
  }
  const uint64_t expected_chunks =
      std::max<uint64_t>(1, (head.bytes() + kSnapshotChunkBytes - 1) / kSnapshotChunkBytes);
  if (head.bytes() > uint64_t{kMaxChunks} * kSnapshotChunkBytes ||
      expected_chunks != head.chunks()) {
    return Bad("the head's size does not fit its chunk count");
  }
  return head;
}

Result<v1::PartitionSnapshot> DecodePartitionSnapshot(std::string_view bytes,
                                                      const v1::SnapshotHead& head,
                                                      uint32_t partition) {
  if (bytes.size() != head.bytes()) {
    return Bad(std::to_string(bytes.size()) + " bytes where the head says " +
               std::to_string(head.bytes()));
  }
  if (SnapshotChecksum(bytes) != head.checksum()) return Bad("checksum differs from the head's");
  v1::PartitionSnapshot s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Bad("not a tripline.v1.PartitionSnapshot");
  }
  if (s.partition() != partition) {
    return Bad("of partition " + std::to_string(s.partition()) + ", not " +
               std::to_string(partition));
  }
  for (const auto& [sensor, seq] : s.positions()) {
    if (sensor.empty() || seq == 0) return Bad("a sensor's position is empty");
  }
  return s;
}

SnapshotStore::SnapshotStore(KeyValue* kv, std::string writer, JetStream* js)
    : kv_(kv), writer_(std::move(writer)), js_(js) {}

Result<LoadedSnapshot> SnapshotStore::Load(uint32_t partition) {
  const std::string head_key = HeadKey(partition);
  for (int round = 0;; ++round) {
    TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> entry, kv_->Get(head_key));
    LoadedSnapshot out;
    if (!entry.has_value()) return out;
    TL_ASSIGN_OR_RETURN(const v1::SnapshotHead head, DecodeSnapshotHead(entry->value));
    out.version = {entry->revision, head.generation()};
    std::string bytes;
    bytes.reserve(head.bytes());
    bool missing = false;
    for (uint32_t i = 0; i < head.chunks() && !missing; ++i) {
      TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> chunk,
                          kv_->Get(ChunkKey(partition, head, i)));
      if (!chunk.has_value()) {
        missing = true;
      } else {
        bytes += chunk->value;
      }
    }
    if (missing) {
      // A newer snapshot replaced this one between the reads: read its head.
      if (round + 1 < kLoadRounds) continue;
      return Bad("chunks of partition " + std::to_string(partition) + " generation " +
                 std::to_string(head.generation()) + " are missing");
    }
    TL_ASSIGN_OR_RETURN(v1::PartitionSnapshot s, DecodePartitionSnapshot(bytes, head, partition));
    out.snapshot = std::move(s);
    return out;
  }
}

Result<SnapshotVersion> SnapshotStore::Save(const v1::PartitionSnapshot& snapshot,
                                            SnapshotVersion over) {
  auto saved = SaveOver(snapshot, over);
  if (saved.ok() || saved.status().code() != Status::Code::kAborted) return saved;
  // The head moved past `over`. When this writer moved it (an earlier save whose answer was
  // lost, or tried again after it), the partition is still this writer's: save over it.
  auto entry = kv_->Get(HeadKey(snapshot.partition()));
  if (!entry.ok() || !entry->has_value()) return saved;
  const auto head = DecodeSnapshotHead((*entry)->value);
  if (!head.ok() || head->writer() != writer_) return saved;
  return SaveOver(snapshot, SnapshotVersion{(*entry)->revision, head->generation()});
}

Result<SnapshotVersion> SnapshotStore::SaveOver(const v1::PartitionSnapshot& snapshot,
                                                SnapshotVersion over) {
  const uint32_t partition = snapshot.partition();
  const std::string bytes = snapshot.SerializeAsString();
  v1::SnapshotHead head;
  head.set_generation(over.generation + 1);
  head.set_chunks(static_cast<uint32_t>(
      std::max<size_t>(1, (bytes.size() + kSnapshotChunkBytes - 1) / kSnapshotChunkBytes)));
  head.set_bytes(bytes.size());
  head.set_checksum(SnapshotChecksum(bytes));
  head.set_writer(writer_);
  head.set_attempt(++saves_);
  const auto drop_chunks = [&](const v1::SnapshotHead& of) {
    for (uint32_t i = 0; i < of.chunks(); ++i) {
      // Best effort: a chunk left behind is never read (no head names it).
      (void)kv_->Delete(ChunkKey(partition, of, i));
    }
  };
  std::vector<Outgoing> chunks;
  for (uint32_t i = 0; i < head.chunks(); ++i) {
    const size_t at = static_cast<size_t>(i) * kSnapshotChunkBytes;
    const std::string key = ChunkKey(partition, head, i);
    const std::string_view part = std::string_view(bytes).substr(at, kSnapshotChunkBytes);
    if (js_ == nullptr) {
      TL_RETURN_IF_ERROR(kv_->Put(key, part).status());
    } else {
      // The message id is new for every attempt: a chunk of an attempt whose head did not
      // land may have been deleted, and a retry with the same id within the bucket's
      // duplicate window would be dropped as a repeat, leaving the new head without it.
      chunks.push_back(
          {kv_->Subject(key), key + "#" + std::to_string(++attempts_), std::string(part)});
    }
  }
  if (!chunks.empty()) TL_RETURN_IF_ERROR(js_->PublishAll(chunks, kChunksDeadlineMs));
  // The previous generation's chunk count, to delete them once the head moved.
  std::optional<v1::SnapshotHead> previous;
  if (over.revision != 0) {
    auto entry = kv_->Get(HeadKey(partition));
    if (entry.ok() && entry->has_value() && (*entry)->revision == over.revision) {
      auto h = DecodeSnapshotHead((*entry)->value);
      if (h.ok()) previous = *std::move(h);
    }
  }
  const std::string value = EncodeSnapshotHead(head);
  const Result<uint64_t> written = over.revision == 0
                                       ? kv_->Create(HeadKey(partition), value)
                                       : kv_->Update(HeadKey(partition), value, over.revision);
  if (!written.ok()) {
    const Status::Code code = written.status().code();
    if (code == Status::Code::kAborted || code == Status::Code::kAlreadyExists) {
      drop_chunks(head);  // no head names them: they are this save's alone
      return Status::Aborted("partition " + std::to_string(partition) +
                             ": another worker wrote a snapshot first");
    }
    // Unknown whether the head landed (a lost acknowledgement): its chunks stay.
    return written.status();
  }
  if (previous) drop_chunks(*previous);
  return SnapshotVersion{*written, head.generation()};
}

}  // namespace tripline::cluster
