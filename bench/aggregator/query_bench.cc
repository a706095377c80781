// Query latency of events-by-user range scans over a large store.
//
//   query_bench [--events 10000000] [--users 1000] [--hosts 100] [--sensors 100]
//               [--queries 2000] [--window-minutes 60] [--limit 100] [--dir DIR]
//
// Generates the store by writing batches of 4096 straight through RocksDbStore (the same
// AppendBatch the ingest path uses, without gRPC) and reports how long that took, then
// times QueryEvents({user, since, until, limit}) for random users and windows, directly and
// through the gRPC ListEvents of an in-process server. Events are spread over 24 hours.
// --dir keeps the store (and reuses it on the next run when it already holds the events).
#include <cstdio>
#include <filesystem>
#include <random>

#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "bench/aggregator/bench_support.h"
#include "tests/aggregator/test_support.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

constexpr int64_t kDayNs = 24LL * 3600 * kNanosPerSecond;

int Main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const int64_t total = flags.GetInt("events", 10'000'000);
  const int users = static_cast<int>(flags.GetInt("users", 1000));
  const int hosts = static_cast<int>(flags.GetInt("hosts", 100));
  const int sensors = static_cast<int>(flags.GetInt("sensors", 100));
  const int queries = static_cast<int>(flags.GetInt("queries", 2000));
  const int64_t window_ns = flags.GetInt("window-minutes", 60) * 60 * kNanosPerSecond;
  const size_t limit = static_cast<size_t>(flags.GetInt("limit", 100));
  std::unique_ptr<testing::TempDir> temp;
  std::string path = flags.Get("dir", "");
  if (path.empty()) {
    temp = std::make_unique<testing::TempDir>();
    path = temp->Sub("db");
  }

  auto opened = RocksDbStore::Open({.path = path});
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  RocksDbStore& store = **opened;
  const uint64_t have = store.Stats()->events_stored;
  const int64_t step_ns = kDayNs / total;
  if (have < static_cast<uint64_t>(total)) {
    std::printf("generating %lld events (%d users, %d hosts, %d sensors) in %s\n",
                static_cast<long long>(total), users, hosts, sensors, path.c_str());
    std::mt19937_64 rng(42);
    const double t0 = bench::NowSeconds();
    constexpr int64_t kBatch = 4096;
    std::vector<uint64_t> next_seq(sensors, 1);
    for (int64_t done = 0; done < total; done += kBatch) {
      const int64_t n = std::min(kBatch, total - done);
      const int sensor = static_cast<int>((done / kBatch) % sensors);
      std::vector<Event> batch;
      batch.reserve(n);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t t = testing::kBaseTimeNs + (done + i) * step_ns;
        const std::string user = "user" + std::to_string(rng() % users);
        const std::string host = "host" + std::to_string(rng() % hosts);
        switch (rng() % 3) {
          case 0: batch.push_back(testing::MakeLogin(host, user, t)); break;
          case 1: batch.push_back(testing::MakeExec(host, user, t)); break;
          default: batch.push_back(testing::MakeFileOpen(host, user, t)); break;
        }
      }
      auto r = store.AppendBatch("sensor-" + std::to_string(sensor), next_seq[sensor], batch);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        return 1;
      }
      next_seq[sensor] += n;
      if ((done / kBatch) % 250 == 0 && done > 0) {
        std::printf("  %lld events, %.0f events/s\n", static_cast<long long>(done),
                    static_cast<double>(done) / (bench::NowSeconds() - t0));
        std::fflush(stdout);
      }
    }
    const double gen = bench::NowSeconds() - t0;
    std::printf("generated %lld events in %.1f s (%.0f events/s)\n", static_cast<long long>(total),
                gen, static_cast<double>(total) / gen);
    const double c0 = bench::NowSeconds();
    if (!store.CompactEvents().ok()) return 1;
    std::printf("full compaction: %.1f s\n", bench::NowSeconds() - c0);
  } else {
    std::printf("reusing %llu events in %s\n", static_cast<unsigned long long>(have), path.c_str());
  }
  uint64_t dir_bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) dir_bytes += e.file_size();
  }
  std::printf("store size on disk: %.1f MiB\n", static_cast<double>(dir_bytes) / (1 << 20));

  std::mt19937_64 rng(7);
  const auto random_query = [&] {
    EventQuery q;
    q.user = "user" + std::to_string(rng() % users);
    q.since_ns = testing::kBaseTimeNs + static_cast<int64_t>(rng() % (kDayNs - window_ns));
    q.until_ns = q.since_ns + window_ns;
    q.limit = limit;
    return q;
  };
  std::vector<double> direct;
  uint64_t returned = 0;
  for (int i = 0; i < queries; ++i) {
    const EventQuery q = random_query();
    const double t0 = bench::NowSeconds();
    auto page = store.QueryEvents(q);
    direct.push_back((bench::NowSeconds() - t0) * 1e3);
    if (!page.ok()) return 1;
    returned += page->events.size();
  }
  std::printf(
      "store QueryEvents(user, %lld min window, limit %zu): p50 %.3f ms, p99 %.3f ms, "
      "%.1f events/query\n",
      static_cast<long long>(window_ns / 60 / kNanosPerSecond), limit,
      bench::Percentile(direct, 0.5), bench::Percentile(direct, 0.99),
      static_cast<double>(returned) / queries);

  AggregatorServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  auto server = AggregatorServer::Start(options, &store, nullptr);
  if (!server.ok()) return 1;
  auto stub = v1::Query::NewStub(
      grpc::CreateChannel((*server)->address().ToString(), grpc::InsecureChannelCredentials()));
  std::vector<double> rpc;
  for (int i = 0; i < queries; ++i) {
    const EventQuery q = random_query();
    v1::ListEventsRequest req;
    req.set_user(q.user);
    req.set_since_ns(q.since_ns);
    req.set_until_ns(q.until_ns);
    req.set_limit(static_cast<uint32_t>(limit));
    grpc::ClientContext ctx;
    v1::ListEventsResponse resp;
    const double t0 = bench::NowSeconds();
    const grpc::Status s = stub->ListEvents(&ctx, req, &resp);
    rpc.push_back((bench::NowSeconds() - t0) * 1e3);
    if (!s.ok()) return 1;
  }
  std::printf("gRPC ListEvents (same queries, loopback): p50 %.3f ms, p99 %.3f ms\n",
              bench::Percentile(rpc, 0.5), bench::Percentile(rpc, 0.99));
  (*server)->Shutdown(0);
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Main(argc, argv); }
