// Key layout of the events column family (see docs/storage.md for the whole on-disk format).
//
// Every event has one primary key and a few secondary index keys. All of them end with the
// same 8+N+1+8 byte "suffix" so that an index key leads straight back to its primary key:
//
//   suffix   = be64(time_ns) | sensor_id | 0x00 | be64(seq)
//   primary  = 't' | suffix                         -> serialized tripline.v1.Event
//   by host  = 'h' | be16(len) | host | suffix       -> "" (points to the primary key)
//   by user  = 'u' | be16(len) | user | suffix       -> ""
//   by kind  = 'k' | kind byte | suffix              -> ""
//
// Beside them, one batch-log record per stored batch, keyed by sensor and sequence number
// rather than by time, so that a sensor's events can be read back in sequence order (the
// correlator catching up after it fell behind, or replaying after a restart):
//
//   batch    = 'q' | be16(len) | sensor_id | be64(first_seq)
//              -> 0x01 | be64(max time_ns) | be64(time_ns) for each event, in seq order
//
// Event i of the record has seq first_seq + i; its primary key is rebuilt from its time.
//
// Big-endian times make byte order equal time order, so "events of user U between T1 and T2"
// is one range scan. Names are length-prefixed rather than NUL-terminated because proto3
// strings may legally contain U+0000; sensor ids are validated printable, so a NUL ends them.
// Index keys point at the primary key instead of duplicating the event: an event is written
// once (plus three or four ~40-byte keys), and a page of results costs one MultiGet.
//
// Pure functions, no state; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/event.h"

namespace tripline::event_keys {

constexpr char kPrimaryTag = 't';
constexpr char kHostTag = 'h';
constexpr char kUserTag = 'u';
constexpr char kKindTag = 'k';
constexpr char kBatchLogTag = 'q';
constexpr char kBatchLogVersion = 0x01;
// Names longer than this are not indexed (FromProto already bounds strings to 4096 bytes).
constexpr size_t kMaxIndexedName = 4096;

void AppendBe64(std::string* out, uint64_t v);
uint64_t ReadBe64(std::string_view in);  // precondition: in.size() >= 8

// be64(time) | sensor | 0 | be64(seq).
std::string Suffix(int64_t time_ns, std::string_view sensor_id, uint64_t seq);
std::string PrimaryKey(int64_t time_ns, std::string_view sensor_id, uint64_t seq);
// The index prefix for one name: tag | be16(len) | name. Used for scans and keys alike.
std::string NamePrefix(char tag, std::string_view name);
std::string KindPrefix(EventKind kind);

// 'q' | be16(len) | sensor_id: the prefix of one sensor's batch-log records.
std::string BatchLogPrefix(std::string_view sensor_id);
std::string BatchLogKey(std::string_view sensor_id, uint64_t first_seq);
// Appends the batch-log value for events with these times.
void EncodeBatchLog(const int64_t* times, size_t n, std::string* out);
// A decoded batch-log value: the times of its events. nullopt when malformed.
struct BatchLog {
  int64_t max_time_ns = 0;
  std::string_view times;  // n big-endian 8-byte times
  size_t size() const { return times.size() / 8; }
  int64_t time(size_t i) const { return static_cast<int64_t>(ReadBe64(times.substr(i * 8))); }
};
std::optional<BatchLog> DecodeBatchLog(std::string_view value);

// The parts of a suffix; nullopt when the bytes are not a well-formed suffix.
struct SuffixParts {
  int64_t time_ns = 0;
  std::string_view sensor_id;
  uint64_t seq = 0;
};
std::optional<SuffixParts> ParseSuffix(std::string_view suffix);

// Splits any events-CF key into the part before the suffix (tag and name) and the suffix.
// nullopt when the key is malformed.
struct SplitKey {
  std::string_view prefix;
  std::string_view suffix;
};
std::optional<SplitKey> Split(std::string_view key);

// The time of any events-CF key, for retention; nullopt when the key is malformed.
// Batch-log keys carry no time: see RecordTime.
std::optional<int64_t> KeyTime(std::string_view key);
// The time by which any events-CF record ages out: the key's time, or for a batch-log
// record the newest time in its value. nullopt when key or value is malformed.
std::optional<int64_t> RecordTime(std::string_view key, std::string_view value);

// The user names an event is indexed under: the login's user, the process user and the
// process login user, distinct and non-empty.
void IndexedUsers(const Event& event, std::string_view out[3], size_t* n);

}  // namespace tripline::event_keys
