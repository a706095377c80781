// The scaled-out mode's ingest path on this machine: three nats-server processes clustered
// on loopback (JetStream, stream and bucket with three replicas), and the ingest node's
// sink writing sensors' batches to them.
//
//   cluster_bench [--events 200000] [--batch 500] [--sensors 4] [--hosts 1] [--acks 2000]
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
// Wall-clock figures on a machine whose two cores serve the servers and the node at once.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "aggregator/cluster/stream_sink.h"
#include "bench/aggregator/bench_support.h"
#include "model/event_proto.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_cluster.h"
#include "tripline/v1/event.pb.h"

namespace {

using namespace tripline;
using namespace tripline::cluster;

double ServersCpu(const testing::NatsCluster& nats) {
  double s = 0;
  for (int i = 0; i < nats.size(); ++i) s += bench::ProcessCpuSeconds(nats.pid(i));
  return s;
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
  testing::NatsCluster nats(3);
  if (!nats.started() || !nats.WaitReady()) {
    std::fprintf(stderr, "cluster_bench: the NATS servers did not start\n");
    return 1;
  }
  ClusterOptions o;
  o.servers = nats.urls();
  o.name = "cluster-bench";
  auto js = JetStream::Connect(o);
  if (!js.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", js.status().ToString().c_str());
    return 1;
  }
  Status s = (*js)->EnsureStream(EventsStreamSpec(3));
  auto kv = s.ok() ? (*js)->Bucket(kSensorsBucket, 3) : Result<std::unique_ptr<KeyValue>>(s);
  if (!kv.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", kv.status().ToString().c_str());
    return 1;
  }
  const std::vector<Event> mix = testing::SyntheticEvents(batch, hosts, 200);
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
    const auto ack = (*js)->Publish({PartitionSubject(static_cast<uint32_t>(i % 256)),
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

  // The sink, `sensors` streams at once.
  StreamSink sink(js->get(), kv->get());
  const size_t batches = std::max<size_t>(1, events / batch / static_cast<size_t>(sensors));
  std::vector<std::string_view> views(encoded.begin(), encoded.end());
  std::mutex mu;
  std::vector<double> batch_latency;
  std::atomic<bool> failed{false};
  const double cpu0 = bench::SelfCpuSeconds(), servers0 = ServersCpu(nats);
  const double t0 = bench::NowSeconds();
  std::vector<std::thread> threads;
  for (int k = 0; k < sensors; ++k) {
    threads.emplace_back([&, k] {
      const std::string sensor = "bench-sensor-" + std::to_string(k);
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
  if (failed) return 1;
  const double wall = bench::NowSeconds() - t0;
  const double node_cpu = bench::SelfCpuSeconds() - cpu0;
  const double servers_cpu = ServersCpu(nats) - servers0;
  const double n = static_cast<double>(batches * batch * static_cast<size_t>(sensors));
  std::printf(
      "sink, %d sensors at once, batches of %zu (%.0f events): %.0f events/s; batch latency "
      "p50 %.1f ms, p99 %.1f ms; CPU per event: ingest node %.1f us, the 3 servers %.1f us\n",
      sensors, batch, n, n / wall, bench::Percentile(batch_latency, 0.5) * 1e3,
      bench::Percentile(batch_latency, 0.99) * 1e3, node_cpu / n * 1e6, servers_cpu / n * 1e6);
  const auto stored = (*js)->StreamMessages(kEventsStream);
  if (!stored.ok() || *stored < static_cast<uint64_t>(acks) + batches * sensors) {
    std::fprintf(stderr, "cluster_bench: the stream holds fewer messages than batches\n");
    return 1;
  }
  const double messages = static_cast<double>(*stored - static_cast<uint64_t>(acks));
  std::printf(
      "stream holds %.0f messages from the sink for %.0f events (%d hosts a sensor): "
      "%.1f events a message\n",
      messages, n, hosts, n / messages);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
