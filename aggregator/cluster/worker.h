// Worker: the part of the scaled-out aggregator that correlates (docs/scale-out.md).
//
// A worker holds partitions of the events stream by leases (lease.h; bucket tl-leases,
// "partition.<p>", and its own "worker.<owner>" so that every worker knows how many are
// live). It takes free and ended partitions up to its share, ceil(partitions / live
// workers), and hands over those past it, so partitions spread out as workers come and go.
// For each partition it holds it consumes the durable consumer "part-<p>" in stream order,
// stores the events in its RocksDB (queryable there), and feeds them to the partition's own
// correlator and learned baselines, writing the incidents they raise or grow to its store.
//
// Nothing lost, nothing fed twice: every `snapshot_interval_ms` (or `snapshot_events`) the
// partition's state (correlator, baselines, each sensor's position, the stream sequence fed
// through) is written to the cluster (partition_snapshot.h, compare-and-set on the
// snapshot's version), and only then are those messages acknowledged. A worker that dies
// leaves them unacknowledged; whoever takes the partition next loads the snapshot and drops
// the messages at or below its stream sequence and the events at or below its sensors'
// positions, so each event is fed once into the state that lives on. A lease that could not
// be renewed (it ended during a pause) or a snapshot that another worker replaced stops the
// work on that partition at once, without acknowledging anything.
//
// A message that does not decode (damaged in the stream) is counted, logged and passed over:
// it holds nothing a correlator could be fed. A store write that fails is tried again in the
// next round before anything after it in the partition.
//
// Chains across partitions: a partition's correlator exports a chain that reaches past the
// partition (correlate::CorrelatorOptions::is_local_host) and the worker publishes each
// change of it to the edge stream (after the message that made it, before the snapshot
// that acknowledges that message); one worker, holding the lease "joiner", joins them
// (joiner_stage.h). Copies of connections routed to another partition
// (PartitionEvents::copies) are fed to their source's correlator, not stored.
//
// Events stored: each by the worker that fed it; after a worker died, the events it stored
// past its last snapshot are stored again by the next holder (queries merge by sensor and
// sequence number). Incident ids are keyed by a secret kept in the cluster (bucket
// tl-cluster), so the same chain has the same id on every worker.
//
// Threading: one thread runs the partitions; partitions() and stats() may be called from
// any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/baseline/baselines.h"
#include "aggregator/cluster/jetstream.h"
#include "aggregator/cluster/joiner_stage.h"
#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/partition_snapshot.h"
#include "aggregator/correlate/correlator.h"
#include "aggregator/rules/sigma.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/clock.h"
#include "tripline/v1/query.pb.h"

namespace tripline::cluster {

inline constexpr const char* kLeasesBucket = "tl-leases";
inline constexpr const char* kClusterBucket = "tl-cluster";

struct WorkerOptions {
  // The worker's name; its lease owner is the name and a random suffix, unique to this run.
  std::string name = "worker";
  uint32_t partitions = 256;  // as the ingest nodes' cluster.partitions
  int replicas = 3;           // of the buckets it makes
  int64_t lease_ttl_ms = 10'000;
  int64_t renew_every_ms = 3'000;
  int64_t snapshot_interval_ms = 1'000;
  uint64_t snapshot_events = 10'000;
  // A snapshot is due (by interval or events) only once this many times as long as the
  // partition's previous snapshot took has passed, so that snapshots take at most about
  // 1/factor of the worker's time whatever the state's size; and always after half the
  // ack wait, before the stream hands the messages out again.
  int64_t snapshot_cost_factor = 20;
  int fetch_messages = 64;  // per partition and round
  // How long a message may stay unacknowledged before the stream hands it out again: well
  // past the snapshot interval and a snapshot's own time.
  int64_t ack_wait_ms = 60'000;
  correlate::CorrelatorOptions correlator;  // incident_id_key is the cluster's
  bool learn_baselines = true;
  baseline::BaselineOptions baseline;
  std::vector<baseline::IdentityRule> identities;
  std::shared_ptr<rules::RuleEngine> rules;  // nullptr runs none
  // Called on the worker's thread with every event fed and stored, in feed order (not with
  // copies of connections routed to another partition); must not call the worker.
  std::function<void(uint32_t partition, std::string_view sensor_id, const Event& event)> on_fed;
  // Called on the worker's thread after a partition's snapshot was written and its
  // messages acknowledged: every event fed on it so far lives on.
  std::function<void(uint32_t partition)> on_snapshot;
  // Called on the worker's thread when it lets a partition go: handed over after a
  // snapshot, or lost (`lost`: what it fed since its last snapshot is dropped with it).
  std::function<void(uint32_t partition, bool lost)> on_release;
  // Called on a take's own thread before the partition's snapshot is loaded; must not call
  // the worker (tests hold a take up with it, as a busy cluster does).
  std::function<void(uint32_t partition)> on_prepare;
  // Whether this worker may run the joiner (joiner_stage.h) when its lease is free.
  bool join = true;
  // Called with every incident revision just before it is stored.
  std::function<void(const v1::Incident& incident)> before_store_incident;
  const Clock* clock = nullptr;  // nullptr: the system clock
};

struct WorkerStats {
  uint64_t messages = 0;  // stream messages fed
  uint64_t events_fed = 0;
  uint64_t events_dropped = 0;  // at or below a sensor's position: fed before
  uint64_t bad_messages = 0;    // did not decode
  uint64_t snapshots = 0;
  uint64_t snapshot_bytes = 0;             // of the latest
  uint64_t snapshot_correlator_bytes = 0;  // of it, the correlator's state
  uint64_t snapshot_baselines = 0;         // of it, baseline records
  int64_t snapshot_ns = 0;                 // how long the latest took
  uint64_t consumers_remade = 0;           // after fetches failed (a server lost)
  uint64_t partitions_taken = 0;
  uint64_t partitions_handed_over = 0;  // released past the share, after a snapshot
  uint64_t partitions_lost = 0;         // lease or snapshot taken by another worker
  uint64_t store_errors = 0;
  uint64_t incident_writes = 0;
  uint64_t cluster_errors = 0;       // calls to the cluster that failed (tried again)
  uint64_t fragments_published = 0;  // exported chains' changes sent to the edge stream
  uint64_t fragments_too_large = 0;  // ... not sent: over kMaxFragmentBytes
  JoinerStageStats joiner;           // of the joiner, when this worker runs it
};

// A partition as its worker holds it, for metrics.
struct PartitionStatus {
  uint32_t partition = 0;
  uint64_t pending = 0;  // messages not fetched yet, as of the last fetch
  // Fed and not in a snapshot yet: fed again by the next holder if this worker dies.
  uint64_t events_since_snapshot = 0;
};

class Worker {
 public:
  // Makes the buckets, reads (or makes) the cluster's incident id key and starts the
  // worker's thread. Neither `js` nor `store` is owned; both must outlive the worker.
  static Result<std::unique_ptr<Worker>> Start(JetStream* js, RocksDbStore* store,
                                               WorkerOptions options);
  // Stop().
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Snapshots and acknowledges every partition it holds, releases their leases and its
  // own, and stops the thread. Idempotent.
  void Stop();
  // Stops the thread as a killed process would: no snapshot, no acknowledgement, no lease
  // released. For tests of a worker's death.
  void Abandon();

  const std::string& owner() const { return owner_; }
  std::vector<uint32_t> partitions() const;
  // Of each partition held, in partition order.
  std::vector<PartitionStatus> partition_status() const;
  WorkerStats stats() const;

 private:
  struct Partition;

  Worker(JetStream* js, RocksDbStore* store, WorkerOptions options);
  void Run();
  // Renews the leases held, then takes or hands over partitions toward the share.
  void ManageLeases();
  // Renews the worker's own lease (by which the others count it live), taking its name
  // again when it ended.
  void RenewSelf();
  // Renews every lease held; drops the partitions another worker took.
  void RenewHeld();
  // Renews every lease held; the partitions another worker took, to be dropped.
  std::vector<uint32_t> RenewHeldLeases();
  // Drops those of `lost` still held, counted as lost.
  void DropLost(const std::vector<uint32_t>& lost);
  // Runs `work` on a thread of its own and, every renewal period until it is done, renews
  // this worker's own lease, the partitions it holds, the joiner's lease when
  // `renew_joiner`, and calls `also` (nullptr: nothing more); partitions found lost
  // meanwhile are dropped once the work is done. `work` waits on the cluster, which can
  // take longer than a lease lasts; it may touch the partitions held but not their leases,
  // nor the joiner when `renew_joiner`.
  void WhileRenewing(const std::function<void()>& work, bool renew_joiner,
                     const std::function<void()>& also);
  // Takes partitions whose leases were just acquired, up to kParallelTakes at once (each
  // loads its snapshot and makes its consumer anew, mostly waiting on the cluster: every
  // lease held or acquired is renewed meanwhile); a partition that cannot be taken has its
  // lease released.
  void TakeAll(const std::vector<std::pair<uint32_t, Lease>>& acquired);
  // A partition's state loaded from its snapshot and its consumer made: what TakeAll does
  // for each, on threads of its own (touches nothing of the worker's but the cluster).
  Result<std::unique_ptr<Partition>> Prepare(uint32_t partition, const Lease& lease);
  // Feeds what the partition has; true when it fed anything.
  bool Pump(Partition& p);
  // The partition's consumer, made anew after the message last fed.
  Status Subscribe(Partition& p);
  // Feeds one message; false when the store failed (try it again later).
  bool FeedMessage(Partition& p, const Delivered& d);
  // Writes the snapshot and acknowledges; false when the partition was lost.
  bool SnapshotAndAck(Partition& p);
  // Publishes the partition's exported chains changed since last published; false when
  // the cluster did not take them all (they stay for the next try).
  bool PublishFragments(Partition& p);
  void WriteIncidents(const std::vector<Incident>& incidents);
  // Forgets the partition (nothing more acknowledged); `release` ends its lease (handed
  // over after a snapshot), otherwise it was lost.
  void Drop(uint32_t partition, bool release);
  // Renews the partition's lease when less than half of it is left (or `renew_now`); false
  // when it was taken over (the partition is dropped then).
  bool KeepLease(Partition& p, bool renew_now = false);

  JetStream* const js_;
  RocksDbStore* const store_;
  WorkerOptions options_;
  const Clock& clock_;
  std::string owner_;

  std::unique_ptr<KeyValue> leases_kv_;
  std::unique_ptr<KeyValue> snapshots_kv_;
  std::unique_ptr<LeaseTable> leases_;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<JoinerStage> joiner_;  // nullptr unless options_.join
  Lease self_lease_;
  int64_t next_lease_round_ns_ = 0;  // monotonic

  std::map<uint32_t, std::unique_ptr<Partition>> held_;  // the worker thread's only

  mutable std::mutex mu_;
  std::vector<uint32_t> held_ids_;              // GUARDED_BY(mu_)
  std::map<uint32_t, PartitionStatus> status_;  // GUARDED_BY(mu_), of those held
  WorkerStats stats_;                           // GUARDED_BY(mu_)

  std::atomic<bool> stop_{false};
  std::atomic<bool> abandon_{false};
  std::thread thread_;
};

}  // namespace tripline::cluster
