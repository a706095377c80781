#include "aggregator/store/rocksdb_store.h"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <map>

#include "aggregator/store/event_keys.h"
#include "common/hex.h"
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
constexpr std::string_view kIncidentIdKeyKey = "incident-id-key";  // 32 random bytes
constexpr size_t kIncidentIdKeyBytes = 32;
constexpr std::string_view kSensorPrefix = "s/";    // s/<sensor> -> SensorRecord
constexpr std::string_view kGapPrefix = "g/";       // g/<sensor>\0<be64 first> -> be64 last
constexpr std::string_view kIdentityPrefix = "i/";  // i/<user> -> ""
// n/<be64 order> -> incident id: incidents in creation order, the oldest evicted first.
constexpr std::string_view kIncidentOrderPrefix = "n/";
// 1: nine counters and the host. 2: the host length-prefixed, then the hook families of the
// latest health event. Both are read.
constexpr uint8_t kSensorRecordVersion = 2;
constexpr size_t kMaxIncidentId = 256;
// Candidates whose batches are read per MultiGet while counting with a filter the postings
// do not express. A query reads as many as its page needs.
constexpr size_t kScanChunk = 256;

Status Logged(Status s) {
  if (!s.ok()) {
    TL_LOG(ERROR) << "store: " << s.ToString();
  }
  return s;
}

void AppendLengthPrefixed(std::string* out, std::string_view s) {
  keys::AppendBe64(out, s.size());
  out->append(s);
}

// Reads a length-prefixed string from the front of `in`; false when it is cut short.
bool ReadLengthPrefixed(std::string_view* in, std::string* out) {
  if (in->size() < 8) return false;
  const uint64_t n = keys::ReadBe64(*in);
  in->remove_prefix(8);
  if (n > in->size()) return false;
  out->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

std::string EncodeSensorRecord(const SensorRecord& r) {
  std::string out(1, static_cast<char>(kSensorRecordVersion));
  for (uint64_t v :
       {r.durable_seq, r.events, r.missing, static_cast<uint64_t>(r.last_write_ns), r.ringbuf_drops,
        r.spool_drops, r.decode_errors, r.helper_errors, static_cast<uint64_t>(r.health_time_ns)}) {
    keys::AppendBe64(&out, v);
  }
  AppendLengthPrefixed(&out, r.host);
  keys::AppendBe64(&out, r.families.size());
  for (const HookFamilyStatus& f : r.families) {
    for (const std::string* s : {&f.name, &f.state, &f.hooks, &f.reason, &f.remedy}) {
      AppendLengthPrefixed(&out, *s);
    }
  }
  return out;
}

Status DecodeSensorRecord(std::string_view sensor_id, std::string_view in, SensorRecord* r) {
  constexpr size_t kFixed = 1 + 9 * 8;
  const Status malformed =
      Status::Corruption("sensor record of '" + std::string(sensor_id) + "' is malformed");
  const uint8_t version = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  if (in.size() < kFixed || (version != 1 && version != kSensorRecordVersion)) return malformed;
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
  r->families.clear();
  in.remove_prefix(kFixed);
  if (version == 1) {
    r->host = std::string(in);
    return Status::Ok();
  }
  if (!ReadLengthPrefixed(&in, &r->host) || in.size() < 8) return malformed;
  const uint64_t families = keys::ReadBe64(in);
  in.remove_prefix(8);
  if (families > in.size() / (5 * 8)) return malformed;  // each takes at least 40 bytes
  r->families.resize(families);
  for (HookFamilyStatus& f : r->families) {
    for (std::string* s : {&f.name, &f.state, &f.hooks, &f.reason, &f.remedy}) {
      if (!ReadLengthPrefixed(&in, s)) return malformed;
    }
  }
  if (!in.empty()) return malformed;
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

Status DecodeEvent(std::string_view sensor_id, uint64_t seq, std::string_view bytes,
                   StoredEvent* out) {
  v1::Event pb;
  if (!pb.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Corruption("stored event of sensor '" + std::string(sensor_id) + "' seq " +
                              std::to_string(seq) + " does not parse");
  }
  auto event = FromProto(pb);
  if (!event.ok()) {
    return Status::Corruption("stored event of sensor '" + std::string(sensor_id) + "' seq " +
                              std::to_string(seq) + " is invalid: " + event.status().message());
  }
  out->sensor_id = std::string(sensor_id);
  out->event = std::move(event).value();
  out->event.seq = seq;
  return Status::Ok();
}

bool MatchesUser(const Event& e, std::string_view user) {
  std::string_view names[3];
  size_t n = 0;
  keys::IndexedUsers(e, names, &n);
  return std::find(names, names + n, user) != names + n;
}

// Drops events older than the retention window during compaction: an event by its time
// (the first 8 bytes of its value), a posting by the end of its bucket (in its key), so
// nothing is parsed and a posting never ages out before the events it lists. A record that
// does not parse is kept: never destroy what we cannot read.
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

// The memtable's insert-hint prefix of an events key: a sensor for batch keys, the tag and
// the indexed name for postings. Within one prefix keys arrive in (almost) ascending
// order, sequence for batches and bucket for postings, so the memtable keeps one insertion
// point per prefix instead of searching the whole skiplist for every key, which perf
// showed as the largest ingest cost.
class EventKeyPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "tripline.EventKeyPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), PrefixLength(std::string_view(key.data(), key.size())));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return PrefixLength(std::string_view(key.data(), key.size())) > 0;
  }

 private:
  // A batch key's prefix is its sensor ('b' | len | sensor); a posting's is its tag and
  // name. 0 for anything else.
  static size_t PrefixLength(std::string_view key) {
    if (!key.empty() && key[0] == keys::kBatchTag) {
      if (key.size() < 3) return 0;
      const size_t len = (static_cast<uint8_t>(key[1]) << 8) | static_cast<uint8_t>(key[2]);
      return key.size() >= 3 + len + 8 ? 3 + len : 0;
    }
    const auto split = keys::Split(key);
    return split ? split->prefix.size() : 0;
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
  std::string prefix;    // posting prefix (tag and name) being scanned
  std::string lower;     // first key of the range
  std::string upper;     // first key past the range
  int64_t since_ns = 0;  // event times in [since_ns, until_ns)
  int64_t until_ns = 0;
  bool postfilter = false;  // filters that the chosen postings do not express
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
  // The memtable's insert hints (EventKeyPrefix below) are ignored by concurrent memtable
  // writes; the write group's leader inserting for all was faster here, for one stream and
  // for eight (store_floor_bench: 3.5 -> 2.6 us per event on the default mix).
  db_options.allow_concurrent_memtable_write = false;

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
  for (it->Seek(kIdentityPrefix); it->Valid() && it->key().starts_with(kIdentityPrefix) &&
                                  identities_.size() < options_.max_identities;
       it->Next()) {
    identities_.emplace(it->key().data() + kIdentityPrefix.size(),
                        it->key().size() - kIdentityPrefix.size());
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "loading identities")));
  {
    // How many incidents are held and the order of the newest; a store written before the
    // order was kept gets it now, in id order.
    std::unique_ptr<rocksdb::Iterator> inc(db_->NewIterator(rocksdb::ReadOptions(), incidents_cf_));
    for (inc->SeekToFirst(); inc->Valid(); inc->Next()) ++incidents_held_;
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(inc->status(), "counting incidents")));
    uint64_t ordered = 0;
    for (it->Seek(kIncidentOrderPrefix); it->Valid() && it->key().starts_with(kIncidentOrderPrefix);
         it->Next()) {
      ++ordered;
      if (it->key().size() == kIncidentOrderPrefix.size() + 8) {
        next_incident_order_ =
            keys::ReadBe64(std::string_view(it->key().data(), it->key().size()).substr(2)) + 1;
      }
    }
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "loading incident order")));
    if (ordered == 0 && incidents_held_ > 0) {
      rocksdb::WriteBatch batch;
      for (inc->SeekToFirst(); inc->Valid(); inc->Next()) {
        std::string key(kIncidentOrderPrefix);
        keys::AppendBe64(&key, next_incident_order_++);
        batch.Put(meta_cf_, key, inc->key());
      }
      TL_RETURN_IF_ERROR(Logged(FromRocksDb(inc->status(), "ordering incidents")));
      rocksdb::WriteOptions wo;
      wo.sync = true;
      TL_RETURN_IF_ERROR(Logged(FromRocksDb(db_->Write(wo, &batch), "writing the incident order")));
    }
  }
  TL_LOG(INFO) << "store opened at " << options_.path << ": " << slots_.size() << " sensors, "
               << identities_.size() << " identities";
  return Status::Ok();
}

RocksDbStore::SensorSlot* RocksDbStore::Slot(std::string_view sensor_id) {
  std::lock_guard<std::mutex> lock(slots_mu_);
  auto it = slots_.find(sensor_id);
  if (it == slots_.end()) {
    if (slots_.size() >= options_.max_sensors) return nullptr;
    auto slot = std::make_unique<SensorSlot>();
    slot->record.sensor_id = std::string(sensor_id);
    it = slots_.emplace(std::string(sensor_id), std::move(slot)).first;
  }
  return it->second.get();
}

int64_t RocksDbStore::RetentionCutoff() const {
  return options_.retention_ns > 0 ? clock_.NowNs() - options_.retention_ns : 0;
}

namespace {

// One posting of a batch being stored: an index (tag), the name it is under (empty for
// `all`, the kind byte for `kind`) and a time bucket. Names view the batch's events.
struct PostingId {
  char tag;
  std::string_view name;
  int64_t bucket;
  bool operator==(const PostingId&) const = default;
};

struct PostingIdHash {
  size_t operator()(const PostingId& p) const {
    size_t h = std::hash<std::string_view>{}(p.name);
    h ^= std::hash<int64_t>{}(p.bucket) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h ^ static_cast<size_t>(static_cast<uint8_t>(p.tag)) * 0x100000001b3ULL;
  }
};

// The index prefix of a posting: 't', 'k' | kind byte, or tag | be16(len) | name.
void AppendPostingPrefix(std::string* out, const PostingId& p) {
  out->push_back(p.tag);
  if (p.tag == keys::kAllTag) return;
  if (p.tag == keys::kKindTag) {
    out->append(p.name);
    return;
  }
  out->push_back(static_cast<char>((p.name.size() >> 8) & 0xff));
  out->push_back(static_cast<char>(p.name.size() & 0xff));
  out->append(p.name);
}

// One byte per kind, for PostingId::name of a kind posting.
constexpr char kKindBytes[] = {0, 1, 2, 3, 4, 5, 6, 7};
static_assert(static_cast<size_t>(EventKind::kHealth) < sizeof(kKindBytes));

}  // namespace

Result<AppendResult> RocksDbStore::AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                               const std::vector<Event>& events,
                                               std::span<const std::string_view> encoded) {
  return Append(sensor_id, first_seq, events, encoded, /*run=*/false);
}

Result<AppendResult> RocksDbStore::AppendRun(std::string_view sensor_id, uint64_t first_seq,
                                             const std::vector<Event>& events,
                                             std::span<const std::string_view> encoded) {
  return Append(sensor_id, first_seq, events, encoded, /*run=*/true);
}

Result<AppendResult> RocksDbStore::Append(std::string_view sensor_id, uint64_t first_seq,
                                          const std::vector<Event>& events,
                                          std::span<const std::string_view> encoded, bool run) {
  if (!db_) return Status::Unavailable("store is closed");
  if (sensor_id.empty() || sensor_id.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("bad sensor id");
  }
  if (first_seq == 0) return Status::InvalidArgument("first_seq must be at least 1");
  if (events.size() > UINT64_MAX - first_seq) {
    return Status::InvalidArgument("sequence numbers overflow");
  }
  if (!encoded.empty() && encoded.size() != events.size()) {
    return Status::InvalidArgument("encoded events do not match the events");
  }
  SensorSlot* slot = Slot(sensor_id);
  if (slot == nullptr) {
    sensors_refused_.fetch_add(1);
    return Logged(Status::ResourceExhausted(
        "the store holds " + std::to_string(options_.max_sensors) +
        " sensors, its most; refusing new sensor '" + std::string(sensor_id) + "'"));
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  AppendResult result;
  const uint64_t durable = slot->record.durable_seq;
  result.durable_seq = durable;
  if (events.empty()) return result;
  const uint64_t last_seq = first_seq + events.size() - 1;
  if (last_seq <= durable && !run) {
    result.duplicates = events.size();
    duplicates_.fetch_add(result.duplicates);
    return result;
  }
  const size_t start =
      durable >= first_seq && !run ? static_cast<size_t>(durable - first_seq + 1) : 0;
  result.duplicates = start;

  SensorRecord record = slot->record;
  rocksdb::WriteBatch batch;
  if (first_seq > durable + 1 && !run) {
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

  // The new events as records of up to kEventsPerRecord under the sensor and their first
  // sequence number, and one posting per (index, name, bucket) of the batch (event_keys.h).
  const size_t n = events.size() - start;
  const uint64_t batch_first = first_seq + start;
  std::vector<std::string> own_encoding;  // when the caller passed none
  std::vector<std::string_view> bytes(n);
  if (encoded.empty()) {
    own_encoding.resize(n);
    v1::Event pb;
    for (size_t i = 0; i < n; ++i) {
      ToProto(events[start + i], &pb);
      if (!pb.SerializeToString(&own_encoding[i])) {
        return Status::Internal("cannot serialize event");
      }
      bytes[i] = own_encoding[i];
    }
  } else {
    for (size_t i = 0; i < n; ++i) bytes[i] = encoded[start + i];
  }

  std::unordered_map<PostingId, std::string, PostingIdHash> postings;
  postings.reserve(n * 2);
  const auto post = [&](char tag, std::string_view name, int64_t bucket, uint32_t offset,
                        int64_t time) {
    keys::AppendPostingEntry(&postings[PostingId{tag, name, bucket}], offset, time);
  };
  std::unordered_set<std::string_view> batch_users;  // distinct user names of this batch
  const SensorHealth* newest_health = nullptr;
  int64_t newest_health_ns = record.health_time_ns;
  std::vector<int64_t> newest_ns((n + keys::kEventsPerRecord - 1) / keys::kEventsPerRecord, 0);
  for (size_t i = 0; i < n; ++i) {
    const Event& e = events[start + i];
    if (e.time_ns <= 0) {
      return Status::InvalidArgument("event seq " + std::to_string(batch_first + i) +
                                     " has no time");
    }
    int64_t& newest = newest_ns[i / keys::kEventsPerRecord];
    newest = std::max(newest, e.time_ns);
    const uint32_t offset = static_cast<uint32_t>(i);
    const int64_t bucket = keys::Bucket(e.time_ns);
    post(keys::kAllTag, {}, bucket, offset, e.time_ns);
    if (e.host.size() <= keys::kMaxIndexedName) {
      post(keys::kHostTag, e.host, bucket, offset, e.time_ns);
    }
    std::string_view users[3];
    size_t n_users = 0;
    keys::IndexedUsers(e, users, &n_users);
    for (size_t u = 0; u < n_users; ++u) {
      post(keys::kUserTag, users[u], bucket, offset, e.time_ns);
      batch_users.insert(users[u]);
    }
    post(keys::kKindTag, std::string_view(&kKindBytes[static_cast<size_t>(e.kind())], 1), bucket,
         offset, e.time_ns);
    if (const auto* health = e.As<SensorHealth>();
        health != nullptr && e.time_ns >= newest_health_ns) {
      newest_health = health;
      newest_health_ns = e.time_ns;
    }
  }
  for (size_t r = 0; r < newest_ns.size(); ++r) {
    const size_t first = r * keys::kEventsPerRecord;
    batch.Put(events_cf_, keys::BatchKey(sensor_id, batch_first + first),
              keys::EncodeBatchValue(newest_ns[r], bytes.data() + first,
                                     std::min<size_t>(keys::kEventsPerRecord, n - first)));
  }
  std::string suffix_tail(sensor_id);
  suffix_tail.push_back('\0');
  keys::AppendBe64(&suffix_tail, batch_first);
  std::string posting_key;
  for (const auto& [id, entries] : postings) {
    posting_key.clear();
    AppendPostingPrefix(&posting_key, id);
    keys::AppendBe64(&posting_key, static_cast<uint64_t>(id.bucket));
    posting_key.append(suffix_tail);
    batch.Put(events_cf_, posting_key, entries);
  }
  if (newest_health != nullptr) {
    record.ringbuf_drops = newest_health->ringbuf_drops;
    record.spool_drops = newest_health->spool_drops;
    record.decode_errors = newest_health->decode_errors;
    record.helper_errors = newest_health->helper_errors;
    record.health_time_ns = newest_health_ns;
    record.families = newest_health->families;
  }
  record.host = events.back().host;
  std::vector<std::string> fresh_identities;
  {
    std::lock_guard<std::mutex> ilock(identities_mu_);
    for (std::string_view user : batch_users) {
      if (identities_.contains(user)) continue;
      if (identities_.size() + fresh_identities.size() >= options_.max_identities) {
        identities_untracked_.fetch_add(1);
        continue;
      }
      fresh_identities.emplace_back(user);
    }
  }
  for (const auto& name : fresh_identities) {
    batch.Put(meta_cf_, std::string(kIdentityPrefix) + name, {});
  }
  result.stored = n;
  record.durable_seq = std::max(durable, last_seq);
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
  result.durable_seq = record.durable_seq;
  slot->record = std::move(record);
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
    const auto it = slots_.find(sensor_id);
    if (it == slots_.end()) return uint64_t{0};
    slot = it->second.get();
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  return slot->record.durable_seq;
}

Result<std::string> RocksDbStore::IncidentIdKey() {
  if (!db_) return Status::Unavailable("store is closed");
  std::lock_guard<std::mutex> lock(key_mu_);
  std::string key;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kIncidentIdKeyKey, &key);
  if (s.ok()) {
    if (key.size() != kIncidentIdKeyBytes) {
      return Logged(Status::Corruption("incident id key has " + std::to_string(key.size()) +
                                       " bytes, want " + std::to_string(kIncidentIdKeyBytes)));
    }
    return key;
  }
  if (!s.IsNotFound()) return Logged(FromRocksDb(s, "reading the incident id key"));
  key.resize(kIncidentIdKeyBytes);
  for (size_t got = 0; got < key.size();) {
    const ssize_t n = getrandom(key.data() + got, key.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Logged(Status::FromErrno(errno, "getrandom for the incident id key"));
    got += static_cast<size_t>(n);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db_->Put(wo, meta_cf_, kIncidentIdKeyKey, key);
  if (!s.ok()) return Logged(FromRocksDb(s, "writing the incident id key"));
  return key;
}

Result<std::optional<SensorRecord>> RocksDbStore::GetSensor(std::string_view sensor_id) {
  if (!db_) return Status::Unavailable("store is closed");
  SensorSlot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    const auto it = slots_.find(sensor_id);
    if (it == slots_.end()) return std::optional<SensorRecord>();
    slot = it->second.get();
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  if (slot->record.durable_seq == 0 && slot->record.events == 0) {
    return std::optional<SensorRecord>();
  }
  return std::optional<SensorRecord>(slot->record);
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
  if (filters == 0) plan.prefix = keys::AllPrefix();
  plan.postfilter = filters > 1;
  plan.since_ns = std::max<int64_t>({q.since_ns, RetentionCutoff(), 1});
  // Valid event times are positive int64, so INT64_MAX is past every one of them.
  plan.until_ns = q.until_ns > 0 ? q.until_ns : INT64_MAX;
  plan.lower = plan.prefix;
  keys::AppendBe64(&plan.lower, static_cast<uint64_t>(keys::Bucket(plan.since_ns)));
  plan.upper = plan.prefix;
  // Past every posting of the bucket that holds until - 1.
  keys::AppendBe64(&plan.upper, static_cast<uint64_t>(keys::Bucket(plan.until_ns - 1)) + 1);
  return plan;
}

template <typename Emit>
Result<std::optional<RocksDbStore::Cursor>> RocksDbStore::Scan(const EventQuery& q,
                                                               const ScanPlan& plan,
                                                               const std::optional<Cursor>& after,
                                                               bool need_events, size_t chunk,
                                                               Emit&& emit) {
  if (plan.until_ns <= plan.since_ns) return std::optional<Cursor>();
  // One snapshot for the posting scan and the lookups it drives, so an event is never
  // seen in one and missing from the other.
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
  std::string start = plan.lower;
  if (after) {
    std::string resume = plan.prefix;
    keys::AppendBe64(&resume, static_cast<uint64_t>(keys::Bucket(after->time_ns)));
    start = std::max(start, resume);
  }
  it->Seek(start);

  // The candidates of one bucket: every posting entry in range, sorted by (time, sensor,
  // seq) before any event is read. Sensor ids point into `sensors`.
  struct Candidate {
    int64_t time_ns;
    std::string_view sensor_id;
    uint64_t seq;
    uint64_t batch_first;  // the first sequence number its batch stored
    // The record of the batch that holds the event, and the event's position in it.
    uint64_t record_first() const {
      return batch_first + (seq - batch_first) / keys::kEventsPerRecord * keys::kEventsPerRecord;
    }
  };
  const auto less = [](const Candidate& a, const Candidate& b) {
    if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
    if (a.sensor_id != b.sensor_id) return a.sensor_id < b.sensor_id;
    return a.seq < b.seq;
  };
  std::optional<Candidate> after_candidate;
  if (after) after_candidate = Candidate{after->time_ns, after->sensor_id, after->seq, 0};

  std::deque<std::string> sensors;  // stable addresses for the candidates' views
  std::vector<Candidate> candidates;
  std::vector<std::string> keys_to_read;
  while (it->Valid()) {
    candidates.clear();
    sensors.clear();
    const auto first_split = keys::Split(std::string_view(it->key().data(), it->key().size()));
    if (!first_split) return Logged(Status::Corruption("malformed posting key in events"));
    const std::string bucket(first_split->suffix.substr(0, 8));
    for (; it->Valid(); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      const auto split = keys::Split(key);
      if (!split) return Logged(Status::Corruption("malformed posting key in events"));
      if (split->suffix.substr(0, 8) != bucket) break;
      const auto parts = keys::ParseSuffix(split->suffix);
      const std::string_view entries(it->value().data(), it->value().size());
      if (!parts || !keys::PostingValueValid(entries)) {
        return Logged(Status::Corruption("malformed posting in events"));
      }
      if (sensors.empty() || sensors.back() != parts->sensor_id) {
        sensors.emplace_back(parts->sensor_id);
      }
      for (size_t i = 0; i < entries.size() / keys::kPostingEntrySize; ++i) {
        const Candidate c{keys::PostingTime(entries, i), sensors.back(),
                          parts->seq + keys::PostingOffset(entries, i), parts->seq};
        if (c.time_ns < plan.since_ns || c.time_ns >= plan.until_ns) continue;
        if (after_candidate && !less(*after_candidate, c)) continue;
        candidates.push_back(c);
      }
    }
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "scanning postings")));
    std::sort(candidates.begin(), candidates.end(), less);

    for (size_t begin = 0; begin < candidates.size();) {
      const size_t end = std::min(candidates.size(), begin + chunk);
      // The batch records of this chunk's candidates, each read once.
      std::vector<size_t> batch_of(end - begin);
      std::vector<rocksdb::PinnableSlice> values;
      std::vector<keys::BatchValue> batches;
      if (need_events) {
        keys_to_read.clear();
        keys_to_read.reserve(end - begin);  // no reallocation: `index` views these strings
        std::unordered_map<std::string_view, size_t> index;
        for (size_t i = begin; i < end; ++i) {
          std::string key = keys::BatchKey(candidates[i].sensor_id, candidates[i].record_first());
          const auto found = index.find(key);
          if (found != index.end()) {
            batch_of[i - begin] = found->second;
            continue;
          }
          keys_to_read.push_back(std::move(key));
          batch_of[i - begin] = keys_to_read.size() - 1;
          index.emplace(keys_to_read.back(), keys_to_read.size() - 1);
        }
        std::vector<rocksdb::Slice> slices(keys_to_read.begin(), keys_to_read.end());
        values.resize(slices.size());
        std::vector<rocksdb::Status> statuses(slices.size());
        db_->MultiGet(ro, events_cf_, slices.size(), slices.data(), values.data(), statuses.data());
        for (size_t i = 0; i < statuses.size(); ++i) {
          if (statuses[i].IsNotFound()) {
            // A posting and its batch are written in one write batch, and no posting
            // outlives its batch in range (it ages by its bucket's end, the batch by its
            // newest event, and the range starts after the retention cutoff): a dangling
            // entry is damage.
            return Logged(Status::Corruption("posting names an event that is not stored"));
          }
          TL_RETURN_IF_ERROR(Logged(FromRocksDb(statuses[i], "reading an indexed batch")));
          auto batch =
              keys::BatchValue::Parse(std::string_view(values[i].data(), values[i].size()));
          if (!batch) return Logged(Status::Corruption("malformed batch value"));
          batches.push_back(*batch);
        }
      }
      for (size_t i = begin; i < end; ++i) {
        const Candidate& c = candidates[i];
        StoredEvent event;
        if (need_events) {
          const keys::BatchValue& batch = batches[batch_of[i - begin]];
          const uint64_t offset = c.seq - c.record_first();
          if (offset >= batch.size()) {
            return Logged(Status::Corruption("posting names an event that is not stored"));
          }
          TL_RETURN_IF_ERROR(Logged(
              DecodeEvent(c.sensor_id, c.seq, batch.event(static_cast<uint32_t>(offset)), &event)));
          if (plan.postfilter) {
            if (!q.host.empty() && event.event.host != q.host) continue;
            if (!q.user.empty() && !MatchesUser(event.event, q.user)) continue;
            if (q.kind && event.event.kind() != *q.kind) continue;
          }
        }
        if (!emit(need_events ? &event : nullptr)) {
          // More may follow: later candidates of this bucket, or later buckets.
          if (i + 1 < candidates.size() || it->Valid()) {
            return std::optional<Cursor>(Cursor{c.time_ns, std::string(c.sensor_id), c.seq});
          }
          return std::optional<Cursor>();
        }
      }
      begin = end;
    }
  }
  return std::optional<Cursor>();
}

Result<EventPage> RocksDbStore::QueryEvents(const EventQuery& q) {
  if (!db_) return Status::Unavailable("store is closed");
  TL_ASSIGN_OR_RETURN(const ScanPlan plan, Plan(q));
  std::optional<Cursor> after;
  if (!q.page_token.empty()) {
    // A token is the hex of prefix | be64(time) | sensor | 0 | be64(seq): the query's
    // index prefix and the last event returned.
    std::string raw;
    if (!HexDecode(q.page_token, &raw) || raw.compare(0, plan.prefix.size(), plan.prefix)) {
      return Status::InvalidArgument("page token does not belong to this query");
    }
    const auto parts = keys::ParseSuffix(std::string_view(raw).substr(plan.prefix.size()));
    if (!parts) return Status::InvalidArgument("page token does not belong to this query");
    after = Cursor{parts->time_ns, std::string(parts->sensor_id), parts->seq};
  }
  const size_t limit = std::clamp<size_t>(q.limit, 1, kMaxPageSize);
  EventPage page;
  TL_ASSIGN_OR_RETURN(std::optional<Cursor> next,
                      Scan(q, plan, after, /*need_events=*/true,
                           plan.postfilter ? kScanChunk : limit, [&](const StoredEvent* e) {
                             page.events.push_back(*e);
                             return page.events.size() < limit;
                           }));
  if (next) {
    page.next_page_token =
        HexEncode(plan.prefix + keys::Suffix(next->time_ns, next->sensor_id, next->seq));
  }
  return page;
}

Result<uint64_t> RocksDbStore::CountEvents(const EventQuery& q) {
  if (!db_) return Status::Unavailable("store is closed");
  TL_ASSIGN_OR_RETURN(const ScanPlan plan, Plan(q));
  uint64_t n = 0;
  TL_ASSIGN_OR_RETURN(std::optional<Cursor> next,
                      Scan(q, plan, std::nullopt, /*need_events=*/plan.postfilter, kScanChunk,
                           [&](const StoredEvent*) {
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
  std::vector<Event> out;
  if (after_seq == UINT64_MAX) return out;
  const std::string prefix = keys::BatchPrefix(sensor_id);
  std::string upper = prefix;
  upper.append(9, '\xff');  // past prefix | be64(any seq)
  const rocksdb::Slice lower_slice(prefix);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_cf_));
  const size_t want = std::max<size_t>(max_events, 1);
  const int64_t cutoff = RetentionCutoff();
  // The batch holding after_seq + 1 starts at or before it: the last batch key not after
  // BatchKey(after_seq + 1), or the first one when there is none.
  it->SeekForPrev(keys::BatchKey(sensor_id, after_seq + 1));
  if (!it->Valid()) {
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "reading a sensor's events")));
    it->Seek(prefix);
  }
  for (; it->Valid() && out.size() < want; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) {
      return Logged(Status::Corruption("malformed batch key"));
    }
    const uint64_t first = keys::ReadBe64(key.substr(prefix.size()));
    const auto batch =
        keys::BatchValue::Parse(std::string_view(it->value().data(), it->value().size()));
    if (!batch) return Logged(Status::Corruption("malformed batch value"));
    if (batch->size() > 0 && first > UINT64_MAX - (batch->size() - 1)) {
      return Logged(Status::Corruption("batch sequence numbers overflow"));
    }
    for (uint32_t i = after_seq >= first ? static_cast<uint32_t>(std::min<uint64_t>(
                                               after_seq - first + 1, batch->size()))
                                         : 0;
         i < batch->size() && out.size() < want; ++i) {
      StoredEvent event;
      TL_RETURN_IF_ERROR(Logged(DecodeEvent(sensor_id, first + i, batch->event(i), &event)));
      // A batch ages out by its newest event; older ones in it are hidden as from queries.
      if (event.event.time_ns < cutoff) continue;
      out.push_back(std::move(event.event));
    }
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "reading a sensor's events")));
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
  stats.sensors_refused = sensors_refused_.load();
  stats.identities_untracked = identities_untracked_.load();
  stats.incidents_evicted = incidents_evicted_.load();
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

Status RocksDbStore::PutCorrelatorSnapshotWithBaselines(
    std::string_view bytes, const std::vector<std::pair<std::string, std::string>>& baselines) {
  if (!db_) return Status::Unavailable("store is closed");
  rocksdb::ColumnFamilyHandle* baselines_cf = column_family("baselines");
  if (baselines_cf == nullptr) return Status::Internal("no baselines column family");
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(sessions_cf_, kCorrelatorSnapshotKey, bytes);
  for (const auto& [key, value] : baselines) {
    if (!s.ok()) break;
    s = value.empty() ? batch.Delete(baselines_cf, key) : batch.Put(baselines_cf, key, value);
  }
  TL_RETURN_IF_ERROR(Logged(FromRocksDb(s, "building correlator snapshot batch")));
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return Logged(FromRocksDb(db_->Write(wo, &batch), "writing correlator snapshot and baselines"));
}

Status RocksDbStore::ForEachBaseline(
    const std::function<Status(std::string_view key, std::string_view value)>& f) {
  if (!db_) return Status::Unavailable("store is closed");
  rocksdb::ColumnFamilyHandle* baselines_cf = column_family("baselines");
  if (baselines_cf == nullptr) return Status::Internal("no baselines column family");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), baselines_cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    TL_RETURN_IF_ERROR(f(std::string_view(it->key().data(), it->key().size()),
                         std::string_view(it->value().data(), it->value().size())));
  }
  return Logged(FromRocksDb(it->status(), "reading baselines"));
}

Status RocksDbStore::PutIncident(std::string_view id, std::string_view bytes) {
  if (!db_) return Status::Unavailable("store is closed");
  if (id.empty() || id.size() > kMaxIncidentId) {
    return Status::InvalidArgument("incident id must be 1 to 256 bytes");
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  std::lock_guard<std::mutex> lock(incidents_mu_);
  std::string existing;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), incidents_cf_, id, &existing);
  if (s.ok()) {
    return Logged(FromRocksDb(db_->Put(wo, incidents_cf_, id, bytes), "writing incident"));
  }
  if (!s.IsNotFound()) return Logged(FromRocksDb(s, "reading incident"));
  // A new incident: recorded in creation order, and past the bound the oldest gives way.
  rocksdb::WriteBatch batch;
  batch.Put(incidents_cf_, id, bytes);
  std::string order(kIncidentOrderPrefix);
  keys::AppendBe64(&order, next_incident_order_);
  batch.Put(meta_cf_, order, id);
  uint64_t evicted = 0;
  if (incidents_held_ + 1 > options_.max_incidents) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    for (it->Seek(kIncidentOrderPrefix);
         it->Valid() && it->key().starts_with(kIncidentOrderPrefix) &&
         incidents_held_ + 1 - evicted > options_.max_incidents;
         it->Next()) {
      batch.Delete(meta_cf_, it->key());
      std::string gone;
      const rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), incidents_cf_, it->value(), &gone);
      if (g.IsNotFound()) continue;  // an order entry left by an earlier eviction
      if (!g.ok()) return Logged(FromRocksDb(g, "reading incident to evict"));
      batch.Delete(incidents_cf_, it->value());
      ++evicted;
    }
    TL_RETURN_IF_ERROR(Logged(FromRocksDb(it->status(), "finding the oldest incident")));
  }
  s = db_->Write(wo, &batch);
  if (!s.ok()) return Logged(FromRocksDb(s, "writing incident"));
  ++next_incident_order_;
  incidents_held_ = incidents_held_ + 1 - evicted;
  if (evicted > 0) {
    incidents_evicted_.fetch_add(evicted);
    TL_LOG(WARNING) << "incident store full (" << options_.max_incidents << "): evicted " << evicted
                    << " oldest incident(s)";
  }
  return Status::Ok();
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

Status RocksDbStore::ScanIncidents(const std::function<bool(std::string_view bytes)>& visit) {
  if (!db_) return Status::Unavailable("store is closed");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), incidents_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!visit(std::string_view(it->value().data(), it->value().size()))) break;
  }
  return Logged(FromRocksDb(it->status(), "scanning incidents"));
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
