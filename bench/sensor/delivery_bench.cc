// delivery_bench: what the sensor's delivery path costs.
//
//   delivery_bench [--events N] [--dir DIR]
//
// 1. Spool append throughput (events/s, MB/s) under each fdatasync policy: none, every
//    100 ms from a background thread (the DeliveryClient default), every 512 events (one
//    batch), and every event.
// 2. End to end: DeliveryClient -> gRPC on 127.0.0.1 -> an in-process Ingest server that
//    acknowledges every batch, batch_max_events 512. Events/s from the first Submit to the
//    last acknowledgement.
// Events are realistic exec events (~200 bytes serialized). DIR defaults to /tmp; point it
// at the disk the sensor will spool to for meaningful fdatasync figures.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "common/log.h"
#include "model/event_proto.h"
#include "sensor/delivery/delivery_client.h"
#include "sensor/delivery/spool.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline::delivery {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

Event BenchEvent(uint64_t i) {
  Event e;
  e.time_ns = 1'700'000'000'000'000'000LL + static_cast<int64_t>(i);
  e.host = "bench-host";
  e.host_id = "0123456789abcdef0123456789abcdef";
  e.process.pid = static_cast<uint32_t>(i);
  e.process.tgid = static_cast<uint32_t>(i);
  e.process.ppid = 1;
  e.process.uid = 1000;
  e.process.comm = "bash";
  e.process.exe = "/usr/bin/bash";
  e.process.user = "alice";
  ExecEvent x;
  x.filename = "/usr/bin/git";
  x.argv = {"git", "commit", "-m", "message number " + std::to_string(i)};
  x.parent_comm = "bash";
  e.body = x;
  return e;
}

std::string MakeDir(const std::string& base, const std::string& name) {
  std::string dir = base + "/tripline-bench-" + name + "-" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

enum class SyncPolicy { kNone, kEvery100ms, kEveryBatch, kEveryEvent };

void BenchSpool(const std::string& base, SyncPolicy policy, const char* name, uint64_t n) {
  v1::Event pb;
  ToProto(BenchEvent(1), &pb);
  const std::string payload = pb.SerializeAsString();
  const std::string dir = MakeDir(base, "spool");
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = uint64_t{1} << 30;  // large enough that nothing is evicted
  auto spool = Spool::Open(o);
  if (!spool.ok()) {
    std::fprintf(stderr, "open: %s\n", spool.status().ToString().c_str());
    std::exit(1);
  }
  std::atomic<bool> done{false};
  std::thread syncer;
  if (policy == SyncPolicy::kEvery100ms) {
    syncer = std::thread([&] {
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        (void)(*spool)->Sync();
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    auto r = (*spool)->Append(EventKind::kExec, payload);
    if (!r.ok() || !r->stored) std::abort();
    if (policy == SyncPolicy::kEveryEvent ||
        (policy == SyncPolicy::kEveryBatch && i % 512 == 511)) {
      (void)(*spool)->Sync();
    }
  }
  (void)(*spool)->Sync();
  const double secs = Seconds(start);
  done = true;
  if (syncer.joinable()) syncer.join();
  const double bytes =
      static_cast<double>(n) * static_cast<double>(payload.size() + kRecordHeaderSize);
  std::printf(
      "spool append, fdatasync %-16s %8llu events  %10.0f events/s  %7.2f MB/s  (%zu-byte "
      "events)\n",
      name, static_cast<unsigned long long>(n), static_cast<double>(n) / secs, bytes / secs / 1e6,
      payload.size());
  spool->reset();
  fs::remove_all(dir);
}

class AckingService final : public v1::Ingest::Service {
 public:
  grpc::Status Stream(grpc::ServerContext*,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override {
    v1::IngestRequest req;
    v1::IngestAck ack;
    if (!stream->Read(&req)) return grpc::Status::OK;
    ack.set_durable_seq(durable_.load());
    stream->Write(ack);
    while (stream->Read(&req)) {
      const auto& b = req.batch();
      // Decode like the aggregator's service edge would, so the figure includes it.
      for (const auto& e : b.events()) {
        if (!FromProto(e).ok()) std::abort();
      }
      durable_ = b.first_seq() + b.events_size() - 1;
      ack.set_durable_seq(durable_.load());
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

 private:
  std::atomic<uint64_t> durable_{0};
};

void BenchEndToEnd(const std::string& base, uint64_t n) {
  AckingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  const std::string dir = MakeDir(base, "e2e");
  DeliveryOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.spool.dir = dir;
  o.spool.max_bytes = uint64_t{1} << 30;
  o.batch_max_events = 512;
  auto client = DeliveryClient::Create(o, SystemClock::Get());
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<Event> events;
  events.reserve(1024);
  for (uint64_t i = 0; i < 1024; ++i) events.push_back(BenchEvent(i));
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    if (!(*client)->Submit(events[i % events.size()]).ok()) std::abort();
  }
  const double submit_secs = Seconds(start);
  Status flushed = (*client)->Flush(SystemClock::Get().MonotonicNs() + 120 * kNanosPerSecond);
  const double secs = Seconds(start);
  DeliveryStats s = (*client)->Stats();
  std::printf(
      "end to end, batch 512:  %llu events  %10.0f events/s delivered+acked  "
      "(Submit alone %.0f events/s; %llu batches; flush %s)\n",
      static_cast<unsigned long long>(n), static_cast<double>(n) / secs,
      static_cast<double>(n) / submit_secs, static_cast<unsigned long long>(s.batches_sent),
      flushed.ToString().c_str());
  (*client)->Stop();
  server->Shutdown();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tripline::delivery

int main(int argc, char** argv) {
  uint64_t n = 200000;
  std::string base = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--events")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--dir")
      base = argv[i + 1];
  }
  tripline::SetLogLevel(tripline::LogLevel::kWarning);
  using tripline::delivery::SyncPolicy;
  tripline::delivery::BenchSpool(base, SyncPolicy::kNone, "never", n);
  tripline::delivery::BenchSpool(base, SyncPolicy::kEvery100ms, "every 100 ms", n);
  tripline::delivery::BenchSpool(base, SyncPolicy::kEveryBatch, "every 512 ev", n);
  tripline::delivery::BenchSpool(base, SyncPolicy::kEveryEvent, "every event", n / 20);
  tripline::delivery::BenchEndToEnd(base, n);
  return 0;
}
