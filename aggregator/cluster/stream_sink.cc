#include "aggregator/cluster/stream_sink.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "aggregator/ingest/ingest_validation.h"
#include "common/fnv.h"
#include "model/event_proto.h"
#include "tripline/v1/cluster.pb.h"
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
  // FNV-1a: stable across nodes and builds.
  return partitions == 0 ? 0 : static_cast<uint32_t>(Fnv1a64(host) % partitions);
}

std::string PartitionSubject(uint32_t partition) {
  return kEventsSubjectPrefix + std::to_string(partition);
}

std::string BatchMessageId(std::string_view sensor_id, uint64_t first_seq, uint64_t last_seq) {
  std::string id(sensor_id);
  id += ':';
  id += std::to_string(first_seq);
  id += '-';
  id += std::to_string(last_seq);
  return id;
}

namespace {

bool ParseSeq(std::string_view digits, uint64_t* out) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n == 0) {
    return false;
  }
  *out = n;
  return true;
}

Status BadBatch(std::string_view what) {
  return Status::InvalidArgument("events message: " + std::string(what));
}

}  // namespace

bool ParseBatchMessageId(std::string_view id, std::string* sensor_id, uint64_t* first_seq,
                         uint64_t* last_seq) {
  const size_t colon = id.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view range = id.substr(colon + 1);
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  uint64_t first = 0;
  uint64_t last = 0;
  if (!ParseSeq(range.substr(0, dash), &first) || !ParseSeq(range.substr(dash + 1), &last) ||
      last < first) {
    return false;
  }
  *sensor_id = std::string(id.substr(0, colon));
  *first_seq = first;
  *last_seq = last;
  return true;
}

std::string EncodePartitionBatch(std::string_view sensor_id, std::span<const uint64_t> seqs,
                                 std::span<const std::string_view> encoded,
                                 std::span<const uint64_t> copies) {
  v1::PartitionBatch b;
  for (uint64_t seq : copies) b.add_copies(seq);
  b.set_sensor_id(std::string(sensor_id));
  b.mutable_seqs()->Reserve(static_cast<int>(seqs.size()));
  for (uint64_t seq : seqs) b.add_seqs(seq);
  b.mutable_events()->Reserve(static_cast<int>(encoded.size()));
  for (std::string_view e : encoded) b.add_events(e.data(), e.size());
  return b.SerializeAsString();
}

Result<PartitionEvents> DecodePartitionBatch(std::string_view bytes) {
  v1::PartitionBatch b;
  if (bytes.size() > kMaxPartitionMessageBytes * 4 ||
      !b.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return BadBatch("not a tripline.v1.PartitionBatch");
  }
  if (!ValidSensorId(b.sensor_id())) {
    return BadBatch("sensor_id is empty, too long or not printable ASCII without spaces");
  }
  if (b.events_size() == 0) return BadBatch("no events");
  if (b.seqs_size() != b.events_size()) {
    return BadBatch(std::to_string(b.seqs_size()) + " sequence numbers for " +
                    std::to_string(b.events_size()) + " events");
  }
  PartitionEvents out;
  out.sensor_id = b.sensor_id();
  out.events.reserve(static_cast<size_t>(b.events_size()));
  uint64_t previous = 0;
  v1::Event pb;
  for (int i = 0; i < b.events_size(); ++i) {
    const uint64_t seq = b.seqs(i);
    if (seq <= previous) {
      return BadBatch("sequence number " + std::to_string(seq) + " at " + std::to_string(i) +
                      " is 0 or not above the one before");
    }
    previous = seq;
    if (!pb.ParseFromString(b.events(i))) {
      return BadBatch("event " + std::to_string(seq) + " is not a tripline.v1.Event");
    }
    if (pb.seq() != 0 && pb.seq() != seq) {
      return BadBatch("event " + std::to_string(seq) + " carries seq " + std::to_string(pb.seq()));
    }
    Result<Event> e = FromProto(pb);
    if (!e.ok()) return BadBatch("event " + std::to_string(seq) + ": " + e.status().message());
    e->seq = seq;
    out.events.push_back(*std::move(e));
  }
  // Copies: ascending, each an outbound connection of this message.
  size_t at = 0;
  for (int i = 0; i < b.copies_size(); ++i) {
    const uint64_t seq = b.copies(i);
    while (at < out.events.size() && out.events[at].seq < seq) ++at;
    const NetConnectEvent* c = at < out.events.size() && out.events[at].seq == seq
                                   ? out.events[at].As<NetConnectEvent>()
                                   : nullptr;
    if (c == nullptr || c->direction != NetDirection::kOutbound) {
      return BadBatch("copy " + std::to_string(seq) +
                      " is not an outbound connection of the message, or not in order");
    }
    out.copies.push_back(seq);
    ++at;
  }
  return out;
}

std::string SensorKey(std::string_view sensor_id) { return HexKey("sensor.", sensor_id); }

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

uint32_t StreamSink::PartitionOf(const Event& e) const {
  if (options_.addresses != nullptr) {
    const auto* c = e.As<NetConnectEvent>();
    if (c != nullptr && c->direction == NetDirection::kOutbound) {
      if (std::optional<std::string> to = options_.addresses->HostOf(c->remote_addr)) {
        return PartitionOfHost(*to, options_.partitions);
      }
    }
  }
  return PartitionOfHost(e.host, options_.partitions);
}

void StreamSink::LearnAddresses(const std::vector<Event>& events, size_t from) {
  if (options_.addresses == nullptr) return;
  // The local ends of connections and logins, each (address, host) once per batch.
  std::vector<std::pair<std::string_view, std::string_view>> seen;
  const auto note = [&](std::string_view addr, std::string_view host) {
    if (addr.empty()) return;
    const std::pair<std::string_view, std::string_view> p{addr, host};
    if (std::find(seen.begin(), seen.end(), p) == seen.end() && seen.size() < 256) {
      seen.push_back(p);
    }
  };
  for (size_t i = from; i < events.size(); ++i) {
    const Event& e = events[i];
    if (const auto* c = e.As<NetConnectEvent>()) {
      if (c->direction == NetDirection::kOutbound || c->direction == NetDirection::kAccepted) {
        note(c->local_addr, e.host);
      }
    } else if (const auto* l = e.As<LoginEvent>()) {
      note(l->local_addr, e.host);
    } else if (const auto* h = e.As<SensorHealth>()) {
      for (const std::string& addr : h->addresses) note(addr, e.host);
    }
  }
  for (const auto& [addr, host] : seen) {
    // Best effort: a write the cluster refused is counted by the book and tried again at
    // the address's next report; the batch is not held up by the map.
    const Status learned = options_.addresses->Learn(addr, host);
    if (!learned.ok() && options_.addresses->stats().write_errors % 1000 == 1) {
      std::fprintf(stderr, "tripline: address book: %s\n", learned.ToString().c_str());
    }
  }
}

std::vector<Outgoing> StreamSink::PartitionMessages(std::string_view sensor_id, uint64_t first_seq,
                                                    const std::vector<Event>& events,
                                                    std::span<const std::string_view> encoded,
                                                    size_t from, size_t to) const {
  // Each partition's events in sequence order, encoded as the sensor sent them.
  std::vector<std::string> own;  // encodings made here when the caller passed none
  if (encoded.empty()) {
    own.resize(to - from);
    v1::Event pb;
    for (size_t i = from; i < to; ++i) {
      ToProto(events[i], &pb);
      own[i - from] = pb.SerializeAsString();
    }
  }
  const auto bytes_of = [&](size_t i) -> std::string_view {
    return encoded.empty() ? std::string_view(own[i - from]) : encoded[i];
  };
  // Per partition, (index, copy): a connection routed to the host it reaches also goes,
  // as a copy, to its source's partition.
  std::map<uint32_t, std::vector<std::pair<size_t, bool>>> by_partition;
  for (size_t i = from; i < to; ++i) {
    const uint32_t partition = PartitionOf(events[i]);
    by_partition[partition].emplace_back(i, false);
    if (const uint32_t source = PartitionOfHost(events[i].host, options_.partitions);
        source != partition) {
      by_partition[source].emplace_back(i, true);
    }
  }
  std::vector<Outgoing> out;
  std::vector<uint64_t> seqs;
  std::vector<uint64_t> copies;
  std::vector<std::string_view> chunk;
  for (auto& [partition, indexes] : by_partition) {
    std::sort(indexes.begin(), indexes.end());
    const std::string subject = PartitionSubject(partition);
    size_t k = 0;
    while (k < indexes.size()) {
      // Up to kMaxPartitionMessageBytes of events per message, at least one.
      seqs.clear();
      copies.clear();
      chunk.clear();
      size_t size = 0;
      do {
        const auto [i, copy] = indexes[k++];
        seqs.push_back(first_seq + i);
        if (copy) copies.push_back(first_seq + i);
        chunk.push_back(bytes_of(i));
        size += chunk.back().size() + 16;
      } while (k < indexes.size() &&
               size + bytes_of(indexes[k].first).size() + 16 <= options_.max_message_bytes);
      Outgoing m;
      m.subject = subject;
      // Copies are the events of another partition's message too, which may have the
      // same first and last: the partition tells the two apart in the duplicate window.
      m.id = BatchMessageId(sensor_id, seqs.front(), seqs.back());
      if (!copies.empty()) m.id += "+" + std::to_string(partition);
      m.data = EncodePartitionBatch(sensor_id, seqs, chunk, copies);
      out.push_back(std::move(m));
    }
  }
  return out;
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
      LearnAddresses(events, dup);
      TL_RETURN_IF_ERROR(js_->PublishAll(
          PartitionMessages(sensor_id, first_seq, events, encoded, dup, published_from),
          std::max<int64_t>(1, deadline - NowMs())));
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
