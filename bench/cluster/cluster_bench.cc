// The scaled-out mode's ingest path on this machine: three nats-server processes clustered
// on loopback (JetStream, stream and bucket with three replicas), and the ingest node's
// sink writing sensors' batches to them.
//
//   cluster_bench [--events 200000] [--batch 500] [--sensors 4] [--hosts 1] [--acks 2000]
//                 [--worker-events 200000] [--worker-hosts 64] [--partitions 32] [--workers 1]
//                 [--latency-stories 100]
//                 [--aggregator PATH]   (the tripline-aggregator the workers run)
//
// Prints
//  - publish/ack latency: one event published and its acknowledgement awaited (the stream's
//    three replicas have it), one after another, p50 / p99;
//  - the sink: batches of `batch` synthetic events (the ingest benchmark's mix) through
//    StreamSink::AppendBatch from `sensors` threads at once, as an ingest node does for its
//    sensors' streams: events/s, batch latency p50 / p99, and CPU per event of the ingest
//    node (this process: the sink and the NATS client) and of the three servers together.
//    A sensor's events are of `hosts` hosts (1, as on a fleet; more spreads a batch over
//    that many partitions, one message each).
//  - a worker: `worker-events` events of `worker-hosts` sensors (one host each) over
//    `partitions` partitions, on three servers of their own, fed by `workers` worker
//    processes (tripline-aggregator --worker): the first half while they take and share
//    the partitions, the second half timed until every partition's consumer has handed out and seen
//    acknowledged all there is: events/s, CPU per event of the worker and of the servers.
//  - detection latency across partitions: `latency-stories` times a brute force and a login
//    on one host and a hop to a host of another partition, through the sink with the
//    address book to one in-process worker over `partitions` partitions (it runs the
//    joiner too): from the hop's login published (its batch acknowledged by the stream)
//    until the joined incident naming both hosts is stored, p50 / p99 / max.
// Wall-clock figures on a machine whose two cores serve the servers and the node at once.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "aggregator/cluster/address_book.h"
#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/stream_sink.h"
#include "aggregator/cluster/worker.h"
#include "bench/aggregator/bench_support.h"
#include "model/event_proto.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_cluster.h"
#include "tests/correlate/story_builder.h"
#include "tests/support/temp_dir.h"
#include "tripline/v1/event.pb.h"

namespace {

using namespace tripline;
using namespace tripline::cluster;

double ServersCpu(const testing::NatsCluster& nats) {
  double s = 0;
  for (int i = 0; i < nats.size(); ++i) s += bench::ProcessCpuSeconds(nats.pid(i));
  return s;
}

// Three nats-server processes clustered on loopback with the events stream and the
// sensors' bucket (three replicas each); false after saying why not.
struct BenchCluster {
  testing::NatsCluster nats{3};
  std::unique_ptr<JetStream> js;
  std::unique_ptr<KeyValue> sensors;

  bool Start(const std::string& name) {
    if (!nats.started() || !nats.WaitReady()) {
      std::fprintf(stderr, "cluster_bench: the NATS servers did not start\n");
      return false;
    }
    ClusterOptions o;
    o.servers = nats.urls();
    o.name = name;
    auto connected = JetStream::Connect(o);
    Status s = connected.status();
    if (s.ok()) s = (*connected)->EnsureStream(EventsStreamSpec(3));
    auto kv =
        s.ok() ? (*connected)->Bucket(kSensorsBucket, 3) : Result<std::unique_ptr<KeyValue>>(s);
    if (!kv.ok()) {
      std::fprintf(stderr, "cluster_bench: %s\n", kv.status().ToString().c_str());
      return false;
    }
    js = std::move(connected).value();
    sensors = std::move(kv).value();
    return true;
  }
};

// Every partition's consumer has handed out, and seen acknowledged, all there is.
bool CaughtUp(JetStream* js, uint32_t partitions) {
  for (uint32_t p = 0; p < partitions; ++p) {
    auto lag = js->Lag(kEventsStream, "part-" + std::to_string(p));
    if (!lag.ok() || !lag->has_value() || (*lag)->pending > 0 || (*lag)->unacknowledged > 0) {
      return false;
    }
  }
  return true;
}

// A worker process (tripline-aggregator --worker) over partitions of its own three
// servers: the first half of the events while it takes the partitions, the second half
// timed, its CPU and the servers' by process.
int RunWorker(const bench::Flags& flags, size_t batch) {
  const auto events = static_cast<size_t>(flags.GetInt("worker-events", 200000));
  const int hosts = static_cast<int>(std::max<int64_t>(1, flags.GetInt("worker-hosts", 64)));
  const auto partitions =
      static_cast<uint32_t>(std::max<int64_t>(1, flags.GetInt("partitions", 32)));
  const int workers = static_cast<int>(std::max<int64_t>(1, flags.GetInt("workers", 1)));
  const std::string aggregator = flags.Get("aggregator", testing::BinPath("tripline-aggregator"));
  if (events == 0) return 0;
  BenchCluster cluster;
  if (!cluster.Start("cluster-bench-worker")) return 1;
  JetStream* js = cluster.js.get();
  StreamSinkOptions so;
  so.partitions = partitions;
  StreamSink sink(js, cluster.sensors.get(), so);
  std::map<std::string, std::vector<Event>> by_sensor;
  for (Event& e : testing::SyntheticEvents(events, hosts, 400, 3)) {
    by_sensor["w-" + e.host].push_back(std::move(e));
  }
  std::map<std::string, size_t> sent;
  const auto publish = [&](double upto) {
    size_t n = 0;
    for (const auto& [sensor, list] : by_sensor) {
      const size_t end = static_cast<size_t>(upto * static_cast<double>(list.size()));
      for (size_t& at = sent[sensor]; at < end;) {
        const size_t k = std::min(batch, end - at);
        const auto r = sink.AppendBatch(sensor, at + 1, {list.begin() + at, list.begin() + at + k});
        if (!r.ok()) {
          std::fprintf(stderr, "cluster_bench: %s\n", r.status().ToString().c_str());
          return size_t{0};
        }
        at += k;
        n += k;
      }
    }
    return n;
  };
  testing::TempDir dir;
  std::string servers;
  for (const std::string& u : cluster.nats.urls()) servers += (servers.empty() ? "" : ",") + u;
  const double t0 = bench::NowSeconds();
  std::vector<std::unique_ptr<testing::Child>> children;
  for (int w = 0; w < workers; ++w) {
    const std::string name = "bench" + std::to_string(w);
    std::ofstream(dir.Sub(name + ".conf"))
        << "cluster { name: \"" << name << "\" partitions: " << partitions << " }\n";
    children.push_back(std::make_unique<testing::Child>(
        std::vector<std::string>{aggregator, "--worker", servers, "--data-dir",
                                 dir.Sub(name + ".data"), "--listen", "127.0.0.1:0", "--config",
                                 dir.Sub(name + ".conf")},
        dir.Sub(name + ".log")));
    if (!children.back()->ReadLine(30000).has_value()) {
      std::fprintf(stderr, "cluster_bench: worker %d did not start\n", w);
      return 1;
    }
  }
  // Every worker holds its share of the partitions (by their leases).
  auto leases = js->Bucket(kLeasesBucket, 3);
  if (!leases.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", leases.status().ToString().c_str());
    return 1;
  }
  const auto shared_out = [&] {
    LeaseTable table(leases->get(), "bench", kNanosPerSecond);
    const auto all = table.List();
    if (!all.ok()) return false;
    std::map<std::string, uint32_t> held;
    for (const auto& [resource, record] : *all) {
      if (resource.rfind("partition.", 0) == 0 && record.expires_ns > SystemClock::Get().NowNs()) {
        ++held[record.owner.substr(0, record.owner.find('.'))];
      }
    }
    uint32_t total = 0;
    for (const auto& [owner, n] : held) {
      if (n + 1 < partitions / static_cast<uint32_t>(workers)) return false;
      total += n;
    }
    return held.size() == static_cast<size_t>(workers) && total == partitions;
  };
  const size_t first = publish(0.5);
  const auto wait_until = [&](const std::function<bool()>& done) {
    while (!done() && bench::NowSeconds() - t0 < 900) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  };
  const auto caught_up = [&] { return CaughtUp(js, partitions); };
  if (first == 0 || !wait_until(shared_out) || !wait_until(caught_up)) {
    std::fprintf(stderr, "cluster_bench: the workers did not share and catch up in 900 s\n");
    return 1;
  }
  const double taken = bench::NowSeconds() - t0;
  const auto workers_cpu = [&] {
    double c = 0;
    for (const auto& child : children) c += bench::ProcessCpuSeconds(child->pid());
    return c;
  };
  const double cpu0 = workers_cpu(), servers0 = ServersCpu(cluster.nats);
  const double t1 = bench::NowSeconds();
  const size_t second = publish(1.0);
  if (second == 0 || !wait_until(caught_up)) {
    std::fprintf(stderr, "cluster_bench: the workers did not catch up with the second half\n");
    return 1;
  }
  const double wall = bench::NowSeconds() - t1;
  const double cpu = workers_cpu() - cpu0;
  const double servers_cpu = ServersCpu(cluster.nats) - servers0;
  bool clean = true;
  for (const auto& child : children) {
    child->Signal(SIGTERM);
    clean &= child->Wait(60000) == 0;
  }
  const double n = static_cast<double>(second);
  std::printf(
      "%d worker process(es), %u partitions, %d sensors: took and shared the partitions and "
      "fed the first %zu events in %.1f s; the next %zu published and fed in %.2f s: %.0f "
      "events/s; CPU per event: the workers %.1f us, the 3 servers %.1f us (publishing "
      "included); stopped cleanly: %s\n",
      workers, partitions, hosts, first, taken, second, wall, n / wall, cpu / n * 1e6,
      servers_cpu / n * 1e6, clean ? "yes" : "no");
  return clean ? 0 : 1;
}

int RunLatency(const bench::Flags& flags) {
  using correlate::testing::Delivery;
  using correlate::testing::StoryBuilder;
  const int stories = static_cast<int>(flags.GetInt("latency-stories", 100));
  const auto partitions =
      static_cast<uint32_t>(std::max<int64_t>(1, flags.GetInt("partitions", 32)));
  if (stories <= 0) return 0;
  BenchCluster cluster;
  if (!cluster.Start("cluster-bench-latency")) return 1;
  JetStream* js = cluster.js.get();
  auto addresses = js->Bucket(kAddressesBucket, 3);
  if (!addresses.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", addresses.status().ToString().c_str());
    return 1;
  }
  AddressBook book(addresses->get());
  if (!book.WaitLoaded(10000)) {
    std::fprintf(stderr, "cluster_bench: the address book did not load in 10 s\n");
    return 1;
  }
  StreamSinkOptions so;
  so.partitions = partitions;
  so.addresses = &book;
  StreamSink sink(js, cluster.sensors.get(), so);
  testing::TempDir dir;
  RocksDbStoreOptions ro;
  ro.path = dir.Sub("store");
  auto store = RocksDbStore::Open(ro);
  if (!store.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", store.status().ToString().c_str());
    return 1;
  }
  // When an incident with a hop into each host was first stored (steady clock).
  std::mutex mu;
  std::condition_variable stored_cv;
  std::map<std::string, std::chrono::steady_clock::time_point> stored;
  WorkerOptions wo;
  wo.name = "latency";
  wo.partitions = partitions;
  wo.before_store_incident = [&](const v1::Incident& in) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu);
    for (const v1::Hop& h : in.chain()) stored.emplace(h.to(), now);
    stored_cv.notify_all();
  };
  auto worker = Worker::Start(js, store->get(), wo);
  if (!worker.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", worker.status().ToString().c_str());
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (((*worker)->partitions().size() < partitions || !(*worker)->stats().joiner.held) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if ((*worker)->partitions().size() < partitions) {
    std::fprintf(stderr, "cluster_bench: the worker did not take the partitions\n");
    return 1;
  }
  const auto send = [&](const std::vector<Delivery>& ds) {
    std::vector<Event> events;
    for (const Delivery& d : ds) events.push_back(d.event);
    const auto r = sink.AppendBatch(ds.front().sensor, events.front().seq, events);
    if (!r.ok()) std::fprintf(stderr, "cluster_bench: %s\n", r.status().ToString().c_str());
    return r.ok();
  };
  std::vector<double> ms;
  for (int i = 0; i < stories; ++i) {
    StoryBuilder story;
    const std::string a = "la" + std::to_string(i);
    std::string b;
    for (int k = 0; b.empty(); ++k) {
      const std::string h = "lb" + std::to_string(i) + "-" + std::to_string(k);
      if (PartitionOfHost(h, partitions) != PartitionOfHost(a, partitions)) b = h;
    }
    const std::string net = std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    story.SetAddress(a, "10.88." + net);
    story.SetAddress(b, "10.89." + net);
    const std::string attacker = "198.19." + net;
    const auto health = [&](const std::string& host) {
      Delivery d = story.Health(host, 0, -1);
      std::get<SensorHealth>(d.event.body).addresses = {story.address_of(host)};
      return d;
    };
    // Both sensors start (their health reports name their addresses), then the attack.
    const Delivery a_started = health(a);
    const Delivery b_started = health(b);
    std::vector<Delivery> on_a;
    for (int f = 0; f < 5; ++f) on_a.push_back(story.Failure(a, "alice", attacker, 40001 + f, f));
    on_a.push_back(story.Login(a, "alice", attacker, 40010, "audit:1", 7.2));
    on_a.push_back(
        story.Open(a, "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
    on_a.push_back(story.Connect(a, "audit:1", "alice", 50001, story.address_of(b), 22, 30));
    const Delivery accept = story.Accept(b, 22, story.address_of(a), 50001, 30.1);
    const Delivery login = story.Login(b, "alice", story.address_of(a), 50001, "audit:5", 31);
    if (!send({a_started}) || !send({b_started}) || !send(on_a) || !send({accept})) return 1;
    const auto t0 = std::chrono::steady_clock::now();
    if (!send({login})) return 1;
    std::unique_lock<std::mutex> lock(mu);
    if (!stored_cv.wait_for(lock, std::chrono::seconds(10), [&] { return stored.contains(b); })) {
      std::fprintf(stderr, "cluster_bench: story %d's hop raised no incident in 10 s\n", i);
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(stored.at(b) - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  const WorkerStats stats = (*worker)->stats();
  std::printf(
      "detection latency across partitions, %d stories over %u partitions (one worker, the "
      "joiner in it): the hop's login published to its joined incident stored: p50 %.0f ms, "
      "p99 %.0f ms, max %.0f ms; %llu fragments published, %llu joined\n",
      stories, partitions, at(0.5), at(0.99), ms.back(),
      static_cast<unsigned long long>(stats.fragments_published),
      static_cast<unsigned long long>(stats.joiner.edges));
  (*worker)->Stop();
  return 0;
}

int Run(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const auto events = static_cast<size_t>(flags.GetInt("events", 200000));
  const auto batch = static_cast<size_t>(std::max<int64_t>(1, flags.GetInt("batch", 500)));
  const int sensors = static_cast<int>(std::max<int64_t>(1, flags.GetInt("sensors", 4)));
  const int acks = static_cast<int>(flags.GetInt("acks", 2000));
  const int hosts = static_cast<int>(std::max<int64_t>(1, flags.GetInt("hosts", 1)));
  if (!testing::NatsCluster::Installed()) {
    std::fprintf(stderr, "cluster_bench: %s is not installed\n", testing::kNatsServer);
    return 1;
  }
  BenchCluster cluster;
  if (!cluster.Start("cluster-bench")) return 1;
  const testing::NatsCluster& nats = cluster.nats;
  JetStream* js = cluster.js.get();
  // Hosts with addresses: logins and connections name their local ends, and connections
  // go to the next host's address (so that, with the address book, they are routed).
  std::vector<Event> mix = testing::SyntheticEvents(batch, hosts, 200);
  const auto address_of = [](const std::string& host) { return "10.77.0." + host.substr(4); };
  for (size_t i = 0; i < mix.size(); ++i) {
    if (auto* c = mix[i].As<NetConnectEvent>()) {
      c->local_addr = address_of(mix[i].host);
      c->local_port = static_cast<uint32_t>(30000 + i);
      c->remote_addr = address_of(mix[(i + 1) % mix.size()].host);
    } else if (auto* l = mix[i].As<LoginEvent>()) {
      l->local_addr = address_of(mix[i].host);
    }
  }
  std::vector<std::string> encoded;
  for (const Event& e : mix) {
    v1::Event pb;
    ToProto(e, &pb);
    encoded.push_back(pb.SerializeAsString());
  }
  size_t bytes = 0;
  for (const std::string& e : encoded) bytes += e.size();
  std::printf(
      "3 nats-server processes on loopback, stream and bucket with 3 replicas; events of "
      "%zu bytes on average\n",
      bytes / encoded.size());

  // One event at a time, each acknowledged before the next.
  std::vector<double> latency;
  for (int i = 0; i < acks; ++i) {
    const double t0 = bench::NowSeconds();
    const auto ack = js->Publish({PartitionSubject(static_cast<uint32_t>(i % 256)),
                                  "ack-bench:" + std::to_string(i + 1),
                                  encoded[static_cast<size_t>(i) % encoded.size()]});
    if (!ack.ok()) {
      std::fprintf(stderr, "cluster_bench: %s\n", ack.status().ToString().c_str());
      return 1;
    }
    latency.push_back(bench::NowSeconds() - t0);
  }
  const double p50 = bench::Percentile(latency, 0.5), p99 = bench::Percentile(latency, 0.99);
  std::printf("publish/ack latency, one event at a time (%d): p50 %.0f us, p99 %.0f us\n", acks,
              p50 * 1e6, p99 * 1e6);

  // The sink, `sensors` streams at once: without the address book, then with it (as an
  // ingest node runs: every batch's addresses learned, outbound connections routed).
  const size_t batches = std::max<size_t>(1, events / batch / static_cast<size_t>(sensors));
  std::vector<std::string_view> views(encoded.begin(), encoded.end());
  const auto time_sink = [&](StreamSink& sink, const char* what, const std::string& prefix) {
    std::mutex mu;
    std::vector<double> batch_latency;
    std::atomic<bool> failed{false};
    const double cpu0 = bench::SelfCpuSeconds(), servers0 = ServersCpu(nats);
    const double t0 = bench::NowSeconds();
    std::vector<std::thread> threads;
    for (int k = 0; k < sensors; ++k) {
      threads.emplace_back([&, k] {
        const std::string sensor = prefix + std::to_string(k);
        std::vector<double> mine;
        for (size_t b = 0; b < batches && !failed; ++b) {
          const double start = bench::NowSeconds();
          const auto r = sink.AppendBatch(sensor, 1 + b * batch, mix, views);
          if (!r.ok() || r->stored != batch) {
            std::fprintf(stderr, "cluster_bench: %s\n",
                         r.ok() ? "a batch was not stored whole" : r.status().ToString().c_str());
            failed = true;
            return;
          }
          mine.push_back(bench::NowSeconds() - start);
        }
        std::lock_guard<std::mutex> lock(mu);
        batch_latency.insert(batch_latency.end(), mine.begin(), mine.end());
      });
    }
    for (std::thread& t : threads) t.join();
    if (failed) return false;
    const double wall = bench::NowSeconds() - t0;
    const double node_cpu = bench::SelfCpuSeconds() - cpu0;
    const double servers_cpu = ServersCpu(nats) - servers0;
    const double n = static_cast<double>(batches * batch * static_cast<size_t>(sensors));
    std::printf(
        "sink %s, %d sensors at once, batches of %zu (%.0f events): %.0f events/s; batch "
        "latency p50 %.1f ms, p99 %.1f ms; CPU per event: ingest node %.1f us, the 3 servers "
        "%.1f us\n",
        what, sensors, batch, n, n / wall, bench::Percentile(batch_latency, 0.5) * 1e3,
        bench::Percentile(batch_latency, 0.99) * 1e3, node_cpu / n * 1e6, servers_cpu / n * 1e6);
    return true;
  };
  StreamSink plain(js, cluster.sensors.get());
  if (!time_sink(plain, "without address book", "bench-sensor-")) return 1;
  auto addresses = js->Bucket(kAddressesBucket, 3);
  if (!addresses.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", addresses.status().ToString().c_str());
    return 1;
  }
  AddressBook book(addresses->get());
  book.WaitLoaded(10000);
  StreamSinkOptions with_book;
  with_book.addresses = &book;
  StreamSink routed(js, cluster.sensors.get(), with_book);
  if (!time_sink(routed, "with address book", "bench-routed-")) return 1;
  std::printf("address book: %zu addresses, %llu written, %llu write errors\n", book.size(),
              static_cast<unsigned long long>(book.stats().learned),
              static_cast<unsigned long long>(book.stats().write_errors));
  const double n = static_cast<double>(batches * batch * static_cast<size_t>(sensors));
  const auto stored = js->StreamMessages(kEventsStream);
  if (!stored.ok() || *stored < static_cast<uint64_t>(acks) + 2 * batches * sensors) {
    std::fprintf(stderr, "cluster_bench: the stream holds fewer messages than batches\n");
    return 1;
  }
  const double messages = static_cast<double>(*stored - static_cast<uint64_t>(acks));
  std::printf(
      "stream holds %.0f messages from the sink for %.0f events (%d hosts a sensor): "
      "%.1f events a message\n",
      messages, 2 * n, hosts, 2 * n / messages);
  if (const int worker = RunWorker(flags, batch); worker != 0) return worker;
  return RunLatency(flags);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
