// The lease record codec: what a worker reads back from the cluster's key-value store.
#include <gtest/gtest.h>

#include "aggregator/cluster/lease.h"

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
