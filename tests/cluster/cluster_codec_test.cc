// The cluster's records: leases and sensors' records as the key-value store keeps them,
// and the events and edge streams' messages and their ids.
#include <gtest/gtest.h>

#include "aggregator/cluster/joiner_stage.h"
#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/stream_sink.h"
#include "model/event_proto.h"
#include "tests/aggregator/test_support.h"

namespace tripline::cluster {
namespace {

TEST(LeaseCodecTest, WhatIsWrittenReadsBack) {
  const LeaseRecord r{"worker-a.node/2", 1'795'392'000'123'456'789};
  const std::string bytes = EncodeLease(r);
  EXPECT_EQ(bytes, "1795392000123456789 worker-a.node/2");
  const auto back = DecodeLease(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->owner, r.owner);
  EXPECT_EQ(back->expires_ns, r.expires_ns);
}

TEST(LeaseCodecTest, DamagedRecordsAreClearErrors) {
  for (const char* bad : {"", " worker", "12", "12 ", "x12 worker", "-5 worker", "12 two words",
                          "12 tab\there", "99999999999999999999999 worker", "12\nworker"}) {
    const auto r = DecodeLease(bad);
    EXPECT_FALSE(r.ok()) << '"' << bad << '"';
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
  EXPECT_FALSE(DecodeLease("12 " + std::string(129, 'w')).ok());
  EXPECT_TRUE(DecodeLease("12 " + std::string(128, 'w')).ok());
}

TEST(LeaseCodecTest, NamesAreKeyValueKeys) {
  EXPECT_TRUE(ValidLeaseName("partition.17"));
  EXPECT_TRUE(ValidLeaseName("joiner"));
  EXPECT_TRUE(ValidLeaseName("worker-a_1=x/y"));
  for (const char* bad : {"", "a b", "a*", "a>", ".a", "a.", "é"}) {
    EXPECT_FALSE(ValidLeaseName(bad)) << bad;
  }
  EXPECT_FALSE(ValidLeaseName(std::string(129, 'a')));
}

}  // namespace
}  // namespace tripline::cluster

namespace tripline::cluster {
namespace {

TEST(SensorRecordCodecTest, WhatIsWrittenReadsBack) {
  SensorRecord r;
  r.sensor_id = "sensor \"a\"\n";
  r.host = "host-a";
  r.durable_seq = 1500;
  r.events = 1490;
  r.missing = 10;
  r.last_write_ns = 1'795'392'000'000'000'000;
  const auto back = DecodeSensorRecord(EncodeSensorRecord(r), r.sensor_id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->host, r.host);
  EXPECT_EQ(back->durable_seq, r.durable_seq);
  EXPECT_EQ(back->events, r.events);
  EXPECT_EQ(back->missing, r.missing);
  EXPECT_EQ(back->last_write_ns, r.last_write_ns);
  EXPECT_EQ(SensorKey("a.b"), "sensor.612e62");
}

TEST(SensorRecordCodecTest, DamagedOrForeignRecordsAreClearErrors) {
  SensorRecord s;
  s.sensor_id = "s";
  s.host = "h";
  const std::string good = EncodeSensorRecord(s);
  EXPECT_TRUE(DecodeSensorRecord(good, "s").ok());
  EXPECT_FALSE(DecodeSensorRecord(good, "t").ok()) << "another sensor's record";
  for (const char* bad :
       {"", "{", "[]", "null", R"({"id":"s"})",
        R"({"id":"s","host":"h","durable_seq":-1,"events":0,"missing":0,"last_write_ns":0})",
        R"({"id":"s","host":1,"durable_seq":1,"events":0,"missing":0,"last_write_ns":0})",
        R"({"id":"s","host":"h","durable_seq":1,"events":0,"missing":0,"last_write_ns":"x"})"}) {
    const auto r = DecodeSensorRecord(bad, "s");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
}

TEST(BatchMessageIdTest, SensorAndRangeComeBackWhateverTheSensorIdHolds) {
  std::string sensor;
  uint64_t first = 0;
  uint64_t last = 0;
  EXPECT_EQ(BatchMessageId("host:a-b", 42, 97), "host:a-b:42-97");
  ASSERT_TRUE(ParseBatchMessageId(BatchMessageId("host:a-b", 42, 97), &sensor, &first, &last));
  EXPECT_EQ(sensor, "host:a-b");
  EXPECT_EQ(first, 42u);
  EXPECT_EQ(last, 97u);
  for (const char* bad : {"", ":1-2", "a:", "a:1", "a:0-3", "a:3-2", "a:1-", "a:-1", "a:x1-2",
                          "a:1-2x", "a:1-99999999999999999999", "a"}) {
    EXPECT_FALSE(ParseBatchMessageId(bad, &sensor, &first, &last)) << bad;
  }
  EXPECT_EQ(PartitionOfHost("host-a", 256), PartitionOfHost("host-a", 256));
  EXPECT_LT(PartitionOfHost("host-a", 7), 7u);
  EXPECT_EQ(PartitionSubject(17), "tl.ev.17");
}

std::vector<std::string> Encodings(const std::vector<Event>& events) {
  std::vector<std::string> out;
  v1::Event pb;
  for (const Event& e : events) {
    ToProto(e, &pb);
    out.push_back(pb.SerializeAsString());
  }
  return out;
}

TEST(PartitionBatchTest, EventsComeBackWithTheirSequenceNumbers) {
  const std::vector<Event> events = testing::SyntheticEvents(5, 2, 3);
  const std::vector<std::string> bytes = Encodings(events);
  const std::vector<std::string_view> views(bytes.begin(), bytes.end());
  const std::vector<uint64_t> seqs = {3, 4, 9, 10, 200};
  const auto back = DecodePartitionBatch(EncodePartitionBatch("sensor-a", seqs, views));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sensor_id, "sensor-a");
  ASSERT_EQ(back->events.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(back->events[i].seq, seqs[i]);
    EXPECT_EQ(back->events[i].host, events[i].host);
    EXPECT_EQ(back->events[i].time_ns, events[i].time_ns);
    EXPECT_EQ(back->events[i].kind(), events[i].kind());
  }
}

TEST(PartitionBatchTest, DamagedMessagesAreClearErrors) {
  const std::vector<Event> events = testing::SyntheticEvents(2);
  const std::vector<std::string> bytes = Encodings(events);
  const std::vector<std::string_view> views(bytes.begin(), bytes.end());
  const std::vector<uint64_t> ascending = {1, 2};
  const std::vector<uint64_t> descending = {2, 1};
  const std::vector<uint64_t> zero = {0, 1};
  const std::vector<uint64_t> three = {1, 2, 3};
  const std::vector<uint64_t> one = {4};
  v1::Event pb;
  ToProto(events[0], &pb);
  pb.set_seq(5);
  const std::string own_seq = pb.SerializeAsString();
  const std::vector<std::string_view> other_seq = {own_seq};
  const std::vector<std::string_view> garbage = {"\xff\xff", views[1]};
  struct Case {
    std::string bytes;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"\x0a\xff", "not a tripline.v1.PartitionBatch"},
      {EncodePartitionBatch("", ascending, views), "sensor_id"},
      {EncodePartitionBatch("bad id", ascending, views), "sensor_id"},
      {EncodePartitionBatch("sensor-a", {}, {}), "no events"},
      {EncodePartitionBatch("sensor-a", three, views), "3 sequence numbers for 2 events"},
      {EncodePartitionBatch("sensor-a", descending, views), "not above the one before"},
      {EncodePartitionBatch("sensor-a", zero, views), "is 0"},
      {EncodePartitionBatch("sensor-a", one, other_seq), "carries seq 5"},
      {EncodePartitionBatch("sensor-a", ascending, garbage), "is not a tripline.v1.Event"},
  };
  for (const Case& c : cases) {
    const auto r = DecodePartitionBatch(c.bytes);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().ToString();
  }
}

// Two events of a batch: a login, and an outbound connection routed to another partition.
std::vector<Event> LoginAndConnect() {
  Event login;
  login.host = "host-a";
  login.time_ns = 1'700'000'000LL * kNanosPerSecond;
  LoginEvent l;
  l.user = "alice";
  l.outcome = Outcome::kSuccess;
  login.body = l;
  Event connect = login;
  NetConnectEvent c;
  c.direction = NetDirection::kOutbound;
  c.local_addr = "198.18.0.1";
  c.remote_addr = "198.18.0.2";
  c.remote_port = 22;
  connect.body = c;
  return {login, connect};
}

TEST(PartitionBatchTest, CopiesComeBackAndMustBeOutboundConnectionsOfTheMessage) {
  const std::vector<std::string> bytes = Encodings(LoginAndConnect());
  const std::vector<std::string_view> views(bytes.begin(), bytes.end());
  const std::vector<uint64_t> seqs = {7, 8};
  const std::vector<uint64_t> connect = {8};
  const auto back = DecodePartitionBatch(EncodePartitionBatch("sensor-a", seqs, views, connect));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->copies, connect);
  EXPECT_TRUE(DecodePartitionBatch(EncodePartitionBatch("sensor-a", seqs, views))->copies.empty());
  for (const std::vector<uint64_t>& bad :
       std::vector<std::vector<uint64_t>>{{7}, {9}, {8, 8}, {0}}) {
    const auto r = DecodePartitionBatch(EncodePartitionBatch("sensor-a", seqs, views, bad));
    ASSERT_FALSE(r.ok()) << bad.front();
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find("is not an outbound connection of the message"),
              std::string::npos)
        << r.status().ToString();
  }
}

TEST(EdgeFragmentTest, WhatIsWrittenReadsBackAndDamageIsAClearError) {
  const auto back = DecodeEdgeFragment(EncodeEdgeFragment(17, "host-a|audit:1", R"({"x":1})"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->partition, 17u);
  EXPECT_EQ(back->chain, "host-a|audit:1");
  EXPECT_EQ(back->state, R"({"x":1})");
  EXPECT_EQ(back->origin(), "17:host-a|audit:1");
  const auto retracted = DecodeEdgeFragment(EncodeEdgeFragment(3, "k", ""));
  ASSERT_TRUE(retracted.ok());
  EXPECT_TRUE(retracted->state.empty());
  for (const std::string& bad :
       {std::string("\x0a\xff"), EncodeEdgeFragment(1, "", "{}"),
        EncodeEdgeFragment(1, std::string(4097, 'k'), "{}"),
        EncodeEdgeFragment(1, "k", std::string(kMaxFragmentBytes + 1, ' '))}) {
    const auto r = DecodeEdgeFragment(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  }
  // Ids: the same change fed again is the same id; another chain or message is not.
  EXPECT_EQ(EdgeMessageId(3, "host-a|audit:1", 90), EdgeMessageId(3, "host-a|audit:1", 90));
  EXPECT_NE(EdgeMessageId(3, "host-a|audit:1", 90), EdgeMessageId(3, "host-a|audit:2", 90));
  EXPECT_NE(EdgeMessageId(3, "host-a|audit:1", 90), EdgeMessageId(3, "host-a|audit:1", 91));
  EXPECT_NE(EdgeMessageId(3, "host-a|audit:1", 90), EdgeMessageId(4, "host-a|audit:1", 90));
}

}  // namespace
}  // namespace tripline::cluster
