// The spool's on-disk format: pure encoding and scanning, no I/O.
//
// Directory (SpoolOptions::dir):
//   sensor_id                 32 lowercase hex digits and "\n" (see sensor_id.h)
//   state                     the spool state (below), replaced atomically: state.tmp is
//                             written, fdatasync'ed and renamed over state
//   p-<first seq, 20 digits>.seg   a segment of the priority lane (login, net, health)
//   b-<first seq, 20 digits>.seg   a segment of the bulk lane (file_open, exec, posture)
//
// Segment := SegmentHeader Record*
//   SegmentHeader, 16 bytes: "TLSPOOL1" | u32 lane (0 priority, 1 bulk)
//                            | u32 masked CRC-32C of the 12 bytes before it
//   Record, 17 + length bytes:
//     u32 masked CRC-32C of bytes [4, 17 + length) of the record
//     u32 length of the payload (at most kMaxRecordPayload)
//     u64 seq, strictly increasing within a segment
//     u8  kind (tripline::EventKind)
//     payload: a serialized tripline.v1.Event whose seq field is unset; the frame's seq is
//              the event's sequence number
//   Segments are append-only; a segment is never reopened for writing after the process
//   that wrote it stops, so only the last record of a segment can be torn by a crash.
//
// State, 40 bytes: "TLSTATE1" | u64 acked_seq | u64 next_seq | u64 seq_lease
//                  | u32 flags (bit 0: clean shutdown) | u32 masked CRC-32C of bytes [0, 36)
//
// All integers are little-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tripline::delivery {

constexpr char kSegmentMagic[8] = {'T', 'L', 'S', 'P', 'O', 'O', 'L', '1'};
constexpr char kStateMagic[8] = {'T', 'L', 'S', 'T', 'A', 'T', 'E', '1'};
constexpr size_t kSegmentHeaderSize = 16;
constexpr size_t kRecordHeaderSize = 17;
constexpr size_t kStateSize = 40;
// A posture snapshot of a large host is the biggest event; 16 MiB bounds what a corrupt
// length field can make a reader allocate or checksum.
constexpr uint32_t kMaxRecordPayload = 16u << 20;
// EventKind values 0..5.
constexpr size_t kNumKinds = 6;

enum class Lane : uint32_t { kPriority = 0, kBulk = 1 };
constexpr size_t kNumLanes = 2;

// One record, pointing into the scanned buffer.
struct RecordView {
  uint64_t seq = 0;
  uint8_t kind = 0;
  std::string_view payload;
  uint64_t offset = 0;  // of the record's first byte in the segment
  uint64_t size = 0;    // kRecordHeaderSize + payload.size()
};

// What ScanSegment found in a segment's bytes.
struct SegmentScan {
  bool header_ok = false;
  Lane lane = Lane::kPriority;
  // Offset just past the last record that is followed by nothing valid: the size the file
  // should be truncated to. kSegmentHeaderSize when there is no valid record.
  uint64_t valid_end = 0;
  uint64_t records = 0;
  uint64_t first_seq = 0;  // 0 when there is no valid record
  uint64_t last_seq = 0;
  // Bytes after valid_end: a record the writer did not finish (crash) or a corrupt last
  // record; the two cannot be told apart and both are cut off.
  uint64_t torn_tail_bytes = 0;
  // Invalid stretches followed by a valid record (bit rot, not a crash): skipped, counted.
  uint64_t corrupt_regions = 0;
  uint64_t corrupt_bytes = 0;
  std::array<uint64_t, kNumKinds> records_by_kind{};
};

std::string EncodeSegmentHeader(Lane lane);
// Appends the framed record to *out.
void EncodeRecord(uint64_t seq, uint8_t kind, std::string_view payload, std::string* out);

// The size the record at `offset` claims (header plus payload length), or 0 when not even
// its header is within `bytes`. Lets a reader that reads in chunks know how much to fetch.
uint64_t RecordSizeAt(std::span<const uint8_t> bytes, uint64_t offset);

// Parses the record at `offset`. `prev_seq` is the seq of the record before it (0 for
// none): a record must have a larger one. False when there is no valid record there.
bool ParseRecordAt(std::span<const uint8_t> bytes, uint64_t offset, uint64_t prev_seq,
                   RecordView* out);

// Scans a whole segment (treated as untrusted input: any bytes are accepted and never read
// out of bounds). Calls on_record, when given, for every valid record in order. After an
// invalid record it searches forward for the next valid one; a corrupt stretch followed by
// valid records is counted in corrupt_*, one reaching the end of the data is a torn tail.
SegmentScan ScanSegment(std::span<const uint8_t> bytes,
                        const std::function<void(const RecordView&)>& on_record = nullptr);

struct SpoolState {
  uint64_t acked_seq = 0;  // highest seq the aggregator has made durable
  uint64_t next_seq = 1;   // next seq to assign; exact only when clean is true
  uint64_t seq_lease = 1;  // no seq at or above it has been handed out
  bool clean = false;      // written by Close(): next_seq is exact
};

std::string EncodeState(const SpoolState& state);
Result<SpoolState> DecodeState(std::span<const uint8_t> bytes);

// "p-00000000000000000042.seg"; ParseSegmentName is its inverse (false for other names).
std::string SegmentName(Lane lane, uint64_t first_seq);
bool ParseSegmentName(std::string_view name, Lane* lane, uint64_t* first_seq);

}  // namespace tripline::delivery
