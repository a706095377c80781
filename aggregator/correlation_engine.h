// CorrelationEngine: the aggregator's link between durable events and incidents.
//
// It is the IngestObserver of the ingest service. Durable batches are handed over through a
// bounded queue to one correlator thread, which feeds them event by event to the Correlator
// and writes every incident it raises or grows to the store's incidents column family. The
// ingest stream acknowledges a batch as soon as it is durable and queued; correlation runs
// beside the next batches instead of in front of their acks. An incident is therefore
// visible shortly after the ack of the event that completed it: the queue's wait, normally
// well under a millisecond, and at most the time to drain a full queue (see
// `max_queued_events`). Drain() waits for everything queued so far.
//
// Back-pressure: when `max_queued_events` events are waiting, OnDurable blocks until the
// correlator thread has taken them, so a slow correlator still slows the sensors down
// through gRPC flow control, as the store does, and memory stays bounded.
//
// Restarts: the correlator's state is snapshotted (with the highest sequence number fed
// per sensor and the newest event time) into the sessions column family by Maintain() and
// on shutdown. Open() restores the latest snapshot and replays the events stored after it
// (those with a higher sequence number than the snapshot's for their sensor, found by
// scanning events from `watermark - replay_margin_ns`). Positions advance only when an
// event has been fed, so an event acknowledged but still queued when the process died is
// replayed too. An event whose own time is older than that margin and which arrived after
// the snapshot is not replayed (documented limit).
//
// Snapshot cost grows with the correlator's state (a fleet's worth of sessions and chains
// is tens of megabytes), while the replay it saves grows with the events since the last
// one. So a snapshot is written when one is due by `snapshot_interval_ns` *and* at least
// `snapshot_cost_factor` times as long as the previous snapshot took has passed: snapshots
// then use at most 1/snapshot_cost_factor of the correlator thread whatever the state size,
// and a restart replays at most about that many snapshot-durations of ingest.
//
// Threading: OnDurable may be called from several ingest streams at once. The correlator
// and its bookkeeping are guarded by one mutex, taken by the correlator thread for each
// hand-over and by Maintain(), Snapshot() and stats(). The destructor drains the queue and
// joins the thread; the store must outlive the engine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "aggregator/correlate/correlator.h"
#include "aggregator/ingest_service.h"
#include "aggregator/store.h"
#include "common/clock.h"

namespace tripline {

struct CorrelationEngineOptions {
  correlate::CorrelatorOptions correlator;
  int64_t snapshot_interval_ns = 5 * kNanosPerSecond;
  // The next snapshot waits at least this many times as long as the last one took.
  int64_t snapshot_cost_factor = 20;
  int64_t replay_margin_ns = 3600 * kNanosPerSecond;
  // Events waiting for the correlator thread before OnDurable blocks. 64k events are
  // about 0.2 s of correlation at the measured ~3 us per event.
  size_t max_queued_events = 65536;
};

struct CorrelationEngineStats {
  uint64_t events_fed = 0;
  uint64_t incident_writes = 0;
  uint64_t incident_write_errors = 0;
  uint64_t snapshots = 0;
  uint64_t replayed = 0;
  int64_t last_snapshot_cost_ns = 0;  // monotonic time the latest snapshot took
  uint64_t last_snapshot_bytes = 0;
};

class CorrelationEngine final : public IngestObserver {
 public:
  // Restores the latest snapshot, replays what was stored after it and starts the
  // correlator thread. `store` is not owned and must outlive the engine.
  static Result<std::unique_ptr<CorrelationEngine>> Open(Store* store,
                                                         CorrelationEngineOptions options,
                                                         const Clock& clock);
  // Drains the queue, then stops the correlator thread. Takes no snapshot.
  ~CorrelationEngine() override;
  CorrelationEngine(const CorrelationEngine&) = delete;
  CorrelationEngine& operator=(const CorrelationEngine&) = delete;

  // Queues the batch for the correlator thread; blocks while the queue is full.
  void OnDurable(std::string_view sensor_id, std::vector<Event> events) override;

  // Returns once every batch queued before the call has been fed and its incidents written.
  void Drain();

  // Evicts expired correlator state and writes a snapshot when one is due and something
  // changed. Call about once a second.
  Status Maintain();
  // Drains the queue and writes a snapshot now (used on shutdown).
  Status Snapshot();

  CorrelationEngineStats stats() const;

 private:
  struct Batch {
    std::string sensor_id;
    std::vector<Event> events;
  };

  CorrelationEngine(Store* store, CorrelationEngineOptions options, const Clock& clock);
  Status Restore();
  void Run();
  // Requires mu_. Feeds the batches in order and writes each changed incident once.
  void FeedBatchesLocked(const std::deque<Batch>& batches);
  // Requires mu_. Returns the incidents the event raised or changed.
  // `position` is the sensor's entry in positions_.
  std::vector<Incident> FeedLocked(std::string_view sensor_id, const Event& event,
                                   uint64_t* position);
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

  std::mutex queue_mu_;
  std::condition_variable work_cv_;   // batches queued, or stopping
  std::condition_variable space_cv_;  // the correlator thread took batches
  std::deque<Batch> queue_;           // GUARDED_BY(queue_mu_)
  size_t queued_events_ = 0;          // GUARDED_BY(queue_mu_)
  uint64_t batches_queued_ = 0;       // GUARDED_BY(queue_mu_): ever
  uint64_t batches_done_ = 0;         // GUARDED_BY(queue_mu_): ever
  bool stopping_ = false;             // GUARDED_BY(queue_mu_)
  std::thread thread_;
};

}  // namespace tripline
