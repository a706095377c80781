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

// Whether `id` may be a sensor id: 1..128 printable ASCII bytes (0x21..0x7e).
bool ValidSensorId(std::string_view id);

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

// Event times outside [now - max_age_ns, now + max_future_ns] of the aggregator's clock
// are clamped to the nearer edge (max_age_ns 0: no lower edge). Returns how many were
// clamped. A time far in the future would otherwise keep an event from ever expiring and
// move correlation windows; clamping keeps the event (it is evidence) with a time the
// aggregator can stand behind.
// No lower edge by default: a sensor's spool and imported logs legitimately deliver events
// from long ago.
constexpr int64_t kDefaultMaxFutureSkewNs = int64_t{300} * 1'000'000'000;  // 5 min
constexpr int64_t kDefaultMaxEventAgeNs = 0;
uint64_t ClampEventTimes(std::vector<Event>* events, int64_t now_ns, int64_t max_future_ns,
                         int64_t max_age_ns);

// How many sequence numbers a sensor's next batch may skip past durable_seq + 1: a batch
// starting further out is refused (docs/security.md). A sequence number far ahead would
// make the aggregator drop the sensor's real events as duplicates and tell the sensor to
// forget its spool. A sensor skips numbers legitimately in two ways only: after a crash it
// resumes at its persisted lease (one lease step, 65536 by default), and while the
// aggregator is unreachable its spool evicts events it recorded meanwhile. So the rule is a
// fixed allowance plus kMaxSensorEventsPerSecond for every second of the aggregator's clock
// since the sensor's last stored batch (`last_write_ns`); a sensor that is refused and keeps
// retrying is accepted once enough time has passed. A sensor with nothing stored
// (durable_seq 0, e.g. an aggregator with a new data directory) may start below 2^48.
constexpr uint64_t kSeqJumpAllowance = uint64_t{1} << 20;
constexpr uint64_t kMaxSensorEventsPerSecond = 1'000'000;
constexpr uint64_t kMaxFirstSeq = uint64_t{1} << 48;
uint64_t MaxSequenceJump(uint64_t durable_seq, int64_t last_write_ns, int64_t now_ns);

}  // namespace tripline

namespace tripline {

// The encodings of a batch's events as they lie in an encoded IngestRequest, in order:
// after `request` parsed as an IngestRequest carrying a batch, the batch's event i was
// decoded from (*out)[i]. Returns false, and the caller must encode the events itself, when
// the request is anything but one or more `batch` fields (other top-level fields, groups,
// malformed varints); the count is not checked here, compare it with the parsed batch.
bool FindEventEncodings(std::string_view request, std::vector<std::string_view>* out);

// What an encoded IngestRequest carries, read from the wire without parsing it (no
// allocation): the number of events in its batches (counted up to max_events + 1), the
// batch's first_seq, and the number of fields at every depth, known or not, as the
// parser would create them (counted up to max_fields + 1; a packed field counts a field
// per byte). Parsing allocates per field: a 16 MiB request of empty events is 8 M events
// (hundreds of MB), and so is one event with 8 M empty argv strings; both are counted
// first. `walked` is false when the bytes are not a plain protobuf encoding the walk can
// follow (malformed, groups, nesting past 32): the request must then be refused unparsed,
// since the parser might accept what was not counted.
struct WireRequestShape {
  bool walked = false;
  uint64_t events = 0;
  uint64_t first_seq = 0;
  uint64_t fields = 0;
};
WireRequestShape InspectIngestRequest(std::string_view request, size_t max_events,
                                      uint64_t max_fields);
// The field budget for batches of up to `max_events` events: 64 fields per event (an exec
// event with 16 arguments has about 40), at least 65536 (a posture snapshot of a host with
// thousands of accounts).
uint64_t MaxRequestFields(size_t max_events);

}  // namespace tripline
