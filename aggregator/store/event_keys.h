// Key and value layout of the events column family, format "tripline-store 3" (see
// docs/storage.md for the whole on-disk format).
//
// A stored batch is a few records under its sensor and their first sequence numbers,
// kEventsPerRecord events each, holding the events as the sensor encoded them; each stored
// batch adds a handful of *postings* that make the common queries range scans:
//
//   batch    = 'b' | be16(len) | sensor_id | be64(first seq) -> batch value
//   suffix   = be64(bucket) | sensor_id | 0x00 | be64(first_seq)
//   all      = 't' | suffix                              -> posting value
//   by host  = 'h' | be16(len) | host | suffix           -> posting value
//   by user  = 'u' | be16(len) | user | suffix           -> posting value
//   by kind  = 'k' | kind byte | suffix                  -> posting value
//
//   posting value = n x (be32 seq - first_seq | be64 time), ascending
//   batch value   = be64(newest time) | be32(n) | n x be32(end of event i in payload) |
//                   payload (n x tripline.v1.Event, concatenated)
//
// `bucket` is an event's time rounded down to kBucketNs, and `first_seq` the first
// sequence number the batch stored. A posting lists the events of one batch that fall in
// one bucket and carry one name, so "events of user U between T1 and T2" is one range
// scan over U's postings from bucket(T1); within a bucket the candidates are sorted by
// (time, sensor, seq) before any event is read, and a page of them is one MultiGet.
// Keys by sensor and first sequence number make a sensor's records its log in order:
// reading a sensor back (the correlator catching up) is one range scan. A posting's suffix
// carries the sensor and the first sequence number its batch stored, its entries the
// events' positions in the batch; the batch's records start at first_seq, first_seq +
// kEventsPerRecord, ..., so each entry names its record and its place in it.
//
// Why records of several events: a key per event (format 2), and before that a primary key
// plus three or four index keys per event (format 1), made the memtable's skiplist
// insertions, the WAL and the flush and compaction of small keys the largest ingest cost;
// now a 512-event batch is 16 keys plus its postings (bench/aggregator). Why not one
// record per batch: a query that takes one event from a record reads all of it, and a
// batch may hold 4096 events; 32 events are about one 4 KiB block.
//
// Names are length-prefixed rather than NUL-terminated because proto3 strings may legally
// contain U+0000; sensor ids are validated printable, so a NUL ends them.
//
// Pure functions, no state; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/event.h"

namespace tripline::event_keys {

constexpr char kAllTag = 't';
constexpr char kHostTag = 'h';
constexpr char kUserTag = 'u';
constexpr char kKindTag = 'k';
constexpr char kBatchTag = 'b';
// Events per batch record (the last record of a batch may hold fewer).
constexpr uint32_t kEventsPerRecord = 32;
// Width of a posting's time bucket. Small enough that one bucket's candidates of a busy
// index fit in memory while a page is sorted; large enough that a batch (a sensor sends
// what it has every few hundred milliseconds) usually needs one posting per name.
constexpr int64_t kBucketNs = 1'000'000'000;
// Names longer than this are not indexed (FromProto already bounds strings to 4096 bytes).
constexpr size_t kMaxIndexedName = 4096;

void AppendBe64(std::string* out, uint64_t v);
void AppendBe32(std::string* out, uint32_t v);
uint64_t ReadBe64(std::string_view in);  // precondition: in.size() >= 8
uint32_t ReadBe32(std::string_view in);  // precondition: in.size() >= 4

// Event times are validated positive.
inline int64_t Bucket(int64_t time_ns) { return time_ns - time_ns % kBucketNs; }

// be64(bucket) | sensor | 0 | be64(first_seq).
std::string Suffix(int64_t bucket_ns, std::string_view sensor_id, uint64_t first_seq);
// The index prefix for one name: tag | be16(len) | name. Used for scans and keys alike.
std::string NamePrefix(char tag, std::string_view name);
std::string KindPrefix(EventKind kind);
std::string AllPrefix();

// 'b' | be16(len) | sensor_id: the prefix of one sensor's batches.
std::string BatchPrefix(std::string_view sensor_id);
std::string BatchKey(std::string_view sensor_id, uint64_t first_seq);

// A batch record's value: `events[i]` is event i's tripline.v1.Event encoding, `newest_ns`
// the newest event time among them (by which the record ages out).
std::string EncodeBatchValue(int64_t newest_ns, const std::string_view* events, size_t n);
// A decoded batch value, viewing the bytes it was parsed from.
class BatchValue {
 public:
  // nullopt when the bytes are not a well-formed batch value (short, offsets out of order
  // or past the payload).
  static std::optional<BatchValue> Parse(std::string_view value);
  int64_t newest_ns() const { return newest_ns_; }
  uint32_t size() const { return count_; }
  // Event i's encoding; precondition: i < size().
  std::string_view event(uint32_t i) const;

 private:
  int64_t newest_ns_ = 0;
  uint32_t count_ = 0;
  std::string_view offsets_;
  std::string_view payload_;
};

// Posting entries: (seq - first_seq, time).
void AppendPostingEntry(std::string* out, uint32_t offset, int64_t time_ns);
constexpr size_t kPostingEntrySize = 12;
inline bool PostingValueValid(std::string_view v) { return v.size() % kPostingEntrySize == 0; }
inline uint32_t PostingOffset(std::string_view v, size_t i) {
  return ReadBe32(v.substr(i * kPostingEntrySize));
}
inline int64_t PostingTime(std::string_view v, size_t i) {
  return static_cast<int64_t>(ReadBe64(v.substr(i * kPostingEntrySize + 4)));
}

// The parts of a suffix; nullopt when the bytes are not a well-formed suffix.
struct SuffixParts {
  int64_t time_ns = 0;  // the bucket, for a posting
  std::string_view sensor_id;
  uint64_t seq = 0;  // the batch's first stored sequence number, for a posting
};
std::optional<SuffixParts> ParseSuffix(std::string_view suffix);

// Splits a posting key into the part before the suffix (tag and name) and the suffix.
// nullopt when the key is malformed or not a posting.
struct SplitKey {
  std::string_view prefix;
  std::string_view suffix;
};
std::optional<SplitKey> Split(std::string_view key);

// The newest event time a record can hold, by which it ages out: a batch record's newest event,
// or the end of a posting's bucket. nullopt when malformed.
std::optional<int64_t> RecordTime(std::string_view key, std::string_view value);

// The user names an event is indexed under: the login's user, the process user and the
// process login user, distinct and non-empty.
void IndexedUsers(const Event& event, std::string_view out[3], size_t* n);

}  // namespace tripline::event_keys
