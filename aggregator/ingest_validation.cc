#include "aggregator/ingest_validation.h"

#include "model/event_proto.h"

namespace tripline {
namespace {

constexpr size_t kMaxHelloString = 256;

bool IsPrintableId(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

Result<SensorIdentity> ValidateHello(const v1::SensorHello& hello) {
  const std::string& id = hello.sensor_id();
  if (id.empty()) return Status::InvalidArgument("hello: sensor_id is empty");
  if (id.size() > kMaxSensorIdBytes) {
    return Status::InvalidArgument("hello: sensor_id longer than " +
                                   std::to_string(kMaxSensorIdBytes) + " bytes");
  }
  if (!IsPrintableId(id)) {
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

}  // namespace tripline
