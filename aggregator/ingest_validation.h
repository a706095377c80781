// Validation of ingest requests: the trust boundary between sensors and the store.
//
// Pure functions over the wire messages; no state, safe from any thread. Fuzzed by
// tests/aggregator/ingest_request_fuzz.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/event.h"
#include "tripline/v1/ingest.pb.h"

namespace tripline {

constexpr size_t kMaxSensorIdBytes = 128;
constexpr size_t kDefaultMaxBatchEvents = 4096;

struct SensorIdentity {
  std::string sensor_id;
  std::string host;
  std::string host_id;
  std::string version;
};

// A hello is valid when its sensor id is 1..128 printable ASCII bytes (0x21..0x7e: ids end
// up in store keys, logs and file names) and its other strings are bounded.
Result<SensorIdentity> ValidateHello(const v1::SensorHello& hello);

struct ValidatedBatch {
  uint64_t first_seq = 0;
  std::vector<Event> events;  // events[i].seq == first_seq + i
};

// A batch is valid when it names the stream's sensor, has 1 <= first_seq, at most
// `max_events` events whose sequence numbers do not overflow, and every event converts with
// FromProto. An event's own seq must be 0 (then first_seq + i is implied) or first_seq + i.
// The error names the first problem ("event 3 (seq 12): event has no body").
Result<ValidatedBatch> ValidateBatch(const v1::EventBatch& batch,
                                     const std::string& stream_sensor_id, size_t max_events);

}  // namespace tripline

namespace tripline {

// The encodings of a batch's events as they lie in an encoded IngestRequest, in order:
// after `request` parsed as an IngestRequest carrying a batch, the batch's event i was
// decoded from (*out)[i]. Returns false, and the caller must encode the events itself, when
// the request is anything but one or more `batch` fields (other top-level fields, groups,
// malformed varints); the count is not checked here, compare it with the parsed batch.
bool FindEventEncodings(std::string_view request, std::vector<std::string_view>* out);

}  // namespace tripline
