// The storage floor under ingest: what durable writes alone cost on this machine, with no
// gRPC, no parsing and no correlation, for the same synthetic events ingest_bench sends.
//
//   store_floor_bench [--events 2000000] [--batch 512] [--hosts 50] [--users 500]
//
// Rows, each on one thread writing batches of --batch events, WAL on, no fsync:
//   raw        RocksDB alone: one WriteBatch per batch of pre-serialized values (the events'
//              protobuf bytes), one key per event under sequential sensor|seq keys,
//              nothing else; the ceiling of any layout that writes a key per event.
//   store      RocksDbStore::AppendBatch given the events' encodings as they arrived, what
//              the ingest thread calls: the batch record, postings, sensor record and
//              identities in one WriteBatch.
//   encode     the same, with the store encoding the events itself (requests that are not
//              the plain case, and callers without wire bytes).
//   decode     no store: what the ingest thread does before it calls the store, on
//              requests encoded beforehand: parse the IngestRequest, validate the batch and
//              convert its events (ValidateBatch), find the events' bytes.
// Prints events/s and CPU per event of this process (the writing thread plus RocksDB's
// flush and compaction threads), measured until a final flush has completed, so that the
// background work the writes cause is counted.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cstdio>
#include <string>
#include <vector>

#include "aggregator/ingest/ingest_validation.h"
#include "aggregator/store/event_keys.h"
#include "aggregator/store/rocksdb_store.h"
#include "bench/aggregator/bench_support.h"
#include "model/event_proto.h"
#include "tests/aggregator/test_support.h"
#include "tripline/v1/event.pb.h"

namespace tripline {
namespace {

void Report(const char* what, int64_t events, double wall, double cpu) {
  std::printf("%-6s %10lld %12.0f %14.2f %10.2f\n", what, static_cast<long long>(events),
              static_cast<double>(events) / wall, cpu * 1e6 / static_cast<double>(events), wall);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const int64_t total = flags.GetInt("events", 2'000'000);
  const int64_t batch = std::max<int64_t>(1, flags.GetInt("batch", 512));
  // As in ingest_bench: names cycled per event within a batch.
  const int hosts = static_cast<int>(std::max<int64_t>(1, flags.GetInt("hosts", 50)));
  const int users = static_cast<int>(std::max<int64_t>(1, flags.GetInt("users", 500)));
  const auto events = testing::SyntheticEvents(static_cast<size_t>(batch), hosts, users);
  std::printf("store_floor_bench: %lld events in batches of %lld, %d hosts, %d users, WAL on\n",
              static_cast<long long>(total), static_cast<long long>(batch), hosts, users);
  std::printf("%-6s %10s %12s %14s %10s\n", "path", "events", "events/s", "CPU us/event", "wall s");

  {
    testing::TempDir dir;
    rocksdb::Options options;
    options.create_if_missing = true;
    options.compression = rocksdb::kLZ4Compression;
    options.write_buffer_size = 64 << 20;
    options.max_background_jobs = 2;
    rocksdb::DB* raw = nullptr;
    if (!rocksdb::DB::Open(options, dir.Sub("raw"), &raw).ok()) return 1;
    std::unique_ptr<rocksdb::DB> db(raw);
    std::vector<std::string> values;
    v1::Event pb;
    for (const Event& e : events) {
      ToProto(e, &pb);
      values.push_back(pb.SerializeAsString());
    }
    const double cpu0 = bench::SelfCpuSeconds(), t0 = bench::NowSeconds();
    uint64_t seq = 1;
    for (int64_t done = 0; done < total; done += batch) {
      rocksdb::WriteBatch wb;
      for (int64_t i = 0; i < batch; ++i) {
        std::string key = "e/bench-0/";
        event_keys::AppendBe64(&key, seq++);
        wb.Put(key, values[static_cast<size_t>(i)]);
      }
      if (!db->Write(rocksdb::WriteOptions(), &wb).ok()) return 1;
    }
    if (!db->Flush(rocksdb::FlushOptions()).ok()) return 1;
    Report("raw", total, bench::NowSeconds() - t0, bench::SelfCpuSeconds() - cpu0);
  }
  for (const bool encoded : {true, false}) {
    testing::TempDir dir;
    auto store = RocksDbStore::Open({.path = dir.Sub("store")});
    if (!store.ok()) return 1;
    // Every batch's events with their times, and (for the store row) their encodings as a
    // sensor sends them, made before the clock starts: encoding is the sensor's cost.
    std::vector<std::vector<Event>> batches;
    std::vector<std::vector<std::string>> bytes;
    v1::Event pb;
    for (int64_t seq = 1; seq <= total; seq += batch) {
      batches.push_back(events);
      bytes.emplace_back();
      for (int64_t i = 0; i < batch; ++i) {
        Event& e = batches.back()[static_cast<size_t>(i)];
        e.time_ns = testing::kBaseTimeNs + (seq - 1 + i) * 1'000'000;
        if (encoded) {
          ToProto(e, &pb);
          bytes.back().push_back(pb.SerializeAsString());
        }
      }
    }
    std::vector<std::string_view> views;
    const double cpu0 = bench::SelfCpuSeconds(), t0 = bench::NowSeconds();
    for (size_t b = 0; b < batches.size(); ++b) {
      views.assign(bytes[b].begin(), bytes[b].end());
      const auto r =
          (*store)->AppendBatch("bench-0", 1 + b * static_cast<uint64_t>(batch), batches[b], views);
      if (!r.ok()) return 1;
    }
    if (!(*store)->db()->Flush(rocksdb::FlushOptions(), (*store)->column_family("events")).ok()) {
      return 1;
    }
    Report(encoded ? "store" : "encode", total, bench::NowSeconds() - t0,
           bench::SelfCpuSeconds() - cpu0);
  }
  {
    // Requests as a sensor sends them, encoded before the clock starts.
    std::vector<std::string> requests;
    for (int64_t seq = 1; seq <= total; seq += batch) {
      std::vector<Event> timed = events;
      for (int64_t i = 0; i < batch; ++i) {
        timed[static_cast<size_t>(i)].time_ns = testing::kBaseTimeNs + (seq - 1 + i) * 1'000'000;
      }
      requests.push_back(
          testing::BatchRequest("bench-0", static_cast<uint64_t>(seq), timed).SerializeAsString());
    }
    v1::IngestRequest request;  // reused, as the ingest stream reuses its own
    std::vector<std::string_view> encoded;
    const double cpu0 = bench::SelfCpuSeconds(), t0 = bench::NowSeconds();
    for (const std::string& bytes : requests) {
      if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return 1;
      const auto validated = ValidateBatch(request.batch(), "bench-0", kDefaultMaxBatchEvents);
      if (!validated.ok() || !FindEventEncodings(bytes, &encoded) ||
          encoded.size() != validated->events.size()) {
        return 1;
      }
    }
    Report("decode", total, bench::NowSeconds() - t0, bench::SelfCpuSeconds() - cpu0);
  }
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Main(argc, argv); }
