// The scaled-out mode's substrate against a real NATS JetStream cluster: three
// nats-server processes clustered on loopback, streams and buckets with three replicas.
#include "aggregator/cluster/jetstream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "aggregator/cluster/lease.h"
#include "common/clock.h"
#include "tests/cluster/nats_fixture.h"

namespace tripline::cluster {
namespace {

using testing::NatsCluster;

class JetStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::StartNatsCluster(&nats_));
    if (IsSkipped()) return;
  }

  std::unique_ptr<JetStream> Connect(const std::string& name = "test") {
    ClusterOptions o;
    o.servers = nats_->urls();
    o.name = name;
    o.request_timeout_ms = 5000;
    auto js = JetStream::Connect(o);
    EXPECT_TRUE(js.ok()) << js.status().ToString();
    return js.ok() ? std::move(js).value() : nullptr;
  }

  // Makes the events stream; the servers' logs on failure.
  void EnsureEvents(JetStream& js) {
    const Status s = js.EnsureStream(Events());
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << nats_->Log(0);
  }

  static StreamSpec Events() {
    StreamSpec s;
    s.name = "EVENTS";
    s.subjects = {"tl.events.>"};
    s.replicas = 3;
    return s;
  }

  std::unique_ptr<NatsCluster> nats_;
};

TEST_F(JetStreamTest, AMessageIdIsStoredOnceHoweverOftenItIsPublished) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  const Outgoing m{"tl.events.p1", "sensor-a:1", "first"};
  const auto first = js->Publish(m);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  const auto again = js->Publish(Outgoing{m.subject, m.id, "a resend"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->sequence, first->sequence);
  const auto other = js->Publish(Outgoing{m.subject, "sensor-a:2", "second"});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->duplicate);
  EXPECT_EQ(other->sequence, first->sequence + 1);
  EXPECT_EQ(js->StreamMessages("EVENTS").value_or(0), 2u);
  // Ensuring the stream again (a second node starting) changes nothing.
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  EXPECT_EQ(js->StreamMessages("EVENTS").value_or(0), 2u);
}

TEST_F(JetStreamTest, NothingIsLostOrStoredTwiceWhenAServerIsKilledMidStream) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  constexpr int kBatches = 30, kPerBatch = 100;
  auto batch = [](int b) {
    std::vector<Outgoing> out;
    for (int i = 0; i < kPerBatch; ++i) {
      const std::string id = "sensor-a:" + std::to_string(b * kPerBatch + i + 1);
      out.push_back({"tl.events.p" + std::to_string(i % 7), id, id});
    }
    return out;
  };
  for (int b = 0; b < kBatches; ++b) {
    if (b == 10) {
      // Mid-stream, the server leading the stream's replicas dies: the other two elect a
      // new leader and the publishes whose acknowledgements were lost go again.
      const auto leader = js->StreamLeader("EVENTS");
      ASSERT_TRUE(leader.ok()) << leader.status().ToString();
      ASSERT_EQ(leader->size(), 2u) << *leader;
      nats_->Kill((*leader)[1] - '0');
    }
    const std::vector<Outgoing> msgs = batch(b);
    const Status s = js->PublishAll(msgs, 20000);
    ASSERT_TRUE(s.ok()) << "batch " << b << ": " << s.ToString();
    // A sensor that did not hear the ack sends the batch again: nothing new is stored.
    if (b == 9 || b == 10) {
      ASSERT_TRUE(js->PublishAll(msgs, 20000).ok());
    }
  }
  EXPECT_EQ(js->StreamMessages("EVENTS").value_or(0), uint64_t{kBatches * kPerBatch});

  // Every message once, in the order sent per subject.
  auto consumer = js->Consume({"EVENTS", "audit", "tl.events.>", 30000, 65536});
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::set<std::string> seen;
  std::map<std::string, int> last_per_subject;
  for (int round = 0; round < 200 && seen.size() < kBatches * kPerBatch; ++round) {
    auto got = (*consumer)->Fetch(500, 2000);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (const Delivered& d : *got) {
      EXPECT_TRUE(seen.insert(d.data).second) << "twice: " << d.data;
      const int n = std::stoi(d.data.substr(d.data.find(':') + 1));
      EXPECT_GT(n, last_per_subject[d.subject]) << d.subject;
      last_per_subject[d.subject] = n;
    }
    ASSERT_TRUE((*consumer)->AckAll().ok());
  }
  EXPECT_EQ(seen.size(), size_t{kBatches * kPerBatch});
}

TEST_F(JetStreamTest, AMessageNotAcknowledgedIsHandedOutAgainToTheNextConsumer) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(js->Publish({"tl.events.p3", "s:" + std::to_string(i), std::to_string(i)}).ok());
  }
  const ConsumerSpec spec{"EVENTS", "worker-p3", "tl.events.p3", 1000, 1000};
  std::set<uint64_t> acked;
  {
    // A worker takes all ten, acknowledges half, and dies.
    auto a = js->Consume(spec);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto got = (*a)->Fetch(10, 2000);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 10u);
    for (const Delivered& d : *got) {
      EXPECT_EQ(d.deliveries, 1u);
      if (d.stream_sequence % 2 == 0) {
        ASSERT_TRUE((*a)->Ack(d.stream_sequence).ok());
        acked.insert(d.stream_sequence);
      }
    }
  }
  // The next one on the same durable gets exactly the other half, after the ack wait.
  auto b = js->Consume(spec);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::set<uint64_t> again;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (again.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    auto got = (*b)->Fetch(10, 1000);
    ASSERT_TRUE(got.ok());
    for (const Delivered& d : *got) {
      EXPECT_EQ(acked.count(d.stream_sequence), 0u) << d.stream_sequence << " was acknowledged";
      EXPECT_EQ(d.deliveries, 2u);
      again.insert(d.stream_sequence);
    }
    ASSERT_TRUE((*b)->AckAll().ok());
  }
  EXPECT_EQ(again.size(), 5u);
  auto rest = (*b)->Fetch(10, 1500);
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(rest->empty());
}

TEST_F(JetStreamTest, ACumulativeConsumerMadeAnewStartsWhereItIsToldAtOnce) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(js->Publish({"tl.events.p4", "q:" + std::to_string(i), std::to_string(i)}).ok());
  }
  ConsumerSpec spec{"EVENTS", "worker-p4", "tl.events.p4", 60000, 1000};
  spec.ack_cumulative = true;
  auto a = js->Consume(spec);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto got = (*a)->Fetch(10, 2000);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 10u);
  // One acknowledgement for the first four.
  ASSERT_TRUE((*a)->AckThrough((*got)[3].stream_sequence).ok());
  EXPECT_EQ((*a)->unacknowledged(), 6u);
  auto lag = js->Lag("EVENTS", "worker-p4");
  ASSERT_TRUE(lag.ok() && lag->has_value()) << lag.status().ToString();
  EXPECT_EQ((*lag)->pending, 0u);
  EXPECT_EQ((*lag)->unacknowledged, 6u);
  EXPECT_EQ((*lag)->acked_through, (*got)[3].stream_sequence);
  auto none_such = js->Lag("EVENTS", "nobody");
  ASSERT_TRUE(none_such.ok()) << none_such.status().ToString();
  EXPECT_FALSE(none_such->has_value());
  // Nothing more to fetch: a fetch that does not wait returns at once.
  const auto t0 = std::chrono::steady_clock::now();
  auto none = (*a)->Fetch(10, 0);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  // A new holder starts after message 7 without waiting for the ack wait of 8-10.
  spec.start_sequence = (*got)[6].stream_sequence + 1;
  auto b = js->Consume(spec);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto rest = (*b)->Fetch(10, 2000);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ(rest->front().stream_sequence, (*got)[7].stream_sequence);
  EXPECT_EQ(rest->front().deliveries, 1u);
  // The previous holder's consumer is gone: it can fetch nothing more.
  auto stale = (*a)->Fetch(10, 0);
  EXPECT_TRUE(!stale.ok() || stale->empty());
}

TEST_F(JetStreamTest, ACumulativeConsumerStopsAtAMessageHandedOutThatNeverCame) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  ASSERT_NO_FATAL_FAILURE(EnsureEvents(*js));
  for (int i = 1; i <= 6; ++i) {
    ASSERT_TRUE(js->Publish({"tl.events.p5", "g:" + std::to_string(i), std::to_string(i)}).ok());
  }
  ConsumerSpec spec{"EVENTS", "worker-p5", "tl.events.p5", 60000, 1000};
  spec.ack_cumulative = true;
  spec.start_sequence = 1;
  auto a = js->Consume(spec);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto first = (*a)->Fetch(2, 2000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 2u);
  // The third is handed out elsewhere (here, to a second subscriber on the same durable;
  // on a cluster, to a fetch whose answer died with a server): acknowledging the fourth
  // would acknowledge it too.
  ConsumerSpec bound = spec;
  bound.start_sequence = 0;
  auto other = js->Consume(bound);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto taken = (*other)->Fetch(1, 2000);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().data, "3");
  auto next = (*a)->Fetch(3, 2000);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Status::Code::kAborted) << next.status().ToString();
  EXPECT_NE(next.status().message().find("never came"), std::string::npos)
      << next.status().ToString();
  // It stays stopped: nothing more is fetched or acknowledged through it.
  EXPECT_EQ((*a)->Fetch(3, 0).status().code(), Status::Code::kAborted);
  EXPECT_EQ((*a)->AckThrough((*first)[1].stream_sequence).code(), Status::Code::kAborted);
  EXPECT_EQ((*a)->unacknowledged(), 0u);
  // Made anew after what was fed, it hands out the third again, and the rest.
  spec.start_sequence = (*first)[1].stream_sequence + 1;
  auto again = js->Consume(spec);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  std::vector<std::string> rest;
  for (int round = 0; round < 10 && rest.size() < 4; ++round) {
    auto got = (*again)->Fetch(4, 1000);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (const Delivered& d : *got) rest.push_back(d.data);
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"3", "4", "5", "6"}));
  EXPECT_TRUE((*again)->AckAll().ok());
}

TEST_F(JetStreamTest, CompareAndSetLetsOneOfTwoWritersWin) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  auto kv = js->Bucket("tl-test", 3);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_FALSE((*kv)->Get("k").value().has_value());
  const auto r1 = (*kv)->Create("k", "one");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ((*kv)->Create("k", "two").status().code(), Status::Code::kAlreadyExists);
  const auto r2 = (*kv)->Update("k", "two", *r1);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_GT(*r2, *r1);
  const auto late = (*kv)->Update("k", "three", *r1);
  EXPECT_EQ(late.status().code(), Status::Code::kAborted) << late.status().ToString();
  const auto now = (*kv)->Get("k");
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((*now)->value, "two");
  EXPECT_EQ((*now)->revision, *r2);
  const auto keys = (*kv)->Keys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{"k"});
}

TEST_F(JetStreamTest, OneLeaseHolderAtATimeAndAnEndedLeaseIsTakenOver) {
  auto js = Connect();
  ASSERT_NE(js, nullptr);
  auto kv = js->Bucket("tl-leases", 3);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  FakeClock clock;
  constexpr int64_t kTtl = 10 * kNanosPerSecond;
  LeaseTable a(kv->get(), "worker-a", kTtl, &clock);
  LeaseTable b(kv->get(), "worker-b", kTtl, &clock);

  const auto la = a.Acquire("partition.7");
  ASSERT_TRUE(la.ok() && la->has_value()) << la.status().ToString();
  const auto lb = b.Acquire("partition.7");
  ASSERT_TRUE(lb.ok());
  EXPECT_FALSE(lb->has_value()) << "two holders";

  // A renews in time and keeps it.
  clock.AdvanceNs(6 * kNanosPerSecond);
  const auto renewed = a.Renew(**la);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  clock.AdvanceNs(6 * kNanosPerSecond);
  EXPECT_FALSE(b.Acquire("partition.7").value().has_value());

  // A stops renewing (paused, cut off): once the lease ended B takes it over, and A
  // learns at its next renewal that it lost it.
  clock.AdvanceNs(5 * kNanosPerSecond);
  const auto taken = b.Acquire("partition.7");
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status().ToString();
  EXPECT_GT((*taken)->revision, renewed->revision) << "the fencing token grows";
  EXPECT_EQ(a.Renew(*renewed).status().code(), Status::Code::kAborted);
  EXPECT_EQ(a.Release(*renewed).code(), Status::Code::kAborted);

  // B gives it up; A may take it at once: as soon as its read sees the release (reads may
  // be answered by a replica some milliseconds behind the bucket's leader).
  ASSERT_TRUE(b.Release(**taken).ok());
  Result<std::optional<Lease>> back = std::optional<Lease>();
  for (int attempt = 0; attempt < 50 && back.ok() && !back->has_value(); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    back = a.Acquire("partition.7");
  }
  ASSERT_TRUE(back.ok() && back->has_value()) << back.status().ToString();
  const auto list = a.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].second.owner, "worker-a");

  EXPECT_EQ(a.Acquire("partition 7").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(JetStreamTest, RacingWorkersNeverBothHoldAPartition) {
  constexpr int kPartitions = 64;
  auto js_a = Connect("worker-a");
  auto js_b = Connect("worker-b");
  ASSERT_NE(js_a, nullptr);
  ASSERT_NE(js_b, nullptr);
  auto kv_a = js_a->Bucket("tl-race", 3);
  auto kv_b = js_b->Bucket("tl-race", 3);
  ASSERT_TRUE(kv_a.ok() && kv_b.ok());
  std::map<std::string, std::vector<std::string>> won;  // partition -> owners
  std::mutex mu;
  std::atomic<int> errors{0};
  auto race = [&](KeyValue* kv, const std::string& owner) {
    LeaseTable t(kv, owner, 30 * kNanosPerSecond);
    for (int p = 0; p < kPartitions; ++p) {
      const std::string r = "partition." + std::to_string(p);
      const auto l = t.Acquire(r);
      if (!l.ok()) {
        ++errors;
        ADD_FAILURE() << owner << " " << r << ": " << l.status().ToString();
        continue;
      }
      if (l->has_value()) {
        std::lock_guard<std::mutex> lock(mu);
        won[r].push_back(owner);
      }
    }
  };
  std::thread ta(race, kv_a->get(), "worker-a");
  std::thread tb(race, kv_b->get(), "worker-b");
  ta.join();
  tb.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_EQ(won.size(), size_t{kPartitions}) << "every partition has a holder";
  for (const auto& [p, owners] : won) EXPECT_EQ(owners.size(), 1u) << p;
  LeaseTable reader(kv_a->get(), "reader", kNanosPerSecond);
  const auto list = reader.List();
  ASSERT_TRUE(list.ok());
  for (const auto& [p, rec] : *list) EXPECT_EQ(won[p].front(), rec.owner) << p;
}

TEST(JetStreamConnectTest, NoServerAnsweringIsAClearError) {
  ClusterOptions o;
  o.servers = {"nats://127.0.0.1:1"};
  o.connect_timeout_ms = 500;
  const auto js = JetStream::Connect(o);
  ASSERT_FALSE(js.ok());
  EXPECT_NE(js.status().message().find("127.0.0.1:1"), std::string::npos) << js.status().ToString();
  EXPECT_FALSE(JetStream::Connect(ClusterOptions{}).ok());
}

}  // namespace
}  // namespace tripline::cluster
