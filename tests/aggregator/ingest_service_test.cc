// Ingest over a real in-process gRPC server and a real RocksDB store, with a real client
// stream: delivery counts, reconnects, and hostile input.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "aggregator/ingest/ingest_validation.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/event_keys.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/clock.h"
#include "model/event_proto.h"
#include "tests/aggregator/test_support.h"

namespace tripline {
namespace {

using testing::IngestClient;
using testing::kBaseTimeNs;
using testing::MakeHealth;
using testing::SyntheticEvents;
using testing::TempDir;

class RecordingObserver final : public IngestObserver {
 public:
  void OnDurable(std::string_view sensor_id, std::vector<Event> events) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Event& e : events) seen_.emplace_back(std::string(sensor_id), e.seq);
  }
  std::vector<std::pair<std::string, uint64_t>> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, uint64_t>> seen_;
};

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  // The store records batch times by options.ingest.clock, like the service.
  void Start(AggregatorServerOptions options) {
    server_.reset();
    store_.reset();
    RocksDbStoreOptions store_options;
    store_options.path = dir_.Sub("db");
    store_options.clock = options.ingest.clock;
    auto store = RocksDbStore::Open(store_options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    options.listen = HostPort{"127.0.0.1", 0};
    auto server = AggregatorServer::Start(options, store_.get(), &observer_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_NE(server_->address().port, 0);
  }

  std::string target() const { return server_->address().ToString(); }
  uint64_t Stored() { return *store_->CountEvents({}); }

  // Sends `events` as batches of `batch` starting at first_seq; returns the last ack.
  uint64_t SendAll(IngestClient& client, const std::string& sensor, uint64_t first_seq,
                   const std::vector<Event>& events, size_t batch) {
    uint64_t durable = 0;
    for (size_t i = 0; i < events.size(); i += batch) {
      const size_t end = std::min(events.size(), i + batch);
      auto ack = client.Batch(sensor, first_seq + i, {events.begin() + i, events.begin() + end});
      EXPECT_TRUE(ack.has_value());
      if (!ack) return durable;
      EXPECT_EQ(ack->error(), "");
      durable = ack->durable_seq();
    }
    return durable;
  }

  TempDir dir_;
  RecordingObserver observer_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<AggregatorServer> server_;
};

TEST_F(IngestServiceTest, StoresExactlyTheEventsSentAndAcksEachBatch) {
  const auto events = SyntheticEvents(1000);
  IngestClient client(target());
  auto hello = client.Hello("sensor-a");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->durable_seq(), 0u);
  EXPECT_EQ(SendAll(client, "sensor-a", 1, events, 37), 1000u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 1000u);
  EXPECT_EQ(*store_->DurableSeq("sensor-a"), 1000u);
  const auto seen = observer_.seen();
  ASSERT_EQ(seen.size(), 1000u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].second, i + 1);
  const IngestCounters c = server_->ingest().counters();
  EXPECT_EQ(c.events, 1000u);
  EXPECT_EQ(c.batches, 28u);  // ceil(1000 / 37)
}

// The canonical encoding of an event with its seq cleared: equal for equal events.
std::string Canonical(Event e) {
  e.seq = 0;
  v1::Event pb;
  ToProto(e, &pb);
  return pb.SerializeAsString();
}

// Events are kept as the sensor encoded them. Encodings the aggregator would not produce
// itself (unknown fields inside an event, seq set or left 0) and requests it cannot take
// apart (an unknown top-level field: the store encodes those events itself) read back as
// the same events either way.
TEST_F(IngestServiceTest, StoresEventsAsEncodedAndReadsThemBackTheSame) {
  const auto events = SyntheticEvents(40);
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a").has_value());
  v1::IngestRequest plain =
      testing::BatchRequest("sensor-a", 1, {events.begin(), events.begin() + 20});
  for (int i = 0; i < plain.batch().events_size(); i += 2) {
    v1::Event* pb = plain.mutable_batch()->mutable_events(i);
    pb->set_seq(1 + static_cast<uint64_t>(i));
    // Field 99, varint 7: unknown to this build, kept in the stored bytes.
    ASSERT_TRUE(pb->MergeFromString(std::string("\x98\x06\x07", 3)));
  }
  auto ack = client.Send(plain);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->error(), "");
  v1::IngestRequest odd =
      testing::BatchRequest("sensor-a", 21, {events.begin() + 20, events.end()});
  ASSERT_TRUE(odd.MergeFromString(std::string("\x78\x01", 2)));  // top-level field 15, varint 1
  ack = client.Send(odd);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->error(), "");
  EXPECT_EQ(ack->durable_seq(), 40u);
  EXPECT_TRUE(client.Finish().ok());

  // The first batch's record holds the sensor's bytes, unknown field included.
  std::string record;
  ASSERT_TRUE(store_->db()
                  ->Get(rocksdb::ReadOptions(), store_->column_family("events"),
                        event_keys::BatchKey("sensor-a", 1), &record)
                  .ok());
  EXPECT_NE(record.find(std::string("\x98\x06\x07", 3)), std::string::npos);

  auto back = store_->ReadSensorEvents("sensor-a", 0, 100);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 40u);
  for (size_t i = 0; i < back->size(); ++i) {
    EXPECT_EQ((*back)[i].seq, i + 1);
    EXPECT_EQ(Canonical((*back)[i]), Canonical(events[i])) << "event " << i;
  }
  auto page = store_->QueryEvents({.user = events[3].process.user, .limit = 100});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_FALSE(page->events.empty());
  for (const StoredEvent& e : page->events) {
    EXPECT_EQ(Canonical(e.event), Canonical(events[e.event.seq - 1]));
  }
}

TEST(FindEventEncodingsTest, FindsEachEventsBytesInOrder) {
  const auto events = SyntheticEvents(5);
  const v1::IngestRequest request = testing::BatchRequest("s", 1, events);
  const std::string bytes = request.SerializeAsString();
  std::vector<std::string_view> found;
  ASSERT_TRUE(FindEventEncodings(bytes, &found));
  ASSERT_EQ(found.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(found[static_cast<size_t>(i)], request.batch().events(i).SerializeAsString());
  }

  // Two batch fields: the parser merges them, events in order; so does the scan.
  const std::string twice = bytes + testing::BatchRequest("s", 6, events).SerializeAsString();
  v1::IngestRequest merged;
  ASSERT_TRUE(merged.ParseFromString(twice));
  ASSERT_TRUE(FindEventEncodings(twice, &found));
  ASSERT_EQ(found.size(), static_cast<size_t>(merged.batch().events_size()));
  EXPECT_EQ(found.size(), 10u);
  EXPECT_EQ(found[7], merged.batch().events(7).SerializeAsString());
}

TEST(FindEventEncodingsTest, DeclinesWhatIsNotAPlainBatch) {
  std::vector<std::string_view> found;
  const std::string hello = testing::HelloRequest("s").SerializeAsString();
  EXPECT_FALSE(FindEventEncodings(hello, &found));
  const std::string batch = testing::BatchRequest("s", 1, SyntheticEvents(2)).SerializeAsString();
  EXPECT_FALSE(FindEventEncodings(batch + hello, &found));       // the oneof switches
  EXPECT_FALSE(FindEventEncodings(batch + "\x78\x01", &found));  // unknown top-level field
  EXPECT_FALSE(FindEventEncodings(batch.substr(0, batch.size() - 1), &found));  // truncated
  EXPECT_FALSE(FindEventEncodings(std::string("\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),
                                  &found));                          // a varint of eleven bytes
  EXPECT_FALSE(FindEventEncodings(std::string("\x13", 1), &found));  // a group
  EXPECT_TRUE(FindEventEncodings("", &found));                       // an empty request
  EXPECT_TRUE(found.empty());
}

TEST_F(IngestServiceTest, ResendAfterReconnectStoresNoDuplicates) {
  const auto events = SyntheticEvents(300);
  {
    IngestClient client(target());
    ASSERT_TRUE(client.Hello("sensor-a"));
    SendAll(client, "sensor-a", 1, {events.begin(), events.begin() + 200}, 50);
    // The sensor "crashes" without half-closing: the channel just goes away.
  }
  IngestClient again(target());
  auto hello = again.Hello("sensor-a");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->durable_seq(), 200u);
  // A sensor that lost its ack state resends everything from 1.
  EXPECT_EQ(SendAll(again, "sensor-a", 1, events, 64), 300u);
  EXPECT_TRUE(again.Finish().ok());
  EXPECT_EQ(Stored(), 300u);
  std::set<uint64_t> seqs;
  auto page = store_->QueryEvents({.limit = 1000});
  for (const auto& e : page->events) EXPECT_TRUE(seqs.insert(e.event.seq).second);
  EXPECT_EQ(seqs.size(), 300u);
  EXPECT_EQ(server_->ingest().counters().duplicates, 200u);
  EXPECT_EQ(observer_.seen().size(), 300u);  // the observer never sees a duplicate
}

TEST_F(IngestServiceTest, BatchBeforeHelloEndsTheStream) {
  IngestClient client(target());
  EXPECT_FALSE(client.Batch("sensor-a", 1, SyntheticEvents(3)).has_value());
  const grpc::Status s = client.Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("SensorHello"), std::string::npos);
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(IngestServiceTest, EmptyFirstMessageEndsTheStream) {
  IngestClient client(target());
  EXPECT_FALSE(client.Send(v1::IngestRequest()).has_value());
  EXPECT_EQ(client.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(IngestServiceTest, InvalidHellosEndTheStream) {
  for (const std::string& id :
       {std::string(), std::string(129, 'x'), std::string("has space"), std::string("tab\t"),
        std::string("nul\0id", 6), std::string("caf\xc3\xa9")}) {
    IngestClient client(target());
    EXPECT_FALSE(client.Hello(id).has_value()) << id;
    const grpc::Status s = client.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id;
    EXPECT_NE(s.error_message().find("sensor_id"), std::string::npos) << s.error_message();
  }
  IngestClient ok(target());
  EXPECT_TRUE(ok.Hello(std::string(128, 'x')).has_value());
}

TEST_F(IngestServiceTest, BatchOfAnotherSensorIsRejectedAndTheStreamGoesOn) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(10), 10);
  auto ack = client.Batch("sensor-b", 11, SyntheticEvents(5));
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->error().find("sensor_id"), std::string::npos);
  EXPECT_EQ(ack->rejected_first_seq(), 11u);
  EXPECT_EQ(ack->durable_seq(), 10u);
  // The stream is still usable.
  auto next = client.Batch("sensor-a", 11, SyntheticEvents(5));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->error(), "");
  EXPECT_EQ(next->durable_seq(), 15u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 15u);
  EXPECT_EQ(*store_->DurableSeq("sensor-b"), 0u);
}

TEST_F(IngestServiceTest, OneBadEventRejectsTheWholeBatch) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(4), 4);
  v1::IngestRequest req = testing::BatchRequest("sensor-a", 5, SyntheticEvents(6));
  req.mutable_batch()->mutable_events(3)->clear_body();
  auto ack = client.Send(req);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->error(), "event 3 (seq 8): event has no body");
  EXPECT_EQ(ack->rejected_first_seq(), 5u);
  EXPECT_EQ(ack->durable_seq(), 4u);
  EXPECT_EQ(Stored(), 4u);  // nothing of the bad batch, nothing lost before it
  EXPECT_EQ(server_->ingest().counters().rejected_requests, 1u);
}

TEST_F(IngestServiceTest, HostileFieldsAreRejectedWithTheirName) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  struct Case {
    std::function<void(v1::Event*)> spoil;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](v1::Event* e) { e->set_host(std::string(5000, 'h')); }, "host longer than"},
      {[](v1::Event* e) { e->clear_host(); }, "event has no host"},
      {[](v1::Event* e) { e->set_time_ns(-5); }, "time must be positive"},
      {[](v1::Event* e) {
         e->mutable_login()->set_outcome(static_cast<v1::LoginEvent::Outcome>(9));
       },
       "login.outcome"},
      {[](v1::Event* e) { e->mutable_login()->set_remote_port(70000); }, "port out of range"},
      {[](v1::Event* e) { e->set_seq(99); }, "carries seq 99"},
  };
  for (const auto& c : cases) {
    v1::IngestRequest req = testing::BatchRequest("sensor-a", 1, SyntheticEvents(1));
    c.spoil(req.mutable_batch()->mutable_events(0));
    auto ack = client.Send(req);
    ASSERT_TRUE(ack.has_value()) << c.expect;
    EXPECT_NE(ack->error().find(c.expect), std::string::npos) << ack->error();
    EXPECT_EQ(ack->rejected_first_seq(), 1u);
  }
  v1::IngestRequest zero_seq = testing::BatchRequest("sensor-a", 0, SyntheticEvents(1));
  zero_seq.mutable_batch()->mutable_events(0)->set_seq(0);
  auto ack = client.Send(zero_seq);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->error().find("first_seq"), std::string::npos);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 0u);
}

TEST_F(IngestServiceTest, InvalidUtf8InAStringFieldIsARejectedRequest) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(5), 5);
  // proto3 `string` fields must be UTF-8 and the C++ parser refuses the message. The
  // service parses requests itself, so this is one rejected request with a clear error,
  // not a stream torn down by the library.
  v1::IngestRequest req = testing::BatchRequest("sensor-a", 6, SyntheticEvents(2));
  req.mutable_batch()->mutable_events(1)->set_host("bad\xff\xfe");
  auto ack = client.Send(req);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->error().find("does not parse"), std::string::npos) << ack->error();
  EXPECT_EQ(ack->durable_seq(), 5u);
  // The stream goes on.
  EXPECT_EQ(SendAll(client, "sensor-a", 6, SyntheticEvents(2), 2), 7u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 7u);
}

TEST_F(IngestServiceTest, UnparseableFirstMessageEndsTheStream) {
  IngestClient client(target());
  v1::IngestRequest req = testing::HelloRequest("sensor-a");
  req.mutable_hello()->set_host("\xc3\x28");
  EXPECT_FALSE(client.Send(req).has_value());
  const grpc::Status s = client.Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("not an IngestRequest"), std::string::npos);
}

TEST_F(IngestServiceTest, OversizedBatchIsRejected) {
  AggregatorServerOptions options;
  options.ingest.max_batch_events = 10;
  Start(options);
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  auto ack = client.Batch("sensor-a", 1, SyntheticEvents(11));
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->error().find("more than 10"), std::string::npos) << ack->error();
  EXPECT_EQ(SendAll(client, "sensor-a", 1, SyntheticEvents(10), 10), 10u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 10u);
}

TEST_F(IngestServiceTest, OversizedMessageEndsTheStreamWithResourceExhausted) {
  AggregatorServerOptions options;
  options.max_receive_message_bytes = 64 << 10;
  Start(options);
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(10), 10);
  auto big = SyntheticEvents(40);
  for (auto& e : big) e.host_id = std::string(4000, 'x');  // ~160 KB message
  EXPECT_FALSE(client.Batch("sensor-a", 11, big).has_value());
  EXPECT_EQ(client.Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Stored(), 10u);
}

TEST_F(IngestServiceTest, RewindIsADuplicateAndAGapIsRecorded) {
  const auto events = SyntheticEvents(200);
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, {events.begin(), events.begin() + 100}, 100);
  // Rewind: 50..149 overlaps what is stored; only 101..149 are new.
  auto rewind = client.Batch("sensor-a", 50, {events.begin() + 49, events.begin() + 149});
  ASSERT_TRUE(rewind.has_value());
  EXPECT_EQ(rewind->error(), "");
  EXPECT_EQ(rewind->durable_seq(), 149u);
  // Gap: 160..200, so 150..159 are missing (the sensor's spool dropped them).
  auto gap = client.Batch("sensor-a", 160, {events.begin() + 159, events.end()});
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->error(), "");
  EXPECT_EQ(gap->durable_seq(), 200u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(Stored(), 190u);  // 100 + 49 + 41
  const IngestCounters c = server_->ingest().counters();
  EXPECT_EQ(c.duplicates, 51u);
  EXPECT_EQ(c.gaps, 1u);
  EXPECT_EQ((*store_->ListSensors())[0].missing, 10u);
}

// A second client using a victim's sensor id (clear text: nothing binds the id) sends a
// batch at 2^64-2. Accepted, it made the victim's next batches duplicates, acknowledged and
// dropped, and told the victim to forget its spool. Refused, nothing of the victim changes.
TEST_F(IngestServiceTest, SequenceJumpPastWhatTheSensorCanHaveSentIsRefused) {
  FakeClock clock(kBaseTimeNs);
  AggregatorServerOptions options;
  options.ingest.clock = &clock;
  Start(options);
  const auto events = SyntheticEvents(200);
  IngestClient victim(target());
  ASSERT_TRUE(victim.Hello("sensor-a"));
  EXPECT_EQ(SendAll(victim, "sensor-a", 1, {events.begin(), events.begin() + 100}, 50), 100u);

  IngestClient impostor(target());
  ASSERT_TRUE(impostor.Hello("sensor-a"));
  EXPECT_FALSE(impostor.Batch("sensor-a", UINT64_MAX - 1, {events[0]}).has_value());
  const grpc::Status refused = impostor.Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("skips"), std::string::npos) << refused.error_message();

  // The victim goes on as if nothing happened.
  auto ack = victim.Batch("sensor-a", 101, {events.begin() + 100, events.begin() + 150});
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->error(), "");
  EXPECT_EQ(ack->durable_seq(), 150u);
  // A crash of the sensor skips at most one lease step of numbers: accepted as a gap.
  ack = victim.Batch("sensor-a", 150 + 65537, {events[150]});
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->durable_seq(), 150u + 65537u);
  // Further than the allowance only after the time a sensor needs to use those numbers.
  const uint64_t durable = ack->durable_seq();
  const uint64_t far = durable + 1 + kSeqJumpAllowance + 5 * kMaxSensorEventsPerSecond;
  EXPECT_FALSE(victim.Batch("sensor-a", far, {events[151]}).has_value());
  EXPECT_EQ(victim.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  clock.AdvanceNs(6 * kNanosPerSecond);
  IngestClient later(target());
  ASSERT_TRUE(later.Hello("sensor-a"));
  ack = later.Batch("sensor-a", far, {events[151]});
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->error(), "");
  EXPECT_EQ(ack->durable_seq(), far);
  EXPECT_TRUE(later.Finish().ok());
  EXPECT_EQ(Stored(), 152u);
  EXPECT_EQ(server_->ingest().counters().denied_streams, 2u);
}

// One event at INT64_MAX would never expire and would drag correlation windows: times
// beyond the skew window of the aggregator's clock are clamped into it, and counted.
TEST_F(IngestServiceTest, EventTimesOutsideTheSkewWindowAreClampedAndCounted) {
  FakeClock clock(kBaseTimeNs + 3600 * kNanosPerSecond);
  AggregatorServerOptions options;
  options.ingest.clock = &clock;
  options.ingest.max_future_skew_ns = 60 * kNanosPerSecond;
  options.ingest.max_event_age_ns = 1800 * kNanosPerSecond;
  Start(options);
  auto events = SyntheticEvents(3);
  events[0].time_ns = INT64_MAX;                             // far future
  events[1].time_ns = clock.NowNs() + 30 * kNanosPerSecond;  // within the skew
  events[2].time_ns = kBaseTimeNs;                           // an hour old: too old
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  EXPECT_EQ(SendAll(client, "sensor-a", 1, events, 3), 3u);
  EXPECT_TRUE(client.Finish().ok());
  auto stored = store_->ReadSensorEvents("sensor-a", 0, 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[0].time_ns, clock.NowNs() + 60 * kNanosPerSecond);
  EXPECT_EQ((*stored)[1].time_ns, events[1].time_ns);
  EXPECT_EQ((*stored)[2].time_ns, clock.NowNs() - 1800 * kNanosPerSecond);
  EXPECT_EQ(server_->ingest().counters().events_time_clamped, 2u);
}

// The per-peer bound on open ingest streams.
TEST_F(IngestServiceTest, StreamsBeyondThePeerLimitAreRefused) {
  AggregatorServerOptions options;
  options.ingest.max_streams_per_peer = 2;
  Start(options);
  IngestClient a(target()), b(target());
  ASSERT_TRUE(a.Hello("sensor-a"));
  ASSERT_TRUE(b.Hello("sensor-b"));
  IngestClient c(target());
  EXPECT_FALSE(c.Hello("sensor-c").has_value());
  EXPECT_EQ(c.Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(a.Finish().ok());
  // A slot is free again once a stream ends (OnDone may run just after Finish returns).
  bool accepted = false;
  for (int i = 0; i < 50 && !accepted; ++i) {
    IngestClient d(target());
    accepted = d.Hello("sensor-d").has_value();
    d.Finish();
    if (!accepted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(accepted);
  EXPECT_TRUE(b.Finish().ok());
  EXPECT_GE(server_->ingest().counters().streams_over_peer_limit, 1u);
}

// Every sensor id that says hello is remembered in memory (connected, last seen); ids are
// the client's choice, so the memory is bounded and the oldest idle one gives way.
TEST_F(IngestServiceTest, PresenceIsBoundedAndEvictionCounted) {
  FakeClock clock(kBaseTimeNs);
  AggregatorServerOptions options;
  options.ingest.clock = &clock;
  options.ingest.max_presence = 3;
  Start(options);
  IngestClient connected(target());
  ASSERT_TRUE(connected.Hello("sensor-0"));
  for (int i = 1; i <= 5; ++i) {
    clock.AdvanceNs(kNanosPerSecond);
    IngestClient c(target());
    ASSERT_TRUE(c.Hello("sensor-" + std::to_string(i))) << i;
    EXPECT_TRUE(c.Finish().ok());
    // The server ends its side of the stream just after the client's Finish returns.
    for (int wait = 0; wait < 2000 && server_->ingest().SensorsConnected() > 1; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::set<std::string> ids;
  for (const SensorPresence& p : server_->ingest().Sensors()) ids.insert(p.sensor_id);
  // The connected sensor stays; the idle ones seen longest ago went.
  EXPECT_EQ(ids, (std::set<std::string>{"sensor-0", "sensor-4", "sensor-5"}));
  EXPECT_EQ(server_->ingest().counters().presence_evicted, 3u);
  EXPECT_TRUE(connected.Finish().ok());
}

TEST_F(IngestServiceTest, RepeatedViolationsEndTheStream) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(3), 3);
  int acked_rejections = 0;
  while (client.Batch("sensor-b", 4, SyntheticEvents(1)).has_value()) {
    ++acked_rejections;
    ASSERT_LT(acked_rejections, 1000);
  }
  EXPECT_EQ(acked_rejections, 99);  // the 100th ends the stream
  const grpc::Status s = client.Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("too many rejected"), std::string::npos);
  EXPECT_EQ(Stored(), 3u);
}

TEST_F(IngestServiceTest, SecondHelloAndEmptyRequestsAreRejectedNotFatal) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  auto second = client.Hello("sensor-a");
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(second->error().find("second SensorHello"), std::string::npos);
  auto empty = client.Send(v1::IngestRequest());
  ASSERT_TRUE(empty.has_value());
  EXPECT_NE(empty->error().find("neither"), std::string::npos);
  EXPECT_EQ(SendAll(client, "sensor-a", 1, SyntheticEvents(2), 2), 2u);
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(IngestServiceTest, TracksConnectedSensorsAndRates) {
  IngestClient a(target());
  IngestClient b(target());
  ASSERT_TRUE(a.Hello("sensor-a"));
  ASSERT_TRUE(b.Hello("sensor-b"));
  SendAll(a, "sensor-a", 1, SyntheticEvents(60), 60);
  EXPECT_EQ(server_->ingest().SensorsConnected(), 2u);
  EXPECT_DOUBLE_EQ(server_->ingest().EventsPerSecond(), 1.0);  // 60 events over a minute
  EXPECT_TRUE(b.Finish().ok());
  // The server runs OnDone after the client has its final status: wait for it, bounded.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->ingest().SensorsConnected() != 1u &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(server_->ingest().SensorsConnected(), 1u);
  const auto sensors = server_->ingest().Sensors();
  ASSERT_EQ(sensors.size(), 2u);
  EXPECT_EQ(sensors[0].sensor_id, "sensor-a");
  EXPECT_EQ(sensors[0].streams, 1u);
  EXPECT_EQ(sensors[0].host, "host-of-sensor-a");
  EXPECT_EQ(sensors[1].streams, 0u);
}

TEST_F(IngestServiceTest, StopsCleanlyWithStreamsOpen) {
  IngestClient client(target());
  ASSERT_TRUE(client.Hello("sensor-a"));
  SendAll(client, "sensor-a", 1, SyntheticEvents(10), 10);
  server_->Shutdown(100 * kNanosPerMilli);  // must return although the stream is idle
  EXPECT_FALSE(client.Finish().ok());
  EXPECT_EQ(Stored(), 10u);
}

}  // namespace
}  // namespace tripline
