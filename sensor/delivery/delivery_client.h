// DeliveryClient: streams the sensor's events to the aggregator, at least once.
//
//   DeliveryOptions options;
//   options.target = "aggregator.example:7443";
//   options.spool.dir = "/var/lib/tripline/spool";
//   ApplySensorConfig(config, &options);  // spool size, batching, TLS from SensorConfig
//   auto client = DeliveryClient::Create(options, SystemClock::Get());
//   (*client)->Submit(event);               // from the event loop; never blocks on the network
//   ...
//   (*client)->Flush(deadline); (*client)->Stop();
//
// Every submitted event is numbered and written to the Spool before Submit() returns; a
// background thread keeps one Ingest.Stream open, says hello, resends everything after the
// durable seq the aggregator reports, then streams new events in batches and trims the spool
// as acknowledgements come back. Nothing is lost silently: an event is either acknowledged,
// still in the spool (and sent on the next start), or counted (spool drops when the spool is
// full, rejections when the aggregator refuses a batch as malformed).
//
// Batching: a batch is a run of consecutive seqs (the wire says event i of a batch has
// first_seq + i), at most batch_max_events events and batch_max_bytes bytes. It leaves when
// it is full, when it holds a priority event (login, net, health: they are what detection
// waits for), or batch_max_delay_ms after its oldest event arrived. At most
// max_in_flight_batches are unacknowledged at a time. A gap in the numbers (evicted events)
// ends a batch; the next starts after the gap.
//
// Rejections: an ack with a non-empty error rejects the batch starting at
// rejected_first_seq. Its events are counted (rejected_events), logged, and not sent again by
// this process; a restart may send them once more (the rejected ranges are not persisted).
//
// Acknowledgements you cannot trust: a hello ack whose durable seq is beyond the highest
// seq this sensor has numbered, or a later ack beyond the highest seq this process has
// sent, is a protocol violation (a forged or confused peer, a man in the middle of clear
// text). It is logged at error level with both numbers and counted (protocol_violations);
// nothing is trimmed from the spool, the stream is ended and reopened after the backoff.
// A peer that keeps claiming it keeps the sensor's events in the spool, where only the
// spool's own bound evicts them (counted as spool drops). docs/security.md has the rule and
// what to do when the claim is true (a sensor that lost its spool state but kept its id).
//
// Reconnection: exponential backoff with jitter, backoff_initial_ms doubling up to
// backoff_max_ms; back to the start after a healthy stream (hello acknowledged and a batch
// acknowledged, or up for a second). A stream whose hello or oldest in-flight batch goes
// unacknowledged for hello_timeout_ms / ack_timeout_ms is cancelled and reopened, which
// catches a peer that is gone without a TCP reset.
//
// Threading: the synchronous gRPC API in dedicated threads (one writer that owns the
// stream and the batching, one reader per stream for acks, one for spool fdatasync). There
// is one stream per process, so the two extra threads are cheap, and the reconnect/resend
// logic reads top to bottom as a loop instead of being spread over reactor callbacks.
// Submit(), Flush(), Stats() and Stop() may be called from any thread.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "model/event.h"
#include "sensor/delivery/spool.h"

namespace grpc {
class ChannelCredentials;
}
namespace tripline::v1 {
class SensorConfig;
class IngestRequest;
}  // namespace tripline::v1

namespace tripline::delivery {

struct TlsOptions {
  bool enabled = false;   // false: plaintext (loopback and tests)
  std::string ca_file;    // roots the aggregator's certificate must chain to; "" = system
  std::string cert_file;  // this sensor's chain, for mTLS (with key_file)
  std::string key_file;
  std::string server_name;  // name to verify when it is not the target's host
  // The files are read again this often; connections made after a change use them
  // (common/tls_reload.h). 0 = the default.
  uint32_t reload_interval_s = 0;
};

struct DeliveryOptions {
  std::string target;     // aggregator HOST:PORT
  std::string sensor_id;  // "" = LoadOrCreateSensorId(spool.dir)
  std::string host;       // for the SensorHello
  std::string host_id;
  std::string version;
  uint64_t boot_time_ns = 0;
  SpoolOptions spool;  // spool.dir is required
  uint32_t batch_max_events = 512;
  uint32_t batch_max_bytes = 2u << 20;  // well under gRPC's default 4 MiB message limit
  // Detection aims at < 100 ms p99 from kernel to aggregator; bulk waits at most this.
  uint32_t batch_max_delay_ms = 50;
  uint32_t max_in_flight_batches = 8;
  int64_t backoff_initial_ms = 100;
  int64_t backoff_max_ms = 10000;
  int64_t hello_timeout_ms = 10000;
  int64_t ack_timeout_ms = 30000;
  // Cadence of Spool::Sync(): events younger than this may be lost if the host (not just
  // the sensor) crashes. See bench/sensor/delivery_bench.cc for the cost of shorter ones.
  int64_t sync_interval_ms = 100;
  TlsOptions tls;
};

// The credentials for a channel to the aggregator: clear text, or TLS with the files
// read again as they change. InvalidArgument for half a client certificate or an empty file.
Result<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsOptions& tls);

// Copies the delivery settings of a sensor configuration file (zero fields keep defaults).
// A tls block, whatever it holds, turns TLS on.
void ApplySensorConfig(const v1::SensorConfig& config, DeliveryOptions* options);

struct DeliveryStats {
  uint64_t submitted = 0;      // Submit() calls
  uint64_t spooled = 0;        // events numbered and written to the spool
  uint64_t acked = 0;          // events this process saw acknowledged as durable
  uint64_t sent_events = 0;    // events written to a stream, resends included
  uint64_t resent_events = 0;  // of which sent again after a reconnect
  uint64_t batches_sent = 0;
  uint64_t in_flight_events = 0;
  uint64_t in_flight_batches = 0;
  uint64_t spool_bytes = 0;
  uint64_t spool_drops = 0;  // events lost to the spool bound (for SensorHealth)
  std::array<uint64_t, kNumKinds> spool_drops_by_kind{};  // indexed by EventKind
  uint64_t spool_write_errors = 0;
  uint64_t rejected_events = 0;  // refused by the aggregator as malformed, not resent
  uint64_t rejected_batches = 0;
  uint64_t reconnects = 0;  // streams that ended and were reopened
  // Acks claiming a durable seq this sensor cannot have sent (see "Acknowledgements you
  // cannot trust" above): not applied, the stream ended, the spool kept (for SensorHealth).
  uint64_t protocol_violations = 0;
  uint64_t durable_seq = 0;  // the aggregator's last report
  uint64_t next_seq = 0;
  bool connected = false;  // a stream is open and its hello acknowledged
  std::string last_error;
};

class DeliveryClient {
 public:
  // Opens the spool (recovering what a previous run left), resolves the sensor id, and
  // starts the delivery threads. `clock` must outlive the client.
  static Result<std::unique_ptr<DeliveryClient>> Create(DeliveryOptions options,
                                                        const Clock& clock);
  // Calls Stop().
  ~DeliveryClient();
  DeliveryClient(const DeliveryClient&) = delete;
  DeliveryClient& operator=(const DeliveryClient&) = delete;

  // Numbers the event (its seq field is ignored) and spools it; does not wait for the
  // network. Ok also when the spool was full and the event was dropped (that is counted in
  // Stats().spool_drops, which the daemon reports in SensorHealth). Errors: IoError when the
  // spool could not write (also counted as a drop), InvalidArgument for an event too large
  // to ever spool, Aborted after Stop().
  Status Submit(const Event& event);

  // Waits until every event submitted before the call (and every event a previous run left
  // in the spool) is acknowledged, rejected or dropped. `deadline_ns` is on
  // clock.MonotonicNs(). DeadlineExceeded when it passes first; Aborted after Stop().
  Status Flush(int64_t deadline_ns);

  // Closes the stream and the spool. Events not yet acknowledged stay in the spool for the
  // next start. Idempotent.
  void Stop();

  DeliveryStats Stats() const;
  const std::string& sensor_id() const { return sensor_id_; }
  const SpoolRecovery& spool_recovery() const { return spool_->recovery(); }

 private:
  struct InFlight {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    uint64_t events = 0;
    int64_t sent_ns = 0;
  };
  struct Stream;

  DeliveryClient(DeliveryOptions options, const Clock& clock, std::unique_ptr<Spool> spool,
                 std::string sensor_id, std::shared_ptr<grpc::ChannelCredentials> credentials);
  void SenderLoop();
  void SyncLoop();
  // One stream from connect to its end; the reason it ended.
  Status RunStream(bool* healthy);
  void ReaderLoop(Stream* stream);
  void HandleAck(uint64_t durable_seq, const std::string& error, uint64_t rejected_first_seq);
  // Counts and logs an ack that claims more than this sensor sent; the caller ends the
  // stream. Requires mu_.
  void ProtocolViolationLocked(const std::string& what, uint64_t claimed, uint64_t highest);
  // Builds the next batch from the spool into *request; *batch->events == 0 when there
  // was nothing left to send up to `last_submitted` (evicted or rejected).
  Status NextBatch(uint64_t last_submitted, v1::IngestRequest* request, InFlight* batch);
  bool IsRejectedLocked(uint64_t seq) const;
  bool BatchReadyLocked(int64_t now_ns, int64_t* wake_ns) const;
  void SleepBackoff(int attempt);
  // Waits on cv_ until notified or until deadline_ns on clock_ (0: no deadline).
  void WaitLocked(std::unique_lock<std::mutex>& lock, int64_t deadline_ns);

  const DeliveryOptions options_;
  const Clock& clock_;
  const std::unique_ptr<Spool> spool_;
  const std::string sensor_id_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // any change of the state below
  bool stopping_ = false;            // GUARDED_BY(mu_)
  bool stopped_ = false;             // GUARDED_BY(mu_)
  Stream* stream_ = nullptr;         // GUARDED_BY(mu_); for Stop() to cancel it
  uint64_t last_submitted_seq_ = 0;  // GUARDED_BY(mu_)
  uint64_t last_priority_seq_ = 0;   // GUARDED_BY(mu_)
  int64_t first_unsent_ns_ = 0;      // GUARDED_BY(mu_); arrival of the oldest unsent, 0 none
  uint64_t sent_seq_ = 0;            // GUARDED_BY(mu_); highest seq written to this stream
  uint64_t resend_until_ = 0;        // GUARDED_BY(mu_); seqs up to here go out unbatched
  std::deque<InFlight> in_flight_;   // GUARDED_BY(mu_)
  int64_t last_ack_ns_ = 0;          // GUARDED_BY(mu_)
  // Rejected seq ranges not yet passed by durable_seq: never sent again.
  std::vector<std::pair<uint64_t, uint64_t>> rejected_;  // GUARDED_BY(mu_)
  DeliveryStats stats_;  // GUARDED_BY(mu_); spool fields filled by Stats()

  // Owned by the sender thread only.
  std::deque<SpoolRecord> lookahead_;  // read from the spool past a gap, not yet sent
  // Highest seq ever written to any stream; written under mu_ (the reader checks acks
  // against it).
  uint64_t max_sent_seq_ = 0;

  std::thread sender_;
  std::thread syncer_;
};

}  // namespace tripline::delivery
