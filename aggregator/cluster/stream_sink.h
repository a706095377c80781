// StreamSink: where an ingest node of the scaled-out mode writes (docs/scale-out.md).
//
// The ingest service validates sensors' batches exactly as on a single node and hands them
// here instead of to RocksDB. A batch's new events are published to the events stream as
// one message per partition (PartitionBatch, split past kMaxPartitionMessageBytes) with
// the message id "<sensor_id>:<first_seq>-<last_seq>" on the subject of the partition; the
// batch is answered only after the stream acknowledged every message (its replicas have
// them). Per sensor, the messages of a partition are in sequence order: a batch is
// published from the durable sequence number up, and that moves only once it is stored. The
// sensor's record (durable sequence number, host, counts) lives in a key-value bucket and moves up
// by compare-and-set after the publish, so any ingest node tells a reconnecting sensor the same
// durable sequence number, and two nodes serving one sensor at once cannot move it back. A resend
// of the same batch republishes ids the stream already holds: stored once. A resend with other
// boundaries (the record's update was lost with a node) may store some events twice in the stream;
// the workers drop them by sequence number.
//
// Partitions: an event goes to hash(host) mod `partitions` (FNV-1a, the same on every
// node and build), but for an outbound connection to an address the address book
// (address_book.h) names a host for: it goes to that host's partition, where the login it
// leads to is stitched to it. The book learns from every batch before it is routed.
//
// Not kept here: health figures of the sensors (ring-buffer drops, hook families), which
// the workers derive from the events. Threading: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/cluster/address_book.h"
#include "aggregator/cluster/jetstream.h"
#include "aggregator/store/store.h"
#include "common/clock.h"

namespace tripline::cluster {

inline constexpr const char* kEventsStream = "TL_EVENTS";
inline constexpr const char* kEventsSubjectPrefix = "tl.ev.";
inline constexpr const char* kSensorsBucket = "tl-sensors";

// The events stream: subjects tl.ev.<partition>, a 10-minute duplicate window.
StreamSpec EventsStreamSpec(int replicas);
// The partition of events of `host`.
uint32_t PartitionOfHost(std::string_view host, uint32_t partitions);
// "tl.ev.<partition>".
std::string PartitionSubject(uint32_t partition);
// The message id of a sensor's events first_seq..last_seq on one partition,
// "<sensor_id>:<first_seq>-<last_seq>", and back (false when `id` is not one).
std::string BatchMessageId(std::string_view sensor_id, uint64_t first_seq, uint64_t last_seq);
bool ParseBatchMessageId(std::string_view id, std::string* sensor_id, uint64_t* first_seq,
                         uint64_t* last_seq);

// A message of the events stream (tripline.v1.PartitionBatch) as the workers read it.
struct PartitionEvents {
  std::string sensor_id;
  std::vector<Event> events;     // each with its seq set, ascending
  std::vector<uint64_t> copies;  // seqs of events that are copies of routed connections
};
// The bytes of one message: `encoded[i]` is the tripline.v1.Event of seqs[i]; `copies`
// (ascending, each one of seqs) are copies of outbound connections routed to another
// partition (tripline.v1.PartitionBatch).
std::string EncodePartitionBatch(std::string_view sensor_id, std::span<const uint64_t> seqs,
                                 std::span<const std::string_view> encoded,
                                 std::span<const uint64_t> copies = {});
// InvalidArgument naming what is wrong for anything but a message EncodePartitionBatch
// writes of valid events: an empty or unprintable sensor id, no events, sequence numbers
// that are 0 or not ascending, counts that differ, an event the ingest service would refuse,
// copies that are not ascending sequence numbers of outbound connections of the message.
Result<PartitionEvents> DecodePartitionBatch(std::string_view bytes);
// The largest message of the events stream: a batch's events of one partition are split
// over several messages past it (the servers' max_payload is 1 MiB by default).
inline constexpr size_t kMaxPartitionMessageBytes = 512 * 1024;

// The sensor's record as the bucket keeps it (JSON), and back: Corruption naming what is
// wrong for anything EncodeSensorRecord does not write, or a record of another sensor.
std::string EncodeSensorRecord(const SensorRecord& r);
Result<SensorRecord> DecodeSensorRecord(std::string_view bytes, std::string_view sensor_id);
// The bucket key of a sensor: "sensor." and the id in hex (keys allow [-_=./a-zA-Z0-9]).
std::string SensorKey(std::string_view sensor_id);

struct StreamSinkOptions {
  uint32_t partitions = 256;
  // How long a batch may take to be acknowledged by the stream (republishing what was not)
  // before the sensor is told UNAVAILABLE and resends it.
  int64_t publish_deadline_ms = 10'000;
  size_t max_message_bytes = kMaxPartitionMessageBytes;
  const Clock* clock = nullptr;  // nullptr: the system clock
  // Where outbound connections are routed by their destination, and what batches teach
  // (not owned). nullptr: every event goes with its own host.
  AddressBook* addresses = nullptr;
};

class StreamSink final : public IngestSink {
 public:
  // Neither is owned; both must outlive the sink. The events stream must exist
  // (JetStream::EnsureStream(EventsStreamSpec(...))).
  StreamSink(JetStream* js, KeyValue* sensors, StreamSinkOptions options = {});

  using IngestSink::AppendBatch;
  Result<AppendResult> AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                   const std::vector<Event>& events,
                                   std::span<const std::string_view> encoded) override;
  Result<uint64_t> DurableSeq(std::string_view sensor_id) override;
  Result<std::optional<SensorRecord>> GetSensor(std::string_view sensor_id) override;

 private:
  // The partition `e` is published to.
  uint32_t PartitionOf(const Event& e) const;
  // Teaches the address book the hosts' addresses in events[from..].
  void LearnAddresses(const std::vector<Event>& events, size_t from);
  // The messages of events[from..to): per partition, in sequence order, split by size.
  std::vector<Outgoing> PartitionMessages(std::string_view sensor_id, uint64_t first_seq,
                                          const std::vector<Event>& events,
                                          std::span<const std::string_view> encoded, size_t from,
                                          size_t to) const;

  JetStream* js_;
  KeyValue* sensors_;
  StreamSinkOptions options_;
  const Clock* clock_;
};

}  // namespace tripline::cluster
