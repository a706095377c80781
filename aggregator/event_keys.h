// Key and value layout of the events column family, format "tripline-store 2" (see
// docs/storage.md for the whole on-disk format).
//
// Every event is stored once, under its sensor and sequence number; each stored batch
// adds a handful of *postings* that make the common queries range scans:
//
//   event    = 'e' | be16(len) | sensor_id | be64(seq)  -> be64(time) | tripline.v1.Event
//   suffix   = be64(bucket) | sensor_id | 0x00 | be64(first_seq)
//   all      = 't' | suffix                              -> posting value
//   by host  = 'h' | be16(len) | host | suffix           -> posting value
//   by user  = 'u' | be16(len) | user | suffix           -> posting value
//   by kind  = 'k' | kind byte | suffix                  -> posting value
//
//   posting value = n x (be32 seq - first_seq | be64 time), ascending
//
// `bucket` is an event's time rounded down to kBucketNs, and `first_seq` the first
// sequence number the batch stored. A posting lists the events of one batch that fall in
// one bucket and carry one name, so "events of user U between T1 and T2" is one range
// scan over U's postings from bucket(T1); within a bucket the candidates are sorted by
// (time, sensor, seq) before any event is read, and a page of them is one MultiGet.
// Keys by sensor and sequence make a sensor's events its log in order: reading a sensor
// back (the correlator catching up) is one range scan.
//
// Why postings per batch: one primary key plus three or four index keys per event made
// the memtable's skiplist insertions, and the flush and compaction of those small keys,
// the largest ingest cost; now an event is one key whose neighbour in the skiplist is the
// sensor's previous event, and a batch adds a few posting keys (bench/aggregator).
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
constexpr char kEventTag = 'e';
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

// 'e' | be16(len) | sensor_id: the prefix of one sensor's events.
std::string EventPrefix(std::string_view sensor_id);
std::string EventKey(std::string_view sensor_id, uint64_t seq);
// be64(time) | event bytes.
void AppendEventValue(std::string* out, int64_t time_ns, std::string_view event_bytes);
// The parts of an event value; nullopt when it is too short to hold a time.
struct EventValue {
  int64_t time_ns = 0;
  std::string_view event_bytes;
};
std::optional<EventValue> ParseEventValue(std::string_view value);

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

// The newest event time a record can hold, by which it ages out: an event's own time, or
// the end of a posting's bucket. nullopt when malformed.
std::optional<int64_t> RecordTime(std::string_view key, std::string_view value);

// The user names an event is indexed under: the login's user, the process user and the
// process login user, distinct and non-empty.
void IndexedUsers(const Event& event, std::string_view out[3], size_t* n);

}  // namespace tripline::event_keys
