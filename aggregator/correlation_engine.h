// CorrelationEngine: the aggregator's link between durable events and incidents.
//
// It is the IngestObserver of the ingest service: every batch, once durable, is fed event
// by event to the Correlator; every incident the correlator raises or grows is written to
// the store's incidents column family before the batch is acknowledged, so an incident is
// visible to the query API as soon as the event that completed it is acknowledged.
//
// Restarts: the correlator's state is snapshotted (with the highest sequence number fed
// per sensor and the newest event time) into the sessions column family every
// `snapshot_interval_ns` and on shutdown. Open() restores the latest snapshot and replays
// the events stored after it (those with a higher sequence number than the snapshot's for
// their sensor, found by scanning events from `watermark - replay_margin_ns`), so an event
// made durable just before a crash is still correlated. An event whose own time is older
// than that margin and which arrived after the snapshot is not replayed (documented limit).
//
// Threading: OnDurable may be called from several ingest streams at once; one mutex
// serialises access to the correlator. Maintain() and Snapshot() take the same mutex.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "aggregator/correlate/correlator.h"
#include "aggregator/ingest_service.h"
#include "aggregator/store.h"
#include "common/clock.h"

namespace tripline {

struct CorrelationEngineOptions {
  correlate::CorrelatorOptions correlator;
  int64_t snapshot_interval_ns = 5 * kNanosPerSecond;
  int64_t replay_margin_ns = 3600 * kNanosPerSecond;
};

struct CorrelationEngineStats {
  uint64_t events_fed = 0;
  uint64_t incident_writes = 0;
  uint64_t incident_write_errors = 0;
  uint64_t snapshots = 0;
  uint64_t replayed = 0;
};

class CorrelationEngine final : public IngestObserver {
 public:
  // `store` is not owned and must outlive the engine.
  static Result<std::unique_ptr<CorrelationEngine>> Open(Store* store,
                                                         CorrelationEngineOptions options,
                                                         const Clock& clock);

  void OnDurable(std::string_view sensor_id, std::span<const Event> events) override;

  // Evicts expired correlator state and writes a snapshot when one is due and something
  // changed. Call about once a second.
  Status Maintain();
  // Writes a snapshot now (used on shutdown).
  Status Snapshot();

  CorrelationEngineStats stats() const;

 private:
  CorrelationEngine(Store* store, CorrelationEngineOptions options, const Clock& clock);
  Status Restore();
  // Requires mu_. Returns the incidents the event raised or changed.
  std::vector<Incident> FeedLocked(std::string_view sensor_id, const Event& event);
  void WriteLocked(const std::vector<Incident>& incidents);
  Status SnapshotLocked();

  Store* const store_;
  const CorrelationEngineOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  correlate::Correlator correlator_;           // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> positions_;  // GUARDED_BY(mu_): highest seq fed per sensor
  int64_t watermark_ns_ = 0;                   // GUARDED_BY(mu_): newest event time fed
  bool dirty_ = false;                         // GUARDED_BY(mu_)
  int64_t last_snapshot_mono_ns_ = 0;          // GUARDED_BY(mu_)
  CorrelationEngineStats stats_;               // GUARDED_BY(mu_)
};

}  // namespace tripline
