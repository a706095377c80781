// RocksDbStore: the Store on RocksDB. On-disk format and policies: docs/storage.md.
//
// Column families, one per domain: events (with retention), sessions, baselines, incidents,
// posture, actions, outbox, meta. This class writes events, meta and incidents; the other
// families are created here so that every domain finds its family in the same database, and
// are handed out through column_family() to the components that own them.
//
// Write policy: every AppendBatch is one rocksdb::WriteBatch with the WAL on. With
// sync_writes=false (the default) a batch is acknowledged once it is in the WAL in the OS
// page cache: it survives a crash or SIGKILL of the process, not a power loss or kernel
// crash. sync_writes=true fsyncs the WAL before acknowledging and survives power loss, at a
// cost of one fsync per batch (group commit shares it between concurrent streams).
//
// Threading: see Store. Close() must not race with other calls; the destructor closes.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "aggregator/store/store.h"
#include "common/clock.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class CompactionFilter;
class Status;
}  // namespace rocksdb

namespace tripline {

struct RocksDbStoreOptions {
  std::string path{};  // the data directory; created when missing
  // fsync the WAL on every AppendBatch / PutIncident (see the class comment).
  bool sync_writes = false;
  // Events older than this (by event time) are removed by compaction and hidden from
  // queries at once. 0 keeps events forever.
  int64_t retention_ns = 0;
  // Time source for retention and last_write_ns. Not owned; must outlive the store.
  // nullptr means SystemClock::Get().
  const Clock* clock = nullptr;
  // Sensor ids are the clients' choice, and user names come from events: both are bounded.
  // A batch of a new sensor beyond max_sensors is refused (ResourceExhausted: the sensor
  // keeps it and retries); user names beyond max_identities are stored with their events
  // but not indexed as identities. Both are counted in StoreStats.
  size_t max_sensors = 100'000;
  size_t max_identities = 1'000'000;
  // Incidents kept; past it, a new incident evicts the one created longest ago (counted).
  size_t max_incidents = 1'000'000;
};

// RocksDB status -> Tripline status (corruption, IO error, ...), with context.
Status FromRocksDb(const rocksdb::Status& s, std::string_view context);

class RocksDbStore final : public Store {
 public:
  static constexpr const char* kFormat = "tripline-store 3";

  // Opens (or creates) the database, checks its format marker and loads the per-sensor
  // records and the set of identities into memory.
  static Result<std::unique_ptr<RocksDbStore>> Open(const RocksDbStoreOptions& options);
  ~RocksDbStore() override;
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  using Store::AppendBatch;
  Result<AppendResult> AppendBatch(std::string_view sensor_id, uint64_t first_seq,
                                   const std::vector<Event>& events,
                                   std::span<const std::string_view> encoded) override;
  // Stores a run of a sensor's events (events[i] has sequence number first_seq + i) whatever
  // was stored for the sensor before: no duplicates dropped, no gap recorded; the sensor's
  // durable_seq becomes the highest stored. For a worker of the scaled-out mode, which gets
  // a sensor's events split over partitions, in order within each, and has dropped what it
  // fed before (docs/scale-out.md). The same run stored again replaces itself (same keys).
  Result<AppendResult> AppendRun(std::string_view sensor_id, uint64_t first_seq,
                                 const std::vector<Event>& events,
                                 std::span<const std::string_view> encoded);
  Result<uint64_t> DurableSeq(std::string_view sensor_id) override;
  Result<std::optional<SensorRecord>> GetSensor(std::string_view sensor_id) override;
  Result<std::string> IncidentIdKey() override;
  Result<std::vector<SensorRecord>> ListSensors() override;
  Result<EventPage> QueryEvents(const EventQuery& query) override;
  Result<uint64_t> CountEvents(const EventQuery& query) override;
  Result<StoreStats> Stats() override;
  Result<std::vector<Event>> ReadSensorEvents(std::string_view sensor_id, uint64_t after_seq,
                                              size_t max_events) override;
  Status PutIncident(std::string_view id, std::string_view bytes) override;
  Result<std::optional<std::string>> GetIncident(std::string_view id) override;
  Result<std::vector<std::string>> ListIncidents() override;
  Status ScanIncidents(const std::function<bool(std::string_view bytes)>& visit) override;
  Status PutCorrelatorSnapshot(std::string_view bytes) override;
  Result<std::optional<std::string>> GetCorrelatorSnapshot() override;
  Status PutCorrelatorSnapshotWithBaselines(
      std::string_view bytes,
      const std::vector<std::pair<std::string, std::string>>& baselines) override;
  Status ForEachBaseline(
      const std::function<Status(std::string_view key, std::string_view value)>& f) override;

  // Runs a full compaction of the events family now, applying retention.
  Status CompactEvents();
  // Syncs the WAL and closes the database; later calls fail. Idempotent.
  Status Close();

  // For the components that own the other domains (and for tests). Valid until Close().
  // Names: events, sessions, baselines, incidents, posture, actions, outbox, meta.
  rocksdb::DB* db() { return db_; }
  rocksdb::ColumnFamilyHandle* column_family(std::string_view name);

 private:
  Result<AppendResult> Append(std::string_view sensor_id, uint64_t first_seq,
                              const std::vector<Event>& events,
                              std::span<const std::string_view> encoded, bool run);
  struct SensorSlot {
    std::mutex mu;  // serializes appends of one sensor
    SensorRecord record;
  };
  struct ScanPlan;
  // A position in a query's results: the (time, sensor, seq) of the last event returned.
  struct Cursor {
    int64_t time_ns = 0;
    std::string sensor_id;
    uint64_t seq = 0;
  };

  explicit RocksDbStore(const RocksDbStoreOptions& options);
  Status OpenDb();
  Status LoadMeta();
  // nullptr when the sensor is new and max_sensors are held.
  SensorSlot* Slot(std::string_view sensor_id);
  int64_t RetentionCutoff() const;
  // Walks the events matching `q` after `after` in (time, sensor, seq) order and calls
  // `emit(const StoredEvent*)` for each until it returns false; with need_events false
  // (no filter beyond the scanned index) emit gets nullptr and no event is read. The batch
  // records of up to `chunk` candidates are read per MultiGet (a page's size, so a page
  // reads no record it does not need). Returns the cursor to resume after, or nullopt when
  // the range is exhausted.
  template <typename Emit>
  Result<std::optional<Cursor>> Scan(const EventQuery& q, const ScanPlan& plan,
                                     const std::optional<Cursor>& after, bool need_events,
                                     size_t chunk, Emit&& emit);
  Result<ScanPlan> Plan(const EventQuery& q);

  const RocksDbStoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<rocksdb::CompactionFilter> retention_filter_;
  rocksdb::DB* db_ = nullptr;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cfs_;
  rocksdb::ColumnFamilyHandle* events_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* incidents_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* sessions_cf_ = nullptr;

  std::mutex slots_mu_;
  // Slots are never removed, so a SensorSlot* stays valid for the store's lifetime.
  // Lookups by string_view without building a string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<SensorSlot>, NameHash, std::equal_to<>>
      slots_;  // GUARDED_BY(slots_mu_)

  std::mutex key_mu_;  // makes the incident id key once
  std::mutex identities_mu_;
  std::unordered_set<std::string, NameHash, std::equal_to<>>
      identities_;  // GUARDED_BY(identities_mu_)

  std::atomic<uint64_t> duplicates_{0};
  std::atomic<uint64_t> gaps_{0};
  std::atomic<uint64_t> sensors_refused_{0};
  // Incidents in creation order (meta n/<be64 seq> -> id), for eviction.
  std::mutex incidents_mu_;
  uint64_t incidents_held_ = 0;       // GUARDED_BY(incidents_mu_)
  uint64_t next_incident_order_ = 0;  // GUARDED_BY(incidents_mu_)
  std::atomic<uint64_t> incidents_evicted_{0};
  std::atomic<uint64_t> identities_untracked_{0};
};

}  // namespace tripline
