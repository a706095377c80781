#include "aggregator/ingest/ingest_validation.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>

#include "model/event_proto.h"

namespace tripline {
namespace {

constexpr size_t kMaxHelloString = 256;

}  // namespace

bool ValidSensorId(std::string_view id) {
  if (id.empty() || id.size() > kMaxSensorIdBytes) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Result<SensorIdentity> ValidateHello(const v1::SensorHello& hello) {
  const std::string& id = hello.sensor_id();
  if (id.empty()) return Status::InvalidArgument("hello: sensor_id is empty");
  if (id.size() > kMaxSensorIdBytes) {
    return Status::InvalidArgument("hello: sensor_id longer than " +
                                   std::to_string(kMaxSensorIdBytes) + " bytes");
  }
  if (!ValidSensorId(id)) {
    return Status::InvalidArgument("hello: sensor_id must be printable ASCII without spaces");
  }
  for (const auto* s : {&hello.host(), &hello.host_id(), &hello.version()}) {
    if (s->size() > kMaxHelloString) {
      return Status::InvalidArgument("hello: host, host_id or version longer than " +
                                     std::to_string(kMaxHelloString) + " bytes");
    }
  }
  return SensorIdentity{id, hello.host(), hello.host_id(), hello.version()};
}

Result<ValidatedBatch> ValidateBatch(const v1::EventBatch& batch,
                                     const std::string& stream_sensor_id, size_t max_events) {
  if (batch.sensor_id() != stream_sensor_id) {
    return Status::InvalidArgument("batch sensor_id does not match the stream's hello");
  }
  if (batch.first_seq() == 0) return Status::InvalidArgument("batch first_seq must be >= 1");
  const size_t n = static_cast<size_t>(batch.events_size());
  if (n > max_events) {
    return Status::InvalidArgument("batch has " + std::to_string(n) + " events, more than " +
                                   std::to_string(max_events));
  }
  if (n > 0 && batch.first_seq() > UINT64_MAX - (n - 1)) {
    return Status::InvalidArgument("batch sequence numbers overflow");
  }
  ValidatedBatch out;
  out.first_seq = batch.first_seq();
  out.events.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t seq = batch.first_seq() + i;
    const auto where = [&] {
      return "event " + std::to_string(i) + " (seq " + std::to_string(seq) + "): ";
    };
    const v1::Event& wire = batch.events(static_cast<int>(i));
    if (wire.seq() != 0 && wire.seq() != seq) {
      return Status::InvalidArgument(where() + "carries seq " + std::to_string(wire.seq()));
    }
    auto event = FromProto(wire);
    if (!event.ok()) return Status::InvalidArgument(where() + event.status().message());
    out.events.push_back(std::move(event).value());
    out.events.back().seq = seq;
  }
  return out;
}

uint64_t ClampEventTimes(std::vector<Event>* events, int64_t now_ns, int64_t max_future_ns,
                         int64_t max_age_ns) {
  const int64_t latest = now_ns > INT64_MAX - max_future_ns ? INT64_MAX : now_ns + max_future_ns;
  const int64_t earliest = max_age_ns > 0 && now_ns > max_age_ns ? now_ns - max_age_ns : 0;
  uint64_t clamped = 0;
  for (Event& e : *events) {
    if (e.time_ns > latest) {
      e.time_ns = latest;
      ++clamped;
    } else if (e.time_ns < earliest) {
      e.time_ns = earliest;
      ++clamped;
    }
  }
  return clamped;
}

uint64_t MaxSequenceJump(uint64_t durable_seq, int64_t last_write_ns, int64_t now_ns) {
  if (durable_seq == 0) return kMaxFirstSeq;
  const int64_t elapsed_s = now_ns > last_write_ns ? (now_ns - last_write_ns) / 1'000'000'000 : 0;
  // Saturating: elapsed_s < 2^34 for any int64 difference, times 10^6 < 2^54.
  return kSeqJumpAllowance + static_cast<uint64_t>(elapsed_s) * kMaxSensorEventsPerSecond;
}

}  // namespace tripline

namespace tripline {
namespace {

// Protobuf wire format: a tag is a varint of (field << 3 | wire type).
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5;

bool ReadVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Reads one field: its number and wire type, and for a length-delimited one its bytes.
bool ReadField(std::string_view* in, uint64_t* field, uint32_t* type, std::string_view* bytes) {
  uint64_t tag = 0, v = 0;
  if (!ReadVarint(in, &tag)) return false;
  *field = tag >> 3;
  *type = static_cast<uint32_t>(tag & 7);
  switch (*type) {
    case kVarint: return ReadVarint(in, &v);
    case kFixed64:
      if (in->size() < 8) return false;
      in->remove_prefix(8);
      return true;
    case kFixed32:
      if (in->size() < 4) return false;
      in->remove_prefix(4);
      return true;
    case kLen:
      if (!ReadVarint(in, &v) || v > in->size()) return false;
      *bytes = in->substr(0, v);
      in->remove_prefix(v);
      return true;
    default: return false;  // groups: never ours
  }
}

}  // namespace

bool FindEventEncodings(std::string_view request, std::vector<std::string_view>* out) {
  out->clear();
  constexpr uint64_t kBatchField = 2;   // IngestRequest.batch
  constexpr uint64_t kEventsField = 3;  // EventBatch.events
  while (!request.empty()) {
    uint64_t field = 0;
    uint32_t type = 0;
    std::string_view batch;
    if (!ReadField(&request, &field, &type, &batch)) return false;
    // A `batch` of another wire type would be an unknown field to the parser; anything
    // but batches (a hello clears the oneof) is not the simple case this serves.
    if (field != kBatchField || type != kLen) return false;
    // Batches that repeat are merged by the parser: their events append in order.
    while (!batch.empty()) {
      std::string_view event;
      if (!ReadField(&batch, &field, &type, &event)) return false;
      if (field == kEventsField && type == kLen) out->push_back(event);
    }
  }
  return true;
}

namespace {

constexpr int kMaxWalkDepth = 32;
constexpr uint64_t kMaxFieldNumber = (uint64_t{1} << 29) - 1;

// Counts into *fields every field of `bytes` read as `type` (nullptr: unknown, not
// descended into), descending into message fields. False when the walk cannot follow the
// bytes. Stops early (true) once *fields passes `budget`.
bool CountFields(std::string_view bytes, const google::protobuf::Descriptor* type, int depth,
                 uint64_t budget, uint64_t* fields) {
  if (depth > kMaxWalkDepth) return false;
  while (!bytes.empty()) {
    uint64_t field = 0;
    uint32_t wire = 0;
    std::string_view body;
    if (!ReadField(&bytes, &field, &wire, &body) || field == 0 || field > kMaxFieldNumber) {
      return false;
    }
    if (++*fields > budget) return true;
    if (wire != kLen || type == nullptr) continue;
    const google::protobuf::FieldDescriptor* fd = type->FindFieldByNumber(static_cast<int>(field));
    if (fd == nullptr) continue;
    if (fd->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      if (!CountFields(body, fd->message_type(), depth + 1, budget, fields)) return false;
    } else if (fd->is_packable()) {
      *fields += body.size();  // at least one byte per element
    }
    if (*fields > budget) return true;
  }
  return true;
}

}  // namespace

uint64_t MaxRequestFields(size_t max_events) {
  return std::max<uint64_t>(uint64_t{64} * max_events, 65536);
}

WireRequestShape InspectIngestRequest(std::string_view request, size_t max_events,
                                      uint64_t max_fields) {
  WireRequestShape shape;
  if (!CountFields(request, v1::IngestRequest::descriptor(), 0, max_fields, &shape.fields)) {
    return shape;
  }
  shape.walked = true;
  constexpr uint64_t kBatchField = 2;     // IngestRequest.batch
  constexpr uint64_t kFirstSeqField = 2;  // EventBatch.first_seq
  constexpr uint64_t kEventsField = 3;    // EventBatch.events
  while (!request.empty()) {
    uint64_t field = 0;
    uint32_t type = 0;
    std::string_view batch;
    if (!ReadField(&request, &field, &type, &batch)) return shape;
    if (field != kBatchField || type != kLen) continue;
    while (!batch.empty()) {
      std::string_view value;
      const std::string_view at = batch;
      if (!ReadField(&batch, &field, &type, &value)) return shape;
      if (field == kEventsField && type == kLen && ++shape.events > max_events) return shape;
      if (field == kFirstSeqField && type == kVarint) {
        std::string_view v = at;
        uint64_t tag = 0;
        if (ReadVarint(&v, &tag) && ReadVarint(&v, &shape.first_seq)) continue;
      }
    }
  }
  return shape;
}

}  // namespace tripline
