// Ingest throughput end to end: a client stream -> the real tripline-aggregator process ->
// durable in RocksDB (WAL, no fsync unless --sync) -> ack, one batch outstanding per
// stream as the protocol has it.
//
//   ingest_bench [--events 200000] [--batch-sizes 1,64,512] [--streams 1] [--sync]
//
// Prints, per batch size: events/s, aggregator CPU per event (from /proc/PID/stat, i.e. the
// server process alone) and client CPU per event (getrusage of this process).
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "bench/aggregator/bench_support.h"
#include "common/clock.h"
#include "tests/aggregator/test_support.h"

namespace tripline {
namespace {

int Main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const int64_t total = flags.GetInt("events", 200000);
  const int streams = static_cast<int>(flags.GetInt("streams", 1));
  std::vector<int64_t> sizes;
  std::stringstream list(flags.Get("batch-sizes", "1,64,512"));
  for (std::string s; std::getline(list, s, ',');) sizes.push_back(std::stoll(s));

  std::printf("ingest_bench: %lld events per batch size, %d stream(s)%s\n",
              static_cast<long long>(total), streams, flags.Has("sync") ? ", --sync-writes" : "");
  std::printf("%-6s %-9s %12s %14s %14s %10s\n", "batch", "events", "events/s", "agg CPU us/ev",
              "client us/ev", "wall s");
  for (const int64_t batch : sizes) {
    // Batch size 1 is one round trip per event; fewer events keep the run short.
    const int64_t n = batch == 1 ? std::min<int64_t>(total, 20000) : total;
    testing::TempDir dir;
    std::vector<std::string> extra;
    if (flags.Has("sync")) extra.push_back("--sync-writes");
    bench::AggregatorProcess agg(dir.Sub("data"), extra);
    const auto events = testing::SyntheticEvents(static_cast<size_t>(batch), 50, 500);
    // Build the requests up front so the client measures sending, not proto building.
    std::vector<std::vector<v1::IngestRequest>> requests(streams);
    const int64_t per_stream = n / streams;
    for (int s = 0; s < streams; ++s) {
      const std::string id = "bench-" + std::to_string(s);
      std::vector<Event> timed = events;
      for (int64_t seq = 1; seq <= per_stream; seq += batch) {
        // Time moves forward as on a real host (event seq-1 is at base + (seq-1) ms).
        for (int64_t i = 0; i < batch; ++i) {
          timed[i].time_ns = testing::kBaseTimeNs + (seq - 1 + i) * kNanosPerMilli;
        }
        requests[s].push_back(testing::BatchRequest(id, static_cast<uint64_t>(seq), timed));
      }
    }
    std::vector<std::unique_ptr<testing::IngestClient>> clients;
    for (int s = 0; s < streams; ++s) {
      clients.push_back(std::make_unique<testing::IngestClient>(agg.address()));
      if (!clients.back()->Hello("bench-" + std::to_string(s))) return 1;
    }
    const double cpu0 = agg.CpuSeconds(), self0 = bench::SelfCpuSeconds();
    const double t0 = bench::NowSeconds();
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (int s = 0; s < streams; ++s) {
      threads.emplace_back([&, s] {
        for (const auto& r : requests[s]) {
          auto ack = clients[s]->Send(r);
          if (!ack || !ack->error().empty()) failed = true;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall = bench::NowSeconds() - t0;
    const double cpu = agg.CpuSeconds() - cpu0, self = bench::SelfCpuSeconds() - self0;
    if (failed) {
      std::fprintf(stderr, "a batch was not acked\n");
      return 1;
    }
    const double stored = static_cast<double>(per_stream * streams);
    std::printf("%-6lld %-9.0f %12.0f %14.2f %14.2f %10.2f\n", static_cast<long long>(batch),
                stored, stored / wall, cpu * 1e6 / stored, self * 1e6 / stored, wall);
    std::fflush(stdout);
    for (auto& c : clients) c->Finish();
  }
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Main(argc, argv); }
