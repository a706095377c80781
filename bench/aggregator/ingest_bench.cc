// Ingest throughput end to end: a client stream -> the real tripline-aggregator process ->
// durable in RocksDB (WAL, no fsync unless --sync) -> ack. Each stream keeps up to
// --window batches unacknowledged, as the sensor's delivery client does
// (DeliveryOptions::max_in_flight_batches, 8); --window 1 is stop-and-wait.
//
//   ingest_bench [--events 200000] [--batch-sizes 1,64,512] [--streams 1] [--window 8]
//                [--hosts 50] [--users 500] [--sync]
//
// Prints, per batch size: events/s acknowledged and the wall time to the last ack; the
// correlator's side: the backlog of stored but not yet correlated events when the last
// ack arrived, and the seconds from the first send until correlation had caught up (polled
// through the query API every 10 ms), with the rate that makes; then CPU per event up to
// that point: the aggregator's by thread role (ingest = gRPC threads: parse, validate,
// write, ack; storage = RocksDB flush and compaction; correlation = the correlator thread;
// maintenance = expiry and snapshots of the correlator's state; from
// /proc/PID/task/*/stat) and the client's (getrusage of this process).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/aggregator/bench_support.h"
#include "common/clock.h"
#include "tests/aggregator/test_support.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

int Main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const int64_t total = flags.GetInt("events", 200000);
  const int streams = static_cast<int>(flags.GetInt("streams", 1));
  const int64_t window = std::max<int64_t>(1, flags.GetInt("window", 8));
  // Each batch cycles through this many host and user names, one per event: the default
  // makes every event of a batch a different identity (the worst case for postings and
  // for the correlator); --hosts 1 --users 20 is closer to one host's sensor.
  const int hosts = static_cast<int>(std::max<int64_t>(1, flags.GetInt("hosts", 50)));
  const int users = static_cast<int>(std::max<int64_t>(1, flags.GetInt("users", 500)));
  std::vector<int64_t> sizes;
  std::stringstream list(flags.Get("batch-sizes", "1,64,512"));
  for (std::string s; std::getline(list, s, ',');) sizes.push_back(std::stoll(s));

  std::printf(
      "ingest_bench: %lld events per batch size, %d stream(s), window %lld, %d hosts, %d "
      "users%s\n",
      static_cast<long long>(total), streams, static_cast<long long>(window), hosts, users,
      flags.Has("sync") ? ", --sync-writes" : "");
  std::printf("%-6s %-8s %10s %7s %8s %11s %12s | %s\n", "batch", "events", "events/s", "wall s",
              "backlog", "caught up s", "correlated/s",
              "CPU us/event: ingest storage correlation maintenance total client");
  for (const int64_t batch : sizes) {
    // Batch size 1 is one round trip per event; fewer events keep the run short.
    const int64_t n = batch == 1 ? std::min<int64_t>(total, 20000) : total;
    testing::TempDir dir;
    std::vector<std::string> extra;
    if (flags.Has("sync")) extra.push_back("--sync-writes");
    bench::AggregatorProcess agg(dir.Sub("data"), extra);
    const auto events = testing::SyntheticEvents(static_cast<size_t>(batch), hosts, users);
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
    const auto roles0 = agg.CpuSecondsByRole();
    const double self0 = bench::SelfCpuSeconds();
    const double t0 = bench::NowSeconds();
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (int s = 0; s < streams; ++s) {
      threads.emplace_back([&, s] {
        // The writer runs ahead of the acks by at most `window` batches. Acks are
        // cumulative (durable_seq), one per batch.
        std::mutex mu;
        std::condition_variable cv;
        int64_t unacked = 0;
        std::thread reader([&] {
          for (size_t i = 0; i < requests[s].size(); ++i) {
            auto ack = clients[s]->ReadAck();
            if (!ack || !ack->error().empty()) failed = true;
            std::lock_guard<std::mutex> lock(mu);
            --unacked;
            cv.notify_one();
            if (!ack) break;
          }
        });
        for (const auto& r : requests[s]) {
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return unacked < window || failed; });
            if (failed) break;
            ++unacked;
          }
          if (!clients[s]->WriteOnly(r)) {
            failed = true;
            break;
          }
        }
        reader.join();
      });
    }
    for (auto& t : threads) t.join();
    const double wall = bench::NowSeconds() - t0;
    if (failed) {
      std::fprintf(stderr, "a batch was not acked\n");
      return 1;
    }
    const double stored = static_cast<double>(per_stream * streams);
    // The correlator's side: how far behind it was at the last ack, and when it caught up.
    auto query =
        v1::Query::NewStub(grpc::CreateChannel(agg.address(), grpc::InsecureChannelCredentials()));
    const auto poll = [&](v1::Stats* st) {
      grpc::ClientContext ctx;
      return query->GetStats(&ctx, v1::GetStatsRequest(), st).ok();
    };
    v1::Stats st;
    if (!poll(&st)) {
      std::fprintf(stderr, "GetStats failed\n");
      return 1;
    }
    const uint64_t backlog_at_ack = st.correlation_backlog();
    const double deadline = bench::NowSeconds() + 600;
    while (st.correlation_events_fed() < static_cast<uint64_t>(stored) || st.correlation_behind()) {
      if (bench::NowSeconds() > deadline) {
        std::fprintf(stderr, "correlation did not catch up within 600 s\n");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!poll(&st)) {
        std::fprintf(stderr, "GetStats failed\n");
        return 1;
      }
    }
    const double correlated = bench::NowSeconds() - t0;
    const double self = bench::SelfCpuSeconds() - self0;
    auto roles = agg.CpuSecondsByRole();
    double total = 0;
    for (auto& [role, cpu] : roles) {
      cpu = (cpu - roles0.at(role)) * 1e6 / stored;
      total += cpu;
    }
    std::printf(
        "%-6lld %-8.0f %10.0f %7.2f %8llu %11.2f %12.0f | %6.2f %7.2f %11.2f %11.2f %5.2f %6.2f\n",
        static_cast<long long>(batch), stored, stored / wall, wall,
        static_cast<unsigned long long>(backlog_at_ack), correlated, stored / correlated,
        roles["ingest"], roles["storage"], roles["correlation"], roles["maintenance"], total,
        self * 1e6 / stored);
    std::fflush(stdout);
    for (auto& c : clients) c->Finish();
  }
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Main(argc, argv); }
