// tripline-aggregator --worker, the real binary, twice, against three nats-server
// processes: one worker killed with SIGKILL in the middle of an attack on a host of its
// partitions, and a NATS server killed mid-stream; the other worker takes the partitions
// over from the dead one's snapshots and raises the attack's incident as the single
// node's correlator does; no event is lost, none stored twice by the survivor.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "aggregator/baseline/baselines.h"
#include "aggregator/cluster/address_book.h"
#include "aggregator/cluster/joiner_stage.h"
#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/stream_sink.h"
#include "aggregator/cluster/worker.h"
#include "aggregator/correlate/correlator.h"
#include "aggregator/store/rocksdb_store.h"
#include "model/incident_proto.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_fixture.h"
#include "tests/correlate/story_builder.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/wait_for.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::cluster {
namespace {

using correlate::testing::Delivery;
using correlate::testing::StoryBuilder;
using testing::BinPath;
using testing::Child;
using testing::NatsCluster;
using testing::TempDir;
using testing::WaitFor;

constexpr uint32_t kPartitions = 8;
constexpr char kAttacker[] = "198.18.0.66";

// A worker process: its owner name and query address once it said them.
struct WorkerProcess {
  WorkerProcess(const std::string& servers, const std::string& name, const TempDir& dir,
                const std::vector<std::string>& more = {})
      : config(dir.Sub(name + ".conf")),
        data(dir.Sub(name + ".data")),
        log(dir.Sub(name + ".log")),
        child(
            [&] {
              std::ofstream(config)
                  << "cluster { name: \"" << name << "\" partitions: " << kPartitions << " }\n";
              std::vector<std::string> args{BinPath("tripline-aggregator"),
                                            "--worker",
                                            servers,
                                            "--data-dir",
                                            data,
                                            "--listen",
                                            "127.0.0.1:0",
                                            "--config",
                                            config};
              args.insert(args.end(), more.begin(), more.end());
              return args;
            }(),
            log) {
    const auto first = child.ReadLine(30000);
    if (first && first->rfind("worker ", 0) == 0) owner = first->substr(7);
    const auto second = child.ReadLine(30000);
    if (second && second->rfind("listening on ", 0) == 0) address = second->substr(13);
    if (std::find(more.begin(), more.end(), "--metrics") != more.end()) {
      const auto third = child.ReadLine(30000);
      if (third && third->rfind("metrics on ", 0) == 0) metrics = third->substr(11);
    }
  }
  // The worker's stats from its query service; a failed call fails the test, saying why.
  v1::Stats Stats() {
    if (!stub) {
      stub = v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::Stats out;
    const grpc::Status status = stub->GetStats(&ctx, v1::GetStatsRequest(), &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }
  std::unique_ptr<v1::Query::Stub> stub;
  std::string config, data, log;
  Child child;
  std::string owner, address, metrics;
};

// The partitions whose leases name an owner starting with `prefix`.
std::set<uint32_t> HeldBy(KeyValue* leases, const std::string& prefix) {
  LeaseTable table(leases, "test", kNanosPerSecond);
  std::set<uint32_t> out;
  auto all = table.List();
  if (!all.ok()) return out;
  for (const auto& [resource, record] : *all) {
    if (resource.rfind("partition.", 0) == 0 && record.owner.rfind(prefix, 0) == 0 &&
        record.expires_ns > SystemClock::Get().NowNs()) {
      out.insert(static_cast<uint32_t>(std::stoul(resource.substr(10))));
    }
  }
  return out;
}

// Every (sensor, seq) in a store, and how often.
std::map<std::pair<std::string, uint64_t>, int> EventsIn(const std::string& dir) {
  std::map<std::pair<std::string, uint64_t>, int> out;
  RocksDbStoreOptions o;
  o.path = dir;
  auto store = RocksDbStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return out;
  EventQuery q;
  q.limit = Store::kMaxPageSize;
  for (;;) {
    auto page = (*store)->QueryEvents(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const StoredEvent& e : page->events) ++out[{e.sensor_id, e.event.seq}];
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  return out;
}

std::vector<v1::Incident> IncidentsIn(const std::string& dir) {
  std::vector<v1::Incident> out;
  RocksDbStoreOptions o;
  o.path = dir;
  auto store = RocksDbStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return out;
  auto all = (*store)->ListIncidents();
  EXPECT_TRUE(all.ok());
  for (const std::string& bytes : all.value_or(std::vector<std::string>{})) {
    v1::Incident i;
    EXPECT_TRUE(i.ParseFromString(bytes));
    out.push_back(i);
  }
  return out;
}

// Three clustered nats-server processes, a connection, the events stream and the buckets
// a test sends through; nats is null when the test was skipped (no nats-server).
struct TestCluster {
  std::unique_ptr<NatsCluster> nats;
  std::unique_ptr<JetStream> js;
  std::unique_ptr<KeyValue> sensors, leases, addresses;
};

void StartTestCluster(TestCluster* c) {
  ASSERT_NO_FATAL_FAILURE(testing::StartNatsCluster(&c->nats));
  if (::testing::Test::IsSkipped()) return;
  ClusterOptions co;
  co.servers = c->nats->urls();
  auto js = JetStream::Connect(co);
  ASSERT_TRUE(js.ok()) << js.status().ToString();
  c->js = std::move(js).value();
  ASSERT_TRUE(c->js->EnsureStream(EventsStreamSpec(3)).ok());
  for (auto [bucket, name] :
       {std::pair{&c->sensors, kSensorsBucket}, std::pair{&c->leases, kLeasesBucket},
        std::pair{&c->addresses, kAddressesBucket}}) {
    auto kv = c->js->Bucket(name, 3);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    *bucket = std::move(kv).value();
  }
}

// The attack: failed passwords and a login on a host of the worker that is killed, then a
// hop to a host of the other worker's partitions. The chain spans two partitions and two
// workers, one of which dies, with a NATS server, before the chain is complete.
TEST(WorkerProcessTest, AWorkerKilledMidAttackIsTakenOverAndTheIncidentIsTheSingleNodes) {
  TestCluster c;
  ASSERT_NO_FATAL_FAILURE(StartTestCluster(&c));
  if (::testing::Test::IsSkipped()) return;
  TempDir dir;
  AddressBook book(c.addresses.get());
  ASSERT_TRUE(book.WaitLoaded(10000));
  StreamSinkOptions so;
  so.partitions = kPartitions;
  so.addresses = &book;
  StreamSink sink(c.js.get(), c.sensors.get(), so);

  WorkerProcess a(c.nats->url_list(), "wa", dir);
  ASSERT_FALSE(a.address.empty()) << testing::ReadWholeFile(a.log);
  WorkerProcess b(c.nats->url_list(), "wb", dir);
  ASSERT_FALSE(b.address.empty()) << testing::ReadWholeFile(b.log);
  ASSERT_TRUE(WaitFor(
      [&] {
        const size_t held_a = HeldBy(c.leases.get(), "wa.").size();
        const size_t held_b = HeldBy(c.leases.get(), "wb.").size();
        return held_a + held_b == kPartitions && held_a > 0 && held_b > 0;
      },
      60))
      << testing::ReadWholeFile(a.log) << testing::ReadWholeFile(b.log);
  // The attacked host: one of worker a's partitions; the host it goes on to: one of b's.
  const std::set<uint32_t> of_a = HeldBy(c.leases.get(), "wa.");
  const std::set<uint32_t> of_b = HeldBy(c.leases.get(), "wb.");
  std::string victim;
  for (int i = 0; victim.empty(); ++i) {
    const std::string h = "victim" + std::to_string(i);
    if (of_a.contains(PartitionOfHost(h, kPartitions))) victim = h;
  }
  std::string next;
  for (int i = 0; next.empty(); ++i) {
    const std::string h = "next" + std::to_string(i);
    if (of_b.contains(PartitionOfHost(h, kPartitions))) next = h;
  }

  // Background: 12 hosts' sensors, 2,400 events; the attack on the victim in two halves.
  std::map<std::string, std::vector<Event>> background;
  size_t total = 0;
  for (Event& e : testing::SyntheticEvents(2400, 12, 10)) {
    background["s-" + e.host].push_back(std::move(e));
    ++total;
  }
  StoryBuilder story;
  story.SetAddress(victim, "198.18.0.31");
  story.SetAddress(next, "198.18.0.32");
  // Each sensor's first health report names its addresses, as sensors do at start.
  const auto health = [&](const std::string& host) {
    Delivery d = story.Health(host, 0, -1);
    std::get<SensorHealth>(d.event.body).addresses = {story.address_of(host)};
    return d;
  };
  std::vector<Delivery> attack = {health(victim)};
  for (int i = 0; i < 5; ++i) {
    attack.push_back(story.Failure(victim, "alice", kAttacker, 40001 + i, i));
  }
  attack.push_back(story.Login(victim, "alice", kAttacker, 40010, "audit:1", 7.2));
  attack.push_back(
      story.Open(victim, "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
  attack.push_back(story.Connect(victim, "audit:1", "alice", 50001, "198.18.0.32", 22, 30));
  std::vector<Delivery> on_next = {health(next), story.Accept(next, 22, "198.18.0.31", 50001, 30.1),
                                   story.Login(next, "alice", "198.18.0.31", 50001, "audit:5", 31)};
  total += attack.size() + on_next.size();
  std::map<std::string, size_t> sent;
  const auto send_background = [&](double upto) {
    for (const auto& [sensor, events] : background) {
      const size_t end = static_cast<size_t>(upto * static_cast<double>(events.size()));
      size_t& at = sent[sensor];
      while (at < end) {
        const size_t n = std::min<size_t>(50, end - at);
        auto r = sink.AppendBatch(sensor, at + 1, {events.begin() + at, events.begin() + at + n});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        at += n;
      }
    }
  };
  const auto send = [&](const std::vector<Delivery>& of, size_t from, size_t to) {
    std::vector<Event> events;
    for (size_t i = from; i < to; ++i) events.push_back(of[i].event);
    auto r = sink.AppendBatch(of[from].sensor, from + 1, events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };

  ASSERT_NO_FATAL_FAILURE(send(on_next, 0, 1));  // next's sensor starts
  ASSERT_NO_FATAL_FAILURE(send_background(0.3));
  ASSERT_NO_FATAL_FAILURE(send(attack, 0, 6));  // the victim's sensor starts; failed passwords
  ASSERT_NO_FATAL_FAILURE(send_background(0.5));
  // Worker a has fed and snapshotted the failures (snapshots every second).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  a.child.Signal(SIGKILL);
  ASSERT_TRUE(a.child.Wait(10000).has_value());
  ASSERT_NO_FATAL_FAILURE(send_background(0.7));
  c.nats->Kill(0);  // and a server, mid-stream
  // The login, /etc/shadow read, the hop to next.
  ASSERT_NO_FATAL_FAILURE(send(attack, 6, attack.size()));
  ASSERT_NO_FATAL_FAILURE(send(on_next, 1, on_next.size()));
  ASSERT_NO_FATAL_FAILURE(send_background(1.0));

  // Worker b takes every partition once a's leases end, and feeds everything: every
  // partition's consumer has handed out and seen acknowledged (after a snapshot) all
  // there is.
  EXPECT_TRUE(WaitFor([&] { return HeldBy(c.leases.get(), "wb.").size() == kPartitions; }, 60))
      << testing::ReadWholeFile(b.log);
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t p = 0; p < kPartitions; ++p) {
          auto lag = c.js->Lag(kEventsStream, "part-" + std::to_string(p));
          if (!lag.ok() || !lag->has_value() || (*lag)->pending > 0 || (*lag)->unacknowledged > 0) {
            return false;
          }
        }
        // And the joiner, whichever worker held it, has joined every fragment published.
        auto lag = c.js->Lag(kEdgesStream, "joiner");
        return lag.ok() && lag->has_value() && (*lag)->pending == 0 && (*lag)->unacknowledged == 0;
      },
      90))
      << testing::ReadWholeFile(b.log);
  EXPECT_GT(b.Stats().events_stored(), 0u);
  b.child.Signal(SIGTERM);
  EXPECT_EQ(b.child.Wait(30000), 0) << testing::ReadWholeFile(b.log);

  const auto in_a = EventsIn(a.data);
  const auto in_b = EventsIn(b.data);
  size_t lost = 0;
  std::string which;  // the first few lost, as sensor:seq
  const auto check = [&](const std::string& sensor, uint64_t seq) {
    if (in_a.contains({sensor, seq}) || in_b.contains({sensor, seq})) return;
    if (++lost <= 10) which += " " + sensor + ":" + std::to_string(seq);
  };
  for (const auto& [sensor, events] : background) {
    for (uint64_t seq = 1; seq <= events.size(); ++seq) check(sensor, seq);
  }
  for (const auto* of : {&attack, &on_next}) {
    for (size_t i = 0; i < of->size(); ++i) check((*of)[i].sensor, i + 1);
  }
  EXPECT_EQ(lost, 0u) << "of " << total << ":" << which << "\n" << testing::ReadWholeFile(b.log);
  for (const auto& [key, n] : in_b) EXPECT_EQ(n, 1) << key.first << " " << key.second;

  // The attack's incident: one, raised by b with what a fed before it died, joined across
  // the two partitions, as the single node's correlator raises it from the same events.
  std::map<std::string, v1::Incident> incidents;
  for (const auto& d : {a.data, b.data}) {
    for (v1::Incident& i : IncidentsIn(d)) {
      bool on_victim = false;
      for (const auto& h : i.hosts()) on_victim |= h == victim;
      if (!on_victim) continue;
      auto [it, added] = incidents.emplace(i.id(), i);
      if (!added && it->second.revision() < i.revision()) it->second = i;  // the latest
    }
  }
  ASSERT_EQ(incidents.size(), 1u);
  const v1::Incident& got = incidents.begin()->second;
  // The single node's correlator learns baselines as the worker's do.
  baseline::Baselines baselines;
  correlate::Correlator single({}, SystemClock::Get());
  single.AttachBaselines(&baselines);
  std::vector<Delivery> all = attack;
  all.insert(all.end(), on_next.begin(), on_next.end());
  std::stable_sort(all.begin(), all.end(), [](const Delivery& x, const Delivery& y) {
    return x.event.time_ns < y.event.time_ns;
  });
  std::map<std::string, Incident> expected;
  for (const Delivery& d : all) {
    for (Incident& i : single.Handle(d.sensor, d.event)) expected[i.id] = std::move(i);
  }
  ASSERT_EQ(expected.size(), 1u);
  v1::Incident want;
  ToProto(expected.begin()->second, &want);
  EXPECT_EQ(std::vector<std::string>(got.hosts().begin(), got.hosts().end()),
            (std::vector<std::string>{victim, next}));
  EXPECT_EQ(got.chain_size(), 1);
  EXPECT_EQ(got.severity(), want.severity());
  EXPECT_EQ(got.title(), want.title());
  std::set<std::string> got_techniques(got.techniques().begin(), got.techniques().end());
  std::set<std::string> want_techniques(want.techniques().begin(), want.techniques().end());
  EXPECT_EQ(got_techniques, want_techniques);
  EXPECT_EQ(got.events_size(), want.events_size());
  EXPECT_EQ(got.stages_size(), want.stages_size());
}

}  // namespace
}  // namespace tripline::cluster

namespace tripline::cluster {
namespace {

// A worker's /metrics: the store's families, as the single node's, and the worker's own,
// which say what it holds and fed and that nothing is left behind; promtool finds nothing
// wrong in them.
TEST(WorkerProcessTest, AWorkersMetricsSayWhatItHoldsAndFed) {
  TestCluster c;
  ASSERT_NO_FATAL_FAILURE(StartTestCluster(&c));
  if (::testing::Test::IsSkipped()) return;
  TempDir dir;
  StreamSinkOptions so;
  so.partitions = kPartitions;
  StreamSink sink(c.js.get(), c.sensors.get(), so);

  WorkerProcess w(c.nats->url_list(), "wm", dir, {"--metrics", "127.0.0.1:0"});
  ASSERT_FALSE(w.metrics.empty()) << testing::ReadWholeFile(w.log);
  ASSERT_TRUE(WaitFor([&] { return HeldBy(c.leases.get(), "wm.").size() == kPartitions; }, 60))
      << testing::ReadWholeFile(w.log);

  std::map<std::string, std::vector<Event>> by_sensor;
  for (Event& e : testing::SyntheticEvents(600, 12, 10)) {
    by_sensor["s-" + e.host].push_back(std::move(e));
  }
  for (const auto& [sensor, events] : by_sensor) {
    for (size_t at = 0; at < events.size(); at += 50) {
      const size_t n = std::min<size_t>(50, events.size() - at);
      auto r = sink.AppendBatch(sensor, at + 1, {events.begin() + at, events.begin() + at + n});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  // Everything fed and snapshotted: nothing pending or unsnapshotted in any partition.
  std::string text;
  const auto settled = [&] {
    text = testing::HttpGet(w.metrics);
    if (testing::MetricSample(text, "tripline_worker_events_fed_total") != 600.0) return false;
    for (uint32_t p = 0; p < kPartitions; ++p) {
      const std::string label = "{partition=\"" + std::to_string(p) + "\"}";
      if (testing::MetricSample(text, "tripline_worker_partition_pending_messages" + label) !=
              0.0 ||
          testing::MetricSample(text, "tripline_worker_partition_unsnapshotted_events" + label) !=
              0.0) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(WaitFor(settled, 60)) << text << testing::ReadWholeFile(w.log);
  EXPECT_EQ(testing::MetricSample(text, "tripline_worker_partitions"), double{kPartitions});
  EXPECT_EQ(testing::MetricSample(text, "tripline_aggregator_events_stored_total"), 600.0);
  EXPECT_GE(testing::MetricSample(text, "tripline_worker_snapshots_total").value_or(0), 1.0);
  EXPECT_EQ(testing::MetricSample(text, "tripline_worker_partitions_taken_total"),
            double{kPartitions});
  EXPECT_EQ(testing::MetricSample(text, "tripline_worker_bad_messages_total"), 0.0);
  EXPECT_EQ(testing::MetricSample(text, "tripline_worker_joiner_held"), 1.0);
  const std::string path = dir.Sub("worker.metrics");
  std::ofstream(path) << text;
  const testing::RunResult check = testing::RunCommand(
      {"/bin/sh", "-c", "/usr/bin/promtool check metrics < '" + path + "' 2>&1"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  w.child.Signal(SIGTERM);
  EXPECT_EQ(w.child.Wait(30000), 0) << testing::ReadWholeFile(w.log);
}

}  // namespace
}  // namespace tripline::cluster
