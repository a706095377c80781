#include "aggregator/cluster/stream_sink.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/event_proto.h"
#include "tripline/v1/event.pb.h"

namespace tripline::cluster {
namespace {

using json = nlohmann::json;

// Writers racing on one sensor's record: each round re-reads it and tries again.
constexpr int kRecordRounds = 16;

Status Bad(std::string_view what) {
  return Status::Corruption("sensor record: " + std::string(what));
}

int64_t NowMs() { return SystemClock::Get().MonotonicNs() / kNanosPerMilli; }

bool Transient(const Status& s) {
  return s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kDeadlineExceeded;
}

// `call()` again while it fails for a reason that passes (the cluster electing a leader:
// "no responders", a timeout) and `deadline_ms` (steady clock) has not come.
template <typename F>
auto UntilDeadline(int64_t deadline_ms, F call) -> decltype(call()) {
  for (int round = 0;; ++round) {
    auto r = call();
    if (r.ok() || !Transient(r.status()) || NowMs() >= deadline_ms) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200, 20 << std::min(round, 3))));
  }
}

}  // namespace

StreamSpec EventsStreamSpec(int replicas) {
  StreamSpec s;
  s.name = kEventsStream;
  s.subjects = {std::string(kEventsSubjectPrefix) + ">"};
  s.replicas = replicas;
  s.duplicate_window_ms = 10 * 60 * 1000;
  return s;
}

uint32_t PartitionOfHost(std::string_view host, uint32_t partitions) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across nodes and builds
  for (unsigned char c : host) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return partitions == 0 ? 0 : static_cast<uint32_t>(h % partitions);
}

std::string PartitionSubject(uint32_t partition) {
  return kEventsSubjectPrefix + std::to_string(partition);
}

std::string EventMessageId(std::string_view sensor_id, uint64_t seq) {
  return std::string(sensor_id) + ":" + std::to_string(seq);
}

bool ParseEventMessageId(std::string_view id, std::string* sensor_id, uint64_t* seq) {
  const size_t colon = id.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == id.size()) return false;
  const std::string_view digits = id.substr(colon + 1);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n == 0) return false;
  *sensor_id = std::string(id.substr(0, colon));
  *seq = n;
  return true;
}

std::string SensorKey(std::string_view sensor_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string k = "sensor.";
  for (unsigned char c : sensor_id) {
    k += kHex[c >> 4];
    k += kHex[c & 15];
  }
  return k;
}

std::string EncodeSensorRecord(const SensorRecord& r) {
  return json{{"id", r.sensor_id},  {"host", r.host},       {"durable_seq", r.durable_seq},
              {"events", r.events}, {"missing", r.missing}, {"last_write_ns", r.last_write_ns}}
      .dump();
}

Result<SensorRecord> DecodeSensorRecord(std::string_view bytes, std::string_view sensor_id) {
  const json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  for (const char* k : {"id", "host"}) {
    if (!j.contains(k) || !j[k].is_string()) return Bad(std::string(k) + " is not a string");
  }
  for (const char* k : {"durable_seq", "events", "missing"}) {
    if (!j.contains(k) || !j[k].is_number_unsigned()) {
      return Bad(std::string(k) + " is not a non-negative integer");
    }
  }
  if (!j.contains("last_write_ns") || !j["last_write_ns"].is_number_integer()) {
    return Bad("last_write_ns is not an integer");
  }
  SensorRecord r;
  r.sensor_id = j["id"].get<std::string>();
  if (r.sensor_id != sensor_id) return Bad("it is the record of another sensor");
  r.host = j["host"].get<std::string>();
  r.durable_seq = j["durable_seq"].get<uint64_t>();
  r.events = j["events"].get<uint64_t>();
  r.missing = j["missing"].get<uint64_t>();
  r.last_write_ns = j["last_write_ns"].get<int64_t>();
  return r;
}

StreamSink::StreamSink(JetStream* js, KeyValue* sensors, StreamSinkOptions options)
    : js_(js),
      sensors_(sensors),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClock::Get()) {}

Result<std::optional<SensorRecord>> StreamSink::GetSensor(std::string_view sensor_id) {
  const std::string key = SensorKey(sensor_id);
  TL_ASSIGN_OR_RETURN(
      const std::optional<KvEntry> e,
      UntilDeadline(NowMs() + options_.publish_deadline_ms, [&] { return sensors_->Get(key); }));
  if (!e.has_value()) return std::optional<SensorRecord>();
  TL_ASSIGN_OR_RETURN(SensorRecord r, DecodeSensorRecord(e->value, sensor_id));
  return std::optional<SensorRecord>(std::move(r));
}

Result<uint64_t> StreamSink::DurableSeq(std::string_view sensor_id) {
  TL_ASSIGN_OR_RETURN(const std::optional<SensorRecord> r, GetSensor(sensor_id));
  return r.has_value() ? r->durable_seq : 0;
}

Result<AppendResult> StreamSink::AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                             const std::vector<Event>& events,
                                             std::span<const std::string_view> encoded) {
  if (first_seq == 0) return Status::InvalidArgument("stream sink: first_seq must be >= 1");
  if (!encoded.empty() && encoded.size() != events.size()) {
    return Status::InvalidArgument("stream sink: one encoding per event, or none");
  }
  const std::string key = SensorKey(sensor_id);
  // The cluster may be electing a leader (a server lost): the batch waits for it up to
  // the deadline before the sensor is told to resend.
  const int64_t deadline = NowMs() + options_.publish_deadline_ms;
  std::vector<Outgoing> out;
  size_t published_from = events.size();  // events[published_from..] are in the stream
  for (int round = 0; round < kRecordRounds; ++round) {
    TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> entry,
                        UntilDeadline(deadline, [&] { return sensors_->Get(key); }));
    SensorRecord rec;
    rec.sensor_id = std::string(sensor_id);
    if (entry.has_value()) {
      TL_ASSIGN_OR_RETURN(rec, DecodeSensorRecord(entry->value, sensor_id));
    }
    AppendResult result;
    const uint64_t durable = rec.durable_seq;
    const size_t dup =
        durable >= first_seq
            ? static_cast<size_t>(std::min<uint64_t>(events.size(), durable - first_seq + 1))
            : 0;
    result.duplicates = dup;
    result.durable_seq = durable;
    if (dup == events.size()) return result;  // nothing new: nothing to write
    if (first_seq > durable + 1) {
      result.gap_first = durable + 1;
      result.gap_last = first_seq - 1;
    }
    // Publish the new events (again, in a later round, only what this round adds).
    if (dup < published_from) {
      out.clear();
      for (size_t i = dup; i < published_from; ++i) {
        const Event& e = events[i];
        Outgoing m;
        m.subject = PartitionSubject(PartitionOfHost(e.host, options_.partitions));
        m.id = EventMessageId(sensor_id, first_seq + i);
        if (!encoded.empty()) {
          m.data = std::string(encoded[i]);
        } else {
          v1::Event pb;
          ToProto(e, &pb);
          m.data = pb.SerializeAsString();
        }
        out.push_back(std::move(m));
      }
      TL_RETURN_IF_ERROR(js_->PublishAll(out, std::max<int64_t>(1, deadline - NowMs())));
      published_from = dup;
    }
    result.stored = events.size() - dup;
    result.durable_seq = first_seq + events.size() - 1;
    rec.durable_seq = result.durable_seq;
    rec.events += result.stored;
    if (result.gap_first != 0) rec.missing += result.gap_last - result.gap_first + 1;
    rec.last_write_ns = clock_->NowNs();
    rec.host = events.back().host;
    const std::string value = EncodeSensorRecord(rec);
    const Result<uint64_t> written = UntilDeadline(deadline, [&] {
      return entry.has_value() ? sensors_->Update(key, value, entry->revision)
                               : sensors_->Create(key, value);
    });
    if (written.ok()) return result;
    const Status::Code code = written.status().code();
    if (code != Status::Code::kAborted && code != Status::Code::kAlreadyExists) {
      return written.status();  // the events are in the stream; a resend is harmless
    }
    // Another node moved the record first (the sensor on two streams): read it again.
  }
  return Status::Unavailable("stream sink: sensor " + std::string(sensor_id) +
                             "'s record kept changing under this node");
}

}  // namespace tripline::cluster
