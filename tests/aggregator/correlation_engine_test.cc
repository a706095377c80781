// CorrelationEngine over a real RocksDB store: the correlator thread, its queue, snapshots
// and the replay of acknowledged events that a crash kept from being correlated.
#include "aggregator/pipeline/correlation_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "aggregator/store/rocksdb_store.h"
#include "model/incident_proto.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"
#include "tests/support/exactly_once.h"
#include "tests/support/temp_dir.h"
#include "tripline/v1/query.pb.h"

namespace tripline {
namespace {

using correlate::testing::Delivery;
using correlate::testing::StoryBuilder;

// The seed story of the correlator tests: failed passwords for alice on hosta, a success,
// /etc/shadow read, then ssh hosta -> hostb -> hostc.
std::vector<Delivery> SeedStory() {
  StoryBuilder b;
  return b.SeedStory();
}

// A clock whose monotonic reading moves by `step` each time it is read, so that a snapshot
// appears to take `step`.
class SteppingClock final : public Clock {
 public:
  int64_t NowNs() const override { return StoryBuilder::At(100); }
  int64_t MonotonicNs() const override { return mono_.fetch_add(step) + step; }
  void AdvanceNs(int64_t d) { mono_.fetch_add(d); }
  int64_t step = 0;

 private:
  mutable std::atomic<int64_t> mono_{1'000 * kNanosPerSecond};
};

class CorrelationEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(); }

  void OpenStore() {
    store_.reset();
    auto store = RocksDbStore::Open({.path = dir_.Sub("db")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::unique_ptr<CorrelationEngine> OpenEngine(CorrelationEngineOptions options = {}) {
    auto engine = CorrelationEngine::Open(store_.get(), options, clock_);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  // Makes the deliveries durable, as the ingest service does, one batch per delivery.
  void Store(const std::vector<Delivery>& stream) {
    for (const Delivery& d : stream) {
      auto r = store_->AppendBatch(d.sensor, d.event.seq, {d.event});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->stored, 1u);
    }
  }

  void StoreAndFeed(CorrelationEngine& engine, const std::vector<Delivery>& stream) {
    Store(stream);
    for (const Delivery& d : stream) engine.OnDurable(d.sensor, {d.event});
  }

  std::vector<Incident> Incidents() {
    std::vector<Incident> out;
    auto all = store_->ListIncidents();
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    if (!all.ok()) return out;
    for (const std::string& bytes : *all) {
      v1::Incident wire;
      EXPECT_TRUE(wire.ParseFromString(bytes));
      auto in = FromProto(wire);
      EXPECT_TRUE(in.ok()) << in.status().ToString();
      if (in.ok()) out.push_back(std::move(in).value());
    }
    return out;
  }

  void ExpectTheSeedIncident() {
    const std::vector<Incident> incidents = Incidents();
    ASSERT_EQ(incidents.size(), 1u);
    EXPECT_EQ(incidents[0].severity, Severity::kCritical);
    EXPECT_EQ(incidents[0].hosts, (std::vector<std::string>{"hosta", "hostb", "hostc"}));
  }

  testing::TempDir dir_;
  FakeClock clock_{StoryBuilder::At(100)};
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(CorrelationEngineTest, DrainWaitsUntilQueuedBatchesAreCorrelated) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  const std::vector<Delivery> story = SeedStory();
  StoreAndFeed(*engine, story);
  engine->Drain();
  ExpectTheSeedIncident();
  EXPECT_EQ(engine->stats().events_fed, story.size());
  EXPECT_GE(engine->stats().incident_writes, 1u);
}

// A run fed at once (here the replay at a start without a snapshot) writes each incident
// it changed once, with the content an event-by-event feed ends with.
TEST_F(CorrelationEngineTest, EachChangedIncidentIsWrittenOncePerRun) {
  const std::vector<Delivery> story = SeedStory();
  correlate::CorrelatorOptions keyed;
  keyed.incident_id_key = *store_->IncidentIdKey();  // what the engine uses
  correlate::Correlator by_event(keyed, clock_);
  std::map<std::string, Incident> want;
  size_t revisions = 0;
  for (const Delivery& d : story) {
    for (Incident& in : by_event.Handle(d.sensor, d.event)) {
      ++revisions;
      want[in.id] = std::move(in);
    }
  }
  ASSERT_EQ(want.size(), 1u);
  ASSERT_GE(revisions, 3u);

  Store(story);
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, story.size());
  EXPECT_EQ(engine->stats().incident_writes, 1u);
  const std::vector<Incident> incidents = Incidents();
  ASSERT_EQ(incidents.size(), 1u);
  Incident got = incidents[0];
  Incident expected = want.begin()->second;
  EXPECT_EQ(got.revision, 1u);
  got.revision = expected.revision = 0;
  got.updated_ns = expected.updated_ns = 0;
  EXPECT_EQ(got, expected);
}

TEST_F(CorrelationEngineTest, TinyQueueStillFeedsEverythingInOrder) {
  CorrelationEngineOptions options;
  options.max_queued_events = 1;
  auto engine = OpenEngine(options);
  ASSERT_NE(engine, nullptr);
  const std::vector<Delivery> story = SeedStory();
  Store(story);
  // Two producers, one per half of the hosts, each in its own order, as two streams are.
  std::vector<Delivery> first, second;
  for (const Delivery& d : story) (d.event.host == "hosta" ? first : second).push_back(d);
  std::thread other([&] {
    for (const Delivery& d : second) engine->OnDurable(d.sensor, {d.event});
  });
  for (const Delivery& d : first) engine->OnDurable(d.sensor, {d.event});
  other.join();
  engine->Drain();
  EXPECT_EQ(engine->stats().events_fed, story.size());
  // The hop's halves wait for each other, so the chain is whole whatever the interleaving.
  ExpectTheSeedIncident();
}

TEST_F(CorrelationEngineTest, WithoutAQueueEverythingIsReadBackFromTheStore) {
  CorrelationEngineOptions options;
  options.max_queued_events = 0;
  options.read_back_chunk = 2;  // several steps per sensor
  auto engine = OpenEngine(options);
  ASSERT_NE(engine, nullptr);
  const std::vector<Delivery> story = SeedStory();
  StoreAndFeed(*engine, story);
  engine->Drain();
  ExpectTheSeedIncident();
  const CorrelationEngineStats stats = engine->stats();
  EXPECT_EQ(stats.events_fed, story.size());
  EXPECT_EQ(stats.events_read_back, story.size());
  EXPECT_GE(stats.times_fell_behind, 1u);
  const ObserverProgress progress = engine->Progress();
  EXPECT_FALSE(progress.behind);
  EXPECT_EQ(progress.backlog, 0u);
  EXPECT_EQ(progress.events_fed, story.size());

  // Caught up, it reads back again for what comes next, and only that.
  Delivery late = story.back();
  late.event.seq += 1;
  late.event.time_ns += kNanosPerSecond;
  StoreAndFeed(*engine, {late});
  engine->Drain();
  EXPECT_EQ(engine->stats().events_fed, story.size() + 1);
  EXPECT_EQ(engine->stats().events_read_back, story.size() + 1);
}

TEST_F(CorrelationEngineTest, StreamsThatOutrunATinyQueueLoseAndRepeatNothing) {
  // Four streams store and hand over batches of 1 to 9 events as fast as they can, so the
  // engine falls behind and catches up many times; every stored event must be fed once.
  CorrelationEngineOptions options;
  options.max_queued_events = 16;
  options.read_back_chunk = 5;
  std::vector<testing::SensorSeq> fed;  // appended under the engine's lock
  options.on_fed = [&fed](std::string_view sensor, const Event& e) {
    fed.emplace_back(std::string(sensor), e.seq);
  };
  auto engine = OpenEngine(options);
  ASSERT_NE(engine, nullptr);
  constexpr int kStreams = 4;
  constexpr uint64_t kPerStream = 3000;
  std::vector<std::thread> streams;
  for (int s = 0; s < kStreams; ++s) {
    streams.emplace_back([&, s] {
      const std::string sensor = "sensor-" + std::to_string(s);
      const auto events = testing::SyntheticEvents(kPerStream, 3, 7, static_cast<uint64_t>(s));
      for (uint64_t seq = 1; seq <= kPerStream;) {
        const uint64_t n = std::min<uint64_t>(1 + (seq % 9), kPerStream - seq + 1);
        std::vector<Event> batch(events.begin() + static_cast<long>(seq - 1),
                                 events.begin() + static_cast<long>(seq - 1 + n));
        for (uint64_t i = 0; i < n; ++i) batch[i].seq = seq + i;
        auto r = store_->AppendBatch(sensor, seq, batch);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        engine->OnDurable(sensor, std::move(batch));
        seq += n;
      }
    });
  }
  for (auto& t : streams) t.join();
  engine->Drain();
  const CorrelationEngineStats stats = engine->stats();
  EXPECT_EQ(stats.events_fed, kStreams * kPerStream);
  // Every stored (sensor, seq) fed once, none twice, nothing else.
  std::set<testing::SensorSeq> stored;
  for (int s = 0; s < kStreams; ++s) {
    stored.merge(testing::SeqRange("sensor-" + std::to_string(s), 1, kPerStream));
  }
  EXPECT_TRUE(testing::StoredExactlyOnce(fed, stored));
  EXPECT_GE(stats.times_fell_behind, 1u);
  EXPECT_GT(stats.events_read_back, 0u);
  const ObserverProgress progress = engine->Progress();
  EXPECT_FALSE(progress.behind);
  EXPECT_EQ(progress.backlog, 0u);
}

TEST_F(CorrelationEngineTest, BacklogLeftAtShutdownIsReplayedFromTheStore) {
  const std::vector<Delivery> story = SeedStory();
  {
    CorrelationEngineOptions options;
    options.max_queued_events = 0;
    auto engine = OpenEngine(options);
    ASSERT_NE(engine, nullptr);
    // A snapshot with exact positions and nothing fed, then a backlog that only the store
    // holds, as when the process stops while behind.
    ASSERT_TRUE(engine->Snapshot().ok());
  }
  Store(story);
  OpenStore();
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, story.size());
  ExpectTheSeedIncident();
}

TEST_F(CorrelationEngineTest, RestartReplaysAckedEventsTheSnapshotDoesNotHave) {
  const std::vector<Delivery> story = SeedStory();
  const size_t half = story.size() / 2;
  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    StoreAndFeed(*engine, {story.begin(), story.begin() + static_cast<long>(half)});
    ASSERT_TRUE(engine->Snapshot().ok());
    EXPECT_EQ(engine->stats().snapshots, 1u);
    for (const Incident& in : Incidents()) EXPECT_EQ(in.hosts.size(), 1u);  // no hop yet
  }
  // The rest was made durable and acknowledged, but the process died before the correlator
  // thread took it: it is in the store only.
  Store({story.begin() + static_cast<long>(half), story.end()});
  OpenStore();
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, story.size() - half);
  ExpectTheSeedIncident();
}

// One event dated INT64_MAX (a sensor with a wild clock, or a forged time) must not move
// the watermark past the aggregator's clock: the replay after a restart skips events older
// than watermark - replay_margin, so it would skip every acknowledged event.
TEST_F(CorrelationEngineTest, FutureDatedEventDoesNotHideAckedEventsFromTheReplay) {
  const std::vector<Delivery> story = SeedStory();
  const size_t half = story.size() / 2;
  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    StoreAndFeed(*engine, {story.begin(), story.begin() + static_cast<long>(half)});
    Event poison = story.front().event;
    poison.seq = 1;
    poison.host = "hostz";
    poison.time_ns = INT64_MAX;
    StoreAndFeed(*engine, {Delivery{"sensor-z", poison}});
    ASSERT_TRUE(engine->Snapshot().ok());
  }
  Store({story.begin() + static_cast<long>(half), story.end()});
  OpenStore();
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, story.size() - half);
  ExpectTheSeedIncident();
}

// Incident ids are keyed with the store's secret: the same events give another id in
// another store (a sensor cannot compute, so cannot collide, an id), and the same id in the
// same store after a restart that rebuilds the chain from the events.
TEST_F(CorrelationEngineTest, IncidentIdsAreKeyedPerStoreAndStableAcrossRestarts) {
  const std::vector<Delivery> story = SeedStory();
  std::string first_id;
  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    StoreAndFeed(*engine, story);
    engine->Drain();
    const std::vector<Incident> incidents = Incidents();
    ASSERT_EQ(incidents.size(), 1u);
    first_id = incidents[0].id;
    EXPECT_EQ(first_id.size(), 4u + 32u) << first_id;
  }
  // No snapshot was written: the restart rebuilds the chain by replaying, under one id.
  OpenStore();
  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    engine->Drain();
    const std::vector<Incident> incidents = Incidents();
    ASSERT_EQ(incidents.size(), 1u);
    EXPECT_EQ(incidents[0].id, first_id);
  }
  // Another data directory, the same events: another id.
  testing::TempDir other_dir;
  auto other = RocksDbStore::Open({.path = other_dir.Sub("db")});
  ASSERT_TRUE(other.ok());
  auto engine = CorrelationEngine::Open(other->get(), {}, clock_);
  ASSERT_TRUE(engine.ok());
  for (const Delivery& d : story) {
    ASSERT_TRUE((*other)->AppendBatch(d.sensor, d.event.seq, {d.event}).ok());
    (*engine)->OnDurable(d.sensor, {d.event});
  }
  (*engine)->Drain();
  auto all = (*other)->ListIncidents();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  v1::Incident wire;
  ASSERT_TRUE(wire.ParseFromString((*all)[0]));
  EXPECT_NE(wire.id(), first_id);
  engine->reset();
}

TEST_F(CorrelationEngineTest, ReadsVersionOneSnapshots) {
  const std::vector<Delivery> story = SeedStory();
  Store(story);
  // A snapshot as earlier aggregators wrote it: the state as a JSON string inside the object.
  correlate::Correlator correlator({}, clock_);
  nlohmann::json positions = nlohmann::json::object();
  for (const Delivery& d : story) {
    (void)correlator.Handle(d.sensor, d.event);
    positions[d.sensor] = d.event.seq;
  }
  const std::string state = correlator.SerializeState();
  const nlohmann::json v1 = {{"version", 1},
                             {"positions", positions},
                             {"watermark_ns", story.back().event.time_ns},
                             {"state", state}};
  ASSERT_TRUE(store_->PutCorrelatorSnapshot(v1.dump()).ok());

  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, 0u);  // the positions cover every stored event
  ASSERT_TRUE(engine->Snapshot().ok());
  auto bytes = store_->GetCorrelatorSnapshot();
  ASSERT_TRUE(bytes.ok() && bytes->has_value());
  const size_t newline = (*bytes)->find('\n');
  ASSERT_NE(newline, std::string::npos);
  const auto header = nlohmann::json::parse((*bytes)->substr(0, newline));
  EXPECT_EQ(header["version"], 3);
  EXPECT_EQ(header["positions"], positions);
  EXPECT_EQ((*bytes)->substr(newline + 1), state);
}

TEST_F(CorrelationEngineTest, DamagedSnapshotIsCorruption) {
  for (const std::string& bad :
       {std::string("{\"version\":2,\"positions\":{},\"watermark_ns\":1}\nnot a state"),
        std::string("{\"version\":2}\n{}"), std::string("{]"),
        std::string("{\"version\":7,\"positions\":{},\"watermark_ns\":1}\n{}")}) {
    ASSERT_TRUE(store_->PutCorrelatorSnapshot(bad).ok());
    auto engine = CorrelationEngine::Open(store_.get(), {}, clock_);
    ASSERT_FALSE(engine.ok()) << bad;
    EXPECT_EQ(engine.status().code(), Status::Code::kCorruption) << bad;
  }
}

TEST_F(CorrelationEngineTest, SnapshotsWaitInProportionToTheirCost) {
  SteppingClock clock;
  CorrelationEngineOptions options;
  options.snapshot_interval_ns = 5 * kNanosPerSecond;
  options.snapshot_cost_factor = 20;
  auto opened = CorrelationEngine::Open(store_.get(), options, clock);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  CorrelationEngine& engine = **opened;
  const std::vector<Delivery> story = SeedStory();
  Store(story);
  const auto feed = [&](size_t i) {
    engine.OnDurable(story[i].sensor, {story[i].event});
    engine.Drain();
  };

  clock.step = 2 * kNanosPerSecond;  // every snapshot now takes 2 s
  feed(0);
  ASSERT_TRUE(engine.Maintain().ok());
  EXPECT_EQ(engine.stats().snapshots, 1u);
  EXPECT_EQ(engine.stats().last_snapshot_cost_ns, 2 * kNanosPerSecond);

  // Due by the interval, but not yet 20 x 2 s after the last one.
  feed(1);
  clock.AdvanceNs(10 * kNanosPerSecond);
  ASSERT_TRUE(engine.Maintain().ok());
  EXPECT_EQ(engine.stats().snapshots, 1u);

  clock.AdvanceNs(30 * kNanosPerSecond);
  ASSERT_TRUE(engine.Maintain().ok());
  EXPECT_EQ(engine.stats().snapshots, 2u);

  // Nothing new fed: no snapshot however long it has been.
  clock.AdvanceNs(100 * kNanosPerSecond);
  ASSERT_TRUE(engine.Maintain().ok());
  EXPECT_EQ(engine.stats().snapshots, 2u);
}

}  // namespace
}  // namespace tripline

namespace tripline {
namespace {

// Weeks of alice's office logins (old event times), as an import or a sensor sends them.
std::vector<Delivery> OfficeLogins(StoryBuilder& b, int days, int first_session) {
  std::vector<Delivery> s;
  int session = first_session;
  for (int day = days; day >= 1; --day) {
    for (double hour : {9.0, 14.0}) {
      const double t = -day * 86400.0 + (hour - 3.7) * 3600;
      s.push_back(b.Login("hosta", "alice", "198.51.100." + std::to_string(10 + day % 5),
                          40000 + session % 1000, "audit:" + std::to_string(session), t));
      ++session;
    }
  }
  return s;
}

v1::Baseline AliceOf(CorrelationEngine& engine) {
  v1::GetBaselineRequest request;
  request.set_identity("alice");
  v1::Baseline baseline;
  const grpc::Status s = engine.GetBaseline(request, &baseline);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return baseline;
}

std::map<std::string, uint64_t> Counts(const v1::Baseline& b) {
  std::map<std::string, uint64_t> out;
  for (const v1::BaselineFeature& f : b.features()) out[f.name()] = f.count();
  return out;
}

// A restart between two halves of the history, the second half never snapshotted (a
// crash): the baselines read back from their column family and the replay from the
// snapshot's positions learn exactly what one uninterrupted run learns. The second half
// is older than the first (history imported after live events), so a replay that skipped
// events older than the snapshot's window would miss it.
TEST_F(CorrelationEngineTest, BaselinesSurviveARestartWithoutLearningTwiceOrSkipping) {
  StoryBuilder recent_builder, old_builder;
  const std::vector<Delivery> recent = OfficeLogins(recent_builder, 15, 100);
  std::vector<Delivery> old = OfficeLogins(old_builder, 30, 500);
  old.resize(recent.size());  // days 30..16
  // The import comes from its own sensor id, as `triplinectl import` sends it.
  for (Delivery& d : old) d.sensor = "import-hosta";
  const std::vector<Delivery>& first = recent;
  const std::vector<Delivery>& second = old;
  std::vector<Delivery> history = first;
  history.insert(history.end(), second.begin(), second.end());

  v1::Baseline uninterrupted;
  {
    testing::TempDir other;
    auto store = RocksDbStore::Open({.path = other.Sub("db")});
    ASSERT_TRUE(store.ok());
    auto engine = CorrelationEngine::Open(store->get(), {}, clock_);
    ASSERT_TRUE(engine.ok());
    for (const Delivery& d : history) {
      ASSERT_TRUE((*store)->AppendBatch(d.sensor, d.event.seq, {d.event}).ok());
      (*engine)->OnDurable(d.sensor, {d.event});
    }
    (*engine)->Drain();
    uninterrupted = AliceOf(**engine);
  }
  ASSERT_GT(uninterrupted.observations(), 40u);

  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    StoreAndFeed(*engine, first);
    engine->Drain();
    ASSERT_TRUE(engine->Snapshot().ok());
    EXPECT_GT(engine->stats().last_snapshot_baselines, 0u);
    StoreAndFeed(*engine, second);
    engine->Drain();
    // No snapshot: as if the process died here.
  }
  OpenStore();
  size_t records = 0;
  ASSERT_TRUE(store_
                  ->ForEachBaseline([&](std::string_view key, std::string_view) {
                    records += key.substr(0, 3) == "id/" ? 1 : 0;
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_GE(records, 3u);  // alice, hosta and alice's peer groups
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().replayed, second.size());
  const v1::Baseline restarted = AliceOf(*engine);
  EXPECT_EQ(restarted.observations(), uninterrupted.observations());
  EXPECT_EQ(Counts(restarted), Counts(uninterrupted));
  EXPECT_EQ(restarted.usual_hours(), uninterrupted.usual_hours());
}

TEST_F(CorrelationEngineTest, BaselineOfAnUnknownIdentityIsNotFound) {
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  v1::GetBaselineRequest request;
  request.set_identity("nobody");
  v1::Baseline baseline;
  EXPECT_EQ(engine->GetBaseline(request, &baseline).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A backup job's account: three days of hourly runs, no terminal.
std::vector<Delivery> BackupJob(StoryBuilder& b, int hours) {
  std::vector<Delivery> out;
  for (int h = 0; h < hours; ++h) {
    const double t = -4 * 86400.0 + h * 3600.0;
    out.push_back(b.Exec("hosta", "", "backup", 990, "/usr/local/bin/backup", t));
    out.push_back(b.Exec("hosta", "", "backup", 990, "/usr/bin/tar", t + 1));
  }
  return out;
}

TEST_F(CorrelationEngineTest, SuggestedKindIsConfirmedByAPersonAndSurvivesARestart) {
  StoryBuilder b;
  {
    auto engine = OpenEngine();
    ASSERT_NE(engine, nullptr);
    StoreAndFeed(*engine, BackupJob(b, 72));
    engine->Drain();
    v1::ListIdentitySuggestionsResponse list;
    ASSERT_TRUE(engine->ListIdentitySuggestions({}, &list).ok());
    ASSERT_EQ(list.suggestions_size(), 1);
    EXPECT_EQ(list.suggestions(0).user(), "backup");
    EXPECT_EQ(list.suggestions(0).kind(), "service");
    EXPECT_EQ(list.suggestions(0).state(), "suggested");
    // Shown, not applied: the account is still judged as a person.
    v1::GetBaselineRequest which;
    which.set_identity("service:backup");
    v1::Baseline baseline;
    EXPECT_EQ(engine->GetBaseline(which, &baseline).error_code(), grpc::StatusCode::NOT_FOUND);

    v1::DecideIdentitySuggestionRequest decide;
    decide.set_user("backup");
    decide.set_decision("confirm");
    decide.set_by("carol");
    v1::IdentitySuggestion decided;
    ASSERT_TRUE(engine->DecideIdentitySuggestion(decide, &decided).ok());
    EXPECT_EQ(decided.state(), "confirmed");
    EXPECT_EQ(decided.kind(), "service");
    EXPECT_EQ(decided.decided_by(), "carol");
    decide.set_user("nobody");
    EXPECT_EQ(engine->DecideIdentitySuggestion(decide, &decided).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  OpenStore();
  auto engine = OpenEngine();
  ASSERT_NE(engine, nullptr);
  v1::ListIdentitySuggestionsRequest all;
  all.set_include_decided(true);
  v1::ListIdentitySuggestionsResponse list;
  ASSERT_TRUE(engine->ListIdentitySuggestions(all, &list).ok());
  ASSERT_EQ(list.suggestions_size(), 1);
  EXPECT_EQ(list.suggestions(0).state(), "confirmed");
  EXPECT_EQ(list.suggestions(0).decided_by(), "carol");
  EXPECT_EQ(engine->kind_suggestion_stats().confirmed, 1u);
  // The declaration was restored: the account's next events belong to service:backup.
  StoreAndFeed(*engine, {b.Login("hosta", "backup", "198.18.0.40", 40100, "audit:3", 50)});
  engine->Drain();
  v1::GetBaselineRequest which;
  which.set_identity("service:backup");
  v1::Baseline baseline;
  const grpc::Status found = engine->GetBaseline(which, &baseline);
  EXPECT_TRUE(found.ok()) << found.error_message();
  EXPECT_EQ(baseline.kind(), "service");
}

}  // namespace
}  // namespace tripline
