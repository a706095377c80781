#include "aggregator/rocksdb_store.h"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>

#include "aggregator/event_keys.h"
#include "common/log.h"
#include "model/event_proto.h"
#include "tripline/v1/event.pb.h"

namespace tripline {
namespace {

namespace keys = event_keys;

constexpr const char* kFamilies[] = {"events",  "sessions", "baselines", "incidents",
                                     "posture", "actions",  "outbox",    "meta"};
// meta keys
constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kSensorPrefix = "s/";    // s/<sensor> -> SensorRecord
constexpr std::string_view kGapPrefix = "g/";       // g/<sensor>\0<be64 first> -> be64 last
constexpr std::string_view kIdentityPrefix = "i/";  // i/<user> -> ""
constexpr uint8_t kSensorRecordVersion = 1;
constexpr size_t kMaxIncidentId = 256;
// Index keys read per MultiGet while scanning.
constexpr size_t kScanChunk = 256;

Status Logged(Status s) {
  if (!s.ok()) {
    TL_LOG(ERROR) << "store: " << s.ToString();
  }
  return s;
}

std::string EncodeSensorRecord(const SensorRecord& r) {
  std::string out(1, static_cast<char>(kSensorRecordVersion));
  for (uint64_t v :
       {r.durable_seq, r.events, r.missing, static_cast<uint64_t>(r.last_write_ns), r.ringbuf_drops,
        r.spool_drops, r.decode_errors, r.helper_errors, static_cast<uint64_t>(r.health_time_ns)}) {
    keys::AppendBe64(&out, v);
  }
  out.append(r.host);
  return out;
}

Status DecodeSensorRecord(std::string_view sensor_id, std::string_view in, SensorRecord* r) {
  constexpr size_t kFixed = 1 + 9 * 8;
  if (in.size() < kFixed || static_cast<uint8_t>(in[0]) != kSensorRecordVersion) {
    return Status::Corruption("sensor record of '" + std::string(sensor_id) + "' is malformed");
  }
  uint64_t v[9];
  for (int i = 0; i < 9; ++i) v[i] = keys::ReadBe64(in.substr(1 + 8 * i));
  r->sensor_id = std::string(sensor_id);
  r->durable_seq = v[0];
  r->events = v[1];
  r->missing = v[2];
  r->last_write_ns = static_cast<int64_t>(v[3]);
  r->ringbuf_drops = v[4];
  r->spool_drops = v[5];
  r->decode_errors = v[6];
  r->helper_errors = v[7];
  r->health_time_ns = static_cast<int64_t>(v[8]);
  r->host = std::string(in.substr(kFixed));
  return Status::Ok();
}

// Page tokens are hex so that they are valid UTF-8 in a proto3 string.
std::string HexEncode(std::string_view in) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool HexDecode(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = nibble(in[i]), lo = nibble(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

Status DecodeEvent(std::string_view suffix, std::string_view value, StoredEvent* out) {
  const auto parts = keys::ParseSuffix(suffix);
  if (!parts) return Status::Corruption("malformed event key");
  v1::Event pb;
  if (!pb.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Status::Corruption("stored event of sensor '" + std::string(parts->sensor_id) +
                              "' seq " + std::to_string(parts->seq) + " does not parse");
  }
  auto event = FromProto(pb);
  if (!event.ok()) {
    return Status::Corruption("stored event of sensor '" + std::string(parts->sensor_id) +
                              "' seq " + std::to_string(parts->seq) +
                              " is invalid: " + event.status().message());
  }
  out->sensor_id = std::string(parts->sensor_id);
  out->event = std::move(event).value();
  return Status::Ok();
}

bool MatchesUser(const Event& e, std::string_view user) {
  std::string_view names[3];
  size_t n = 0;
  keys::IndexedUsers(e, names, &n);
  return std::find(names, names + n, user) != names + n;
}

// Drops events older than the retention window during compaction. Keys are judged by the
// time embedded in them, so index keys age out with their events without reading values;
// a batch-log record (no time in its key) by the newest event time in its value. A record
// that does not parse is kept: never destroy what we cannot read.
class RetentionFilter final : public rocksdb::CompactionFilter {
 public:
  RetentionFilter(const Clock& clock, int64_t retention_ns)
      : clock_(clock), retention_ns_(retention_ns) {}
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (retention_ns_ <= 0) return false;
    const auto t = keys::RecordTime(std::string_view(key.data(), key.size()),
                                    std::string_view(value.data(), value.size()));
    return t && *t < clock_.NowNs() - retention_ns_;
  }
  const char* Name() const override { return "tripline.EventRetentionFilter"; }

 private:
  const Clock& clock_;
  const int64_t retention_ns_;
};

// The part of an events key before its time suffix: the tag and the indexed name. Used as
// the memtable's insert-hint prefix: within one prefix keys arrive in (almost) ascending
// time, so the memtable keeps one insertion point per prefix instead of searching the
// whole skiplist for every key, which perf showed as the largest ingest cost.
class EventKeyPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "tripline.EventKeyPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const auto split = keys::Split(std::string_view(key.data(), key.size()));
    return rocksdb::Slice(key.data(), split ? split->prefix.size() : key.size());
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return keys::Split(std::string_view(key.data(), key.size())).has_value();
  }
};

}  // namespace

Status FromRocksDb(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::Ok();
  const std::string msg = std::string(context) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsIOError()) return Status::IoError(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsNotSupported()) return Status::Unsupported(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return Status::Unavailable(msg);
  if (s.IsAborted()) return Status::Aborted(msg);
  return Status::Internal(msg);
}

struct RocksDbStore::ScanPlan {
  std::string prefix;  // index (or primary) prefix being scanned
  std::string lower;   // first key of the range
  std::string upper;   // first key past the range
  bool is_index = false;
  bool postfilter = false;  // filters that the chosen key range does not express
};

RocksDbStore::RocksDbStore(const RocksDbStoreOptions& options)
    : options_(options),
      clock_(options.clock ? *options.clock : SystemClock::Get()),
      retention_filter_(std::make_unique<RetentionFilter>(clock_, options.retention_ns)) {}

RocksDbStore::~RocksDbStore() {
  const Status s = Close();
  if (!s.ok()) {
    TL_LOG(ERROR) << "closing store: " << s.ToString();
  }
}

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbStoreOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("store path is empty");
  if (options.retention_ns < 0) return Status::InvalidArgument("negative retention");
  std::unique_ptr<RocksDbStore> store(new RocksDbStore(options));
  TL_RETURN_IF_ERROR(store->OpenDb());
  TL_RETURN_IF_ERROR(store->LoadMeta());
  return store;
}

Status RocksDbStore::OpenDb() {
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return Status::IoError("creating " + options_.path + ": " + ec.message());

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Check every block and file we read, and stop writing on a background error rather
  // than carry on over corruption.
  db_options.paranoid_checks = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  db_options.max_total_wal_size = 256 << 20;

  rocksdb::ColumnFamilyOptions base;
  base.compression = rocksdb::kLZ4Compression;
  rocksdb::ColumnFamilyOptions events = base;
  events.compaction_filter = retention_filter_.get();
  events.write_buffer_size = 64 << 20;
  events.memtable_insert_with_hint_prefix_extractor = std::make_shared<EventKeyPrefix>();
  if (options_.retention_ns > 0) {
    // Compaction only runs when data is written; periodic compaction makes idle files
    // age out too. A quarter of the retention, between one hour and one day.
    const int64_t quarter_s = options_.retention_ns / kNanosPerSecond / 4;
    events.periodic_compaction_seconds =
        static_cast<uint64_t>(std::clamp<int64_t>(quarter_s, 3600, 86400));
  }

  // Open every family on disk (a newer build may have added some) plus ours.
  std::vector<std::string> names;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, options_.path, &names);
  if (!listed.ok()) names.clear();  // a new database: nothing to list yet
  for (const char* name : kFamilies) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end()) {
    names.push_back(rocksdb::kDefaultColumnFamilyName);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) {
    descriptors.emplace_back(name, name == "events" ? events : base);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options_.path, descriptors, &handles, &db_);
  if (!s.ok()) return Logged(FromRocksDb(s, "opening store at " + options_.path));
  for (size_t i = 0; i < handles.size(); ++i) cfs_[names[i]] = handles[i];
  events_cf_ = cfs_["events"];
  meta_cf_ = cfs_["meta"];
  incidents_cf_ = cfs_["incidents"];
  sessions_cf_ = cfs_["sessions"];
  return Status::Ok();
}

Status RocksDbStore::LoadMeta() {
  std::string format;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kFormatKey, &format);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, kFormatKey, kFormat);
    if (!s.ok()) return Logged(FromRocksDb(s, "writing format marker"));
  } else if (!s.ok()) {
    return Logged(FromRocksDb(s, "reading format marker"));
  } else if (format != kFormat) {
    return Logged(Status::InvalidArgument("data dir " + options_.path + " holds format '" + format +
                                          "', this build reads '" + kFormat + "'"));
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(kSensorPrefix); it->Valid() && it->key().starts_with(kSensorPrefix); it->Next()) {
    const std::string_view sensor(it->key().data() + kSensorPrefix.size(),
                                  it->key().size() - kSensorPrefix.size());
    auto slot = std::make_unique<SensorSlot>();
    TL_RETURN_IF_ERROR(Logged(DecodeSensorRecord(
        sensor, std::string_view(it->value().data(), it->value().size()), &slot->record)));
    slots_.emplace(std::string(sensor), std::move(slot));
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "loading sensor records")));
  for (it->Seek(kIdentityPrefix); it->Valid() && it->key().starts_with(kIdentityPrefix);
       it->Next()) {
    identities_.emplace(it->key().data() + kIdentityPrefix.size(),
                        it->key().size() - kIdentityPrefix.size());
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "loading identities")));
  TL_LOG(INFO) << "store opened at " << options_.path << ": " << slots_.size() << " sensors, "
               << identities_.size() << " identities";
  return Status::Ok();
}

RocksDbStore::SensorSlot* RocksDbStore::Slot(std::string_view sensor_id) {
  std::lock_guard<std::mutex> lock(slots_mu_);
  auto it = slots_.find(std::string(sensor_id));
  if (it == slots_.end()) {
    auto slot = std::make_unique<SensorSlot>();
    slot->record.sensor_id = std::string(sensor_id);
    it = slots_.emplace(std::string(sensor_id), std::move(slot)).first;
  }
  return it->second.get();
}

int64_t RocksDbStore::RetentionCutoff() const {
  return options_.retention_ns > 0 ? clock_.NowNs() - options_.retention_ns : 0;
}

Result<AppendResult> RocksDbStore::AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                               const std::vector<Event>& events) {
  if (!db_) return Status::Unavailable("store is closed");
  if (sensor_id.empty() || sensor_id.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("bad sensor id");
  }
  if (first_seq == 0) return Status::InvalidArgument("first_seq must be at least 1");
  if (events.size() > UINT64_MAX - first_seq) {
    return Status::InvalidArgument("sequence numbers overflow");
  }
  SensorSlot* slot = Slot(sensor_id);
  std::lock_guard<std::mutex> lock(slot->mu);
  AppendResult result;
  const uint64_t durable = slot->record.durable_seq;
  result.durable_seq = durable;
  if (events.empty()) return result;
  const uint64_t last_seq = first_seq + events.size() - 1;
  if (last_seq <= durable) {
    result.duplicates = events.size();
    duplicates_.fetch_add(result.duplicates);
    return result;
  }
  const size_t start = durable >= first_seq ? static_cast<size_t>(durable - first_seq + 1) : 0;
  result.duplicates = start;

  SensorRecord record = slot->record;
  rocksdb::WriteBatch batch;
  if (first_seq > durable + 1) {
    result.gap_first = durable + 1;
    result.gap_last = first_seq - 1;
    std::string gap_key(kGapPrefix);
    gap_key.append(sensor_id);
    gap_key.push_back('\0');
    keys::AppendBe64(&gap_key, result.gap_first);
    std::string gap_value;
    keys::AppendBe64(&gap_value, result.gap_last);
    batch.Put(meta_cf_, gap_key, gap_value);
    record.missing += result.gap_last - result.gap_first + 1;
  }

  // Events-family writes are collected and put in key order: the memtable skiplist reuses
  // its insertion point for ascending keys, while the natural order (primary, host, user,
  // kind, next event, ...) jumps between key ranges and made skiplist search the dominant
  // ingest cost (bench/aggregator/ingest_bench.cc, perf). Keys and values are appended to
  // one buffer and sorted as (offset, length) entries, so a batch costs a few allocations
  // instead of two strings per key.
  struct Entry {
    size_t key, key_len, value, value_len;
  };
  std::string arena;
  std::vector<Entry> writes;
  writes.reserve((events.size() - start) * 5);
  arena.reserve((events.size() - start) * 384);
  const auto put_index = [&](std::string_view prefix, std::string_view suffix) {
    writes.push_back({arena.size(), prefix.size() + suffix.size(), 0, 0});
    arena.append(prefix);
    arena.append(suffix);
  };
  std::unordered_set<std::string_view> batch_users;  // distinct user names of this batch
  v1::Event pb;
  std::string suffix;
  std::string name_prefix;
  const SensorHealth* newest_health = nullptr;
  int64_t newest_health_ns = record.health_time_ns;
  for (size_t i = start; i < events.size(); ++i) {
    const Event& e = events[i];
    const uint64_t seq = first_seq + i;
    if (e.time_ns <= 0) {
      return Status::InvalidArgument("event seq " + std::to_string(seq) + " has no time");
    }
    ToProto(e, &pb);
    pb.set_seq(seq);
    suffix.clear();
    keys::AppendBe64(&suffix, static_cast<uint64_t>(e.time_ns));
    suffix.append(sensor_id);
    suffix.push_back('\0');
    keys::AppendBe64(&suffix, seq);

    Entry primary{arena.size(), 1 + suffix.size(), 0, 0};
    arena.push_back(keys::kPrimaryTag);
    arena.append(suffix);
    primary.value = arena.size();
    if (!pb.AppendToString(&arena)) return Status::Internal("cannot serialize event");
    primary.value_len = arena.size() - primary.value;
    writes.push_back(primary);

    if (e.host.size() <= keys::kMaxIndexedName) {
      name_prefix = keys::NamePrefix(keys::kHostTag, e.host);
      put_index(name_prefix, suffix);
    }
    std::string_view users[3];
    size_t n_users = 0;
    keys::IndexedUsers(e, users, &n_users);
    for (size_t u = 0; u < n_users; ++u) {
      name_prefix = keys::NamePrefix(keys::kUserTag, users[u]);
      put_index(name_prefix, suffix);
      batch_users.insert(users[u]);
    }
    put_index(keys::KindPrefix(e.kind()), suffix);
    if (const auto* health = e.As<SensorHealth>();
        health != nullptr && e.time_ns >= newest_health_ns) {
      newest_health = health;
      newest_health_ns = e.time_ns;
    }
  }
  if (newest_health != nullptr) {
    record.ringbuf_drops = newest_health->ringbuf_drops;
    record.spool_drops = newest_health->spool_drops;
    record.decode_errors = newest_health->decode_errors;
    record.helper_errors = newest_health->helper_errors;
    record.health_time_ns = newest_health_ns;
  }
  record.host = events.back().host;
  // The batch log: this batch's new events by sequence number (see event_keys.h).
  std::string log_key = keys::BatchLogKey(sensor_id, first_seq + start);
  std::string log_value;
  {
    std::vector<int64_t> times;
    times.reserve(events.size() - start);
    for (size_t i = start; i < events.size(); ++i) times.push_back(events[i].time_ns);
    keys::EncodeBatchLog(times.data(), times.size(), &log_value);
  }
  batch.Put(events_cf_, log_key, log_value);
  const auto view = [&arena](size_t offset, size_t len) {
    return std::string_view(arena.data() + offset, len);
  };
  std::sort(writes.begin(), writes.end(), [&](const Entry& a, const Entry& b) {
    return view(a.key, a.key_len) < view(b.key, b.key_len);
  });
  for (const Entry& w : writes) {
    batch.Put(events_cf_, rocksdb::Slice(arena.data() + w.key, w.key_len),
              rocksdb::Slice(arena.data() + w.value, w.value_len));
  }
  std::vector<std::string> fresh_identities;
  {
    std::lock_guard<std::mutex> ilock(identities_mu_);
    for (std::string_view user : batch_users) {
      std::string name(user);
      if (identities_.count(name) == 0) fresh_identities.push_back(std::move(name));
    }
  }
  for (const auto& name : fresh_identities) {
    batch.Put(meta_cf_, std::string(kIdentityPrefix) + name, {});
  }
  result.stored = events.size() - start;
  record.durable_seq = last_seq;
  record.events += result.stored;
  record.last_write_ns = clock_.NowNs();
  // The sequence number commits with the events: after a crash either both are there or
  // neither is, which is what lets a resent batch be recognised as a duplicate.
  batch.Put(meta_cf_, std::string(kSensorPrefix) + std::string(sensor_id),
            EncodeSensorRecord(record));

  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  const rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    return Logged(FromRocksDb(s, "writing batch of sensor '" + std::string(sensor_id) + "'"));
  }
  slot->record = std::move(record);
  result.durable_seq = last_seq;
  if (result.duplicates) duplicates_.fetch_add(result.duplicates);
  if (result.gap_first) gaps_.fetch_add(1);
  if (!fresh_identities.empty()) {
    std::lock_guard<std::mutex> ilock(identities_mu_);
    for (auto& name : fresh_identities) identities_.insert(std::move(name));
  }
  return result;
}

Result<uint64_t> RocksDbStore::DurableSeq(std::string_view sensor_id) {
  if (!db_) return Status::Unavailable("store is closed");
  SensorSlot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    const auto it = slots_.find(std::string(sensor_id));
    if (it == slots_.end()) return uint64_t{0};
    slot = it->second.get();
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  return slot->record.durable_seq;
}

Result<std::vector<SensorRecord>> RocksDbStore::ListSensors() {
  if (!db_) return Status::Unavailable("store is closed");
  std::vector<SensorSlot*> slots;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (auto& [id, slot] : slots_) slots.push_back(slot.get());
  }
  std::vector<SensorRecord> out;
  for (SensorSlot* slot : slots) {
    std::lock_guard<std::mutex> lock(slot->mu);
    // A slot made by an append that failed before its first write has nothing durable.
    if (slot->record.durable_seq == 0 && slot->record.events == 0) continue;
    out.push_back(slot->record);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.sensor_id < b.sensor_id; });
  return out;
}

Result<RocksDbStore::ScanPlan> RocksDbStore::Plan(const EventQuery& q) {
  ScanPlan plan;
  // The most selective index wins; the other filters are checked on the decoded event.
  int filters = 0;
  if (!q.user.empty()) {
    plan.prefix = keys::NamePrefix(keys::kUserTag, q.user);
    ++filters;
  }
  if (!q.host.empty()) {
    if (filters == 0) plan.prefix = keys::NamePrefix(keys::kHostTag, q.host);
    ++filters;
  }
  if (q.kind) {
    if (filters == 0) plan.prefix = keys::KindPrefix(*q.kind);
    ++filters;
  }
  if (q.user.size() > keys::kMaxIndexedName || q.host.size() > keys::kMaxIndexedName) {
    return Status::InvalidArgument("filter name too long");
  }
  if (filters == 0) plan.prefix = std::string(1, keys::kPrimaryTag);
  plan.is_index = filters > 0;
  plan.postfilter = filters > 1;
  const int64_t since = std::max<int64_t>({q.since_ns, RetentionCutoff(), 0});
  plan.lower = plan.prefix;
  keys::AppendBe64(&plan.lower, static_cast<uint64_t>(since));
  plan.upper = plan.prefix;
  // Valid event times are positive int64, so 2^63 is past every one of them.
  keys::AppendBe64(&plan.upper,
                   q.until_ns > 0 ? static_cast<uint64_t>(q.until_ns) : uint64_t{1} << 63);
  return plan;
}

template <typename Emit>
Result<std::string> RocksDbStore::Scan(const EventQuery& q, const ScanPlan& plan,
                                       std::string start_key, Emit&& emit) {
  if (plan.upper <= plan.lower) return std::string();
  // One snapshot for the index scan and the lookups it drives, so an event is never seen
  // in one and missing from the other.
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_, snapshot};
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  const rocksdb::Slice upper(plan.upper);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_cf_));
  it->Seek(std::max(start_key, plan.lower));

  std::vector<std::string> index_keys;
  std::vector<std::string> primary_keys;
  std::vector<std::string> inline_values;
  while (true) {
    index_keys.clear();
    primary_keys.clear();
    inline_values.clear();
    for (; it->Valid() && index_keys.size() < kScanChunk; it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      index_keys.emplace_back(key);
      if (plan.is_index) {
        const auto split = keys::Split(key);
        if (!split) return Logged(Status::Corruption("malformed index key in events"));
        primary_keys.push_back(std::string(1, keys::kPrimaryTag) + std::string(split->suffix));
      } else {
        inline_values.emplace_back(it->value().data(), it->value().size());
      }
    }
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "scanning events")));
    if (index_keys.empty()) return std::string();

    std::vector<rocksdb::PinnableSlice> fetched;
    if (plan.is_index) {
      std::vector<rocksdb::Slice> slices(primary_keys.begin(), primary_keys.end());
      fetched.resize(slices.size());
      std::vector<rocksdb::Status> statuses(slices.size());
      db_->MultiGet(ro, events_cf_, slices.size(), slices.data(), fetched.data(), statuses.data(),
                    /*sorted_input=*/true);
      for (size_t i = 0; i < statuses.size(); ++i) {
        if (statuses[i].IsNotFound()) {
          // Index and event are written in one batch and age out by the same time, and the
          // range starts after the retention cutoff: a dangling index key is damage.
          return Logged(Status::Corruption("index key without its event"));
        }
        TL_RETURN_IF_ERROR(Logged(FromRocksDb(statuses[i], "reading indexed event")));
      }
    }

    for (size_t i = 0; i < index_keys.size(); ++i) {
      StoredEvent event;
      const std::string_view value = plan.is_index
                                         ? std::string_view(fetched[i].data(), fetched[i].size())
                                         : std::string_view(inline_values[i]);
      const std::string_view primary =
          plan.is_index ? std::string_view(primary_keys[i]) : std::string_view(index_keys[i]);
      TL_RETURN_IF_ERROR(Logged(DecodeEvent(primary.substr(1), value, &event)));
      if (plan.postfilter) {
        if (!q.host.empty() && event.event.host != q.host) continue;
        if (!q.user.empty() && !MatchesUser(event.event, q.user)) continue;
        if (q.kind && event.event.kind() != *q.kind) continue;
      }
      if (!emit(std::move(event))) {
        if (i + 1 < index_keys.size()) return index_keys[i + 1];
        if (it->Valid()) return std::string(it->key().data(), it->key().size());
        return std::string();
      }
    }
  }
}

Result<EventPage> RocksDbStore::QueryEvents(const EventQuery& q) {
  if (!db_) return Status::Unavailable("store is closed");
  TL_ASSIGN_OR_RETURN(const ScanPlan plan, Plan(q));
  std::string start;
  if (!q.page_token.empty()) {
    if (!HexDecode(q.page_token, &start) || start.compare(0, plan.prefix.size(), plan.prefix) ||
        start.size() < plan.prefix.size() + 8) {
      return Status::InvalidArgument("page token does not belong to this query");
    }
  }
  const size_t limit = std::clamp<size_t>(q.limit, 1, kMaxPageSize);
  EventPage page;
  TL_ASSIGN_OR_RETURN(std::string next, Scan(q, plan, std::move(start), [&](StoredEvent&& e) {
                        page.events.push_back(std::move(e));
                        return page.events.size() < limit;
                      }));
  page.next_page_token = HexEncode(next);
  return page;
}

Result<uint64_t> RocksDbStore::CountEvents(const EventQuery& q) {
  if (!db_) return Status::Unavailable("store is closed");
  TL_ASSIGN_OR_RETURN(const ScanPlan plan, Plan(q));
  uint64_t n = 0;
  TL_ASSIGN_OR_RETURN(std::string next, Scan(q, plan, std::string(), [&](StoredEvent&&) {
                        ++n;
                        return true;
                      }));
  (void)next;
  return n;
}

Result<std::vector<Event>> RocksDbStore::ReadSensorEvents(std::string_view sensor_id,
                                                          uint64_t after_seq, size_t max_events) {
  if (!db_) return Status::Unavailable("store is closed");
  if (sensor_id.empty() || sensor_id.size() > keys::kMaxIndexedName) {
    return Status::InvalidArgument("bad sensor id");
  }
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_, snapshot};
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  const std::string prefix = keys::BatchLogPrefix(sensor_id);
  std::string upper = prefix;
  upper.append(8, '\xff');
  upper.push_back('\xff');
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_cf_));
  // The record holding after_seq + 1 may start below it: the last one at or before it.
  const uint64_t want = after_seq == UINT64_MAX ? after_seq : after_seq + 1;
  it->SeekForPrev(keys::BatchLogKey(sensor_id, want));
  if (!it->Valid() || !it->key().starts_with(prefix)) it->Seek(prefix);

  std::vector<std::string> primary_keys;
  std::vector<uint64_t> seqs;
  std::vector<int64_t> times;
  for (; it->Valid() && it->key().starts_with(prefix) && seqs.size() < max_events; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 8) return Logged(Status::Corruption("malformed batch key"));
    const uint64_t first = keys::ReadBe64(key.substr(prefix.size()));
    const auto log = keys::DecodeBatchLog(std::string_view(it->value().data(), it->value().size()));
    if (!log) return Logged(Status::Corruption("malformed batch-log record"));
    for (size_t i = 0; i < log->size(); ++i) {
      const uint64_t seq = first + i;
      if (seq <= after_seq) continue;
      seqs.push_back(seq);
      times.push_back(log->time(i));
      primary_keys.push_back(keys::PrimaryKey(log->time(i), sensor_id, seq));
    }
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "reading the batch log")));

  std::vector<rocksdb::Slice> slices(primary_keys.begin(), primary_keys.end());
  std::vector<rocksdb::PinnableSlice> values(slices.size());
  std::vector<rocksdb::Status> statuses(slices.size());
  db_->MultiGet(ro, events_cf_, slices.size(), slices.data(), values.data(), statuses.data());
  const int64_t cutoff = RetentionCutoff();
  std::vector<Event> out;
  out.reserve(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      // Records age out by their newest event, so older events of a kept record may be gone.
      if (times[i] < cutoff) continue;
      return Logged(Status::Corruption("batch-log record of sensor '" + std::string(sensor_id) +
                                       "' names seq " + std::to_string(seqs[i]) +
                                       ", which is not stored"));
    }
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(statuses[i], "reading a logged event")));
    StoredEvent event;
    TL_RETURN_IF_ERROR(
        Logged(DecodeEvent(std::string_view(primary_keys[i]).substr(1),
                           std::string_view(values[i].data(), values[i].size()), &event)));
    event.event.seq = seqs[i];
    out.push_back(std::move(event.event));
  }
  return out;
}

Result<StoreStats> RocksDbStore::Stats() {
  if (!db_) return Status::Unavailable("store is closed");
  StoreStats stats;
  TL_ASSIGN_OR_RETURN(const auto sensors, ListSensors());
  stats.sensors = sensors.size();
  for (const auto& s : sensors) stats.events_stored += s.events;
  {
    std::lock_guard<std::mutex> lock(identities_mu_);
    stats.identities = identities_.size();
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), incidents_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++stats.incidents;
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "counting incidents")));
  stats.duplicates_dropped = duplicates_.load();
  stats.gaps = gaps_.load();
  return stats;
}

// The snapshot is one key in the sessions column family. It is written with the WAL like
// everything else; a crash between snapshots loses nothing because the events after the
// snapshot are in the events column family and are replayed (aggregator/correlation_engine).
constexpr std::string_view kCorrelatorSnapshotKey = "correlator/snapshot";

Status RocksDbStore::PutCorrelatorSnapshot(std::string_view bytes) {
  if (!db_) return Status::Unavailable("store is closed");
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return Logged(FromRocksDb(db_->Put(wo, sessions_cf_, kCorrelatorSnapshotKey, bytes),
                            "writing correlator snapshot"));
}

Result<std::optional<std::string>> RocksDbStore::GetCorrelatorSnapshot() {
  if (!db_) return Status::Unavailable("store is closed");
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), sessions_cf_, kCorrelatorSnapshotKey, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(s, "reading correlator snapshot")));
  return std::optional<std::string>(std::move(value));
}

Status RocksDbStore::PutIncident(std::string_view id, std::string_view bytes) {
  if (!db_) return Status::Unavailable("store is closed");
  if (id.empty() || id.size() > kMaxIncidentId) {
    return Status::InvalidArgument("incident id must be 1 to 256 bytes");
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return Logged(FromRocksDb(db_->Put(wo, incidents_cf_, id, bytes), "writing incident"));
}

Result<std::optional<std::string>> RocksDbStore::GetIncident(std::string_view id) {
  if (!db_) return Status::Unavailable("store is closed");
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), incidents_cf_, id, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(s, "reading incident")));
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::string>> RocksDbStore::ListIncidents() {
  if (!db_) return Status::Unavailable("store is closed");
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), incidents_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(it->value().ToString());
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "listing incidents")));
  return out;
}

Status RocksDbStore::CompactEvents() {
  if (!db_) return Status::Unavailable("store is closed");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return Logged(
      FromRocksDb(db_->CompactRange(options, events_cf_, nullptr, nullptr), "compacting events"));
}

rocksdb::ColumnFamilyHandle* RocksDbStore::column_family(std::string_view name) {
  const auto it = cfs_.find(name);
  return it == cfs_.end() ? nullptr : it->second;
}

Status RocksDbStore::Close() {
  if (!db_) return Status::Ok();
  Status result = FromRocksDb(db_->FlushWAL(/*sync=*/true), "syncing WAL");
  for (auto& [name, handle] : cfs_) {
    const rocksdb::Status s = db_->DestroyColumnFamilyHandle(handle);
    if (result.ok()) result = FromRocksDb(s, "releasing column family " + name);
  }
  cfs_.clear();
  events_cf_ = meta_cf_ = incidents_cf_ = sessions_cf_ = nullptr;
  const rocksdb::Status s = db_->Close();
  if (result.ok()) result = FromRocksDb(s, "closing store");
  delete db_;
  db_ = nullptr;
  return Logged(result);
}

}  // namespace tripline
