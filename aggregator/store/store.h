// Store: the aggregator's durable state (events, sensors' sequence numbers, incidents).
//
// One production implementation (RocksDbStore). The contract below is checked by the
// typed suite in tests/aggregator/store_contract_test.cc, which every implementation must
// pass, including across a close and reopen.
//
// Threading: every method may be called concurrently from any thread. Appends for one
// sensor are serialized inside the store, so two streams that claim the same sensor id
// cannot store an event twice.
//
// Errors: IO errors and corruption are returned as Status (kIoError / kCorruption) and
// logged by the implementation; nothing is silently skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "model/event.h"

namespace tripline {

// What AppendBatch did with a batch.
struct AppendResult {
  uint64_t durable_seq = 0;  // highest sequence number durable for the sensor afterwards
  uint64_t stored = 0;       // events written by this call
  uint64_t duplicates = 0;   // events at or below the previous durable_seq, dropped
  // A gap: first_seq was beyond durable_seq + 1. The missing range [gap_first, gap_last] is
  // recorded in the store and never filled later (those sequence numbers are below the new
  // durable_seq, so a late copy counts as a duplicate). 0/0 when there was no gap.
  uint64_t gap_first = 0;
  uint64_t gap_last = 0;
};

// Durable per-sensor bookkeeping, written in the same WriteBatch as the sensor's events.
struct SensorRecord {
  std::string sensor_id;
  std::string host;  // host of the sensor's latest stored event
  uint64_t durable_seq = 0;
  uint64_t events = 0;        // events stored for the sensor, ever (retention does not subtract)
  uint64_t missing = 0;       // sequence numbers skipped by gaps
  int64_t last_write_ns = 0;  // aggregator wall clock of the latest stored batch
  // From the sensor's latest SensorHealth event (totals as the sensor reports them).
  uint64_t ringbuf_drops = 0;
  uint64_t spool_drops = 0;
  uint64_t decode_errors = 0;
  uint64_t helper_errors = 0;
  int64_t health_time_ns = 0;              // time of that health event, 0 when none was seen
  std::vector<HookFamilyStatus> families;  // how its hook families run, from that event
};

struct EventQuery {
  std::string host{};               // exact host name; empty for any
  std::string user{};               // login user, process user or login uid's name
  std::optional<EventKind> kind{};  // nullopt for any
  int64_t since_ns = 0;             // inclusive; 0 for the beginning
  int64_t until_ns = 0;             // exclusive; 0 for no end
  size_t limit = 100;               // page size, clamped to [1, kMaxPageSize]
  std::string page_token{};         // from a previous EventPage; empty for the first page
};

struct StoredEvent {
  std::string sensor_id;
  Event event;
};

struct EventPage {
  std::vector<StoredEvent> events;  // ascending by (time, sensor, seq)
  std::string next_page_token;      // opaque, printable; empty when there is no more
};

struct StoreStats {
  uint64_t events_stored = 0;  // sum of SensorRecord::events
  uint64_t identities = 0;     // distinct user names ever indexed (exact)
  uint64_t sensors = 0;
  uint64_t incidents = 0;
  uint64_t duplicates_dropped = 0;  // since this Store was opened
  uint64_t gaps = 0;                // gaps recorded since this Store was opened
  // Bounds (RocksDbStoreOptions), since this Store was opened: batches of new sensors
  // refused, user names not indexed as identities.
  uint64_t sensors_refused = 0;
  uint64_t identities_untracked = 0;
  uint64_t incidents_evicted = 0;  // the oldest incidents evicted past the bound
};

// Where ingest writes: the part of a store the ingest service needs. Store is one (events
// in RocksDB); an ingest node of the scaled-out mode has another (cluster/stream_sink.h:
// events to a JetStream stream, sensors' records in its key-value store).
class IngestSink {
 public:
  virtual ~IngestSink() = default;

  // Stores `events`, whose i-th element has sequence number first_seq + i, atomically with
  // the sensor's new durable sequence number (one write batch). Events at or below the
  // current durable_seq are duplicates and dropped; a first_seq beyond durable_seq + 1 is a
  // gap, accepted and recorded. Precondition: first_seq >= 1, sensor_id validated
  // (non-empty, printable). On error nothing of the batch is stored.
  Result<AppendResult> AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                   const std::vector<Event>& events) {
    return AppendBatch(sensor_id, first_seq, events, {});
  }
  // The same, where encoded[i] is the tripline.v1.Event encoding that events[i] was decoded
  // from, as the sensor sent it (its seq 0 or its own): the store keeps those bytes instead
  // of encoding the events again. Empty to let the store encode; otherwise one per event.
  virtual Result<AppendResult> AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                           const std::vector<Event>& events,
                                           std::span<const std::string_view> encoded) = 0;

  // 0 for a sensor never seen.
  virtual Result<uint64_t> DurableSeq(std::string_view sensor_id) = 0;
  // The sensor's record; nullopt for a sensor with nothing stored.
  virtual Result<std::optional<SensorRecord>> GetSensor(std::string_view sensor_id) = 0;
};

class Store : public IngestSink {
 public:
  static constexpr size_t kMaxPageSize = 10000;

  using IngestSink::AppendBatch;
  virtual Result<std::vector<SensorRecord>> ListSensors() = 0;

  // A page of events matching every given filter, oldest first. Events older than the
  // retention window are never returned, even before compaction has removed them.
  virtual Result<EventPage> QueryEvents(const EventQuery& query) = 0;
  // Number of events matching the filters (ignores limit and page_token). Walks the range.
  virtual Result<uint64_t> CountEvents(const EventQuery& query) = 0;
  virtual Result<StoreStats> Stats() = 0;

  // The events of one sensor with sequence numbers above `after_seq`, in sequence order,
  // each with its seq set: at most `max_events` (at least one when there is any). Empty
  // when the sensor has nothing stored above after_seq.
  // Sequence numbers skipped by gaps, and events that retention removed, are absent.
  // This is how a reader that fell behind (the correlator) catches up from the store.
  virtual Result<std::vector<Event>> ReadSensorEvents(std::string_view sensor_id,
                                                      uint64_t after_seq, size_t max_events) = 0;

  // Incidents, stored as opaque bytes (the aggregator writes serialized tripline.v1.Incident)
  // under their id. Put replaces an incident of the same id: incidents grow.
  virtual Status PutIncident(std::string_view id, std::string_view bytes) = 0;
  // nullopt when there is no incident with that id.
  virtual Result<std::optional<std::string>> GetIncident(std::string_view id) = 0;
  // Every incident's bytes, in id order.
  virtual Result<std::vector<std::string>> ListIncidents() = 0;
  // Calls `visit` with each incident's bytes in id order, one at a time (nothing is
  // gathered), until it returns false. The bytes are valid during the call only.
  virtual Status ScanIncidents(const std::function<bool(std::string_view bytes)>& visit) = 0;

  // A secret of this store: 32 random bytes made at the first call and returned unchanged
  // ever after (kept with the data, so that incident ids made with it stay stable across
  // restarts). The correlator keys its incident ids with it.
  virtual Result<std::string> IncidentIdKey() = 0;

  // The correlator's state snapshot (sessions column family): one value, replaced whole.
  // GetCorrelatorSnapshot returns nullopt when none was ever written.
  virtual Status PutCorrelatorSnapshot(std::string_view bytes) = 0;
  virtual Result<std::optional<std::string>> GetCorrelatorSnapshot() = 0;

  // The correlator's snapshot together with the baseline records that agree with it
  // (baselines column family), in one write batch: a restart never finds one without the
  // other, so nothing is learned twice or skipped. A record with an empty value is deleted.
  virtual Status PutCorrelatorSnapshotWithBaselines(
      std::string_view bytes,
      const std::vector<std::pair<std::string, std::string>>& baselines) = 0;
  // Calls f(key, value) for every baseline record in key order; stops at f's first error
  // and returns it.
  virtual Status ForEachBaseline(
      const std::function<Status(std::string_view key, std::string_view value)>& f) = 0;
};

}  // namespace tripline
