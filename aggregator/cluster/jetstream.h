// JetStream: the aggregator's connection to a NATS JetStream cluster, the substrate of the
// scaled-out mode (docs/scale-out.md): replicated streams with a duplicate window, durable
// pull consumers, and key-value buckets with compare-and-set.
//
// A thin, owning C++ layer over the NATS C client (libnats 3.4): every handle is released
// by its destructor, every call returns a Status that names the operation, the subject or
// key and the library's reason, and no NATS type leaks out of this header.
//
// Delivery guarantees the cluster builds on:
//  - Publish with a message id: the stream stores a message once per id within its
//    duplicate window, so a publisher that lost an acknowledgement (a server killed, a
//    timeout) publishes again with the same ids and nothing is stored twice. The
//    acknowledgement comes after the stream's replicas have the message.
//  - A durable pull consumer hands out each message until it is acknowledged; one not
//    acknowledged within the consumer's ack wait is handed out again (to whoever fetches
//    from that durable next), so a worker that dies loses nothing.
//  - A key-value update names the revision it expects; it fails when another writer got
//    there first. Leases (lease.h) are built on that.
//
// Threading: a JetStream object and the consumers and buckets made from it may be used
// from several threads (the C client locks internally); a PullConsumer is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline::cluster {

struct ClusterOptions {
  // nats://HOST:PORT of one or more servers of the cluster; the client learns the others.
  std::vector<std::string> servers;
  std::string name = "tripline";  // the connection's name, as the servers show it
  int64_t connect_timeout_ms = 2000;
  // Reconnects forever, waiting this long between rounds over the servers.
  int64_t reconnect_wait_ms = 100;
  // How long a JetStream request (publish ack, stream or key-value call) may take.
  int64_t request_timeout_ms = 5000;
};

struct StreamSpec {
  std::string name;
  std::vector<std::string> subjects;
  int replicas = 1;
  // Window in which a repeated message id is dropped (JetStream's default is 2 minutes).
  int64_t duplicate_window_ms = 120'000;
  int64_t max_age_ms = 0;  // 0: kept until max_bytes
  int64_t max_bytes = -1;  // -1: unlimited
  bool memory = false;     // file storage unless set
};

struct PublishAck {
  uint64_t sequence = 0;   // the stream's sequence of the message
  bool duplicate = false;  // the id was in the window: stored before, not again
};

// One message to publish: `id` is its de-duplication id.
struct Outgoing {
  std::string subject;
  std::string id;
  std::string data;
};

// A message fetched from a pull consumer.
struct Delivered {
  std::string subject;
  std::string id;  // the message id it was published with ("" when none)
  std::string data;
  uint64_t stream_sequence = 0;
  uint64_t deliveries = 0;  // 1 the first time it was handed out
  int64_t time_ns = 0;      // when the stream stored it
  uint64_t pending = 0;     // the consumer's messages after this one, not handed out yet
};

struct ConsumerSpec {
  std::string stream;
  std::string durable;         // the consumer's name; survives its subscribers
  std::string filter_subject;  // empty: every subject of the stream
  int64_t ack_wait_ms = 30'000;
  int64_t max_ack_pending = 65'536;
  // Acknowledging a message acknowledges every one before it (JetStream's AckAll policy):
  // AckThrough is then one round trip.
  bool ack_cumulative = false;
  // > 0: the consumer is made anew, starting at this stream sequence: one of the same name
  // is deleted first, with whatever it had handed out and not seen acknowledged (its
  // subscribers' fetches fail from then on). A worker taking a partition over starts it
  // after the snapshot it loaded, without waiting for the ack wait of messages its
  // predecessor held.
  uint64_t start_sequence = 0;
};

// How far a durable consumer is behind its stream.
struct ConsumerLag {
  uint64_t pending = 0;         // messages of its subject not handed out yet
  uint64_t unacknowledged = 0;  // handed out, not acknowledged
  uint64_t acked_through = 0;   // stream sequence below which everything is acknowledged
};

struct KvEntry {
  std::string value;
  uint64_t revision = 0;
};

// A bucket key for any bytes: `prefix` and the bytes in hex (keys allow only
// [-_=./a-zA-Z0-9]).
std::string HexKey(std::string_view prefix, std::string_view bytes);

// A change of a bucket as a watcher reports it.
struct KvChange {
  std::string key;                   // "" for the mark that the values present at the start came
  std::optional<std::string> value;  // nullopt: the key was deleted
  uint64_t revision = 0;
};

class JetStream;

// Watches every key of a bucket: first the value of each key that has one, then the mark
// (a change with an empty key), then every change as it is made. It follows the bucket
// across a server's loss (an ordered consumer, made anew when a message is missed).
class KvWatcher {
 public:
  ~KvWatcher();
  KvWatcher(const KvWatcher&) = delete;
  KvWatcher& operator=(const KvWatcher&) = delete;
  // The next change; nullopt when none came within timeout_ms.
  Result<std::optional<KvChange>> Next(int64_t timeout_ms);

 private:
  friend class KeyValue;
  struct Impl;
  explicit KvWatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A durable pull consumer. Fetch, then Ack each message once it is safely handled.
class PullConsumer {
 public:
  ~PullConsumer();
  PullConsumer(const PullConsumer&) = delete;
  PullConsumer& operator=(const PullConsumer&) = delete;

  // Up to `max` messages, waiting at most `timeout_ms` for the first; 0 takes what is
  // there without waiting. An empty vector when none came in time (not an error).
  // Aborted, from then on (and from AckThrough), when a cumulative consumer handed out a
  // message that never came (lost with a server on the way): it must be made anew after
  // what was fed, since acknowledging past that message would lose it.
  Result<std::vector<Delivered>> Fetch(int max, int64_t timeout_ms);
  // Acknowledges a message of the last Fetch by its stream sequence and waits for the
  // server to confirm, so that an acknowledged message is never handed out again.
  Status Ack(uint64_t stream_sequence);
  // Acknowledges every message of the last Fetch still unacknowledged.
  Status AckAll();
  // Acknowledges every fetched message up to `stream_sequence` still unacknowledged (with
  // ack_cumulative, by acknowledging the last of them).
  Status AckThrough(uint64_t stream_sequence);
  // Fetched messages not acknowledged yet.
  size_t unacknowledged() const;

 private:
  friend class JetStream;
  struct Impl;
  explicit PullConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A key-value bucket.
class KeyValue {
 public:
  ~KeyValue();
  KeyValue(const KeyValue&) = delete;
  KeyValue& operator=(const KeyValue&) = delete;

  // The latest value of `key`; nullopt when there is none (never written, or deleted).
  Result<std::optional<KvEntry>> Get(std::string_view key);
  // Writes `value` only if `key` has no value; AlreadyExists otherwise. The new revision.
  Result<uint64_t> Create(std::string_view key, std::string_view value);
  // Writes `value` only if the latest revision of `key` is `expected`; Aborted when
  // another writer changed it first. The new revision.
  // Create and Update whose answer was lost (a server gone) read the key: holding this very
  // value, the write landed. So values must be the writer's own (lease records name owner
  // and end, snapshot heads writer and save), never one another writer could write too.
  Result<uint64_t> Update(std::string_view key, std::string_view value, uint64_t expected);
  // Writes `value` whatever was there. The new revision.
  Result<uint64_t> Put(std::string_view key, std::string_view value);
  // Removes `key`'s value (a key without one is not an error).
  Status Delete(std::string_view key);
  // The subject a value of `key` is stored under: a message published there (with
  // JetStream::PublishAll, many at once) is a Put.
  std::string Subject(std::string_view key) const;
  // The keys with a value.
  Result<std::vector<std::string>> Keys();
  // A watcher of every key (see KvWatcher).
  Result<std::unique_ptr<KvWatcher>> Watch();

 private:
  friend class JetStream;
  struct Impl;
  explicit KeyValue(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class JetStream {
 public:
  // Connects to the cluster; Unavailable when no server answers in time.
  static Result<std::unique_ptr<JetStream>> Connect(const ClusterOptions& options);
  ~JetStream();
  JetStream(const JetStream&) = delete;
  JetStream& operator=(const JetStream&) = delete;

  // Creates the stream, or updates it to `spec` when it exists with another
  // configuration. Waits (up to the request timeout, repeatedly) while the cluster has no
  // leader yet, as right after it starts.
  Status EnsureStream(const StreamSpec& spec);
  // Messages stored in the stream now.
  Result<uint64_t> StreamMessages(const std::string& stream);
  // The name of the server leading the stream's replicas ("" when it has none now).
  Result<std::string> StreamLeader(const std::string& stream);

  // Publishes one message and waits for the stream's acknowledgement.
  Result<PublishAck> Publish(const Outgoing& message);
  // Publishes every message and returns once each one is acknowledged. A message whose
  // acknowledgement failed (a server lost mid-way, a timeout) is published again with the
  // same id until `deadline_ms` has passed: the ids make the repeats harmless. On error,
  // some of the messages may be stored; publishing them all again is safe.
  Status PublishAll(std::span<const Outgoing> messages, int64_t deadline_ms);

  // The durable consumer's lag; nullopt when there is no consumer of that name.
  Result<std::optional<ConsumerLag>> Lag(const std::string& stream, const std::string& durable);

  // The durable consumer (created when missing) and a subscription to it.
  Result<std::unique_ptr<PullConsumer>> Consume(const ConsumerSpec& spec);

  // The bucket (created with `replicas` when missing; `history` values kept per key).
  Result<std::unique_ptr<KeyValue>> Bucket(const std::string& name, int replicas, int history = 1);

  // Whether the connection is up now (it reconnects by itself).
  bool Connected() const;

 private:
  struct Impl;
  explicit JetStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tripline::cluster
