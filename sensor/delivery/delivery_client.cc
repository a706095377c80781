#include "sensor/delivery/delivery_client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "common/failpoint.h"
#include "common/log.h"
#include "common/tls_reload.h"
#include "model/event_proto.h"
#include "sensor/delivery/atomic_file.h"
#include "sensor/delivery/sensor_id.h"
#include "tripline/v1/config.pb.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline::delivery {

struct DeliveryClient::Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> rw;
  // GUARDED_BY(DeliveryClient::mu_):
  bool hello_acked = false;
  uint64_t hello_durable = 0;
  bool broken = false;    // the reader saw the end of the stream
  bool violated = false;  // the peer acknowledged more than was sent: the stream is ended
  uint64_t batches_acked = 0;
};

namespace {

Status FromGrpc(const grpc::Status& s, const std::string& what) {
  const std::string msg = what + ": gRPC code " + std::to_string(static_cast<int>(s.error_code())) +
                          (s.error_message().empty() ? "" : ": " + s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::DEADLINE_EXCEEDED: return Status::DeadlineExceeded(msg);
    case grpc::StatusCode::CANCELLED: return Status::Aborted(msg);
    case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(msg);
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: return Status::PermissionDenied(msg);
    default: return Status::Unavailable(msg);
  }
}

}  // namespace

Result<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return Status::InvalidArgument("TLS client certificate and key must be given together");
  }
  if (tls.ca_file.empty() && tls.cert_file.empty()) {
    // Server authentication against the system's roots, nothing to watch.
    return grpc::SslCredentials(grpc::SslCredentialsOptions());
  }
  // Read once so that a missing file is a clear error now; from then on gRPC's file watcher
  // reads them again every reload_interval_s, and the next connection (after an aggregator
  // restart, say) uses a renewed certificate or CA bundle without restarting the sensor.
  for (const std::string* f : {&tls.ca_file, &tls.cert_file, &tls.key_file}) {
    if (f->empty()) continue;
    TL_ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(*f));
    if (pem.empty()) return Status::InvalidArgument("TLS file " + *f + " is empty");
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.ca_file, TlsReloadIntervalSeconds(tls.reload_interval_s));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  // Without a CA file the system's roots verify the aggregator.
  if (!tls.ca_file.empty()) options.watch_root_certs();
  if (!tls.cert_file.empty()) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

void ApplySensorConfig(const v1::SensorConfig& config, DeliveryOptions* options) {
  if (options->target.empty()) options->target = config.aggregator();
  if (!config.sensor_id().empty()) options->sensor_id = config.sensor_id();
  if (!config.spool_dir().empty()) options->spool.dir = config.spool_dir();
  if (config.spool_max_bytes() != 0) options->spool.max_bytes = config.spool_max_bytes();
  if (config.batch_max_events() != 0) options->batch_max_events = config.batch_max_events();
  if (config.batch_max_delay_ms() != 0) options->batch_max_delay_ms = config.batch_max_delay_ms();
  if (config.has_tls()) {
    const v1::TlsConfig& tls = config.tls();
    // A tls block asks for TLS, even one without ca_file (system roots) or with half a
    // client certificate (refused by Create): never clear text instead.
    options->tls.enabled = true;
    options->tls.ca_file = tls.ca_file();
    options->tls.cert_file = tls.cert_file();
    options->tls.key_file = tls.key_file();
    options->tls.server_name = tls.server_name();
    options->tls.reload_interval_s = tls.reload_interval_s();
  }
}

Result<std::unique_ptr<DeliveryClient>> DeliveryClient::Create(DeliveryOptions options,
                                                               const Clock& clock) {
  if (options.target.empty()) return Status::InvalidArgument("aggregator address not set");
  if (options.batch_max_events == 0 || options.max_in_flight_batches == 0) {
    return Status::InvalidArgument("batch_max_events and max_in_flight_batches must be > 0");
  }
  if (options.backoff_initial_ms <= 0 || options.backoff_max_ms < options.backoff_initial_ms) {
    return Status::InvalidArgument("backoff must satisfy 0 < initial <= max");
  }
  if (options.spool.clock == nullptr) options.spool.clock = &clock;
  TL_ASSIGN_OR_RETURN(auto credentials, MakeChannelCredentials(options.tls));
  TL_ASSIGN_OR_RETURN(std::unique_ptr<Spool> spool, Spool::Open(options.spool));
  std::string sensor_id = options.sensor_id;
  if (sensor_id.empty()) {
    TL_ASSIGN_OR_RETURN(sensor_id, LoadOrCreateSensorId(options.spool.dir));
  }
  const SpoolRecovery& rec = spool->recovery();
  if (rec.torn_tail_bytes || rec.corrupt_bytes || rec.bad_segments || rec.seq_skipped) {
    TL_LOG(WARNING) << "spool recovery: " << rec.records << " events kept, torn tail "
                    << rec.torn_tail_bytes << " bytes, " << rec.corrupt_regions
                    << " corrupt stretches (" << rec.corrupt_bytes << " bytes), "
                    << rec.bad_segments << " unreadable segments, " << rec.seq_skipped
                    << " sequence numbers skipped after an unclean stop";
  }
  std::unique_ptr<DeliveryClient> client(new DeliveryClient(
      std::move(options), clock, std::move(spool), std::move(sensor_id), std::move(credentials)));
  return client;
}

DeliveryClient::DeliveryClient(DeliveryOptions options, const Clock& clock,
                               std::unique_ptr<Spool> spool, std::string sensor_id,
                               std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)),
      clock_(clock),
      spool_(std::move(spool)),
      sensor_id_(std::move(sensor_id)),
      credentials_(std::move(credentials)) {
  // What a previous run left in the spool is due as soon as a stream is up.
  last_submitted_seq_ = spool_->Counters().next_seq - 1;
  sent_seq_ = spool_->recovery().acked_seq;
  if (last_submitted_seq_ > sent_seq_) first_unsent_ns_ = clock_.MonotonicNs();
  sender_ = std::thread([this] { SenderLoop(); });
  syncer_ = std::thread([this] { SyncLoop(); });
}

DeliveryClient::~DeliveryClient() { Stop(); }

void DeliveryClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = stopping_ = true;
    if (stream_ != nullptr) stream_->context.TryCancel();
    cv_.notify_all();
  }
  if (sender_.joinable()) sender_.join();
  if (syncer_.joinable()) syncer_.join();
  Status s = spool_->Close();
  if (!s.ok()) {
    TL_LOG(ERROR) << "delivery: closing the spool: " << s.ToString();
  }
}

Status DeliveryClient::Submit(const Event& event) {
  v1::Event pb;
  ToProto(event, &pb);
  pb.clear_seq();  // the spool frame carries the number
  std::string payload;
  if (!pb.SerializeToString(&payload)) return Status::Internal("cannot serialize event");
  const EventKind kind = event.kind();
  Result<AppendResult> appended = spool_->Append(kind, payload);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.submitted;
  if (!appended.ok()) {
    stats_.last_error = appended.status().ToString();
    return appended.status();
  }
  if (!appended->stored) return Status::Ok();  // counted by the spool as a drop
  ++stats_.spooled;
  // Spooled, not yet sent: the next start must send it.
  TL_FAILPOINT("delivery.after-spool");
  const uint64_t seq = appended->seq;
  // Concurrent Submit()s may finish out of order; the spool numbered them in order.
  last_submitted_seq_ = std::max(last_submitted_seq_, seq);
  bool wake = false;
  if (first_unsent_ns_ == 0) {
    first_unsent_ns_ = clock_.MonotonicNs();
    wake = true;  // arms the batch timer
  }
  if (IsPriorityKind(kind)) {
    last_priority_seq_ = std::max(last_priority_seq_, seq);
    wake = true;
  }
  if (last_submitted_seq_ - sent_seq_ >= options_.batch_max_events) wake = true;
  if (wake) cv_.notify_all();
  return Status::Ok();
}

Status DeliveryClient::Flush(int64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = last_submitted_seq_;
  for (;;) {
    if (stopping_) return Status::Aborted("delivery client stopped");
    if (stats_.durable_seq >= target || (sent_seq_ >= target && in_flight_.empty())) {
      return Status::Ok();
    }
    if (clock_.MonotonicNs() >= deadline_ns) {
      return Status::DeadlineExceeded("flush: " + std::to_string(target - sent_seq_) +
                                      " events unsent, " + std::to_string(in_flight_.size()) +
                                      " batches unacknowledged");
    }
    WaitLocked(lock, deadline_ns);
  }
}

DeliveryStats DeliveryClient::Stats() const {
  DeliveryStats out;
  uint64_t in_flight_events = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = stats_;
    for (const InFlight& b : in_flight_) in_flight_events += b.events;
    out.in_flight_batches = in_flight_.size();
  }
  out.in_flight_events = in_flight_events;
  const SpoolCounters c = spool_->Counters();
  out.spool_bytes = c.bytes;
  out.spool_drops = c.drops;
  out.spool_drops_by_kind = c.drops_by_kind;
  out.spool_write_errors = c.write_errors;
  out.next_seq = c.next_seq;
  return out;
}

void DeliveryClient::WaitLocked(std::unique_lock<std::mutex>& lock, int64_t deadline_ns) {
  if (deadline_ns == 0) {
    cv_.wait(lock);
    return;
  }
  // Real time stands in for the injected clock's time while waiting; re-checking at least
  // every second keeps a FakeClock-driven test from waiting on a stale estimate.
  const int64_t remaining = deadline_ns - clock_.MonotonicNs();
  if (remaining <= 0) return;
  cv_.wait_for(lock, std::chrono::nanoseconds(std::min<int64_t>(remaining, kNanosPerSecond)));
}

void DeliveryClient::SyncLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(options_.sync_interval_ms, 1)),
                 [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Status s = spool_->Sync();
    if (!s.ok()) {
      TL_LOG(ERROR) << "delivery: spool sync: " << s.ToString();
    }
    lock.lock();
  }
}

void DeliveryClient::SleepBackoff(int attempt) {
  static thread_local std::minstd_rand rng(std::random_device{}());
  int64_t base = options_.backoff_initial_ms;
  for (int i = 0; i < attempt && base < options_.backoff_max_ms; ++i) base *= 2;
  base = std::min(base, options_.backoff_max_ms);
  // Jitter over the upper half: sensors that lost the same aggregator do not come back in
  // lockstep, and the delay still grows.
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  const int64_t deadline = clock_.MonotonicNs() + jitter(rng) * kNanosPerMilli;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && clock_.MonotonicNs() < deadline) WaitLocked(lock, deadline);
}

void DeliveryClient::SenderLoop() {
  int attempt = 0;
  for (;;) {
    bool healthy = false;
    Status s = RunStream(&healthy);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = false;
      if (stopping_) return;
      ++stats_.reconnects;
      stats_.last_error = s.ToString();
    }
    if (healthy) attempt = 0;
    TL_LOG(WARNING) << "delivery: stream to " << options_.target << " ended (" << s.ToString()
                    << "); reconnecting, attempt " << attempt + 1;
    SleepBackoff(attempt);
    if (attempt < 30) ++attempt;
  }
}

void DeliveryClient::ReaderLoop(Stream* stream) {
  v1::IngestAck ack;
  while (stream->rw->Read(&ack)) {
    HandleAck(ack.durable_seq(), ack.error(), ack.rejected_first_seq());
  }
  std::lock_guard<std::mutex> lock(mu_);
  stream->broken = true;
  cv_.notify_all();
}

void DeliveryClient::HandleAck(uint64_t durable_seq, const std::string& error,
                               uint64_t rejected_first_seq) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stream* s = stream_;
    if (s == nullptr) return;
    last_ack_ns_ = clock_.MonotonicNs();
    if (!s->hello_acked) {
      s->hello_acked = true;
      s->hello_durable = durable_seq;
      cv_.notify_all();
      return;
    }
    if (s->violated) return;
    // Nothing beyond what went out on a stream can be durable; trimming the spool on such a
    // claim would delete events never sent. (An ack that covers a previous process's sends
    // also lands here; the next hello, checked against what the spool numbered, settles it.)
    const uint64_t highest_sent = std::max(sent_seq_, max_sent_seq_);
    if (durable_seq > highest_sent) {
      ProtocolViolationLocked("acknowledgement", durable_seq, highest_sent);
      s->violated = true;
      s->context.TryCancel();
      cv_.notify_all();
      return;
    }
    if (!error.empty()) {
      // Malformed in the aggregator's eyes: sending it again would fail again. Count it,
      // remember not to resend it, move on.
      auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                             [&](const InFlight& b) { return b.first_seq == rejected_first_seq; });
      uint64_t last = rejected_first_seq;
      uint64_t events = 0;
      if (it != in_flight_.end()) {
        last = it->last_seq;
        events = it->events;
        in_flight_.erase(it);
      }
      ++stats_.rejected_batches;
      stats_.rejected_events += events;
      if (rejected_first_seq != 0) rejected_.emplace_back(rejected_first_seq, last);
      stats_.last_error = "aggregator rejected seq " + std::to_string(rejected_first_seq) + ".." +
                          std::to_string(last) + ": " + error;
      TL_LOG(ERROR) << "delivery: " << stats_.last_error;
    }
    stats_.durable_seq = std::max(stats_.durable_seq, durable_seq);
    while (!in_flight_.empty() && in_flight_.front().last_seq <= durable_seq) {
      stats_.acked += in_flight_.front().events;
      ++s->batches_acked;
      in_flight_.pop_front();
    }
    std::erase_if(rejected_, [&](const auto& r) { return r.second <= durable_seq; });
    cv_.notify_all();
  }
  // Acknowledged, not yet recorded in the spool: the next start must not store it twice.
  TL_FAILPOINT("delivery.after-ack-received");
  Status st = spool_->Ack(durable_seq);
  if (!st.ok()) {
    TL_LOG(ERROR) << "delivery: spool ack: " << st.ToString();
  }
}

void DeliveryClient::ProtocolViolationLocked(const std::string& what, uint64_t claimed,
                                             uint64_t highest) {
  ++stats_.protocol_violations;
  stats_.last_error = "protocol violation: the aggregator's " + what + " claims durable seq " +
                      std::to_string(claimed) + " but this sensor has " +
                      (what == "hello reply" ? "numbered" : "sent") + " only up to " +
                      std::to_string(highest) + "; spool kept, reconnecting";
  TL_LOG(ERROR) << "delivery: " << options_.target << ": " << stats_.last_error;
}

bool DeliveryClient::IsRejectedLocked(uint64_t seq) const {
  for (const auto& [first, last] : rejected_) {
    if (seq >= first && seq <= last) return true;
  }
  return false;
}

bool DeliveryClient::BatchReadyLocked(int64_t now_ns, int64_t* wake_ns) const {
  *wake_ns = 0;
  if (last_submitted_seq_ <= sent_seq_) return false;
  if (sent_seq_ < resend_until_ || last_priority_seq_ > sent_seq_ || first_unsent_ns_ == 0 ||
      last_submitted_seq_ - sent_seq_ >= options_.batch_max_events) {
    return true;
  }
  const int64_t due = first_unsent_ns_ + int64_t{options_.batch_max_delay_ms} * kNanosPerMilli;
  if (now_ns >= due) return true;
  *wake_ns = due;
  return false;
}

Status DeliveryClient::NextBatch(uint64_t last_submitted, v1::IngestRequest* request,
                                 InFlight* batch) {
  uint64_t after;
  std::vector<std::pair<uint64_t, uint64_t>> rejected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    after = sent_seq_;
    rejected = rejected_;
  }
  auto is_rejected = [&](uint64_t seq) {
    for (const auto& [first, last] : rejected) {
      if (seq >= first && seq <= last) return true;
    }
    return false;
  };
  while (!lookahead_.empty() && lookahead_.front().seq <= after) lookahead_.pop_front();
  if (lookahead_.empty()) {
    std::vector<SpoolRecord> records;
    TL_RETURN_IF_ERROR(spool_->Read(after, options_.batch_max_events, &records));
    for (auto& r : records) lookahead_.push_back(std::move(r));
  }
  while (!lookahead_.empty() && is_rejected(lookahead_.front().seq)) lookahead_.pop_front();

  *batch = InFlight{};
  v1::EventBatch* out = request->mutable_batch();
  out->set_sensor_id(sensor_id_);
  uint64_t bytes = 0;
  while (!lookahead_.empty() && batch->events < options_.batch_max_events) {
    SpoolRecord& rec = lookahead_.front();
    if (batch->events > 0 &&
        (rec.seq != batch->first_seq + batch->events ||
         bytes + rec.payload.size() > options_.batch_max_bytes || is_rejected(rec.seq))) {
      break;  // a gap, a full batch, or a rejected range: the batch ends here
    }
    v1::Event* ev = out->add_events();
    if (!ev->ParseFromString(rec.payload)) {
      // The CRC matched, so this is not bit rot but an event this code cannot read (a
      // different build wrote it). Treat it like an aggregator rejection.
      out->mutable_events()->RemoveLast();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.rejected_events;
      rejected_.emplace_back(rec.seq, rec.seq);
      stats_.last_error = "unreadable spooled event seq " + std::to_string(rec.seq);
      TL_LOG(ERROR) << "delivery: " << stats_.last_error;
      lookahead_.pop_front();
      if (batch->events > 0) break;
      continue;
    }
    ev->set_seq(rec.seq);
    if (batch->events == 0) batch->first_seq = rec.seq;
    batch->last_seq = rec.seq;
    ++batch->events;
    bytes += rec.payload.size();
    lookahead_.pop_front();
  }
  if (batch->events == 0) {
    // Nothing readable up to last_submitted: evicted or rejected. Move past it.
    std::lock_guard<std::mutex> lock(mu_);
    sent_seq_ = std::max(sent_seq_, last_submitted);
    if (sent_seq_ >= last_submitted_seq_) first_unsent_ns_ = 0;
    cv_.notify_all();
    return Status::Ok();
  }
  out->set_first_seq(batch->first_seq);
  return Status::Ok();
}

Status DeliveryClient::RunStream(bool* healthy) {
  grpc::ChannelArguments args;
  // Each attempt gets a fresh channel with its own subchannel, and gRPC's own reconnect
  // backoff is kept within ours, so our backoff alone decides when to try again.
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also gRPC's minimum connect timeout: how long one
  // connection attempt (TCP, the TLS handshake, the HTTP/2 settings) may take. It gets the
  // hello's whole time: with the short initial backoff instead, a link whose first
  // exchange takes longer than 100 ms (a long round trip, a loaded machine) timed out at
  // every attempt and never connected.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.backoff_initial_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.hello_timeout_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.backoff_max_ms));
  if (options_.tls.enabled && !options_.tls.server_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls.server_name);
  }
  auto channel = grpc::CreateCustomChannel(options_.target, credentials_, args);
  auto stub = v1::Ingest::NewStub(channel);

  Stream s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Aborted("stopping");
    stream_ = &s;
  }
  const int64_t started_ns = clock_.MonotonicNs();
  s.rw = stub->Stream(&s.context);
  v1::IngestRequest hello;
  v1::SensorHello* h = hello.mutable_hello();
  h->set_sensor_id(sensor_id_);
  h->set_host(options_.host);
  h->set_host_id(options_.host_id);
  h->set_version(options_.version);
  h->set_boot_time_ns(options_.boot_time_ns);
  bool write_failed = !s.rw->Write(hello);
  std::thread reader;
  if (!write_failed) reader = std::thread([this, &s] { ReaderLoop(&s); });

  Status result;
  if (!write_failed) {
    // 1. The hello's ack says where the aggregator's durable data ends.
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t hello_deadline = started_ns + options_.hello_timeout_ms * kNanosPerMilli;
    while (!s.hello_acked && !s.broken && !stopping_ && clock_.MonotonicNs() < hello_deadline) {
      WaitLocked(lock, hello_deadline);
    }
    if (!s.hello_acked && !s.broken && !stopping_) {
      result = Status::DeadlineExceeded("no acknowledgement of the hello");
    }
    if (s.hello_acked && !stopping_) {
      // Every number up to the spool's next was handed out (or leased) by this sensor, so
      // a durable seq beyond it was never sent by this spool: refuse to trim anything.
      const uint64_t numbered = spool_->Counters().next_seq - 1;
      if (s.hello_durable > numbered) {
        ProtocolViolationLocked("hello reply", s.hello_durable, numbered);
        s.violated = true;
        result = Status::Unavailable(stats_.last_error);
      }
    }
    if (s.hello_acked && !stopping_ && result.ok()) {
      const uint64_t durable = s.hello_durable;
      stats_.connected = true;
      stats_.durable_seq = durable;
      while (!in_flight_.empty() && in_flight_.front().last_seq <= durable) {
        stats_.acked += in_flight_.front().events;
        in_flight_.pop_front();
      }
      in_flight_.clear();  // the rest was lost with the old stream: resend below
      std::erase_if(rejected_, [&](const auto& r) { return r.second <= durable; });
      sent_seq_ = durable;
      resend_until_ = last_submitted_seq_;
      if (last_submitted_seq_ > durable && first_unsent_ns_ == 0) {
        first_unsent_ns_ = clock_.MonotonicNs();
      }
      last_ack_ns_ = clock_.MonotonicNs();
      lookahead_.clear();
      cv_.notify_all();
      lock.unlock();
      Status st = spool_->Ack(durable);
      if (!st.ok()) {
        TL_LOG(ERROR) << "delivery: spool after hello: " << st.ToString();
      }
      lock.lock();

      // 2. Stream batches while the window allows.
      while (result.ok()) {
        int64_t wake = 0;
        bool ready = false;
        while (!stopping_ && !s.broken && !s.violated) {
          const int64_t now = clock_.MonotonicNs();
          int64_t ack_deadline = 0;
          if (!in_flight_.empty()) {
            ack_deadline = std::max(in_flight_.front().sent_ns, last_ack_ns_) +
                           options_.ack_timeout_ms * kNanosPerMilli;
            if (now >= ack_deadline) {
              result = Status::DeadlineExceeded("no acknowledgement within " +
                                                std::to_string(options_.ack_timeout_ms) + " ms");
              break;
            }
          }
          const bool window_open = in_flight_.size() < options_.max_in_flight_batches;
          if (window_open && BatchReadyLocked(now, &wake)) {
            ready = true;
            break;
          }
          int64_t deadline = window_open ? wake : 0;
          if (ack_deadline != 0 && (deadline == 0 || ack_deadline < deadline)) {
            deadline = ack_deadline;
          }
          WaitLocked(lock, deadline);
        }
        if (!ready) break;
        const uint64_t last_submitted = last_submitted_seq_;
        lock.unlock();
        v1::IngestRequest request;
        InFlight batch;
        Status read = NextBatch(last_submitted, &request, &batch);
        if (!read.ok()) {
          lock.lock();
          result = read.WithContext("reading the spool");
          break;
        }
        if (batch.events == 0) {
          lock.lock();
          continue;
        }
        batch.sent_ns = clock_.MonotonicNs();
        lock.lock();
        // Recorded before the write: the ack can arrive before Write() returns. If the write
        // fails, the next stream's hello settles what is in flight.
        in_flight_.push_back(batch);
        sent_seq_ = std::max(sent_seq_, batch.last_seq);
        if (sent_seq_ >= last_submitted_seq_) first_unsent_ns_ = 0;
        ++stats_.batches_sent;
        stats_.sent_events += batch.events;
        if (batch.first_seq <= max_sent_seq_) {
          stats_.resent_events += std::min(batch.last_seq, max_sent_seq_) - batch.first_seq + 1;
        }
        max_sent_seq_ = std::max(max_sent_seq_, batch.last_seq);
        lock.unlock();
        const bool written = s.rw->Write(request);
        lock.lock();
        if (!written) {
          write_failed = true;
          break;
        }
      }
    }
    if (s.violated && result.ok()) result = Status::Unavailable(stats_.last_error);
    *healthy = s.hello_acked && !s.violated &&
               (s.batches_acked > 0 || clock_.MonotonicNs() - started_ns >= kNanosPerSecond);
    if (!s.broken && !write_failed) s.context.TryCancel();
  }
  if (reader.joinable()) reader.join();
  grpc::Status finish = s.rw->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    stats_.connected = false;
  }
  if (!result.ok()) return result;
  if (!finish.ok()) return FromGrpc(finish, "ingest stream");
  return Status::Unavailable("ingest stream closed by the aggregator");
}

}  // namespace tripline::delivery
