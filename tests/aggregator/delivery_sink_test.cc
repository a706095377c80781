// The sensor's `--output grpc` sink (sensor/delivery_sink.*), built by MakeDeliverySink from
// the sensor's settings as tripline-sensor builds it, against the real aggregator binary on
// 127.0.0.1:0: what it emits is stored exactly once per (sensor, seq), Close() waits for the
// acknowledgements, what an unreachable aggregator leaves behind is delivered by the next
// start, every event the spool could not keep is in dropped(), an event too large for the
// spool does not stop the sensor, and a closed sink refuses events. No privileges needed.
#include "sensor/delivery_sink.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/event_proto.h"
#include "sensor/config.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/support/exactly_once.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

using testing::BinPath;
using testing::Child;
using testing::ReadWholeFile;
using testing::SensorSeq;
using testing::StoredExactlyOnce;
using testing::TempDir;

constexpr const char* kListening = "listening on ";
constexpr const char* kHost = "sinkhost";
const sensor::HostIdentity kIdentity{kHost, "00112233445566778899aabbccddeeff"};

class Aggregator {
 public:
  Aggregator(const TempDir& dir, const std::string& name)
      : stderr_path_(dir.Sub(name + ".stderr")) {
    child_ = std::make_unique<Child>(
        std::vector<std::string>{BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0",
                                 "--data-dir", dir.Sub(name + "-data")},
        stderr_path_);
    const auto line = child_->ReadLine(20000);
    if (line && line->rfind(kListening, 0) == 0) address_ = line->substr(strlen(kListening));
  }
  const std::string& address() const { return address_; }
  std::string Stderr() const { return ReadWholeFile(stderr_path_); }

 private:
  std::string stderr_path_;
  std::unique_ptr<Child> child_;
  std::string address_;
};

// (sensor, seq) of every event the aggregator holds, through the query API, all pages.
std::vector<SensorSeq> StoredKeys(const std::string& address) {
  auto stub = v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<SensorSeq> out;
  std::string token;
  do {
    v1::ListEventsRequest req;
    req.set_limit(500);
    req.set_page_token(token);
    grpc::ClientContext ctx;
    v1::ListEventsResponse resp;
    grpc::Status s = stub->ListEvents(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    for (const auto& stored : resp.events())
      out.emplace_back(stored.sensor_id(), stored.event().seq());
    token = resp.next_page_token();
  } while (!token.empty());
  return out;
}

// The sink tripline-sensor would build for `--aggregator address --spool-dir spool`.
std::unique_ptr<sensor::EventSink> MakeSink(const std::string& address, const std::string& spool,
                                            uint64_t spool_max_bytes = 0) {
  sensor::SensorFlags flags;
  flags.aggregator = address;
  flags.spool_dir = spool;
  auto settings = sensor::ResolveSensorSettings(flags);
  EXPECT_TRUE(settings.ok()) << settings.status().ToString();
  if (!settings.ok()) return nullptr;
  if (spool_max_bytes != 0) settings->config.set_spool_max_bytes(spool_max_bytes);
  auto sink = sensor::MakeDeliverySink(*settings, kIdentity);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? std::move(*sink) : nullptr;
}

Event Exec(int i, size_t arg_bytes = 0) {
  Event e = testing::MakeExec(kHost, "alice", SystemClock::Get().NowNs() + i, "/usr/bin/id");
  if (arg_bytes > 0) e.As<ExecEvent>()->argv = {"/usr/bin/id", std::string(arg_bytes, 'a')};
  return e;
}

std::string SensorIdOf(const std::vector<SensorSeq>& keys) {
  return keys.empty() ? std::string() : keys.front().first;
}

TEST(DeliverySinkTest, EverythingEmittedIsStoredOnceAndCloseWaitsForTheAcks) {
  TempDir dir;
  Aggregator agg(dir, "agg");
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  auto sink = MakeSink(agg.address(), dir.Sub("spool"));
  ASSERT_NE(sink, nullptr);
  constexpr int kEvents = 300;
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(sink->Emit(Exec(i)).ok());
  ASSERT_TRUE(sink->Close(10000).ok());
  EXPECT_EQ(sink->dropped(), 0u);
  // Right after Close(): every event acknowledged is durable, so all of them are there.
  const std::vector<SensorSeq> stored = StoredKeys(agg.address());
  ASSERT_FALSE(stored.empty()) << agg.Stderr();
  std::set<SensorSeq> sent;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) sent.emplace(SensorIdOf(stored), seq);
  EXPECT_TRUE(StoredExactlyOnce(stored, sent));
}

TEST(DeliverySinkTest, ClosedSinkRefusesEvents) {
  TempDir dir;
  Aggregator agg(dir, "agg");
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  auto sink = MakeSink(agg.address(), dir.Sub("spool"));
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Emit(Exec(0)).ok());
  ASSERT_TRUE(sink->Close(10000).ok());
  // The daemon stops on this error rather than losing events silently.
  Status after = sink->Emit(Exec(1));
  EXPECT_EQ(after.code(), Status::Code::kAborted) << after.ToString();
}

TEST(DeliverySinkTest, WhatAnUnreachableAggregatorMissedIsDeliveredByTheNextStart) {
  TempDir dir;
  // A port nothing listens on: the aggregator's, before it starts.
  const std::string nowhere = "127.0.0.1:1";
  auto first = MakeSink(nowhere, dir.Sub("spool"));
  ASSERT_NE(first, nullptr);
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(first->Emit(Exec(i)).ok());
  const auto start = std::chrono::steady_clock::now();
  Status closed = first->Close(300);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(closed.code(), Status::Code::kDeadlineExceeded) << closed.ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(first->dropped(), 0u);
  first.reset();

  Aggregator agg(dir, "agg");
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  auto second = MakeSink(agg.address(), dir.Sub("spool"));
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->Close(10000).ok());
  const std::vector<SensorSeq> stored = StoredKeys(agg.address());
  std::set<SensorSeq> sent;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) sent.emplace(SensorIdOf(stored), seq);
  EXPECT_TRUE(StoredExactlyOnce(stored, sent)) << agg.Stderr();
}

// Produced = stored + dropped(): with a small spool and no aggregator, the events the spool
// could not keep are all counted, and an event larger than the spool is a counted drop, not
// an error that stops the sensor.
TEST(DeliverySinkTest, EveryEventTheSpoolCouldNotKeepIsCountedAsDropped) {
  TempDir dir;
  constexpr uint64_t kSpoolBytes = 64 * 1024;
  auto first = MakeSink("127.0.0.1:1", dir.Sub("spool"), kSpoolBytes);
  ASSERT_NE(first, nullptr);
  constexpr int kEvents = 400;  // about 0.5 KiB each: several times the spool
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(first->Emit(Exec(i, 400)).ok());
  EXPECT_TRUE(first->Emit(Exec(kEvents, 2 * kSpoolBytes)).ok());
  EXPECT_FALSE(first->Close(200).ok());
  const uint64_t dropped = first->dropped();
  EXPECT_GT(dropped, 1u);
  EXPECT_LT(dropped, static_cast<uint64_t>(kEvents));
  first.reset();

  Aggregator agg(dir, "agg");
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  auto second = MakeSink(agg.address(), dir.Sub("spool"), kSpoolBytes);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->Close(10000).ok());
  EXPECT_EQ(second->dropped(), 0u);
  const std::vector<SensorSeq> stored = StoredKeys(agg.address());
  const std::set<SensorSeq> distinct(stored.begin(), stored.end());
  EXPECT_EQ(distinct.size(), stored.size()) << "an event stored twice";
  EXPECT_EQ(stored.size() + dropped, static_cast<uint64_t>(kEvents + 1))
      << stored.size() << " stored, " << dropped << " dropped";
}

}  // namespace
}  // namespace tripline
