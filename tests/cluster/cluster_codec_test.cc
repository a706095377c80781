// The cluster's records: leases and sensors' records as the key-value store keeps them,
// and event message ids.
#include <gtest/gtest.h>

#include "aggregator/cluster/lease.h"
#include "aggregator/cluster/stream_sink.h"

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

TEST(EventMessageIdTest, SensorAndSequenceComeBackWhateverTheSensorIdHolds) {
  std::string sensor;
  uint64_t seq = 0;
  ASSERT_TRUE(ParseEventMessageId(EventMessageId("host:a:b", 42), &sensor, &seq));
  EXPECT_EQ(sensor, "host:a:b");
  EXPECT_EQ(seq, 42u);
  for (const char* bad : {"", ":1", "a:", "a:0", "a:x1", "a:1x", "a:99999999999999999999", "a"}) {
    EXPECT_FALSE(ParseEventMessageId(bad, &sensor, &seq)) << bad;
  }
  EXPECT_EQ(PartitionOfHost("host-a", 256), PartitionOfHost("host-a", 256));
  EXPECT_LT(PartitionOfHost("host-a", 7), 7u);
  EXPECT_EQ(PartitionSubject(17), "tl.ev.17");
}

}  // namespace
}  // namespace tripline::cluster
