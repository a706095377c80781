// Workers of the scaled-out mode against three real nats-server processes clustered on
// loopback: partitions held by leases, moved between workers while events flow, taken
// over from the snapshot of a worker that died; every event fed once into the state that
// lives on, and stored once.
#include "aggregator/cluster/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/partition_snapshot.h"
#include "aggregator/cluster/stream_sink.h"
#include "common/clock.h"
#include "model/incident_proto.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_fixture.h"
#include "tests/correlate/story_builder.h"
#include "tests/support/temp_dir.h"

namespace tripline::cluster {
namespace {

using testing::NatsCluster;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

// One sensor per host, as on a fleet: the synthetic events' hosts' streams.
struct Fleet {
  std::vector<std::string> sensors;
  std::map<std::string, std::vector<Event>> events;  // by sensor, in sequence order
  size_t total = 0;
};

Fleet MakeFleet(size_t n, int hosts) {
  Fleet f;
  for (Event& e : testing::SyntheticEvents(n, hosts, 12)) {
    const std::string sensor = "s-" + e.host;
    if (!f.events.contains(sensor)) f.sensors.push_back(sensor);
    f.events[sensor].push_back(std::move(e));
    ++f.total;
  }
  return f;
}

// What each worker fed that lives on: events fed on a partition count once its snapshot
// was written (or the worker handed it over), and are dropped with a partition it lost or
// with the worker when it died.
struct Fed {
  std::mutex mu;
  std::map<uint32_t, std::vector<std::pair<std::string, uint64_t>>> pending;  // by partition
  std::vector<std::pair<std::string, uint64_t>> durable;
  size_t all = 0;

  void Hook(WorkerOptions* o) {
    o->on_fed = [this](uint32_t p, std::string_view sensor, const Event& e) {
      std::lock_guard<std::mutex> lock(mu);
      pending[p].emplace_back(std::string(sensor), e.seq);
      ++all;
    };
    o->on_snapshot = [this](uint32_t p) {
      std::lock_guard<std::mutex> lock(mu);
      durable.insert(durable.end(), pending[p].begin(), pending[p].end());
      pending[p].clear();
    };
    o->on_release = [this](uint32_t p, bool) {
      std::lock_guard<std::mutex> lock(mu);
      pending[p].clear();
    };
  }
  std::vector<std::pair<std::string, uint64_t>> Durable() {
    std::lock_guard<std::mutex> lock(mu);
    return durable;
  }
  size_t durable_size() {
    std::lock_guard<std::mutex> lock(mu);
    return durable.size();
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return all;
  }
};

class WorkerTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kPartitions = 8;

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::StartNatsCluster(&nats_));
    js_ = Connect("ingest");
    ASSERT_TRUE(js_);
    ASSERT_TRUE(js_->EnsureStream(EventsStreamSpec(3)).ok());
    auto kv = js_->Bucket(kSensorsBucket, 3);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    sensors_ = std::move(kv).value();
    auto addresses = js_->Bucket(kAddressesBucket, 3);
    ASSERT_TRUE(addresses.ok()) << addresses.status().ToString();
    addresses_ = std::move(addresses).value();
    book_ = std::make_unique<AddressBook>(addresses_.get());
    ASSERT_TRUE(book_->WaitLoaded(10000));
    StreamSinkOptions so;
    so.partitions = kPartitions;
    so.addresses = book_.get();
    sink_ = std::make_unique<StreamSink>(js_.get(), sensors_.get(), so);
  }

  std::unique_ptr<JetStream> Connect(const std::string& name) {
    ClusterOptions o;
    o.servers = nats_->urls();
    o.name = name;
    auto js = JetStream::Connect(o);
    EXPECT_TRUE(js.ok()) << js.status().ToString();
    return js.ok() ? std::move(js).value() : nullptr;
  }

  WorkerOptions Options(const std::string& name, Fed* fed) {
    WorkerOptions o;
    o.name = name;
    o.partitions = kPartitions;
    o.lease_ttl_ms = 2000;
    o.renew_every_ms = 300;
    o.snapshot_interval_ms = 200;
    fed->Hook(&o);
    return o;
  }

  // Sends the fleet's events from `from` to `to` (fractions of each sensor's events) in
  // batches of `batch`, sensor by sensor in turn, pausing `pause` between rounds.
  void Send(const Fleet& f, double from, double to, size_t batch, std::chrono::milliseconds pause) {
    for (bool more = true; more;) {
      more = false;
      for (const std::string& sensor : f.sensors) {
        const std::vector<Event>& all = f.events.at(sensor);
        const size_t begin = static_cast<size_t>(from * static_cast<double>(all.size()));
        const size_t end = static_cast<size_t>(to * static_cast<double>(all.size()));
        size_t& at = sent_[sensor];
        at = std::max(at, begin);
        if (at >= end) continue;
        const size_t n = std::min(batch, end - at);
        auto r = sink_->AppendBatch(sensor, at + 1, {all.begin() + at, all.begin() + at + n});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        at += n;
        more = true;
      }
      std::this_thread::sleep_for(pause);
    }
  }

  static bool WaitFor(const std::function<bool()>& done, int seconds) {
    const auto until = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }

  // Every event of the fleet exactly once among `fed`.
  static void ExpectEachOnce(const Fleet& f,
                             const std::vector<std::pair<std::string, uint64_t>>& fed) {
    std::map<std::pair<std::string, uint64_t>, int> count;
    for (const auto& k : fed) ++count[k];
    size_t lost = 0, twice = 0;
    for (const auto& [sensor, events] : f.events) {
      for (uint64_t seq = 1; seq <= events.size(); ++seq) {
        const int c = count[{sensor, seq}];
        if (c == 0) ++lost;
        if (c > 1) ++twice;
        EXPECT_LE(c, 1) << sensor << " seq " << seq << " fed " << c << " times";
      }
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(twice, 0u);
    EXPECT_EQ(count.size(), f.total);
  }

  // A worker's machine: its own connection and store, and what it fed.
  struct Node {
    std::unique_ptr<JetStream> js;
    std::unique_ptr<RocksDbStore> store;
    Fed fed;
    std::unique_ptr<Worker> worker;
  };
  void MakeNode(const std::string& name, Node* n) {
    RocksDbStoreOptions o;
    o.path = dir_.Sub(name);
    auto s = RocksDbStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    n->store = std::move(s).value();
    n->js = Connect("worker-" + name);
    ASSERT_TRUE(n->js);
  }
  void StartWorker(const std::string& name, Node* n,
                   const std::function<void(WorkerOptions*)>& adjust = nullptr) {
    WorkerOptions o = Options(name, &n->fed);
    if (adjust) adjust(&o);
    auto w = Worker::Start(n->js.get(), n->store.get(), std::move(o));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    n->worker = std::move(w).value();
  }

  TempDir dir_;
  std::unique_ptr<NatsCluster> nats_;
  std::unique_ptr<JetStream> js_;
  std::unique_ptr<KeyValue> sensors_;
  std::unique_ptr<KeyValue> addresses_;
  std::unique_ptr<AddressBook> book_;
  std::unique_ptr<StreamSink> sink_;
  std::map<std::string, size_t> sent_;
};

uint64_t Stored(RocksDbStore& store) {
  auto n = store.CountEvents({});
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.value_or(0);
}

TEST_F(WorkerTest, PartitionsMoveToASecondWorkerWhileEventsFlowAndNothingIsFedTwice) {
  const Fleet fleet = MakeFleet(4000, 12);
  Node a, b;
  ASSERT_NO_FATAL_FAILURE(MakeNode("a", &a));
  ASSERT_NO_FATAL_FAILURE(MakeNode("b", &b));
  ASSERT_NO_FATAL_FAILURE(StartWorker("a", &a));
  ASSERT_TRUE(WaitFor([&] { return a.worker->partitions().size() == kPartitions; }, 15));

  const auto split = [&] {
    return a.worker->partitions().size() == kPartitions / 2 &&
           b.worker->partitions().size() == kPartitions / 2;
  };
  // Three quarters flow while b starts and the partitions move; the last quarter waits
  // until they moved (a take can outlast the stream on a busy machine), so that b feeds.
  std::atomic<bool> b_started{false};
  std::thread sender([&] {
    Send(fleet, 0, 0.75, 25, std::chrono::milliseconds(25));
    (void)WaitFor([&] { return b_started && split(); }, 20);
    Send(fleet, 0.75, 1, 25, std::chrono::milliseconds(25));
  });
  ASSERT_TRUE(WaitFor([&] { return a.fed.size() > fleet.total / 4; }, 30));
  ASSERT_NO_FATAL_FAILURE(StartWorker("b", &b));
  b_started = true;
  // Half each, while events flow.
  EXPECT_TRUE(WaitFor(split, 20)) << a.worker->partitions().size() << " / "
                                  << b.worker->partitions().size();
  sender.join();
  ASSERT_TRUE(WaitFor([&] { return a.fed.size() + b.fed.size() >= fleet.total; }, 30))
      << a.fed.size() << " + " << b.fed.size() << " of " << fleet.total;
  EXPECT_GT(a.worker->stats().partitions_handed_over, 0u);
  EXPECT_GT(b.fed.size(), 0u);
  a.worker->Stop();
  b.worker->Stop();
  // Nothing lost on the way: every event fed was fed once.
  EXPECT_EQ(a.fed.size() + b.fed.size(), fleet.total);

  auto both = a.fed.Durable();
  const auto from_b = b.fed.Durable();
  both.insert(both.end(), from_b.begin(), from_b.end());
  ExpectEachOnce(fleet, both);
  // Stored once: by whichever worker fed it.
  EXPECT_EQ(Stored(*a.store) + Stored(*b.store), fleet.total);
  EXPECT_EQ(a.worker->stats().bad_messages + b.worker->stats().bad_messages, 0u);
  EXPECT_EQ(a.worker->stats().partitions_lost + b.worker->stats().partitions_lost, 0u);
}

// A take held up past a lease's length, as on a busy cluster that makes consumers slowly:
// the worker renews its own lease, the partitions it holds and those it is taking all the
// while, so none of them ends, the other worker never counts it gone, and no partition
// moves but the ones handed over.
TEST_F(WorkerTest, NoLeaseEndsWhileATakeIsHeldUpPastItsLength) {
  Node a, b;
  ASSERT_NO_FATAL_FAILURE(MakeNode("a", &a));
  ASSERT_NO_FATAL_FAILURE(MakeNode("b", &b));
  ASSERT_NO_FATAL_FAILURE(StartWorker("a", &a));
  ASSERT_TRUE(WaitFor([&] { return a.worker->partitions().size() == kPartitions; }, 20));

  // Every lease in the table, read every 100 ms: one that ended without being released
  // (released ones end at 0) lapsed.
  auto kv = js_->Bucket(kLeasesBucket, 3);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  LeaseTable table(kv->get(), "watcher", 1);
  std::atomic<bool> watching{true};
  std::mutex mu;
  std::set<std::string> lapsed;
  size_t reads = 0;
  std::thread watcher([&] {
    while (watching) {
      const auto all = table.List();
      const int64_t now = SystemClock::Get().NowNs();
      if (all.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++reads;
        for (const auto& [resource, record] : *all) {
          if (record.expires_ns != 0 && record.expires_ns <= now) {
            lapsed.insert(resource + " of " + record.owner);
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  // B's every take waits three lease lengths before it loads the snapshot.
  const auto hold_up = std::chrono::milliseconds(3 * Options("b", &b.fed).lease_ttl_ms);
  std::atomic<int> held_up{0};
  ASSERT_NO_FATAL_FAILURE(StartWorker("b", &b, [&](WorkerOptions* o) {
    o->on_prepare = [&](uint32_t) {
      ++held_up;
      std::this_thread::sleep_for(hold_up);
    };
  }));
  // Half each: A hands over four, B takes them in one held-up wave.
  EXPECT_TRUE(WaitFor(
      [&] {
        return a.worker->partitions().size() == kPartitions / 2 &&
               b.worker->partitions().size() == kPartitions / 2;
      },
      30))
      << a.worker->partitions().size() << " / " << b.worker->partitions().size();
  // A stops cleanly; B takes the rest in a second held-up wave while it holds its half.
  a.worker->Stop();
  EXPECT_TRUE(WaitFor([&] { return b.worker->partitions().size() == kPartitions; }, 30))
      << b.worker->partitions().size();
  b.worker->Stop();
  watching = false;
  watcher.join();

  EXPECT_EQ(held_up.load(), static_cast<int>(kPartitions));
  // Read often enough to see any lease end: a lease lasts 2 s, the run some 20 s.
  EXPECT_GT(reads, 20u);
  EXPECT_TRUE(lapsed.empty()) << ::testing::PrintToString(lapsed);
  EXPECT_EQ(a.worker->stats().partitions_taken, kPartitions);
  EXPECT_EQ(a.worker->stats().partitions_handed_over, kPartitions / 2);
  EXPECT_EQ(b.worker->stats().partitions_taken, kPartitions);
  EXPECT_EQ(a.worker->stats().partitions_lost + b.worker->stats().partitions_lost, 0u);
}

TEST_F(WorkerTest, AWorkerThatDiesIsTakenOverFromItsLastSnapshot) {
  const Fleet fleet = MakeFleet(3000, 10);
  Node a, b;
  ASSERT_NO_FATAL_FAILURE(MakeNode("a", &a));
  ASSERT_NO_FATAL_FAILURE(MakeNode("b", &b));
  ASSERT_NO_FATAL_FAILURE(StartWorker("a", &a));
  ASSERT_NO_FATAL_FAILURE(StartWorker("b", &b));
  ASSERT_TRUE(WaitFor(
      [&] {
        const size_t held_a = a.worker->partitions().size();
        const size_t held_b = b.worker->partitions().size();
        return held_a + held_b == kPartitions && held_a > 0 && held_b > 0;
      },
      20));

  std::thread sender([&] { Send(fleet, 0, 1, 20, std::chrono::milliseconds(20)); });
  ASSERT_TRUE(WaitFor([&] { return a.fed.size() > fleet.total / 6; }, 30));
  a.worker->Abandon();  // mid-stream, as kill -9: no snapshot, no acknowledgement, no release
  const size_t fed_by_a = a.fed.size();
  // B takes A's partitions once their leases end.
  EXPECT_TRUE(WaitFor([&] { return b.worker->partitions().size() == kPartitions; }, 20));
  sender.join();
  const auto durable_a = a.fed.Durable();
  ASSERT_TRUE(WaitFor([&] { return durable_a.size() + b.fed.size() >= fleet.total; }, 30))
      << durable_a.size() << " + " << b.fed.size() << " of " << fleet.total;
  b.worker->Stop();

  EXPECT_LT(durable_a.size(), fed_by_a) << "A died with events fed past its last snapshot";
  auto both = durable_a;
  const auto from_b = b.fed.Durable();
  both.insert(both.end(), from_b.begin(), from_b.end());
  ExpectEachOnce(fleet, both);
  EXPECT_EQ(b.worker->stats().partitions_taken, kPartitions);
  EXPECT_EQ(b.worker->stats().partitions_lost, 0u);
  // B stored everything A had not snapshotted; A's store may hold some of it too.
  EXPECT_GE(Stored(*a.store) + Stored(*b.store), fleet.total);
  EXPECT_EQ(Stored(*b.store), b.fed.size());
}

// A message the partition's consumer handed out that never reached the worker (on a
// cluster, a fetch's answer lost with a server; here, a second subscriber on the consumer
// takes it) is not acknowledged past: the worker makes the consumer anew after what it fed
// and feeds that message too.
TEST_F(WorkerTest, AMessageHandedOutThatNeverCameIsFedFromTheConsumerMadeAnew) {
  const Fleet fleet = MakeFleet(300, 1);
  ASSERT_EQ(fleet.sensors.size(), 1u);
  const std::string& sensor = fleet.sensors.front();
  const std::vector<Event>& events = fleet.events.at(sensor);
  const uint32_t partition = PartitionOfHost(events.front().host, kPartitions);
  Node n;
  ASSERT_NO_FATAL_FAILURE(MakeNode("w", &n));
  ASSERT_NO_FATAL_FAILURE(StartWorker("w", &n));
  ASSERT_TRUE(WaitFor([&] { return n.worker->partitions().size() == kPartitions; }, 20));

  auto other_js = Connect("other");
  ASSERT_TRUE(other_js);
  ConsumerSpec bound{kEventsStream, "part-" + std::to_string(partition),
                     PartitionSubject(partition), WorkerOptions{}.ack_wait_ms, 65'536};
  bound.ack_cumulative = true;
  auto other = other_js->Consume(bound);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::atomic<size_t> taken{0};
  std::thread taker([&] {
    auto got = (*other)->Fetch(1, 10000);
    if (got.ok()) taken = got->size();
  });
  // Batches of 20 until the other subscriber took one, then the rest.
  size_t at = 0;
  const auto send = [&] {
    const size_t k = std::min<size_t>(20, events.size() - at);
    auto r = sink_->AppendBatch(sensor, at + 1, {events.begin() + at, events.begin() + at + k});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    at += k;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  while (taken == 0 && at < events.size() / 2) {
    ASSERT_NO_FATAL_FAILURE(send());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  taker.join();
  ASSERT_EQ(taken, 1u);
  while (at < events.size()) ASSERT_NO_FATAL_FAILURE(send());

  EXPECT_TRUE(WaitFor([&] { return Stored(*n.store) == fleet.total; }, 30))
      << Stored(*n.store) << " of " << fleet.total;
  EXPECT_GE(n.worker->stats().consumers_remade, 1u);
  n.worker->Stop();
  ExpectEachOnce(fleet, n.fed.Durable());
}

TEST_F(WorkerTest, OnlyOneOfTwoWritersOverTheSameSnapshotLands) {
  auto kv = js_->Bucket(kSnapshotsBucket, 3);
  ASSERT_TRUE(kv.ok());
  SnapshotStore one(kv->get(), "one.1"), two(kv->get(), "two.1");
  v1::PartitionSnapshot s;
  s.set_partition(5);
  s.set_fed_through(10);
  s.set_correlator(std::string(600 * 1024, 'x'));  // three chunks
  (*s.mutable_positions())["sensor-a"] = 7;
  auto v1 = one.Save(s, {});
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  // Both read the same version; the first write wins, the second is Aborted. (A read may
  // be answered by a replica that has not applied the write yet: read until it has.)
  auto loaded = two.Load(5);
  for (int i = 0; i < 50 && loaded.ok() && !loaded->snapshot.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    loaded = two.Load(5);
  }
  ASSERT_TRUE(loaded.ok() && loaded->snapshot.has_value()) << loaded.status().ToString();
  EXPECT_EQ(loaded->snapshot->fed_through(), 10u);
  EXPECT_EQ(loaded->snapshot->correlator().size(), 600u * 1024);
  s.set_fed_through(20);
  auto v2 = one.Save(s, *v1);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  s.set_fed_through(30);
  auto stale = two.Save(s, loaded->version);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Status::Code::kAborted) << stale.status().ToString();
  auto now = one.Load(5);
  ASSERT_TRUE(now.ok() && now->snapshot.has_value());
  EXPECT_EQ(now->snapshot->fed_through(), 20u);
  EXPECT_EQ(now->version.revision, v2->revision);
  // Chunks published at once (the worker's way) read back the same.
  SnapshotStore three(kv->get(), "three.1", js_.get());
  s.set_fed_through(40);
  auto v3 = three.Save(s, now->version);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  now = one.Load(5);
  ASSERT_TRUE(now.ok() && now->snapshot.has_value()) << now.status().ToString();
  EXPECT_EQ(now->snapshot->fed_through(), 40u);
  EXPECT_EQ(now->snapshot->correlator().size(), 600u * 1024);
  // A damaged chunk is a clear error, not a state.
  auto keys = (*kv)->Keys();
  ASSERT_TRUE(keys.ok());
  std::string chunk;
  for (const std::string& k : *keys) {
    if (k.rfind("snap.5.", 0) == 0 && k.size() > chunk.size()) chunk = k;
  }
  ASSERT_FALSE(chunk.empty());
  ASSERT_TRUE((*kv)->Put(chunk, "damaged").ok());
  auto damaged = one.Load(5);
  ASSERT_FALSE(damaged.ok());
  EXPECT_TRUE(damaged.status().IsCorruption()) << damaged.status().ToString();
  // Chunks of the replaced generations were deleted: the live one's three remain.
  size_t chunks = 0;
  for (const std::string& k : *keys) chunks += k.rfind("snap.5.", 0) == 0 ? 1 : 0;
  EXPECT_EQ(chunks, 3u);
}

// A save whose answer was lost with a server is tried again over the version the worker
// had, though its head landed: the head is the writer's own, so the save goes over it, and
// no chunk a head names is deleted or overwritten.
TEST_F(WorkerTest, ASaveTriedAgainAfterItLandedKeepsTheSnapshotWhole) {
  auto kv = js_->Bucket(kSnapshotsBucket, 3);
  ASSERT_TRUE(kv.ok());
  SnapshotStore one(kv->get(), "one.1", js_.get());
  v1::PartitionSnapshot s;
  s.set_partition(6);
  s.set_fed_through(10);
  s.set_correlator(std::string(600 * 1024, 'x'));  // three chunks
  auto first = one.Save(s, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto loads = [&](uint64_t fed_through) {
    auto now = one.Load(6);
    for (int i = 0; i < 50 && now.ok() && now->snapshot.has_value() &&
                    now->snapshot->fed_through() != fed_through;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a replica behind
      now = one.Load(6);
    }
    ASSERT_TRUE(now.ok()) << now.status().ToString();
    ASSERT_TRUE(now->snapshot.has_value());
    EXPECT_EQ(now->snapshot->fed_through(), fed_through);
    EXPECT_EQ(now->snapshot->correlator().size(), 600u * 1024);
  };
  // Tried again as if nothing had been written (the first head was a create).
  s.set_fed_through(20);
  auto again = one.Save(s, {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_GT(again->revision, first->revision);
  ASSERT_NO_FATAL_FAILURE(loads(20));
  // And over a version the writer itself has since replaced.
  s.set_fed_through(30);
  auto third = one.Save(s, *first);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  ASSERT_NO_FATAL_FAILURE(loads(30));
  // Another writer over a replaced version is still refused, and changes nothing.
  SnapshotStore two(kv->get(), "two.1", js_.get());
  s.set_fed_through(40);
  auto stale = two.Save(s, *first);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Status::Code::kAborted) << stale.status().ToString();
  ASSERT_NO_FATAL_FAILURE(loads(30));
  // Only the live generation's three chunks remain.
  auto keys = (*kv)->Keys();
  ASSERT_TRUE(keys.ok());
  size_t chunks = 0;
  for (const std::string& k : *keys) chunks += k.rfind("snap.6.", 0) == 0 ? 1 : 0;
  EXPECT_EQ(chunks, 3u);
}

TEST_F(WorkerTest, AHopBetweenHostsOfTwoPartitionsIsStitchedInThePartitionItReaches) {
  using correlate::testing::Delivery;
  using correlate::testing::StoryBuilder;
  // Two hosts in different partitions.
  const std::string a = "jump";
  std::string b;
  for (int i = 0; b.empty(); ++i) {
    const std::string h = "db" + std::to_string(i);
    if (PartitionOfHost(h, kPartitions) != PartitionOfHost(a, kPartitions)) b = h;
  }
  StoryBuilder story;
  story.SetAddress(a, "198.18.0.21");
  story.SetAddress(b, "198.18.0.22");
  // b's sensor reports first (its sshd accepting a monitoring probe); then alice logs in on
  // a, goes on to b over SSH and reads /etc/shadow there as root.
  const std::vector<Delivery> b_early = {story.Accept(b, 22, "198.18.0.99", 41000, 0)};
  const std::vector<Delivery> on_a = {
      story.Login(a, "alice", "203.0.113.50", 50500, "audit:1", 1),
      story.Connect(a, "audit:1", "alice", 50022, "198.18.0.22", 22, 10)};
  const std::vector<Delivery> b_later = {
      story.Accept(b, 22, "198.18.0.21", 50022, 10.1),
      story.Login(b, "alice", "198.18.0.21", 50022, "audit:9", 11, 22),
      story.Open(b, "audit:9", "alice", 0, "cat", "/etc/shadow", FileAccess::kRead, 20)};
  const auto send = [&](const std::vector<Delivery>& ds) {
    std::vector<Event> events;
    for (const Delivery& d : ds) events.push_back(d.event);
    auto r = sink_->AppendBatch(ds.front().sensor, events.front().seq, events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  ASSERT_NO_FATAL_FAILURE(send(b_early));
  ASSERT_NO_FATAL_FAILURE(send(on_a));
  ASSERT_NO_FATAL_FAILURE(send(b_later));

  Node n;
  ASSERT_NO_FATAL_FAILURE(MakeNode("w", &n));
  ASSERT_NO_FATAL_FAILURE(StartWorker("w", &n));
  ASSERT_TRUE(WaitFor([&] { return n.fed.size() == 6; }, 60)) << n.fed.size();
  // The hop is in one incident, with the connect that began it (stored with b's events).
  std::vector<v1::Incident> with_hop;
  ASSERT_TRUE(WaitFor(
      [&] {
        with_hop.clear();
        auto all = n.store->ListIncidents();
        EXPECT_TRUE(all.ok());
        for (const std::string& bytes : all.value_or(std::vector<std::string>{})) {
          v1::Incident in;
          EXPECT_TRUE(in.ParseFromString(bytes));
          for (const v1::Hop& h : in.chain()) {
            if (h.from() == a && h.to() == b) with_hop.push_back(in);
          }
        }
        return !with_hop.empty();
      },
      30));
  ASSERT_EQ(with_hop.size(), 1u);
  bool cites_connect = false;
  for (const v1::EventRef& r : with_hop[0].events()) {
    cites_connect = cites_connect || (r.sensor_id() == story.Sensor(a) && r.seq() == 2);
  }
  EXPECT_TRUE(cites_connect);
  n.worker->Stop();
}

// The seed story on three hosts whose events land in three partitions: what each partition
// sees of the chain is exported, joined by the worker holding the joiner, and raised as one
// incident, the one a single correlator that saw everything raises.
TEST_F(WorkerTest, TheSeedStoryAcrossThreePartitionsIsTheSingleNodesOneIncident) {
  using correlate::testing::Delivery;
  using correlate::testing::StoryBuilder;
  std::set<uint32_t> partitions;
  for (const char* h : {"hosta", "hostb", "hostc"})
    partitions.insert(PartitionOfHost(h, kPartitions));
  ASSERT_EQ(partitions.size(), 3u) << "the story's hosts must be in partitions of their own";
  StoryBuilder b;
  // Each sensor's first health report names its host's addresses (the address book learns
  // them before anyone connects), then the story.
  std::vector<Delivery> all;
  for (const char* h : {"hosta", "hostb", "hostc"}) {
    Delivery d = b.Health(h, 0, -1);
    std::get<SensorHealth>(d.event.body).addresses = {b.address_of(h)};
    all.push_back(std::move(d));
  }
  for (Delivery& d : b.SeedStory()) all.push_back(std::move(d));

  FakeClock clock(StoryBuilder::kT0);
  correlate::Correlator single({}, clock);
  std::map<std::string, Incident> want;
  for (const Delivery& d : all) {
    for (Incident& in : single.Handle(d.sensor, d.event)) want[in.id] = std::move(in);
  }
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(want.begin()->second.hosts.size(), 3u);

  for (const Delivery& d : all) {
    auto r = sink_->AppendBatch(d.sensor, d.event.seq, {d.event});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Node n;
  ASSERT_NO_FATAL_FAILURE(MakeNode("w", &n));
  WorkerOptions o = Options("w", &n.fed);
  o.learn_baselines = false;  // as the single correlator above
  auto w = Worker::Start(n.js.get(), n.store.get(), o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  n.worker = std::move(w).value();

  const auto incidents = [&] {
    std::map<std::string, Incident> out;
    auto listed = n.store->ListIncidents();
    EXPECT_TRUE(listed.ok());
    for (const std::string& bytes : listed.value_or(std::vector<std::string>{})) {
      v1::Incident wire;
      EXPECT_TRUE(wire.ParseFromString(bytes));
      auto in = FromProto(wire);
      EXPECT_TRUE(in.ok());
      if (in.ok()) out[in->id] = *in;
    }
    return out;
  };
  const auto content = [](Incident in) {
    in.id.clear();  // keyed by the cluster's secret
    in.revision = 0;
    in.updated_ns = 0;
    return IncidentToJson(in).dump(2);
  };
  const std::string expected = content(want.begin()->second);
  std::map<std::string, Incident> got;
  ASSERT_TRUE(WaitFor(
      [&] {
        got = incidents();
        return got.size() == 1 && content(got.begin()->second) == expected;
      },
      60))
      << got.size()
      << " incidents; the first: " << (got.empty() ? "" : content(got.begin()->second))
      << "\nwanted: " << expected;
  const WorkerStats stats = n.worker->stats();
  EXPECT_TRUE(stats.joiner.held);
  EXPECT_GE(stats.fragments_published, 3u);
  EXPECT_EQ(stats.joiner.bad_edges, 0u);
  // Every event stored once: the copies of the two hops' connects are not.
  EXPECT_EQ(Stored(*n.store), all.size());
  n.worker->Stop();
}

}  // namespace
}  // namespace tripline::cluster
