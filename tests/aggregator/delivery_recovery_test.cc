// The real sensor DeliveryClient against the real tripline-aggregator binary: the aggregator
// is SIGKILLed while events flow, or stopped while the sensor restarts, and comes back on the
// same data dir and port. Every submitted event must be stored exactly once, under the seq it
// was given, as the query API reports it.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "sensor/delivery/delivery_client.h"
#include "sensor/delivery/spool.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/support/exactly_once.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

using delivery::DeliveryClient;
using delivery::DeliveryOptions;
using delivery::DeliveryStats;
using testing::BinPath;
using testing::Child;
using testing::ReadWholeFile;
using testing::TempDir;

constexpr const char* kListening = "listening on ";

int64_t NowNs() { return SystemClock::Get().MonotonicNs(); }
int64_t In(int64_t seconds) { return NowNs() + seconds * kNanosPerSecond; }

// Polls pred() every millisecond until it holds or `seconds` pass.
bool WaitFor(const std::function<bool()>& pred, int64_t seconds) {
  const int64_t deadline = In(seconds);
  while (NowNs() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

// The aggregator binary on one data dir; Start() may be called again after the process
// ended, on the port the first start was given.
class AggregatorProcess {
 public:
  explicit AggregatorProcess(const TempDir& dir) : dir_(dir) {}

  // Starts on `listen` and waits for its "listening on" line. A port still held by the
  // previous process (or anyone) makes the binary exit 1: retried until 15 s have passed.
  bool Start(const std::string& listen) {
    const int64_t deadline = In(15);
    while (true) {
      const std::string stderr_path = dir_.Sub("aggregator." + std::to_string(starts_++) + ".err");
      last_stderr_path_ = stderr_path;
      std::vector<std::string> argv = {BinPath("tripline-aggregator"), "--listen", listen,
                                       "--data-dir", dir_.Sub("data")};
      if (!failpoints_.empty()) {
        argv.insert(argv.begin(), {"/usr/bin/env", "TRIPLINE_FAILPOINTS=" + failpoints_});
      }
      child_ = std::make_unique<Child>(argv, stderr_path);
      const auto line = child_->ReadLine(30000);
      if (line && line->rfind(kListening, 0) == 0) {
        address_ = line->substr(strlen(kListening));
        return true;
      }
      child_->Signal(SIGKILL);
      child_->Wait(10000);
      if (NowNs() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // The same port as the first start.
  bool Restart() { return Start(address_); }
  // TRIPLINE_FAILPOINTS for the starts that follow ("" for none).
  void SetFailpoints(std::string spec) { failpoints_ = std::move(spec); }

  const std::string& address() const { return address_; }
  Child& child() { return *child_; }
  std::string Stderr() const { return ReadWholeFile(last_stderr_path_); }

 private:
  const TempDir& dir_;
  int starts_ = 0;
  std::string last_stderr_path_;
  std::unique_ptr<Child> child_;
  std::string address_;
  std::string failpoints_;
};

std::vector<Event> MakeEvents(size_t n) { return testing::DistinctEvents(n); }

DeliveryOptions Options(const std::string& target, const std::string& spool_dir) {
  DeliveryOptions o;
  o.target = target;
  o.spool.dir = spool_dir;
  o.host = "host0";
  o.host_id = "id-host0";
  o.version = "delivery-recovery-test";
  o.batch_max_events = 256;
  o.batch_max_delay_ms = 10;
  // Quick to come back once the aggregator is up again, also on a loaded machine.
  o.backoff_initial_ms = 20;
  o.backoff_max_ms = 300;
  return o;
}

std::unique_ptr<DeliveryClient> MakeClient(const DeliveryOptions& o) {
  auto c = DeliveryClient::Create(o, SystemClock::Get());
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// Every stored event through Query.ListEvents, page by page: sensor id -> seq -> events
// stored under it (more than one is a duplicate).
using Stored = std::map<std::string, std::map<uint64_t, std::vector<v1::Event>>>;
Stored ListAllEvents(const std::string& address) {
  auto stub = v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  Stored out;
  v1::ListEventsRequest request;
  request.set_limit(10000);
  for (int page = 0; page < 1000; ++page) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListEventsResponse response;
    const grpc::Status s = stub->ListEvents(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    for (const auto& e : response.events())
      out[e.sensor_id()][e.event().seq()].push_back(e.event());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return out;
}

// The store holds exactly events[0..n) for `sensor`, event i once under seq i + 1, and
// nothing from any other sensor.
void ExpectExactlyOnce(const Stored& stored, const std::string& sensor,
                       const std::vector<Event>& events) {
  EXPECT_EQ(stored.size(), 1u) << "events from an unexpected sensor";
  const auto it = stored.find(sensor);
  ASSERT_NE(it, stored.end()) << "nothing stored for " << sensor;
  const auto& by_seq = it->second;
  size_t duplicates = 0, missing = 0, mismatched = 0, total = 0;
  for (const auto& [seq, copies] : by_seq) {
    total += copies.size();
    if (copies.size() > 1) {
      ++duplicates;
      ADD_FAILURE() << "seq " << seq << " stored " << copies.size() << " times";
    }
    if (seq == 0 || seq > events.size()) {
      ADD_FAILURE() << "seq " << seq << " was never submitted";
      continue;
    }
    const Event& want = events[seq - 1];
    const v1::Event& got = copies.front();
    if (got.time_ns() != want.time_ns || got.host() != want.host) {
      if (++mismatched <= 5) ADD_FAILURE() << "seq " << seq << " holds another event";
    }
  }
  for (uint64_t seq = 1; seq <= events.size(); ++seq) {
    if (!by_seq.contains(seq) && ++missing <= 5) ADD_FAILURE() << "seq " << seq << " missing";
  }
  EXPECT_EQ(total, events.size());
  EXPECT_EQ(by_seq.size(), events.size());
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(mismatched, 0u);
}

double Seconds(int64_t since_ns) { return static_cast<double>(NowNs() - since_ns) / 1e9; }

TEST(DeliveryRecoveryTest, AggregatorKilledMidStream) {
  const int64_t start_ns = NowNs();
  TempDir dir;
  constexpr size_t kN = 20000;
  const std::vector<Event> events = MakeEvents(kN);

  AggregatorProcess agg(dir);
  ASSERT_TRUE(agg.Start("127.0.0.1:0")) << agg.Stderr();
  auto client = MakeClient(Options(agg.address(), dir.Sub("spool")));
  ASSERT_NE(client, nullptr);

  // The sensor's event loop: submits as fast as delivery keeps up (at most kWindow events
  // unacknowledged) until the kill, then the rest straight into the spool. It never gets
  // past half before the kill, so the kill always lands mid-stream.
  constexpr uint64_t kWindow = 2000;
  std::atomic<bool> killed{false};
  std::atomic<bool> submit_failed{false};
  std::thread submitter([&] {
    for (size_t i = 0; i < kN; ++i) {
      while (!killed.load() && (i >= kN / 2 || i >= client->Stats().acked + kWindow)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (!client->Submit(events[i]).ok()) {
        submit_failed = true;
        return;
      }
    }
  });

  // Joined on every way out of the test (an ASSERT below returns early); it never waits
  // once `killed` is set, which happens before any of them.
  struct Joiner {
    std::thread& thread;
    ~Joiner() {
      if (thread.joinable()) thread.join();
    }
  } joiner{submitter};

  const bool flowing = WaitFor([&] { return client->Stats().acked >= kN / 4; }, 60);
  agg.child().Signal(SIGKILL);
  killed = true;
  const DeliveryStats at_kill = client->Stats();
  EXPECT_TRUE(flowing) << "acked only " << at_kill.acked << ": " << at_kill.last_error;
  EXPECT_EQ(agg.child().Wait(10000), std::optional<int>(128 + SIGKILL));
  EXPECT_LT(at_kill.acked, kN);

  ASSERT_TRUE(agg.Restart()) << agg.Stderr();
  submitter.join();
  ASSERT_FALSE(submit_failed.load());
  const int64_t flush_start = NowNs();
  const Status flushed = client->Flush(In(60));
  const DeliveryStats s = client->Stats();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString() << "; last error: " << s.last_error;
  client->Stop();

  EXPECT_EQ(s.submitted, kN);
  EXPECT_EQ(s.spooled, kN);
  EXPECT_EQ(s.durable_seq, kN);
  EXPECT_GE(s.reconnects, 1u);
  EXPECT_EQ(s.spool_drops, 0u);
  EXPECT_EQ(s.spool_write_errors, 0u);
  EXPECT_EQ(s.rejected_events, 0u);

  ExpectExactlyOnce(ListAllEvents(agg.address()), client->sensor_id(), events);

  agg.child().Signal(SIGTERM);
  EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
  std::cerr << "[ info ] acked at kill " << at_kill.acked << "/" << kN << ", reconnects "
            << s.reconnects << ", resent " << s.resent_events << ", flush " << Seconds(flush_start)
            << " s, total " << Seconds(start_ns) << " s\n";
}

TEST(DeliveryRecoveryTest, SensorRestartedWhileAggregatorDown) {
  const int64_t start_ns = NowNs();
  TempDir dir;
  constexpr size_t kN1 = 3000, kN2 = 2000, kN3 = 3000;
  const std::vector<Event> events = MakeEvents(kN1 + kN2 + kN3);
  const std::string spool = dir.Sub("spool");

  AggregatorProcess agg(dir);
  ASSERT_TRUE(agg.Start("127.0.0.1:0")) << agg.Stderr();

  std::string sensor_id;
  {
    auto a = MakeClient(Options(agg.address(), spool));
    ASSERT_NE(a, nullptr);
    sensor_id = a->sensor_id();
    for (size_t i = 0; i < kN1; ++i) ASSERT_TRUE(a->Submit(events[i]).ok());
    const Status flushed = a->Flush(In(60));
    ASSERT_TRUE(flushed.ok()) << flushed.ToString() << "; " << a->Stats().last_error;
    EXPECT_EQ(a->Stats().durable_seq, kN1);

    agg.child().Signal(SIGTERM);
    ASSERT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();

    // With the aggregator down these only reach the spool.
    for (size_t i = kN1; i < kN1 + kN2; ++i) ASSERT_TRUE(a->Submit(events[i]).ok());
    const DeliveryStats s = a->Stats();
    EXPECT_EQ(s.spooled, kN1 + kN2);
    EXPECT_EQ(s.durable_seq, kN1);
    EXPECT_EQ(s.spool_drops, 0u);
    a->Stop();
  }  // the sensor process ends

  auto b = MakeClient(Options(agg.address(), spool));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->sensor_id(), sensor_id) << "the sensor id is kept in the spool dir";
  EXPECT_EQ(b->spool_recovery().records, kN2);
  EXPECT_TRUE(b->spool_recovery().clean_shutdown);
  for (size_t i = kN1 + kN2; i < events.size(); ++i) ASSERT_TRUE(b->Submit(events[i]).ok());

  ASSERT_TRUE(agg.Restart()) << agg.Stderr();
  const Status flushed = b->Flush(In(60));
  const DeliveryStats s = b->Stats();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString() << "; last error: " << s.last_error;
  b->Stop();
  EXPECT_EQ(s.submitted, kN3);
  EXPECT_EQ(s.durable_seq, events.size());
  EXPECT_EQ(s.spool_drops, 0u);
  EXPECT_EQ(s.spool_write_errors, 0u);
  EXPECT_EQ(s.rejected_events, 0u);

  ExpectExactlyOnce(ListAllEvents(agg.address()), sensor_id, events);

  agg.child().Signal(SIGTERM);
  EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
  std::cerr << "[ info ] " << kN1 << "+" << kN2 << "+" << kN3 << " events, total "
            << Seconds(start_ns) << " s\n";
}

// --- Crash windows forced with failpoints (common/failpoint.h) ---
//
// The sensor is tests/aggregator/delivery_sensor_main.cc, the real DeliveryClient in a
// process of its own, submitting testing::DistinctEvent(i) for a range of i. A failpoint
// SIGKILLs the aggregator or the sensor at a named point; the process is started again on
// the same data (spool); afterwards every event must be stored exactly once.

// Every event of DistinctEvents(n) stored exactly once (recognised by its time, since a
// sensor restarted after a crash skips sequence numbers), no seq stored twice, and all from
// one sensor.
void ExpectEachEventOnce(const Stored& stored, size_t n) {
  ASSERT_EQ(stored.size(), 1u) << "events from more than one sensor id";
  std::vector<testing::SensorSeq> got;
  size_t repeated_seqs = 0, unknown = 0;
  for (const auto& [seq, copies] : stored.begin()->second) {
    if (copies.size() > 1 && ++repeated_seqs <= 5) {
      ADD_FAILURE() << "seq " << seq << " stored " << copies.size() << " times";
    }
    for (const v1::Event& e : copies) {
      const std::optional<size_t> i = testing::IndexOfDistinct(e.time_ns());
      if (!i || *i >= n) {
        ++unknown;
        continue;
      }
      got.emplace_back("event", *i);
    }
  }
  EXPECT_EQ(repeated_seqs, 0u);
  EXPECT_EQ(unknown, 0u) << "stored events that were never submitted";
  EXPECT_TRUE(testing::StoredExactlyOnce(got, testing::SeqRange("event", 0, n - 1)));
}

class CrashWindowTest : public ::testing::Test {
 protected:
  // Starts the sensor process on events [from, to); `failpoints` as TRIPLINE_FAILPOINTS.
  std::unique_ptr<Child> StartSensor(const std::string& target, size_t from, size_t to,
                                     const std::string& failpoints = "",
                                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {BinPath("delivery_sensor"),
                                     "--target",
                                     target,
                                     "--spool",
                                     dir_.Sub("spool"),
                                     "--from",
                                     std::to_string(from),
                                     "--to",
                                     std::to_string(to)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!failpoints.empty()) {
      argv.insert(argv.begin(), {"/usr/bin/env", "TRIPLINE_FAILPOINTS=" + failpoints});
    }
    sensor_err_ = dir_.Sub("sensor." + std::to_string(sensor_starts_++) + ".err");
    return std::make_unique<Child>(argv, sensor_err_);
  }
  std::string SensorStderr() const { return ReadWholeFile(sensor_err_); }

  void StopAggregator(AggregatorProcess& agg) {
    agg.child().Signal(SIGTERM);
    EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
  }

  TempDir dir_;
  int sensor_starts_ = 0;
  std::string sensor_err_;
};

constexpr int kKilled = 128 + SIGKILL;

TEST_F(CrashWindowTest, AggregatorKilledAfterTheDurableWriteBeforeTheAck) {
  constexpr size_t kN = 3000;
  AggregatorProcess agg(dir_);
  // Dies with its 10th batch written to RocksDB and not acknowledged.
  agg.SetFailpoints("ingest.after-durable-write=kill@10");
  ASSERT_TRUE(agg.Start("127.0.0.1:0")) << agg.Stderr();
  std::unique_ptr<Child> sensor = StartSensor(agg.address(), 0, kN);
  EXPECT_EQ(agg.child().Wait(60000), std::optional<int>(kKilled)) << agg.Stderr();
  EXPECT_NE(agg.Stderr().find("failpoint ingest.after-durable-write: SIGKILL at hit 10"),
            std::string::npos)
      << agg.Stderr();

  agg.SetFailpoints("");
  ASSERT_TRUE(agg.Restart()) << agg.Stderr();
  EXPECT_EQ(sensor->Wait(90000), std::optional<int>(0)) << SensorStderr();
  ExpectEachEventOnce(ListAllEvents(agg.address()), kN);
  StopAggregator(agg);
}

TEST_F(CrashWindowTest, SensorKilledAfterSpoolingBeforeSending) {
  constexpr size_t kN = 3000, kKillAt = 1500;
  AggregatorProcess agg(dir_);
  ASSERT_TRUE(agg.Start("127.0.0.1:0")) << agg.Stderr();
  // Events up to 999 are acknowledged, 1000 to 1499 spooled; event 1499 is in the spool and
  // its Submit never returns.
  std::unique_ptr<Child> first =
      StartSensor(agg.address(), 0, kN, "delivery.after-spool=kill@" + std::to_string(kKillAt),
                  {"--flush-every", "500"});
  EXPECT_EQ(first->Wait(60000), std::optional<int>(kKilled)) << SensorStderr();
  EXPECT_NE(SensorStderr().find("failpoint delivery.after-spool: SIGKILL at hit 1500"),
            std::string::npos)
      << SensorStderr();

  // Restarted on the same spool, it sends what the first run spooled and the rest.
  std::unique_ptr<Child> second = StartSensor(agg.address(), kKillAt, kN);
  const std::optional<std::string> report = second->ReadLine(90000);
  EXPECT_EQ(second->Wait(90000), std::optional<int>(0)) << SensorStderr();
  std::cerr << "[ info ] restarted sensor: " << report.value_or("(nothing)") << "\n";
  ExpectEachEventOnce(ListAllEvents(agg.address()), kN);
  StopAggregator(agg);
}

TEST_F(CrashWindowTest, SensorKilledAfterAnAckBeforeRecordingIt) {
  constexpr size_t kSpooled = 2000, kN = 3000;
  // Run 0 spools events while no aggregator listens (port 1), and stops cleanly; so the
  // run that is killed has a known backlog and submits nothing itself.
  std::unique_ptr<Child> spooler = StartSensor("127.0.0.1:1", 0, kSpooled, "", {"--no-flush"});
  ASSERT_EQ(spooler->Wait(30000), std::optional<int>(0)) << SensorStderr();

  AggregatorProcess agg(dir_);
  ASSERT_TRUE(agg.Start("127.0.0.1:0")) << agg.Stderr();
  // Killed on its 3rd batch acknowledgement, before the spool records it.
  std::unique_ptr<Child> first =
      StartSensor(agg.address(), kSpooled, kSpooled, "delivery.after-ack-received=kill@3");
  EXPECT_EQ(first->Wait(60000), std::optional<int>(kKilled)) << SensorStderr();
  EXPECT_NE(SensorStderr().find("failpoint delivery.after-ack-received: SIGKILL at hit 3"),
            std::string::npos)
      << SensorStderr();

  std::unique_ptr<Child> second = StartSensor(agg.address(), kSpooled, kN);
  const std::optional<std::string> report = second->ReadLine(90000);
  EXPECT_EQ(second->Wait(90000), std::optional<int>(0)) << SensorStderr();
  std::cerr << "[ info ] restarted sensor: " << report.value_or("(nothing)") << "\n";
  ExpectEachEventOnce(ListAllEvents(agg.address()), kN);
  StopAggregator(agg);
}

// A peer on the aggregator's address that claims a durable seq of 2^64-2 for every sensor:
// in its reply to the hello, or in its ack of the first batch (a forged aggregator, a man in
// the middle of clear text, a confused store). It stores nothing.
constexpr uint64_t kClaimedSeq = ~uint64_t{0} - 1;

class LyingIngest final : public v1::Ingest::Service {
 public:
  explicit LyingIngest(bool in_hello) : in_hello_(in_hello) {}

  grpc::Status Stream(grpc::ServerContext*,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override {
    v1::IngestRequest request;
    if (!stream->Read(&request) || !request.has_hello()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello first");
    }
    ++hellos;
    v1::IngestAck ack;
    ack.set_durable_seq(in_hello_ ? kClaimedSeq : 0);
    if (!stream->Write(ack)) return grpc::Status::OK;
    while (stream->Read(&request)) {
      if (!request.has_batch()) continue;
      ack.set_durable_seq(kClaimedSeq);
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

  std::atomic<int> hellos{0};

 private:
  const bool in_hello_;
};

// Every record in the spool directory, read by a spool of its own (the client stopped).
std::vector<uint64_t> SpooledSeqs(const std::string& dir) {
  delivery::SpoolOptions options;
  options.dir = dir;
  auto spool = delivery::Spool::Open(options);
  EXPECT_TRUE(spool.ok()) << spool.status().ToString();
  std::vector<uint64_t> seqs;
  if (!spool.ok()) return seqs;
  std::vector<delivery::SpoolRecord> records;
  for (uint64_t after = 0;;) {
    records.clear();
    const Status read = (*spool)->Read(after, 1000, &records);
    EXPECT_TRUE(read.ok()) << read.ToString();
    if (!read.ok() || records.empty()) break;
    for (const auto& r : records) seqs.push_back(r.seq);
    after = records.back().seq;
  }
  EXPECT_TRUE((*spool)->Close().ok());
  return seqs;
}

// The lying peer may not empty the spool: the claim is counted as a protocol violation and
// refused on every reconnect, and when the real aggregator takes the address over, every
// event (those spooled meanwhile and those submitted after) is stored exactly once under
// the seq it was given.
void LyingAggregatorLosesNothing(bool in_hello) {
  TempDir dir;
  constexpr size_t kSpooled = 600, kAfter = 100;
  const std::vector<Event> events = MakeEvents(kSpooled + kAfter);
  const std::string spool = dir.Sub("spool");

  LyingIngest liar(in_hello);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&liar);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);

  DeliveryOptions options = Options(address, spool);
  options.spool.segment_bytes = 4096;  // many sealed segments, each one the liar could trim
  std::string sensor_id;
  {
    auto client = MakeClient(options);
    ASSERT_NE(client, nullptr);
    sensor_id = client->sensor_id();
    for (size_t i = 0; i < kSpooled; ++i) ASSERT_TRUE(client->Submit(events[i]).ok());
    // Refused more than once: the sensor retries, and does not give in the second time.
    EXPECT_TRUE(WaitFor([&] { return client->Stats().protocol_violations >= 3; }, 30))
        << client->Stats().last_error;
    const DeliveryStats s = client->Stats();
    client->Stop();
    EXPECT_GE(liar.hellos.load(), 3);
    EXPECT_EQ(s.acked, 0u);
    EXPECT_LT(s.durable_seq, kClaimedSeq);
    EXPECT_EQ(s.next_seq, kSpooled + 1) << "the numbering must not jump to the claim";
    EXPECT_EQ(s.spool_drops, 0u);
    EXPECT_NE(s.last_error.find(std::to_string(kClaimedSeq)), std::string::npos) << s.last_error;
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server.reset();

  std::vector<uint64_t> expected(kSpooled);
  for (size_t i = 0; i < kSpooled; ++i) expected[i] = i + 1;
  EXPECT_EQ(SpooledSeqs(spool), expected) << "the spool must keep every unacknowledged event";

  AggregatorProcess agg(dir);
  ASSERT_TRUE(agg.Start(address)) << agg.Stderr();
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->sensor_id(), sensor_id);
  for (size_t i = kSpooled; i < events.size(); ++i) ASSERT_TRUE(client->Submit(events[i]).ok());
  const Status flushed = client->Flush(In(60));
  const DeliveryStats s = client->Stats();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString() << "; last error: " << s.last_error;
  client->Stop();
  EXPECT_EQ(s.durable_seq, events.size());
  EXPECT_EQ(s.protocol_violations, 0u);

  std::vector<testing::SensorSeq> stored;
  for (const auto& [sensor, by_seq] : ListAllEvents(agg.address())) {
    for (const auto& [seq, copies] : by_seq) {
      for (size_t i = 0; i < copies.size(); ++i) stored.emplace_back(sensor, seq);
    }
  }
  EXPECT_TRUE(testing::StoredExactlyOnce(stored, testing::SeqRange(sensor_id, 1, events.size())));

  agg.child().Signal(SIGTERM);
  EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
}

TEST(DeliveryRecoveryTest, HelloClaimingAHugeDurableSeqEmptiesNothing) {
  LyingAggregatorLosesNothing(/*in_hello=*/true);
}

TEST(DeliveryRecoveryTest, AckBeyondWhatWasSentEmptiesNothing) {
  LyingAggregatorLosesNothing(/*in_hello=*/false);
}

}  // namespace
}  // namespace tripline
