#include "aggregator/ingest_service.h"

#include <climits>

#include "common/failpoint.h"
#include "common/log.h"

namespace tripline {
// One per stream. gRPC owns the lifetime: OnDone is the last callback, and deletes.
// Exactly one of Read/Write is outstanding at a time, so callbacks never overlap and the
// members need no lock.
class IngestService::Reactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Reactor(IngestService* service, grpc::CallbackServerContext* context)
      : service_(service), peer_(context->peer()) {
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
    auto durable = service_->store_->DurableSeq(id->sensor_id);
    if (!durable.ok()) {
      Fail(grpc::StatusCode::UNAVAILABLE, "store: " + durable.status().ToString());
      return;
    }
    identity_ = std::move(id).value();
    service_->OnHello(*identity_);
    TL_LOG(INFO) << "sensor " << identity_->sensor_id << " (" << identity_->host
                 << ") connected from " << peer_ << ", durable_seq " << *durable;
    v1::IngestAck ack;
    ack.set_durable_seq(*durable);
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
    // The events' own bytes when the request is the plain case; else the store encodes.
    if (!FindEventEncodings(bytes, &encoded_) || encoded_.size() != batch->events.size()) {
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
  std::optional<SensorIdentity> identity_;
  uint32_t violations_ = 0;
};

IngestService::IngestService(Store* store, IngestObserver* observer, IngestOptions options)
    : store_(store),
      observer_(observer),
      options_(options),
      clock_(options.clock ? *options.clock : SystemClock::Get()) {}

IngestService::~IngestService() = default;

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  return new Reactor(this, context);
}

void IngestService::OnHello(const SensorIdentity& id) {
  streams_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  SensorPresence& s = sensors_[id.sensor_id];
  s.sensor_id = id.sensor_id;
  s.host = id.host;
  s.version = id.version;
  ++s.streams;
  s.last_seen_ns = clock_.NowNs();
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
