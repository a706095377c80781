// The Store contract: every Store implementation must pass this typed suite, including
// across close and reopen. RocksDB-specific behaviour (retention, corruption) follows.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "aggregator/store/event_keys.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/aggregator/test_support.h"
#include "tests/support/exactly_once.h"

namespace tripline {
namespace {

using testing::kBaseTimeNs;
using testing::MakeExec;
using testing::MakeHealth;
using testing::MakeLogin;
using testing::SensorSeq;
using testing::SeqRange;
using testing::StoredExactlyOnce;
using testing::SyntheticEvents;
using testing::TempDir;

constexpr int64_t kMs = 1'000'000;

// How the suite makes a store of one implementation.
class RocksDbStoreEnv {
 public:
  Store& Open() {
    store_.reset();
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto s = RocksDbStore::Open(options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    return *store_;
  }
  // Closes and opens again on the same data.
  Store& Reopen() {
    EXPECT_TRUE(store_->Close().ok());
    return Open();
  }

 private:
  TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
};

template <typename Env>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = &env_.Open(); }
  void Reopen() { store_ = &env_.Reopen(); }
  Store& store() { return *store_; }

  std::vector<StoredEvent> All(EventQuery q = {}) {
    std::vector<StoredEvent> out;
    q.limit = 7;  // small pages, so paging is exercised everywhere
    while (true) {
      auto page = store().QueryEvents(q);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) return out;
      for (auto& e : page->events) out.push_back(std::move(e));
      if (page->next_page_token.empty()) return out;
      q.page_token = page->next_page_token;
    }
  }

  // The (sensor, seq) of every stored event, as the query pages them.
  std::vector<SensorSeq> Keys(EventQuery q = {}) {
    std::vector<SensorSeq> out;
    for (const StoredEvent& e : All(std::move(q))) out.emplace_back(e.sensor_id, e.event.seq);
    return out;
  }

  Env env_;
  Store* store_ = nullptr;
};

// Whether `e` matches the query's filters, by the Store contract: a login also matches its
// login user, not only its process's user.
bool Matches(const EventQuery& q, const Event& e) {
  if (!q.host.empty() && e.host != q.host) return false;
  if (!q.user.empty() && e.process.user != q.user) {
    const auto* login = e.As<LoginEvent>();
    if (login == nullptr || login->user != q.user) return false;
  }
  if (q.kind && e.kind() != *q.kind) return false;
  if (e.time_ns < q.since_ns) return false;
  if (q.until_ns != 0 && e.time_ns >= q.until_ns) return false;
  return true;
}

using Implementations = ::testing::Types<RocksDbStoreEnv>;
TYPED_TEST_SUITE(StoreContractTest, Implementations);

TYPED_TEST(StoreContractTest, StoresEveryEventOnceInTimeOrder) {
  const auto events = SyntheticEvents(100);
  auto r = this->store().AppendBatch("s1", 1, events);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->durable_seq, 100u);
  EXPECT_EQ(r->stored, 100u);
  EXPECT_EQ(r->duplicates, 0u);
  const auto all = this->All();
  ASSERT_EQ(all.size(), 100u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].sensor_id, "s1");
    EXPECT_EQ(all[i].event.seq, i + 1);
    EXPECT_EQ(all[i].event.time_ns, events[i].time_ns);
    EXPECT_EQ(all[i].event.host, events[i].host);
    EXPECT_EQ(all[i].event.kind(), events[i].kind());
  }
}

TYPED_TEST(StoreContractTest, DurableSeqSurvivesReopen) {
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, SyntheticEvents(10)).ok());
  ASSERT_TRUE(this->store().AppendBatch("s2", 1, SyntheticEvents(3)).ok());
  this->Reopen();
  EXPECT_EQ(*this->store().DurableSeq("s1"), 10u);
  EXPECT_EQ(*this->store().DurableSeq("s2"), 3u);
  EXPECT_EQ(*this->store().DurableSeq("never-seen"), 0u);
  std::set<SensorSeq> sent = SeqRange("s1", 1, 10);
  sent.merge(SeqRange("s2", 1, 3));
  EXPECT_TRUE(StoredExactlyOnce(this->Keys(), sent));
  auto sensors = this->store().ListSensors();
  ASSERT_TRUE(sensors.ok());
  ASSERT_EQ(sensors->size(), 2u);
  EXPECT_EQ((*sensors)[0].sensor_id, "s1");
  EXPECT_EQ((*sensors)[0].events, 10u);
  EXPECT_GT((*sensors)[0].last_write_ns, 0);
}

TYPED_TEST(StoreContractTest, ResentBatchIsDroppedAsDuplicates) {
  const auto events = SyntheticEvents(20);
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, events).ok());
  this->Reopen();
  auto again = this->store().AppendBatch("s1", 1, events);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored, 0u);
  EXPECT_EQ(again->duplicates, 20u);
  EXPECT_EQ(again->durable_seq, 20u);
  EXPECT_TRUE(StoredExactlyOnce(this->Keys(), SeqRange("s1", 1, 20)));
}

TYPED_TEST(StoreContractTest, OverlappingBatchStoresOnlyTheNewTail) {
  const auto events = SyntheticEvents(30);
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, {events.begin(), events.begin() + 20}).ok());
  auto r = this->store().AppendBatch("s1", 11, {events.begin() + 10, events.end()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->duplicates, 10u);
  EXPECT_EQ(r->stored, 10u);
  EXPECT_EQ(r->durable_seq, 30u);
  EXPECT_TRUE(StoredExactlyOnce(this->Keys(), SeqRange("s1", 1, 30)));
}

TYPED_TEST(StoreContractTest, GapIsAcceptedRecordedAndNeverFilled) {
  const auto events = SyntheticEvents(30);
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, {events.begin(), events.begin() + 10}).ok());
  auto r = this->store().AppendBatch("s1", 21, {events.begin() + 20, events.end()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->gap_first, 11u);
  EXPECT_EQ(r->gap_last, 20u);
  EXPECT_EQ(r->durable_seq, 30u);
  // A late copy of the missing range is below durable_seq: a duplicate.
  auto late = this->store().AppendBatch("s1", 11, {events.begin() + 10, events.begin() + 20});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->stored, 0u);
  this->Reopen();
  auto sensors = this->store().ListSensors();
  ASSERT_TRUE(sensors.ok());
  ASSERT_EQ(sensors->size(), 1u);
  EXPECT_EQ((*sensors)[0].missing, 10u);
  EXPECT_EQ((*sensors)[0].events, 20u);
  std::set<SensorSeq> sent = SeqRange("s1", 1, 10);
  sent.merge(SeqRange("s1", 21, 30));
  EXPECT_TRUE(StoredExactlyOnce(this->Keys(), sent));
}

TYPED_TEST(StoreContractTest, EmptyBatchChangesNothing) {
  auto r = this->store().AppendBatch("s1", 1, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->durable_seq, 0u);
  EXPECT_TRUE(this->store().ListSensors()->empty());
}

TYPED_TEST(StoreContractTest, RejectsBadArguments) {
  EXPECT_TRUE(this->store().AppendBatch("s1", 0, SyntheticEvents(1)).status().IsInvalidArgument());
  EXPECT_TRUE(this->store().AppendBatch("", 1, SyntheticEvents(1)).status().IsInvalidArgument());
  auto bad = SyntheticEvents(2);
  bad[1].time_ns = 0;
  EXPECT_TRUE(this->store().AppendBatch("s1", 1, bad).status().IsInvalidArgument());
  // Nothing of the refused batch was stored.
  EXPECT_EQ(*this->store().DurableSeq("s1"), 0u);
  EXPECT_TRUE(this->All().empty());
}

TYPED_TEST(StoreContractTest, FiltersByHostUserKindAndTime) {
  std::vector<Event> events = {
      MakeLogin("hosta", "alice", kBaseTimeNs + 1 * kMs, Outcome::kFailure),
      MakeLogin("hosta", "alice", kBaseTimeNs + 2 * kMs),
      MakeExec("hosta", "alice", kBaseTimeNs + 3 * kMs),
      MakeExec("hostb", "bob", kBaseTimeNs + 4 * kMs),
      MakeLogin("hostb", "alice", kBaseTimeNs + 5 * kMs),
      MakeHealth("hostb", kBaseTimeNs + 6 * kMs, 0, 0),
  };
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, events).ok());
  const auto seqs = [&](EventQuery q) {
    std::vector<uint64_t> out;
    for (const auto& e : this->All(q)) out.push_back(e.event.seq);
    return out;
  };
  EXPECT_EQ(seqs({.host = "hosta"}), (std::vector<uint64_t>{1, 2, 3}));
  // Login events are indexed by the login's user, not only by the process (sshd as root).
  EXPECT_EQ(seqs({.user = "alice"}), (std::vector<uint64_t>{1, 2, 3, 5}));
  EXPECT_EQ(seqs({.user = "root"}), (std::vector<uint64_t>{1, 2, 5}));
  EXPECT_EQ(seqs({.kind = EventKind::kExec}), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(seqs({.kind = EventKind::kHealth}), (std::vector<uint64_t>{6}));
  EXPECT_EQ(seqs({.host = "hostb", .user = "alice"}), (std::vector<uint64_t>{5}));
  EXPECT_EQ(seqs({.host = "hosta", .user = "alice", .kind = EventKind::kLogin}),
            (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(seqs({.since_ns = kBaseTimeNs + 2 * kMs, .until_ns = kBaseTimeNs + 5 * kMs}),
            (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(seqs({.user = "alice", .since_ns = kBaseTimeNs + 3 * kMs}),
            (std::vector<uint64_t>{3, 5}));
  EXPECT_TRUE(seqs({.host = "nohost"}).empty());
  EXPECT_TRUE(
      seqs({.user = "alice", .since_ns = kBaseTimeNs + 9 * kMs, .until_ns = kBaseTimeNs}).empty());
  EXPECT_EQ(*this->store().CountEvents({.user = "alice"}), 4u);
  EXPECT_EQ(*this->store().CountEvents({.host = "hostb", .kind = EventKind::kExec}), 1u);
  EXPECT_EQ(*this->store().CountEvents({}), 6u);
}

TYPED_TEST(StoreContractTest, PagingVisitsEveryMatchExactlyOnce) {
  // Two sensors with interleaved times, so pages cross sensors at equal timestamps.
  const std::map<std::string, std::vector<Event>> sent = {{"s1", SyntheticEvents(250, 3, 5, 0)},
                                                          {"s2", SyntheticEvents(250, 3, 5, 1)}};
  for (const auto& [sensor, events] : sent) {
    ASSERT_TRUE(this->store().AppendBatch(sensor, 1, events).ok());
  }
  for (const EventQuery& base :
       {EventQuery{}, EventQuery{.host = "host1"}, EventQuery{.user = "user2"},
        EventQuery{.host = "host0", .user = "user3"},
        EventQuery{.kind = EventKind::kLogin, .since_ns = kBaseTimeNs + 17 * kMs}}) {
    for (size_t page_size : {1u, 3u, 50u, 1000u}) {
      EventQuery q = base;
      q.limit = page_size;
      std::set<SensorSeq> want;
      for (const auto& [sensor, events] : sent) {
        for (size_t i = 0; i < events.size(); ++i) {
          if (Matches(base, events[i])) want.emplace(sensor, i + 1);
        }
      }
      std::vector<SensorSeq> seen;
      int64_t last_time = 0;
      size_t pages = 0;
      while (true) {
        auto page = this->store().QueryEvents(q);
        ASSERT_TRUE(page.ok()) << page.status().ToString();
        ASSERT_LE(page->events.size(), page_size);
        ++pages;
        for (const auto& e : page->events) {
          seen.emplace_back(e.sensor_id, e.event.seq);
          EXPECT_GE(e.event.time_ns, last_time);
          last_time = e.event.time_ns;
        }
        if (page->next_page_token.empty()) break;
        q.page_token = page->next_page_token;
        ASSERT_LT(pages, 1000u);
      }
      EXPECT_TRUE(StoredExactlyOnce(seen, want)) << "page size " << page_size;
      EXPECT_EQ(want.size(), *this->store().CountEvents(base)) << "page size " << page_size;
      EXPECT_GT(want.size(), 0u);
    }
  }
}

TYPED_TEST(StoreContractTest, RefusesAPageTokenOfAnotherQuery) {
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, SyntheticEvents(20)).ok());
  auto page = this->store().QueryEvents({.host = "host1", .limit = 2});
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token.empty());
  auto other = this->store().QueryEvents({.user = "user1", .page_token = page->next_page_token});
  EXPECT_TRUE(other.status().IsInvalidArgument());
  auto garbage = this->store().QueryEvents({.page_token = "zz\xff"});
  EXPECT_TRUE(garbage.status().IsInvalidArgument());
}

TYPED_TEST(StoreContractTest, CountsIdentitiesAndSensorHealth) {
  std::vector<Event> events = {MakeLogin("hosta", "alice", kBaseTimeNs),
                               MakeExec("hosta", "bob", kBaseTimeNs + 1),
                               MakeHealth("hosta", kBaseTimeNs + 2, 5, 7)};
  ASSERT_TRUE(this->store().AppendBatch("s1", 1, events).ok());
  // An older health report arriving later does not replace the newer counters.
  ASSERT_TRUE(
      this->store().AppendBatch("s1", 4, {MakeHealth("hosta", kBaseTimeNs + 1, 1, 1)}).ok());
  this->Reopen();
  auto stats = this->store().Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->events_stored, 4u);
  EXPECT_EQ(stats->identities, 3u);  // alice, root (sshd), bob
  EXPECT_EQ(stats->sensors, 1u);
  auto sensors = this->store().ListSensors();
  ASSERT_EQ(sensors->size(), 1u);
  EXPECT_EQ((*sensors)[0].ringbuf_drops, 5u);
  EXPECT_EQ((*sensors)[0].spool_drops, 7u);
  EXPECT_EQ((*sensors)[0].decode_errors, 1u);
  EXPECT_EQ((*sensors)[0].host, "hosta");
  EXPECT_TRUE((*sensors)[0].families.empty());

  // The hook families of the newest health report are kept, and survive a reopen.
  Event health = MakeHealth("hosta", kBaseTimeNs + 5, 6, 7);
  std::get<SensorHealth>(health.body).families = {
      {"file", "disabled", "", "syscall tracepoints refused: \"E2BIG\"\n", "a kernel with..."},
      {"net", "degraded", "syscall tracepoints", "fentry refused", ""},
      {"exec", "live", "tp_btf", "", ""}};
  ASSERT_TRUE(this->store().AppendBatch("s1", 5, {health}).ok());
  this->Reopen();
  sensors = this->store().ListSensors();
  ASSERT_EQ(sensors->size(), 1u);
  ASSERT_EQ((*sensors)[0].families.size(), 3u);
  EXPECT_EQ((*sensors)[0].families[0].name, "file");
  EXPECT_EQ((*sensors)[0].families[0].state, "disabled");
  EXPECT_EQ((*sensors)[0].families[0].reason, "syscall tracepoints refused: \"E2BIG\"\n");
  EXPECT_EQ((*sensors)[0].families[0].remedy, "a kernel with...");
  EXPECT_EQ((*sensors)[0].families[1].hooks, "syscall tracepoints");
  EXPECT_EQ((*sensors)[0].families[2].state, "live");
  EXPECT_EQ((*sensors)[0].ringbuf_drops, 6u);
}

TYPED_TEST(StoreContractTest, IncidentsArePutReplacedAndListed) {
  ASSERT_TRUE(this->store().PutIncident("inc-2", "two").ok());
  ASSERT_TRUE(this->store().PutIncident("inc-1", "one").ok());
  ASSERT_TRUE(this->store().PutIncident("inc-1", "one, grown").ok());
  EXPECT_TRUE(this->store().PutIncident("", "x").IsInvalidArgument());
  this->Reopen();
  auto one = this->store().GetIncident("inc-1");
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ(**one, "one, grown");
  EXPECT_FALSE(this->store().GetIncident("nope")->has_value());
  auto all = this->store().ListIncidents();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"one, grown", "two"}));
  EXPECT_EQ(this->store().Stats()->incidents, 2u);
}

TYPED_TEST(StoreContractTest, IncidentIdKeyIsSecretStableAndPerStore) {
  auto key = this->store().IncidentIdKey();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 32u);
  EXPECT_NE(*key, std::string(32, '\0'));
  EXPECT_EQ(*this->store().IncidentIdKey(), *key);
  this->Reopen();
  EXPECT_EQ(*this->store().IncidentIdKey(), *key);
}

TYPED_TEST(StoreContractTest, SensorRecordIsReadById) {
  ASSERT_FALSE(this->store().GetSensor("sensor-a")->has_value());
  ASSERT_TRUE(this->store().AppendBatch("sensor-a", 1, SyntheticEvents(5, 1)).ok());
  this->Reopen();
  auto r = this->store().GetSensor("sensor-a");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->durable_seq, 5u);
  EXPECT_EQ((*r)->host, "host0");
  EXPECT_GT((*r)->last_write_ns, 0);
  EXPECT_FALSE(this->store().GetSensor("sensor-b")->has_value());
}

// Sensor ids and user names come from clients: the store holds a bounded number of each,
// refuses (and counts) batches of new sensors past the bound, and stops indexing new names.
TEST(RocksDbStoreBoundsTest, SensorsAndIdentitiesAreBoundedAndCounted) {
  testing::TempDir dir;
  RocksDbStoreOptions options;
  options.path = dir.Sub("db");
  options.max_sensors = 2;
  options.max_identities = 3;
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // Five users over two sensors: three indexed.
  ASSERT_TRUE((*store)->AppendBatch("s-1", 1, SyntheticEvents(10, 1, 5)).ok());
  ASSERT_TRUE((*store)->AppendBatch("s-2", 1, SyntheticEvents(4, 1, 1)).ok());
  auto third = (*store)->AppendBatch("s-3", 1, SyntheticEvents(4, 1, 1));
  EXPECT_EQ(third.status().code(), Status::Code::kResourceExhausted) << third.status().ToString();
  // Known sensors go on.
  EXPECT_TRUE((*store)->AppendBatch("s-2", 5, SyntheticEvents(4, 1, 1)).ok());
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sensors_refused, 1u);
  EXPECT_EQ(stats->identities, 3u);
  EXPECT_GT(stats->identities_untracked, 0u);
  EXPECT_EQ((*store)->ListSensors()->size(), 2u);
  // Reopened with the same bounds, the same holds.
  store->reset();
  store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Stats()->identities, 3u);
  EXPECT_EQ((*store)->AppendBatch("s-4", 1, SyntheticEvents(1, 1, 1)).status().code(),
            Status::Code::kResourceExhausted);
}

// Incidents are bounded too: past the bound, a new incident evicts the one created longest
// ago (counted); an incident that grows is not new. The order survives a reopen.
TEST(RocksDbStoreBoundsTest, OldestIncidentsAreEvictedAndCounted) {
  testing::TempDir dir;
  RocksDbStoreOptions options;
  options.path = dir.Sub("db");
  options.max_incidents = 3;
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const char* id : {"inc-c", "inc-a", "inc-b"}) {
    ASSERT_TRUE((*store)->PutIncident(id, std::string(id) + " v1").ok());
  }
  ASSERT_TRUE((*store)->PutIncident("inc-c", "inc-c v2").ok());  // grows: nothing evicted
  EXPECT_EQ((*store)->Stats()->incidents_evicted, 0u);
  ASSERT_TRUE((*store)->PutIncident("inc-d", "inc-d v1").ok());  // evicts inc-c, the oldest
  EXPECT_FALSE((*store)->GetIncident("inc-c")->has_value());
  EXPECT_EQ(*(*store)->ListIncidents(),
            (std::vector<std::string>{"inc-a v1", "inc-b v1", "inc-d v1"}));
  EXPECT_EQ((*store)->Stats()->incidents_evicted, 1u);
  store->reset();
  store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutIncident("inc-e", "inc-e v1").ok());  // evicts inc-a
  EXPECT_EQ(*(*store)->ListIncidents(),
            (std::vector<std::string>{"inc-b v1", "inc-d v1", "inc-e v1"}));
  EXPECT_EQ((*store)->Stats()->incidents, 3u);
}

TYPED_TEST(StoreContractTest, ConcurrentResendsOfOneSensorStoreEachEventOnce) {
  const auto events = SyntheticEvents(2000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Each thread replays the whole stream in batches of different sizes.
      const size_t batch = 50 + 37 * t;
      for (size_t i = 0; i < events.size(); i += batch) {
        const size_t end = std::min(events.size(), i + batch);
        auto r = this->store().AppendBatch("s1", i + 1, {events.begin() + i, events.begin() + end});
        EXPECT_TRUE(r.ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*this->store().DurableSeq("s1"), 2000u);
  EXPECT_EQ(*this->store().CountEvents({}), 2000u);
  EXPECT_EQ(this->store().Stats()->events_stored, 2000u);
  // Each seq once, and under it the event that was sent with it.
  const auto all = this->All();
  std::vector<SensorSeq> keys;
  for (const StoredEvent& e : all) {
    keys.emplace_back(e.sensor_id, e.event.seq);
    ASSERT_GE(e.event.seq, 1u);
    ASSERT_LE(e.event.seq, events.size());
    const Event& want = events[e.event.seq - 1];
    EXPECT_EQ(e.event.time_ns, want.time_ns) << "seq " << e.event.seq;
    EXPECT_EQ(e.event.kind(), want.kind()) << "seq " << e.event.seq;
  }
  EXPECT_TRUE(StoredExactlyOnce(keys, SeqRange("s1", 1, 2000)));
}

// --- RocksDB specifics ---

// Batches of hundreds of events, read back whole and from any position, by sequence and
// through every index, with each event's content intact.
TYPED_TEST(StoreContractTest, LargeBatchesReadBackFromAnyPosition) {
  const auto events = SyntheticEvents(300, 3, 7, 0);
  Store& store = this->store();
  ASSERT_TRUE(store.AppendBatch("s1", 1, {events.begin(), events.begin() + 170}).ok());
  ASSERT_TRUE(store.AppendBatch("s1", 171, {events.begin() + 170, events.end()}).ok());
  this->Reopen();
  Store& reopened = this->store();
  const auto same = [&](const Event& got) {
    const Event& want = events[got.seq - 1];
    return got.time_ns == want.time_ns && got.host == want.host && got.kind() == want.kind() &&
           got.process.user == want.process.user && got.process.pid == want.process.pid;
  };
  for (const uint64_t after : {0u, 1u, 31u, 32u, 33u, 100u, 169u, 170u, 171u, 299u, 300u}) {
    auto got = reopened.ReadSensorEvents("s1", after, 1000);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), 300 - after) << "after " << after;
    for (size_t i = 0; i < got->size(); ++i) {
      ASSERT_EQ((*got)[i].seq, after + 1 + i);
      EXPECT_TRUE(same((*got)[i])) << "seq " << (*got)[i].seq;
    }
  }
  size_t by_user = 0;
  for (int u = 0; u < 7; ++u) {
    auto page = reopened.QueryEvents({.user = "user" + std::to_string(u), .limit = 1000});
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const StoredEvent& e : page->events) EXPECT_TRUE(same(e.event)) << e.event.seq;
    by_user += page->events.size();
  }
  EXPECT_GE(by_user, 300u);  // every event is under its process user at least
  auto all = reopened.QueryEvents({.limit = 1000});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->events.size(), 300u);
  for (const StoredEvent& e : all->events) EXPECT_TRUE(same(e.event)) << e.event.seq;
}

TYPED_TEST(StoreContractTest, ReadsASensorsEventsBackInSequenceOrder) {
  const auto events = SyntheticEvents(100);
  Store& store = this->store();
  ASSERT_TRUE(store.AppendBatch("s1", 1, {events.begin(), events.begin() + 30}).ok());
  ASSERT_TRUE(store.AppendBatch("s2", 1, {events.begin(), events.begin() + 5}).ok());
  // Overlap (21..30 are duplicates), then a gap (61..70 never stored).
  ASSERT_TRUE(store.AppendBatch("s1", 21, {events.begin() + 20, events.begin() + 60}).ok());
  ASSERT_TRUE(store.AppendBatch("s1", 71, {events.begin() + 70, events.end()}).ok());
  this->Reopen();
  Store& reopened = this->store();

  const auto seqs = [](const std::vector<Event>& got) {
    std::vector<uint64_t> out;
    for (const Event& e : got) out.push_back(e.seq);
    return out;
  };
  std::vector<uint64_t> want;
  for (uint64_t s = 1; s <= 100; ++s) {
    if (s <= 60 || s > 70) want.push_back(s);
  }
  auto all = reopened.ReadSensorEvents("s1", 0, 1000);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(seqs(*all), want);
  for (size_t i = 0; i < all->size(); ++i) {
    const Event& original = events[(*all)[i].seq - 1];
    EXPECT_EQ((*all)[i].time_ns, original.time_ns);
    EXPECT_EQ((*all)[i].host, original.host);
    EXPECT_EQ((*all)[i].kind(), original.kind());
  }

  // From the middle of a stored batch: only what lies above.
  auto tail = reopened.ReadSensorEvents("s1", 45, 1000);
  ASSERT_TRUE(tail.ok());
  ASSERT_FALSE(tail->empty());
  EXPECT_EQ(tail->front().seq, 46u);
  EXPECT_EQ(tail->size(), 15u + 30u);

  // In chunks of at most 7: every event exactly once.
  std::vector<uint64_t> chunked;
  uint64_t after = 0;
  for (int rounds = 0; rounds < 100; ++rounds) {
    auto chunk = reopened.ReadSensorEvents("s1", after, 7);
    ASSERT_TRUE(chunk.ok());
    if (chunk->empty()) break;
    EXPECT_LE(chunk->size(), 7u);
    for (const Event& e : *chunk) chunked.push_back(e.seq);
    after = chunk->back().seq;
  }
  EXPECT_EQ(chunked, want);

  auto other = reopened.ReadSensorEvents("s2", 0, 1000);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), 5u);
  auto none = reopened.ReadSensorEvents("s1", 100, 1000);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto unknown = reopened.ReadSensorEvents("never-seen", 0, 1000);
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());
}

TEST(RocksDbStoreTest, RunsOfOneSensorInAnyOrderAreStoredWithoutGapsOrDuplicates) {
  // A worker of the scaled-out mode: a sensor's events reach it split over partitions,
  // runs 1-10 and 21-30 on one, 11-20 on another, stored in whatever order they come.
  TempDir dir;
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_TRUE(store.ok());
  const auto events = SyntheticEvents(30);
  const auto run = [&](size_t from, size_t to) {
    return std::vector<Event>(events.begin() + from, events.begin() + to);
  };
  for (const auto& [from, to] : {std::pair{20, 30}, std::pair{0, 10}, std::pair{10, 20}}) {
    auto r = (*store)->AppendRun("s1", from + 1, run(from, to), {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->stored, 10u);
    EXPECT_EQ(r->duplicates, 0u);
    EXPECT_EQ(r->gap_first, 0u);
    EXPECT_EQ(r->durable_seq, 30u);
  }
  // The same run again (a message redelivered to the same worker) replaces itself.
  ASSERT_TRUE((*store)->AppendRun("s1", 11, run(10, 20), {}).ok());
  auto page = (*store)->QueryEvents({.limit = 100});
  ASSERT_TRUE(page.ok());
  std::set<uint64_t> seqs;
  for (const StoredEvent& e : page->events) EXPECT_TRUE(seqs.insert(e.event.seq).second);
  EXPECT_EQ(seqs.size(), 30u);
  auto record = (*store)->GetSensor("s1");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->durable_seq, 30u);
  EXPECT_EQ((*record)->missing, 0u);
}

TEST(RocksDbStoreTest, RetentionHidesOldEventsAndCompactionRemovesThem) {
  TempDir dir;
  FakeClock clock(kBaseTimeNs + 10 * 3600 * kNanosPerSecond);
  RocksDbStoreOptions options{
      .path = dir.Sub("db"), .retention_ns = 5 * 3600 * kNanosPerSecond, .clock = &clock};
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok());
  std::vector<Event> events = {MakeLogin("hosta", "alice", kBaseTimeNs),  // 10 h old
                               MakeLogin("hosta", "alice", clock.NowNs() - 3600 * kNanosPerSecond)};
  ASSERT_TRUE((*store)->AppendBatch("s1", 1, events).ok());
  // A batch whose events are all old: its batch-log record ages out too.
  ASSERT_TRUE((*store)->AppendBatch("s2", 1, {events[0]}).ok());
  auto page = (*store)->QueryEvents({.user = "alice"});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].event.seq, 2u);

  ASSERT_TRUE((*store)->CompactEvents().ok());
  // Every record only old events need (s2's batch, old postings) is gone; s1's batch stays
  // for its new event, which the old one shares it with.
  rocksdb::DB* db = (*store)->db();
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions(), (*store)->column_family("events")));
  size_t old_keys = 0, new_keys = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto t = event_keys::RecordTime(std::string_view(it->key().data(), it->key().size()),
                                          std::string_view(it->value().data(), it->value().size()));
    ASSERT_TRUE(t.has_value());
    (*t < clock.NowNs() - options.retention_ns ? old_keys : new_keys)++;
  }
  ASSERT_TRUE(it->status().ok());
  EXPECT_EQ(old_keys, 0u);
  EXPECT_EQ(new_keys, 6u);  // s1's batch; postings all, host, user alice, user root, kind

  // Reading s1 back by sequence skips the expired event and returns the kept one.
  auto back = (*store)->ReadSensorEvents("s1", 0, 100);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].seq, 2u);
  auto gone = (*store)->ReadSensorEvents("s2", 0, 100);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_TRUE(gone->empty());
}

TEST(RocksDbStoreTest, UndecodableEventIsReportedAsCorruption) {
  TempDir dir;
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AppendBatch("s1", 1, SyntheticEvents(3)).ok());
  rocksdb::DB* db = (*store)->db();
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), (*store)->column_family("events"),
                      event_keys::BatchKey("s1", 1), "\xff\xff not a batch")
                  .ok());
  auto page = (*store)->QueryEvents({});
  EXPECT_TRUE(page.status().IsCorruption()) << page.status().ToString();
  auto by_host = (*store)->QueryEvents({.host = "host0"});
  EXPECT_TRUE(by_host.status().IsCorruption()) << by_host.status().ToString();
}

TEST(RocksDbStoreTest, PostingWithoutItsEventIsReportedAsCorruption) {
  TempDir dir;
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_TRUE(store.ok());
  const auto events = SyntheticEvents(3);
  ASSERT_TRUE((*store)->AppendBatch("s1", 1, events).ok());
  rocksdb::DB* db = (*store)->db();
  rocksdb::ColumnFamilyHandle* cf = (*store)->column_family("events");
  ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cf, event_keys::BatchKey("s1", 1)).ok());
  auto page = (*store)->QueryEvents({});
  ASSERT_FALSE(page.ok());
  EXPECT_TRUE(page.status().IsCorruption()) << page.status().ToString();
  auto count = (*store)->CountEvents({.host = events[1].host, .kind = events[1].kind()});
  ASSERT_FALSE(count.ok());
  EXPECT_TRUE(count.status().IsCorruption()) << count.status().ToString();

  // A batch value too short to hold its header.
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, event_keys::BatchKey("s2", 1), "\x07").ok());
  auto junk = (*store)->ReadSensorEvents("s2", 0, 100);
  ASSERT_FALSE(junk.ok());
  EXPECT_TRUE(junk.status().IsCorruption()) << junk.status().ToString();
}

TEST(RocksDbStoreTest, DamagedTableFileIsReportedNotSkipped) {
  TempDir dir;
  {
    auto store = RocksDbStore::Open({.path = dir.Sub("db")});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->AppendBatch("s1", 1, SyntheticEvents(5000)).ok());
    ASSERT_TRUE((*store)->CompactEvents().ok());  // flushes the memtable into table files
    ASSERT_TRUE((*store)->Close().ok());
  }
  // Flip bytes all over the first half of every table file, where the batch records lie
  // (they sort before the postings): block checksums must catch it.
  size_t damaged = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.Sub("db"))) {
    if (entry.path().extension() != ".sst") continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(entry.path());
    if (size < 8192) continue;
    for (auto at = size / 64; at < size / 2; at += 1024) {
      f.seekp(static_cast<std::streamoff>(at));
      f.write("\xde\xad\xbe\xef\xde\xad\xbe\xef", 8);
    }
    ++damaged;
  }
  ASSERT_GT(damaged, 0u);
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  if (!store.ok()) {
    // paranoid_checks may already refuse the open; that is a reported error too.
    EXPECT_TRUE(store.status().IsCorruption()) << store.status().ToString();
    return;
  }
  auto all = (*store)->QueryEvents({.limit = Store::kMaxPageSize});
  EXPECT_FALSE(all.ok());
  EXPECT_TRUE(all.status().IsCorruption()) << all.status().ToString();
  auto back = (*store)->ReadSensorEvents("s1", 0, 10000);
  EXPECT_FALSE(back.ok());
  EXPECT_TRUE(back.status().IsCorruption()) << back.status().ToString();
}

TEST(RocksDbStoreTest, RefusesADataDirOfAnotherFormat) {
  TempDir dir;
  {
    auto store = RocksDbStore::Open({.path = dir.Sub("db")});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)
                    ->db()
                    ->Put(rocksdb::WriteOptions(), (*store)->column_family("meta"), "format",
                          "tripline-store 99")
                    .ok());
  }
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("tripline-store 99"), std::string::npos);
}

TEST(RocksDbStoreTest, CreatesEveryDomainColumnFamily) {
  TempDir dir;
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_TRUE(store.ok());
  for (const char* name :
       {"events", "sessions", "baselines", "incidents", "posture", "actions", "outbox", "meta"}) {
    EXPECT_NE((*store)->column_family(name), nullptr) << name;
  }
}

TEST(EventKeysTest, SuffixRoundTripsAndOrdersByTime) {
  const std::string a = event_keys::AllPrefix() + event_keys::Suffix(5, "s", 9);
  const std::string b = event_keys::AllPrefix() + event_keys::Suffix(6, "a", 1);
  EXPECT_LT(a, b);
  // A sensor's batches are ordered by first sequence number.
  EXPECT_LT(event_keys::BatchKey("s", 255), event_keys::BatchKey("s", 256));
  const std::string_view events[] = {"first", "", "third event"};
  const std::string value = event_keys::EncodeBatchValue(1234, events, 3);
  const auto parsed = event_keys::BatchValue::Parse(value);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->newest_ns(), 1234);
  ASSERT_EQ(parsed->size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(parsed->event(i), events[i]);
  EXPECT_EQ(event_keys::RecordTime(event_keys::BatchKey("s", 1), value), 1234);
  EXPECT_FALSE(event_keys::BatchValue::Parse("short").has_value());
  // Truncated payload, count past the offsets, offsets out of order: all refused.
  EXPECT_FALSE(event_keys::BatchValue::Parse(value.substr(0, value.size() - 1)).has_value());
  std::string more = value;
  more[11] = 9;
  EXPECT_FALSE(event_keys::BatchValue::Parse(more).has_value());
  std::string swapped = value;
  std::swap_ranges(swapped.begin() + 12, swapped.begin() + 16, swapped.begin() + 20);
  EXPECT_FALSE(event_keys::BatchValue::Parse(swapped).has_value());
  EXPECT_TRUE(
      event_keys::BatchValue::Parse(event_keys::EncodeBatchValue(1, nullptr, 0)).has_value());
  std::string posting;
  event_keys::AppendPostingEntry(&posting, 3, 99);
  event_keys::AppendPostingEntry(&posting, 7, 100);
  ASSERT_TRUE(event_keys::PostingValueValid(posting));
  EXPECT_EQ(event_keys::PostingOffset(posting, 1), 7u);
  EXPECT_EQ(event_keys::PostingTime(posting, 0), 99);
  EXPECT_FALSE(event_keys::PostingValueValid(posting + "x"));
  EXPECT_EQ(event_keys::Bucket(2'500'000'001), 2'000'000'000);
  const std::string key =
      event_keys::NamePrefix('u', std::string("a\0b", 3)) + event_keys::Suffix(77, "sensor-1", 42);
  const auto split = event_keys::Split(key);
  ASSERT_TRUE(split.has_value());
  const auto parts = event_keys::ParseSuffix(split->suffix);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->time_ns, 77);
  EXPECT_EQ(parts->sensor_id, "sensor-1");
  EXPECT_EQ(parts->seq, 42u);
  EXPECT_FALSE(event_keys::Split("x123").has_value());
  EXPECT_FALSE(event_keys::Split(std::string("u\xff\xff", 3)).has_value());
}

}  // namespace
}  // namespace tripline
