#include "sensor/delivery/spool_format.h"

#include <charconv>
#include <cstdio>
#include <cstring>

#include "sensor/delivery/crc32c.h"

namespace tripline::delivery {
namespace {

void PutU32(uint32_t v, std::string* out) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}

void PutU64(uint64_t v, std::string* out) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// While searching for the next record after a corrupt stretch, a candidate whose seq is
// this far past the previous one is not worth checksumming: real gaps within one lane are
// far smaller, and random bytes rarely pass this test, which keeps the search linear.
constexpr uint64_t kMaxPlausibleSeqStep = uint64_t{1} << 32;

}  // namespace

std::string EncodeSegmentHeader(Lane lane) {
  std::string out(kSegmentMagic, sizeof(kSegmentMagic));
  PutU32(static_cast<uint32_t>(lane), &out);
  PutU32(MaskCrc(Crc32c(out.data(), out.size())), &out);
  return out;
}

void EncodeRecord(uint64_t seq, uint8_t kind, std::string_view payload, std::string* out) {
  const size_t start = out->size();
  PutU32(0, out);  // the checksum, filled in below once the covered bytes are in place
  PutU32(static_cast<uint32_t>(payload.size()), out);
  PutU64(seq, out);
  out->push_back(static_cast<char>(kind));
  out->append(payload);
  const uint32_t crc = MaskCrc(Crc32c(out->data() + start + 4, out->size() - start - 4));
  for (int i = 0; i < 4; ++i) (*out)[start + i] = static_cast<char>(crc >> (8 * i));
}

uint64_t RecordSizeAt(std::span<const uint8_t> bytes, uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < kRecordHeaderSize) return 0;
  return kRecordHeaderSize + GetU32(bytes.data() + offset + 4);
}

bool ParseRecordAt(std::span<const uint8_t> bytes, uint64_t offset, uint64_t prev_seq,
                   RecordView* out) {
  if (offset > bytes.size() || bytes.size() - offset < kRecordHeaderSize) return false;
  const uint8_t* p = bytes.data() + offset;
  const uint32_t length = GetU32(p + 4);
  const uint64_t seq = GetU64(p + 8);
  const uint8_t kind = p[16];
  if (length > kMaxRecordPayload) return false;
  if (bytes.size() - offset - kRecordHeaderSize < length) return false;
  if (kind >= kNumKinds || seq == 0 || seq <= prev_seq) return false;
  if (prev_seq != 0 && seq - prev_seq > kMaxPlausibleSeqStep) return false;
  const uint32_t expected = UnmaskCrc(GetU32(p));
  if (Crc32c(p + 4, kRecordHeaderSize - 4 + length) != expected) return false;
  out->seq = seq;
  out->kind = kind;
  out->payload = std::string_view(reinterpret_cast<const char*>(p + kRecordHeaderSize), length);
  out->offset = offset;
  out->size = kRecordHeaderSize + length;
  return true;
}

SegmentScan ScanSegment(std::span<const uint8_t> bytes,
                        const std::function<void(const RecordView&)>& on_record) {
  SegmentScan scan;
  const uint64_t size = bytes.size();
  if (size >= kSegmentHeaderSize &&
      std::memcmp(bytes.data(), kSegmentMagic, sizeof(kSegmentMagic)) == 0) {
    const uint32_t lane = GetU32(bytes.data() + 8);
    const uint32_t crc = UnmaskCrc(GetU32(bytes.data() + 12));
    scan.header_ok = lane < kNumLanes && Crc32c(bytes.data(), 12) == crc;
    scan.lane = static_cast<Lane>(lane);
  }
  if (!scan.header_ok) {
    // Nothing in the file can be trusted, not even which lane it belongs to.
    scan.corrupt_regions = size > 0 ? 1 : 0;
    scan.corrupt_bytes = size;
    return scan;
  }
  uint64_t offset = kSegmentHeaderSize;
  uint64_t prev_seq = 0;
  scan.valid_end = offset;
  RecordView rec;
  while (offset < size) {
    if (!ParseRecordAt(bytes, offset, prev_seq, &rec)) {
      uint64_t next = offset + 1;
      bool found = false;
      for (; next + kRecordHeaderSize <= size; ++next) {
        if (ParseRecordAt(bytes, next, prev_seq, &rec)) {
          found = true;
          break;
        }
      }
      if (!found) {
        scan.torn_tail_bytes = size - offset;
        break;
      }
      ++scan.corrupt_regions;
      scan.corrupt_bytes += next - offset;
      offset = next;
    }
    if (on_record) on_record(rec);
    if (scan.records == 0) scan.first_seq = rec.seq;
    scan.last_seq = rec.seq;
    ++scan.records;
    ++scan.records_by_kind[rec.kind];
    prev_seq = rec.seq;
    offset += rec.size;
    scan.valid_end = offset;
  }
  return scan;
}

std::string EncodeState(const SpoolState& state) {
  std::string out(kStateMagic, sizeof(kStateMagic));
  PutU64(state.acked_seq, &out);
  PutU64(state.next_seq, &out);
  PutU64(state.seq_lease, &out);
  PutU32(state.clean ? 1u : 0u, &out);
  PutU32(MaskCrc(Crc32c(out.data(), out.size())), &out);
  return out;
}

Result<SpoolState> DecodeState(std::span<const uint8_t> bytes) {
  if (bytes.size() != kStateSize) {
    return Status::Corruption("spool state has " + std::to_string(bytes.size()) +
                              " bytes, expected " + std::to_string(kStateSize));
  }
  if (std::memcmp(bytes.data(), kStateMagic, sizeof(kStateMagic)) != 0) {
    return Status::Corruption("spool state has a bad magic number");
  }
  if (Crc32c(bytes.data(), 36) != UnmaskCrc(GetU32(bytes.data() + 36))) {
    return Status::Corruption("spool state checksum mismatch");
  }
  SpoolState s;
  s.acked_seq = GetU64(bytes.data() + 8);
  s.next_seq = GetU64(bytes.data() + 16);
  s.seq_lease = GetU64(bytes.data() + 24);
  s.clean = (GetU32(bytes.data() + 32) & 1u) != 0;
  if (s.next_seq == 0 || s.seq_lease < s.next_seq) {
    return Status::Corruption("spool state is inconsistent (next_seq " +
                              std::to_string(s.next_seq) + ", lease " +
                              std::to_string(s.seq_lease) + ")");
  }
  return s;
}

std::string SegmentName(Lane lane, uint64_t first_seq) {
  char digits[21];
  std::snprintf(digits, sizeof(digits), "%020llu", static_cast<unsigned long long>(first_seq));
  return std::string(lane == Lane::kPriority ? "p-" : "b-") + digits + ".seg";
}

bool ParseSegmentName(std::string_view name, Lane* lane, uint64_t* first_seq) {
  if (name.size() != 2 + 20 + 4 || name[1] != '-' || name.substr(22) != ".seg") return false;
  if (name[0] == 'p') {
    *lane = Lane::kPriority;
  } else if (name[0] == 'b') {
    *lane = Lane::kBulk;
  } else {
    return false;
  }
  const char* begin = name.data() + 2;
  const char* end = begin + 20;
  for (const char* c = begin; c != end; ++c) {
    if (*c < '0' || *c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(begin, end, *first_seq);
  return ec == std::errc() && ptr == end;
}

}  // namespace tripline::delivery
