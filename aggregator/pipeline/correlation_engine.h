// CorrelationEngine: the aggregator's link between durable events and incidents.
//
// It is the IngestObserver of the ingest service. Durable batches are handed over through a
// bounded memory queue to one correlator thread, which feeds them event by event to the
// Correlator and writes every incident it raises or grows to the store's incidents column
// family. The ingest stream acknowledges a batch as soon as it is durable and handed over;
// correlation runs beside the next batches instead of in front of their acks. An incident
// is therefore visible shortly after the ack of the event that completed it: the queue's
// wait, normally well under a millisecond. Drain() waits for everything handed over so far.
//
// Falling behind: correlation costs several times what storing an event does, so a burst
// can outrun it. When `max_queued_events` events are waiting, the engine does not block
// ingest (which would push the burst back into the sensors' bounded spools) and does not
// queue more: it marks itself behind and drops further hand-overs, and the correlator
// thread, once the queue is empty, reads every sensor's events above the position it has
// fed back from the store (Store::ReadSensorEvents) in sequence order, chunk by
// chunk, until no sensor has stored more than was fed. The switch back to the queue
// happens under the queue lock after a last check of every sensor's durable sequence, so
// no batch falls between the two paths; a batch stored before that check but handed over
// after it was read back already, and its events are skipped by sequence number. Memory stays
// bounded by the queue and one chunk; nothing stored is skipped; detection is delayed by the
// backlog, which stats report.
//
// Restarts: the correlator's state is snapshotted (with the highest sequence number fed
// per sensor and the newest event time) into the sessions column family by Maintain() and
// on shutdown. Open() restores the latest snapshot and feeds each sensor's events stored
// after its position from the store. Events whose own time is more than
// `replay_margin_ns` before the snapshot's newest event are skipped in that replay (they
// are older than any window the correlator keeps). Without a snapshot, or with one from a
// version whose positions were not exact, the events of the last `replay_margin_ns` are
// replayed by time instead.
//
// Snapshot cost grows with the correlator's state (a fleet's worth of sessions and chains
// is tens of megabytes), while the replay it saves grows with the events since the last
// one. So a snapshot is written when one is due by `snapshot_interval_ns` *and* at least
// `snapshot_cost_factor` times as long as the previous snapshot took has passed: snapshots
// then use at most 1/snapshot_cost_factor of the correlator thread whatever the state size,
// and a restart replays at most about that many snapshot-durations of ingest.
//
// Baselines: the engine owns the learned baselines (aggregator/baseline/) and attaches them
// to the correlator, so they learn from exactly the events the correlator is fed (sensors'
// and imports' alike). Their changed records are written to the baselines column family
// in the same write batch as each snapshot, and loaded back before the snapshot is
// restored: after a restart the replay from the snapshot's positions teaches them exactly
// what they had not learned. GetBaseline and Feedback (BaselineProvider) answer from them
// under the engine's mutex; feedback is snapshotted at once.
//
// Threading: OnDurable may be called from several ingest streams at once. The correlator
// and its bookkeeping are guarded by one mutex, taken by the correlator thread for each
// hand-over or chunk and by Maintain(), Snapshot(), stats() and Progress(). The destructor
// drains the queue (not a backlog being read back: the next start replays it) and joins
// the thread; the store must outlive the engine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "aggregator/baseline/baselines.h"
#include "aggregator/baseline/kind_suggester.h"
#include "aggregator/baseline/trust_book.h"
#include "aggregator/correlate/correlator.h"
#include "aggregator/ingest/ingest_service.h"
#include "aggregator/query/query_service.h"
#include "aggregator/rules/sigma.h"
#include "aggregator/store/store.h"
#include "common/clock.h"

namespace tripline {

struct CorrelationEngineOptions {
  correlate::CorrelatorOptions correlator;
  int64_t snapshot_interval_ns = 5 * kNanosPerSecond;
  // The next snapshot waits at least this many times as long as the last one took.
  int64_t snapshot_cost_factor = 20;
  int64_t replay_margin_ns = 3600 * kNanosPerSecond;
  // Events waiting in memory for the correlator thread; beyond this the engine falls
  // behind and reads back from the store. 64k events are about 0.3 s of correlation.
  // 0 queues nothing: every batch is read back from the store.
  size_t max_queued_events = 65536;
  // Events read back from the store per sensor and step while behind.
  size_t read_back_chunk = 4096;
  // When set, called with every event fed to the correlator, in feed order, on the
  // correlator thread (or in Open() for the replay) with the engine's lock held. For tests
  // that check each stored event is fed exactly once; it must not call into the engine.
  std::function<void(std::string_view sensor_id, const Event& event)> on_fed;
  // When set, called with every incident revision just before it is stored, on the
  // correlator thread with the engine's lock held (the SIEM outbox: aggregator/forward/).
  // Called before the store write, so that a crash between the two sends the revision once
  // more rather than never; it must be quick and must not call into the engine.
  std::function<void(const v1::Incident& incident)> before_store_incident;
  // Learned baselines (see the class comment); false correlates by the rules alone.
  bool learn_baselines = true;
  baseline::BaselineOptions baseline;
  std::vector<baseline::IdentityRule> identities;  // declared service accounts and agents
  // Which undeclared accounts behave like services or agents (kind_suggester.h); followed
  // with the baselines (not when learn_baselines is false).
  baseline::KindSuggesterOptions kind_suggestions;
  // Sigma rules evaluated on every event fed, before the correlator sees the next one: each
  // detection is a stage of the event's session (Correlator::FeedRuleHit). Shared with
  // the server, which lists the rules and reloads them (RuleEngine::Reload is safe from any
  // thread). nullptr runs no rules.
  std::shared_ptr<rules::RuleEngine> rules;
};

struct CorrelationEngineStats {
  uint64_t events_fed = 0;
  uint64_t incident_writes = 0;
  uint64_t incident_write_errors = 0;
  uint64_t snapshots = 0;
  uint64_t replayed = 0;
  int64_t last_snapshot_cost_ns = 0;  // monotonic time the latest snapshot took
  uint64_t last_snapshot_bytes = 0;
  uint64_t last_snapshot_baselines = 0;  // baseline records written with it
  uint64_t times_fell_behind = 0;
  uint64_t events_read_back = 0;  // fed from the store while behind
  uint64_t read_back_errors = 0;  // store reads that failed while behind (then retried)
  uint64_t rule_detections = 0;   // Sigma rule matches handed to the correlator
};

class CorrelationEngine final : public IngestObserver, public BaselineProvider {
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

  // Queues the batch for the correlator thread, or, when the queue is full or the engine
  // is behind, leaves it to be read back from the store. Never blocks on correlation.
  void OnDurable(std::string_view sensor_id, std::vector<Event> events) override;
  ObserverProgress Progress() const override;

  // Returns once every batch handed over before the call has been fed (from the queue or
  // read back) and its incidents written.
  void Drain();
  // The privilege audit's drift (correlate/drift_view.h): chains that involve a non-human
  // identity with privileges it never used are judged more severely. Not owned; it must
  // outlive the engine. Call before events flow.
  void AttachDrift(const correlate::DriftView* drift);

  // Trust decisions for the SIEM outputs (aggregator/forward/audit_feed.h): up to `max`
  // numbered above `after_seq`, in order, of those already in the store; the highest number
  // in the store; and a listener
  // called after each decision is saved, with the engine's lock held (it must return at
  // once and not call the engine).
  std::vector<baseline::AgentDecision> TrustDecisionsAfter(uint64_t after_seq, size_t max) const;
  uint64_t LastTrustDecisionSeq() const;
  void SetTrustListener(std::function<void()> listener);

  // Evicts expired correlator state and writes a snapshot when one is due and something
  // changed. Call about once a second.
  Status Maintain();
  // Drains the queue and writes a snapshot now (used on shutdown).
  Status Snapshot();

  CorrelationEngineStats stats() const;
  baseline::BaselineStats baseline_stats() const;
  baseline::KindSuggesterStats kind_suggestion_stats() const;

  // Replaces the declared identities (configuration reload). Events fed after the call
  // resolve with the new rules; what was learned under the old names is kept.
  void ReplaceIdentityRules(std::vector<baseline::IdentityRule> rules);

  // BaselineProvider.
  grpc::Status GetBaseline(const v1::GetBaselineRequest& request, v1::Baseline* response) override;
  grpc::Status Feedback(const v1::FeedbackRequest& request,
                        v1::FeedbackResponse* response) override;
  grpc::Status ListIdentitySuggestions(const v1::ListIdentitySuggestionsRequest& request,
                                       v1::ListIdentitySuggestionsResponse* response) override;
  // A confirmation declares the account at once (its next events belong to the new
  // identity) and is snapshotted before the reply, as feedback is.
  grpc::Status DecideIdentitySuggestion(const v1::DecideIdentitySuggestionRequest& request,
                                        v1::IdentitySuggestion* response) override;
  grpc::Status ListAgentTrust(const v1::ListAgentTrustRequest& request,
                              v1::ListAgentTrustResponse* response) override;
  // Records the decision, snapshots it before the reply, and judges every raised incident
  // again (one that involves the agent is reported with its new severity).
  grpc::Status SetAgentTrust(const v1::SetAgentTrustRequest& request,
                             v1::AgentTrust* response) override;

 private:
  struct Batch {
    std::string sensor_id;
    std::vector<Event> events;
  };

  CorrelationEngine(Store* store, CorrelationEngineOptions options, const Clock& clock);
  Status Restore();
  // Requires mu_. Feeds every sensor's stored events above its position (see Restore).
  Status ReplayFromStoreLocked(int64_t skip_before_ns, uint64_t* replayed);
  // Requires mu_. Reads one chunk of the sensor's stored events above its position back
  // and feeds it (events before skip_before_ns only advance the position); adds the
  // events fed to *fed. Returns whether more of the sensor's events remain to be read.
  Result<bool> ReadBackChunkLocked(const SensorRecord& sensor, int64_t skip_before_ns,
                                   uint64_t* fed);
  // Requires mu_. Feeds the events of the last replay_margin_ns by time.
  Status ReplayByTimeLocked(int64_t since_ns, uint64_t* replayed);
  void Run();
  // One step of reading back while behind: a chunk of every sensor that has stored more
  // than was fed. Sets *progressed when anything was fed.
  Status ReadBackStep(bool* progressed);
  // Requires queue_mu_. True when no sensor has stored more than was fed.
  bool CaughtUp();
  // Requires mu_. Feeds the batches in order and writes each changed incident once.
  void FeedBatchesLocked(const std::deque<Batch>& batches);
  // Requires mu_. Feeds a run of one sensor's events, leaving the incidents they change in
  // the correlator for WriteChangedLocked; events before skip_before_ns only advance the
  // position. Returns the events fed.
  // Events at or below fed_through_seq were fed already and are skipped.
  uint64_t FeedRunLocked(std::string_view sensor_id, const std::vector<Event>& events,
                         int64_t skip_before_ns, uint64_t fed_through_seq);
  // Requires mu_. Writes each incident changed since the last call once, with its latest
  // revision. Called before anything else takes from the correlator or snapshots it.
  void WriteChangedLocked();
  // Requires mu_. Feeds one event; `position` is the sensor's entry in positions_.
  void FeedLocked(std::string_view sensor_id, const Event& event, uint64_t* position);
  void WriteLocked(const std::vector<Incident>& incidents);
  Status SnapshotLocked();

  Store* const store_;
  const CorrelationEngineOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  baseline::Baselines baselines_;         // GUARDED_BY(mu_)
  baseline::KindSuggester suggester_;     // GUARDED_BY(mu_)
  baseline::TrustBook trust_;             // GUARDED_BY(mu_)
  std::function<void()> trust_listener_;  // GUARDED_BY(mu_)
  uint64_t trust_saved_seq_ = 0;          // GUARDED_BY(mu_): decisions in the store through it
  correlate::Correlator correlator_;      // GUARDED_BY(mu_)
  // GUARDED_BY(mu_): baseline records taken for a snapshot whose write failed; written
  // with the next one.
  std::map<std::string, std::string> unwritten_baselines_;
  std::map<std::string, uint64_t> positions_;  // GUARDED_BY(mu_): highest seq fed per sensor
  // GUARDED_BY(mu_): per sensor, the highest seq fed by reading back from the store. Batches
  // handed over later that reach below it were stored before the read-back saw them; only
  // their events above it are new. (positions_ would not do: batches of one sensor from
  // two streams may be handed over out of order, and the lower one must still be fed.)
  std::map<std::string, uint64_t> read_back_through_;
  int64_t watermark_ns_ = 0;           // GUARDED_BY(mu_): newest event time fed, at most the clock
  bool dirty_ = false;                 // GUARDED_BY(mu_)
  int64_t last_snapshot_mono_ns_ = 0;  // GUARDED_BY(mu_)
  CorrelationEngineStats stats_;       // GUARDED_BY(mu_)

  mutable std::mutex queue_mu_;
  std::condition_variable work_cv_;  // batches queued, behind, or stopping
  std::condition_variable done_cv_;  // batches fed, or caught up
  std::deque<Batch> queue_;          // GUARDED_BY(queue_mu_)
  size_t queued_events_ = 0;         // GUARDED_BY(queue_mu_)
  uint64_t batches_handed_ = 0;      // GUARDED_BY(queue_mu_): ever, queued or left behind
  uint64_t batches_done_ = 0;        // GUARDED_BY(queue_mu_): ever, fed
  bool behind_ = false;              // GUARDED_BY(queue_mu_)
  uint64_t times_fell_behind_ = 0;   // GUARDED_BY(queue_mu_)
  uint64_t batches_left_ = 0;        // GUARDED_BY(queue_mu_): left to the read-back
  bool stopping_ = false;            // GUARDED_BY(queue_mu_)
  std::thread thread_;
};

}  // namespace tripline
