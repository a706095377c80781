// The joiner stage of the scaled-out aggregator (docs/scale-out.md, "Chains across
// partitions"): joins the chains workers' partitions export into one chain each and raises
// one incident per chain, as the single node does.
//
// Workers publish every change of an exported chain, whole, to the edge stream TL_EDGES
// (tripline.v1.ChainFragment). One worker at a time runs the joiner: whoever holds the
// lease "joiner" (lease.h) consumes the durable "joiner" in stream order into a
// correlate::ChainJoiner and writes the incidents it raises or grows to its store. Like a
// partition it is snapshotted to the cluster (partition_snapshot.h, under the partition
// number kJoinerSnapshot: the stream sequence fed through and the joiner's state) before its
// messages are acknowledged, and whoever takes the lease next goes on from the snapshot; a
// lease that ends, or a snapshot another worker replaced, stops it at once without
// acknowledging anything.
//
// Threading: driven by the worker's thread; stats() may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/cluster/jetstream.h"
#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/partition_snapshot.h"
#include "aggregator/correlate/chain_joiner.h"
#include "aggregator/correlate/correlator.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/incident.h"

namespace tripline::cluster {

inline constexpr const char* kEdgesStream = "TL_EDGES";
inline constexpr const char* kEdgesSubject = "tl.edges";
inline constexpr const char* kJoinerLease = "joiner";
// The partition number the joiner's snapshot is kept under (no partition has it).
inline constexpr uint32_t kJoinerSnapshot = 0xffffffffu;
// The largest fragment published: past it (a chain of thousands of sessions) a chain is
// not exported but counted (a message must fit the servers' max_payload, 1 MiB by default).
inline constexpr size_t kMaxFragmentBytes = 512 * 1024;

// The edge stream: subject tl.edges, a 10-minute duplicate window.
StreamSpec EdgesStreamSpec(int replicas);
// "<partition>:<FNV-1a of the chain key, hex>:<stream sequence fed through>".
std::string EdgeMessageId(uint32_t partition, std::string_view chain, uint64_t fed_through);

// A message of the edge stream as the joiner reads it.
struct EdgeFragment {
  uint32_t partition = 0;
  std::string chain;
  std::string state;  // empty: retracted
  // Where the chain was exported, unique in the cluster: "<partition>:<chain>".
  std::string origin() const { return std::to_string(partition) + ":" + chain; }
};
std::string EncodeEdgeFragment(uint32_t partition, std::string_view chain, std::string_view state);
// InvalidArgument naming what is wrong for anything EncodeEdgeFragment does not write: no
// chain key, one over 4 KiB, a state over kMaxFragmentBytes. The state itself is checked
// by the joiner.
Result<EdgeFragment> DecodeEdgeFragment(std::string_view bytes);

struct JoinerStageOptions {
  correlate::CorrelatorOptions correlator;  // as the partitions' (the incident id key above all)
  int replicas = 3;
  int64_t lease_ttl_ms = 10'000;
  int64_t snapshot_interval_ms = 1'000;
  int64_t snapshot_cost_factor = 20;
  int64_t ack_wait_ms = 60'000;
  int fetch_messages = 256;
  // Runs a wait on the cluster (the consumer made anew, seconds with servers lost) on the
  // caller's behalf: a worker renews its other leases meanwhile. nullptr: run in place.
  std::function<void(const std::function<void()>& work)> wait;
};

struct JoinerStageStats {
  bool held = false;
  uint64_t taken = 0;  // times the lease was taken
  uint64_t lost = 0;   // ... lost without handing over
  uint64_t edges = 0;  // messages fed
  uint64_t bad_edges = 0;
  uint64_t snapshots = 0;
  uint64_t cluster_errors = 0;
  uint64_t fragments = 0;  // held now
};

class JoinerStage {
 public:
  // Not owned, and must outlive the stage: `leases` and `snapshots` are the worker's.
  // `write` stores the incidents the joiner raised or changed.
  JoinerStage(JetStream* js, LeaseTable* leases, SnapshotStore* snapshots, const Clock& clock,
              JoinerStageOptions options, std::function<void(const std::vector<Incident>&)> write);
  ~JoinerStage();

  // Once a renewal round: renews the lease when held (stopping when it was lost) and
  // forgets expired fragments; takes the lease, loads the snapshot and subscribes when
  // it is free.
  void ManageLease();
  // Renews the lease when held (stopping when it was lost) and nothing else: while a
  // worker waits on the cluster for other work, so that the lease does not end meanwhile.
  // False when the joiner is not held (any more).
  bool RenewLease();
  // Whether this stage holds the joiner's lease (on the caller's thread).
  bool held() const { return held_ != nullptr; }
  // Feeds what the edge stream holds and snapshots when due; true when anything was fed.
  bool Pump();
  // On a clean stop: snapshots, acknowledges and releases the lease.
  void Release();
  // As a killed process: forgets everything and tells the cluster nothing.
  void Abandon();

  JoinerStageStats stats() const;

 private:
  struct Held;
  Status Take(const Lease& lease);
  Status Subscribe();
  bool SnapshotAndAck();
  void Lost(const std::string& why);

  JetStream* const js_;
  LeaseTable* const leases_;
  SnapshotStore* const snapshots_;
  const Clock& clock_;
  JoinerStageOptions options_;
  std::function<void(const std::vector<Incident>&)> write_;
  std::unique_ptr<Held> held_;
  mutable std::mutex mu_;
  JoinerStageStats stats_;
};

}  // namespace tripline::cluster
