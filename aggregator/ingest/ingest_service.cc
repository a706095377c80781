#include "aggregator/ingest/ingest_service.h"

#include <climits>

#include "common/failpoint.h"
#include "common/log.h"

namespace tripline {
namespace {

// Whom max_streams_per_peer counts: the certificate's identity, or in clear text the
// address without its port.
std::string PeerKey(const PeerIdentity& who, const std::string& peer) {
  if (who.unrestricted) return "address " + peer.substr(0, peer.rfind(':'));
  std::string key = "certificate";
  for (const std::string& h : who.hosts) key += " host:" + h;
  for (const std::string& id : who.sensor_ids) key += " id:" + id;
  return key;
}

}  // namespace

// One per stream. gRPC owns the lifetime: OnDone is the last callback, and deletes.
// Exactly one of Read/Write is outstanding at a time, so callbacks never overlap and the
// members need no lock.
class IngestService::Reactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Reactor(IngestService* service, grpc::CallbackServerContext* context)
      : service_(service), peer_(context->peer()) {
    // Only sensor certificates stream events; an operator's may not forge them.
    PeerIdentity anyone;
    anyone.unrestricted = true;
    anyone.name = peer_;
    Result<PeerIdentity> who = std::move(anyone);
    if (service_->options_.access != nullptr) {
      who = service_->options_.access->Authorize(*context, "Ingest.Stream", {Role::kSensor});
    }
    if (!who.ok()) {
      service_->denied_.fetch_add(1);
      Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, who.status().message()));
      return;
    }
    who_ = std::move(who).value();
    peer_key_ = PeerKey(who_, peer_);
    if (!service_->AcquireStreamSlot(peer_key_)) {
      service_->over_limit_.fetch_add(1);
      TL_LOG(WARNING) << "refused ingest stream from " << who_.name << ": "
                      << service_->options_.max_streams_per_peer << " streams already open";
      peer_key_.clear();
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many ingest streams open from this peer"));
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The sensor half-closed or the call was cancelled; either way the stream is over.
      Finish(grpc::Status::OK);
      return;
    }
    // The request's bytes in one piece: parsed from there, and the batch's events are
    // stored as these bytes (no second encoding).
    std::vector<grpc::Slice> slices;
    bool parsed = in_.Dump(&slices).ok();
    std::string_view bytes;
    std::string flat;  // the bytes when they came in more than one slice
    if (parsed && slices.size() == 1) {
      bytes = std::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
    } else if (parsed) {
      flat.reserve(in_.Length());
      for (const auto& slice : slices) {
        flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      bytes = flat;
    }
    in_.Clear();
    // Counted on the wire first: parsing allocates per event and per field.
    const size_t max_events = service_->options_.max_batch_events;
    const uint64_t max_fields = MaxRequestFields(max_events);
    const WireRequestShape shape = InspectIngestRequest(bytes, max_events, max_fields);
    parsed = parsed && shape.walked;  // what the walk cannot follow is not parsed either
    if (parsed && (shape.events > max_events || shape.fields > max_fields)) {
      const std::string why = shape.events > max_events
                                  ? "batch has more than " + std::to_string(max_events) +
                                        " events (counted before parsing)"
                                  : "request has more than " + std::to_string(max_fields) +
                                        " fields (counted before parsing)";
      if (!identity_) {
        Fail(grpc::StatusCode::INVALID_ARGUMENT, why);
      } else {
        Reject(why, shape.first_seq);
      }
      return;
    }
    parsed = parsed && bytes.size() <= static_cast<size_t>(INT_MAX) &&
             request_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    if (!parsed) {
      request_.Clear();
      if (!identity_) {
        Fail(grpc::StatusCode::INVALID_ARGUMENT, "first message is not an IngestRequest");
        return;
      }
      Reject("request does not parse as an IngestRequest (invalid UTF-8 in a string field?)", 0);
      return;
    }
    switch (request_.msg_case()) {
      case v1::IngestRequest::kHello: HandleHello(); return;
      case v1::IngestRequest::kBatch: HandleBatch(bytes); return;
      case v1::IngestRequest::MSG_NOT_SET: break;
    }
    if (!identity_) {
      Fail(grpc::StatusCode::INVALID_ARGUMENT, "first message must be a SensorHello");
      return;
    }
    Reject("request carries neither hello nor batch", 0);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "ack could not be sent"));
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override {
    if (!peer_key_.empty()) service_->ReleaseStreamSlot(peer_key_);
    if (identity_) service_->OnStreamDone(identity_->sensor_id);
    delete this;
  }

 private:
  void HandleHello() {
    if (identity_) {
      Reject("second SensorHello on one stream", 0);
      return;
    }
    auto id = ValidateHello(request_.hello());
    if (!id.ok()) {
      Fail(grpc::StatusCode::INVALID_ARGUMENT, id.status().message());
      return;
    }
    // The certificate says which host (and optionally which sensor ids) this peer speaks
    // for; a sensor id already stored for another host stays that host's.
    if (!who_.unrestricted) {
      if (who_.hosts.empty()) {
        Deny("the certificate names no host (a sensor certificate needs tripline:host:NAME)");
        return;
      }
      if (!who_.MayUseSensorId(id->sensor_id)) {
        Deny("sensor id " + id->sensor_id + " is not one of the certificate's tripline:sensor-id");
        return;
      }
      if (!who_.MayWriteHost(id->host)) {
        Deny("hello names host '" + id->host + "', not a host of the certificate");
        return;
      }
    }
    auto record = service_->store_->GetSensor(id->sensor_id);
    if (!record.ok()) {
      Fail(grpc::StatusCode::UNAVAILABLE, "store: " + record.status().ToString());
      return;
    }
    if (!who_.unrestricted && record->has_value() && !(*record)->host.empty() &&
        !who_.MayWriteHost((*record)->host)) {
      Deny("sensor id " + id->sensor_id + " belongs to host '" + (*record)->host + "'");
      return;
    }
    if (Status bound = service_->OnHello(*id, who_); !bound.ok()) {
      if (bound.code() == Status::Code::kResourceExhausted) {
        Fail(grpc::StatusCode::RESOURCE_EXHAUSTED, bound.message());
      } else {
        Deny(bound.message());
      }
      return;
    }
    identity_ = std::move(id).value();
    durable_seq_ = record->has_value() ? (*record)->durable_seq : 0;
    TL_LOG(INFO) << "sensor " << identity_->sensor_id << " (" << identity_->host
                 << ") connected from " << peer_ << ", durable_seq " << durable_seq_;
    v1::IngestAck ack;
    ack.set_durable_seq(durable_seq_);
    Write(ack);
  }

  // `bytes` is the request's encoding, alive for the call.
  void HandleBatch(std::string_view bytes) {
    if (!identity_) {
      Fail(grpc::StatusCode::INVALID_ARGUMENT, "first message must be a SensorHello");
      return;
    }
    const v1::EventBatch& wire = request_.batch();
    auto batch = ValidateBatch(wire, identity_->sensor_id, service_->options_.max_batch_events);
    if (!batch.ok()) {
      Reject(batch.status().message(), wire.first_seq());
      return;
    }
    if (!who_.unrestricted) {
      for (const Event& e : batch->events) {
        if (!who_.MayWriteHost(e.host)) {
          Deny("event seq " + std::to_string(e.seq) + " names host '" + e.host +
               "', not a host of the certificate");
          return;
        }
      }
    }
    if (batch->first_seq > durable_seq_ + 1 &&
        batch->first_seq - durable_seq_ - 1 > kSeqJumpAllowance) {
      // Far ahead of what this stream knows: judge against the store's record (another
      // stream of the sensor may have moved it) and the time since its last batch.
      auto record = service_->store_->GetSensor(identity_->sensor_id);
      if (!record.ok()) {
        Fail(grpc::StatusCode::UNAVAILABLE, "store: " + record.status().ToString());
        return;
      }
      const uint64_t durable = record->has_value() ? (*record)->durable_seq : 0;
      const int64_t last_write = record->has_value() ? (*record)->last_write_ns : 0;
      const uint64_t allowed = MaxSequenceJump(durable, last_write, service_->clock_.NowNs());
      if (batch->first_seq > durable + 1 && batch->first_seq - durable - 1 > allowed) {
        Deny("batch first_seq " + std::to_string(batch->first_seq) + " skips " +
             std::to_string(batch->first_seq - durable - 1) + " sequence numbers past durable " +
             std::to_string(durable) + " (at most " + std::to_string(allowed) +
             " now; see docs/security.md)");
        return;
      }
    }
    const uint64_t clamped =
        ClampEventTimes(&batch->events, service_->clock_.NowNs(),
                        service_->options_.max_future_skew_ns, service_->options_.max_event_age_ns);
    if (clamped > 0) {
      service_->clamped_.fetch_add(clamped);
      TL_LOG(WARNING) << "sensor " << identity_->sensor_id << ": " << clamped
                      << " event time(s) in batch " << batch->first_seq
                      << " outside the clock skew window, clamped";
    }
    // The events' own bytes when the request is the plain case and nothing was changed;
    // else the store encodes.
    if (clamped > 0 || !FindEventEncodings(bytes, &encoded_) ||
        encoded_.size() != batch->events.size()) {
      encoded_.clear();
    }
    auto stored = service_->store_->AppendBatch(identity_->sensor_id, batch->first_seq,
                                                batch->events, encoded_);
    encoded_.clear();
    if (!stored.ok()) {
      // Not acknowledged: the sensor keeps the batch and resends it on its next stream.
      Fail(grpc::StatusCode::UNAVAILABLE, "store: " + stored.status().ToString());
      return;
    }
    service_->OnStored(identity_->sensor_id, *stored);
    durable_seq_ = stored->durable_seq;
    if (stored->gap_first != 0) {
      TL_LOG(WARNING) << "sensor " << identity_->sensor_id << " skipped seq " << stored->gap_first
                      << ".." << stored->gap_last << " (recorded as missing)";
    }
    if (stored->stored > 0 && service_->observer_ != nullptr) {
      std::vector<Event>& fresh = batch->events;
      fresh.erase(fresh.begin(), fresh.begin() + static_cast<ptrdiff_t>(stored->duplicates));
      service_->observer_->OnDurable(identity_->sensor_id, std::move(fresh));
    }
    // Durable, not yet acknowledged: the sensor must neither lose nor double the batch.
    TL_FAILPOINT("ingest.after-durable-write");
    v1::IngestAck ack;
    ack.set_durable_seq(stored->durable_seq);
    Write(ack);
  }

  // Refuses one request and keeps the stream, unless the stream has misbehaved too often.
  void Reject(const std::string& why, uint64_t first_seq) {
    service_->rejected_.fetch_add(1);
    ++violations_;
    const std::string who = identity_ ? identity_->sensor_id : peer_;
    TL_LOG(WARNING) << "rejected request from " << who << ": " << why;
    if (violations_ >= service_->options_.max_violations) {
      Fail(grpc::StatusCode::INVALID_ARGUMENT,
           "too many rejected requests (" + std::to_string(violations_) + "); last: " + why);
      return;
    }
    uint64_t durable = 0;
    if (identity_) {
      auto d = service_->store_->DurableSeq(identity_->sensor_id);
      if (!d.ok()) {
        Fail(grpc::StatusCode::UNAVAILABLE, "store: " + d.status().ToString());
        return;
      }
      durable = *d;
    }
    v1::IngestAck ack;
    ack.set_durable_seq(durable);
    ack.set_error(why);
    ack.set_rejected_first_seq(first_seq);
    Write(ack);
  }

  void Write(const v1::IngestAck& ack) {
    out_.Clear();
    bool own_buffer = false;
    const grpc::Status s =
        grpc::SerializationTraits<v1::IngestAck>::Serialize(ack, &out_, &own_buffer);
    if (!s.ok()) {
      Fail(grpc::StatusCode::INTERNAL, "cannot serialize ack: " + s.error_message());
      return;
    }
    StartWrite(&out_);
  }

  // Ends the stream of a peer that claimed what its certificate does not allow, or a
  // sequence number it cannot have reached. Nothing of the request is stored; the sensor's
  // record, and every other sensor's, stay as they were.
  void Deny(const std::string& why) {
    service_->denied_.fetch_add(1);
    TL_LOG(WARNING) << "refused sensor " << (identity_ ? identity_->sensor_id : "(hello)")
                    << " from " << who_.name << ": " << why;
    Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why));
  }

  void Fail(grpc::StatusCode code, const std::string& why) {
    service_->fatal_.fetch_add(1);
    TL_LOG(WARNING) << "ending ingest stream of " << (identity_ ? identity_->sensor_id : peer_)
                    << ": " << why;
    Finish(grpc::Status(code, why));
  }

  IngestService* const service_;
  const std::string peer_;
  grpc::ByteBuffer in_;   // the request being read
  grpc::ByteBuffer out_;  // the ack being written; alive until OnWriteDone
  // Reused: parsing into it again reuses the events and strings of earlier requests.
  v1::IngestRequest request_;
  std::vector<std::string_view> encoded_;  // the batch's events' bytes, during HandleBatch
  PeerIdentity who_;                       // from the certificate; unrestricted in clear text
  std::string peer_key_;  // the stream slot held (AcquireStreamSlot); empty for none
  std::optional<SensorIdentity> identity_;
  uint64_t durable_seq_ = 0;  // as of this stream's latest hello or stored batch
  uint32_t violations_ = 0;
};

IngestService::IngestService(IngestSink* store, IngestObserver* observer, IngestOptions options)
    : store_(store),
      observer_(observer),
      options_(options),
      clock_(options.clock ? *options.clock : SystemClock::Get()) {}

IngestService::~IngestService() = default;

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  return new Reactor(this, context);
}

Status IngestService::OnHello(const SensorIdentity& id, const PeerIdentity& who) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!who.unrestricted) {
    // A sensor id in use (or seen) since start stays with the host that said hello first.
    const auto it = sensors_.find(id.sensor_id);
    if (it != sensors_.end() && !it->second.host.empty() && !who.MayWriteHost(it->second.host)) {
      return Status::PermissionDenied("sensor id " + id.sensor_id + " belongs to host '" +
                                      it->second.host + "'");
    }
  }
  if (sensors_.size() >= options_.max_presence && !sensors_.contains(id.sensor_id)) {
    // Bounded: the sensor seen longest ago among those not connected gives way.
    auto oldest = sensors_.end();
    for (auto it = sensors_.begin(); it != sensors_.end(); ++it) {
      if (it->second.streams == 0 &&
          (oldest == sensors_.end() || it->second.last_seen_ns < oldest->second.last_seen_ns)) {
        oldest = it;
      }
    }
    if (oldest == sensors_.end()) {
      return Status::ResourceExhausted(std::to_string(sensors_.size()) +
                                       " sensors connected, the most this aggregator tracks");
    }
    sensors_.erase(oldest);
    presence_evicted_.fetch_add(1);
  }
  streams_.fetch_add(1);
  SensorPresence& s = sensors_[id.sensor_id];
  s.sensor_id = id.sensor_id;
  s.host = id.host;
  s.version = id.version;
  ++s.streams;
  s.last_seen_ns = clock_.NowNs();
  return Status::Ok();
}

bool IngestService::AcquireStreamSlot(const std::string& peer_key) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t& n = streams_per_peer_[peer_key];
  if (n >= options_.max_streams_per_peer) {
    if (n == 0) streams_per_peer_.erase(peer_key);
    return false;
  }
  ++n;
  return true;
}

void IngestService::ReleaseStreamSlot(const std::string& peer_key) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = streams_per_peer_.find(peer_key);
  if (it != streams_per_peer_.end() && --it->second == 0) streams_per_peer_.erase(it);
}

void IngestService::OnStreamDone(const std::string& sensor_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sensors_.find(sensor_id);
  if (it != sensors_.end() && it->second.streams > 0) --it->second.streams;
  TL_LOG(INFO) << "sensor " << sensor_id << " stream closed";
}

void IngestService::OnStored(const std::string& sensor_id, const AppendResult& r) {
  batches_.fetch_add(1);
  events_.fetch_add(r.stored);
  duplicates_.fetch_add(r.duplicates);
  if (r.gap_first != 0) gaps_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sensors_.find(sensor_id);
  if (it != sensors_.end()) it->second.last_seen_ns = clock_.NowNs();
  const int64_t second = clock_.MonotonicNs() / kNanosPerSecond;
  RateBucket& b = rate_[second % 60];
  if (b.second != second) b = RateBucket{second, 0};
  b.events += r.stored;
}

IngestCounters IngestService::counters() const {
  IngestCounters c;
  c.streams = streams_.load();
  c.batches = batches_.load();
  c.events = events_.load();
  c.duplicates = duplicates_.load();
  c.rejected_requests = rejected_.load();
  c.fatal_streams = fatal_.load();
  c.gaps = gaps_.load();
  c.denied_streams = denied_.load();
  c.events_time_clamped = clamped_.load();
  c.streams_over_peer_limit = over_limit_.load();
  c.presence_evicted = presence_evicted_.load();
  return c;
}

std::vector<SensorPresence> IngestService::Sensors() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SensorPresence> out;
  out.reserve(sensors_.size());
  for (const auto& [id, s] : sensors_) out.push_back(s);
  return out;
}

uint32_t IngestService::SensorsConnected() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t n = 0;
  for (const auto& [id, s] : sensors_) n += s.streams > 0 ? 1 : 0;
  return n;
}

double IngestService::EventsPerSecond() const {
  const int64_t now = clock_.MonotonicNs() / kNanosPerSecond;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const auto& b : rate_) {
    if (b.second > now - 60 && b.second <= now) total += b.events;
  }
  return static_cast<double>(total) / 60.0;
}

}  // namespace tripline
