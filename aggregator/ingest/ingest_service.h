// IngestService: sensors stream event batches in; the aggregator acknowledges what is durable.
//
// Protocol (proto/tripline/v1/ingest.proto): the first message of a stream must be a valid
// SensorHello, answered by an ack carrying the sensor's durable_seq so that the sensor
// resends only what the store does not have. Then EventBatches, each answered by one ack:
//   - valid batch: stored (duplicates dropped, gaps recorded; see Store::AppendBatch), the
//     observer handed the new events, then acked with the new durable_seq;
//   - invalid batch: nothing of it stored, acked with `error` naming the first problem and
//     `rejected_first_seq`; the stream goes on. After `max_violations` rejected requests on
//     one stream the stream ends with INVALID_ARGUMENT;
//   - no hello first, or an invalid hello: the stream ends with INVALID_ARGUMENT;
//   - with client certificates (IngestOptions::access): a peer without the sensor role, a
//     hello or event naming a host the certificate does not bind, a sensor id stored or
//     connected for another host, or a batch skipping more sequence numbers than the sensor
//     can have used (MaxSequenceJump): the stream ends with PERMISSION_DENIED, logged and
//     counted, nothing of it stored (the jump rule applies in clear text too);
//   - a store error: the stream ends with UNAVAILABLE and the batch is not acked, so the
//     sensor keeps it and resends it on its next stream.
//
// Flow control: each stream has exactly one operation outstanding. The next Read starts
// only after the previous batch was written and its ack sent, so a slow store slows the
// sensors down through HTTP/2 flow control instead of queueing batches in aggregator
// memory. Memory per stream is bounded by one request (max receive message size, set by
// AggregatorServer) plus the transport's window. The observer does not hold up acks: it
// takes the events, or, when it is behind, reads them back from the store later.
//
// The store write runs on the gRPC callback thread that delivered the batch; the observer
// (the correlator) runs on its own thread. A worker pool for the writes would add a
// hand-off per batch without adding cores, and the one-outstanding-read rule already
// bounds the work in flight to one batch per stream; several streams (sensors) write
// concurrently. With --sync-writes the thread also waits for the fsync. Figures:
// docs/benchmarks.md (bench/aggregator/ingest_bench.cc).
//
// Threading: all public methods are thread-safe. Store and observer are not owned and
// must outlive the gRPC server that runs this service.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/ingest/ingest_validation.h"
#include "aggregator/ingest/peer_identity.h"
#include "aggregator/store/store.h"
#include "common/clock.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline {

// The correlator's progress through the stored events (see CorrelationEngine).
struct ObserverProgress {
  uint64_t events_fed = 0;         // events handed to the analysis, ever
  uint64_t backlog = 0;            // stored events not yet fed (an upper bound)
  bool behind = false;             // reading back from the store instead of a memory queue
  uint64_t times_fell_behind = 0;  // since start
  uint64_t events_read_back = 0;   // fed from the store rather than from memory, since start
  // Learned baselines, when the analysis has them (Stats fields 200-203).
  uint64_t baseline_identities = 0;
  uint64_t baseline_warming = 0;
  uint64_t baseline_events_scored = 0;
  uint64_t baseline_not_learned = 0;
};

// The seam where analysis plugs into ingest (the correlator, later scoring).
class IngestObserver {
 public:
  virtual ~IngestObserver() = default;
  // Called once per stored batch, after it is durable and before it is acknowledged, with
  // only the newly stored events (duplicates removed), in sequence order; the observer takes
  // them. Calls for one stream come one at a time in order; calls for different streams come
  // concurrently, so implementations must be thread-safe. Time spent here delays the ack:
  // an observer hands the events to its own thread and returns. One that cannot keep up
  // must not block ingest either: the events are durable, so it can read them back from
  // the store later (Store::ReadSensorEvents). Must not throw.
  virtual void OnDurable(std::string_view sensor_id, std::vector<Event> events) = 0;
  // How far the observer has got through the stored events, for the query service's stats.
  virtual ObserverProgress Progress() const { return {}; }
};

constexpr uint32_t kDefaultMaxStreamsPerPeer = 64;
constexpr size_t kDefaultMaxPresence = 65536;

struct IngestOptions {
  size_t max_batch_events = kDefaultMaxBatchEvents;
  // Rejected requests after which a stream is ended with INVALID_ARGUMENT.
  uint32_t max_violations = 100;
  const Clock* clock = nullptr;  // not owned; nullptr means SystemClock::Get()
  // The window of the aggregator's clock that event times are clamped into
  // (ClampEventTimes); max_event_age_ns 0 clamps nothing in the past.
  int64_t max_future_skew_ns = kDefaultMaxFutureSkewNs;
  int64_t max_event_age_ns = kDefaultMaxEventAgeNs;
  // Ingest streams open at once per peer (per client certificate with TLS, per address in
  // clear text); more are refused with RESOURCE_EXHAUSTED. A sensor needs one.
  uint32_t max_streams_per_peer = kDefaultMaxStreamsPerPeer;
  // Sensors whose presence (connected, last seen) is kept in memory; beyond it the one not
  // connected and seen longest ago is forgotten (counted). Its store record stays.
  size_t max_presence = kDefaultMaxPresence;
  // Who may stream and for which hosts (not owned); nullptr lets every peer in (clear text).
  const AccessControl* access = nullptr;
};

// Counters since the service started.
struct IngestCounters {
  uint64_t streams = 0;            // streams that said hello
  uint64_t batches = 0;            // batches stored (including all-duplicate ones)
  uint64_t events = 0;             // events newly stored
  uint64_t duplicates = 0;         // events dropped as duplicates
  uint64_t rejected_requests = 0;  // batches (and stray messages) rejected
  uint64_t fatal_streams = 0;      // streams ended for a protocol violation or store error
  uint64_t gaps = 0;               // batches that skipped sequence numbers
  // Streams refused for their identity: no sensor role, a sensor id or host the
  // certificate does not bind, a sequence number jump past what the sensor can have sent.
  uint64_t denied_streams = 0;
  uint64_t events_time_clamped = 0;      // events whose time was clamped into the skew window
  uint64_t streams_over_peer_limit = 0;  // streams refused by max_streams_per_peer
  uint64_t presence_evicted = 0;         // sensors forgotten by max_presence
};

struct SensorPresence {
  std::string sensor_id;
  std::string host;
  std::string version;
  uint32_t streams = 0;      // open streams; > 0 means connected
  int64_t last_seen_ns = 0;  // wall clock of the latest hello or batch
};

// The stream is registered as a raw (ByteBuffer) callback method so that this service, not
// the gRPC library, parses each request. A request that does not parse (a proto3 string
// field with invalid UTF-8, truncated bytes) is then one rejected request answered with an
// error ack, like any other bad batch, instead of a stream torn down by the library with
// nothing to tell the sensor which batch was poison.
class IngestService final : public v1::Ingest::WithRawCallbackMethod_Stream<v1::Ingest::Service> {
 public:
  IngestService(IngestSink* store, IngestObserver* observer, IngestOptions options = {});
  ~IngestService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;

  IngestCounters counters() const;
  // Every sensor that said hello since start, by sensor id.
  std::vector<SensorPresence> Sensors() const;
  uint32_t SensorsConnected() const;
  // Events newly stored per second, averaged over the last 60 s.
  double EventsPerSecond() const;

 private:
  class Reactor;
  // Registers the stream; PermissionDenied when the sensor id is bound to another host.
  Status OnHello(const SensorIdentity& id, const PeerIdentity& who);
  void OnStreamDone(const std::string& sensor_id);
  // Takes one of the peer's stream slots; false when it has max_streams_per_peer already.
  bool AcquireStreamSlot(const std::string& peer_key);
  void ReleaseStreamSlot(const std::string& peer_key);
  void OnStored(const std::string& sensor_id, const AppendResult& r);

  IngestSink* const store_;
  IngestObserver* const observer_;
  const IngestOptions options_;
  const Clock& clock_;

  std::atomic<uint64_t> streams_{0}, batches_{0}, events_{0}, duplicates_{0}, rejected_{0},
      fatal_{0}, gaps_{0}, denied_{0}, clamped_{0}, over_limit_{0}, presence_evicted_{0};

  mutable std::mutex mu_;
  std::map<std::string, SensorPresence> sensors_;     // GUARDED_BY(mu_)
  std::map<std::string, uint32_t> streams_per_peer_;  // GUARDED_BY(mu_); no zero entries
  // Events stored in each of the last 60 seconds of the monotonic clock.
  struct RateBucket {
    int64_t second = -1;
    uint64_t events = 0;
  };
  RateBucket rate_[60];  // GUARDED_BY(mu_)
};

}  // namespace tripline
