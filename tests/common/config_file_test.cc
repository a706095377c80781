#include "common/config_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tripline/v1/config.pb.h"

namespace tripline {
namespace {

TEST(ConfigFileTest, ParsesAggregatorConfig) {
  v1::AggregatorConfig cfg;
  ASSERT_TRUE(ParseTextConfig(R"(
      listen: "127.0.0.1:7443"
      event_retention_hours: 168
      ssh_ports: [22, 2222]
      identities { kind: "agent" user: "svc-ai" }
  )",
                              "agg.textproto", &cfg)
                  .ok());
  EXPECT_EQ(cfg.listen(), "127.0.0.1:7443");
  EXPECT_EQ(cfg.event_retention_hours(), 168u);
  ASSERT_EQ(cfg.ssh_ports_size(), 2);
  EXPECT_EQ(cfg.identities(0).user(), "svc-ai");
}

TEST(ConfigFileTest, UnknownFieldNamesLineAndColumn) {
  v1::SensorConfig cfg;
  Status s = ParseTextConfig("aggregator: \"x:1\"\n  scoep: \"uts\"\n", "sensor.textproto", &cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("sensor.textproto:2:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("scoep"), std::string::npos) << s.message();
}

TEST(ConfigFileTest, TypeErrorIsReported) {
  v1::SensorConfig cfg;
  Status s = ParseTextConfig("batch_max_events: \"many\"\n", "s", &cfg);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("s:1:"), std::string::npos) << s.message();
}

TEST(ConfigFileTest, MissingFileIsNotFound) {
  v1::SensorConfig cfg;
  Status s = LoadTextConfigFile("/nonexistent/tripline.textproto", &cfg);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST(ConfigFileTest, LoadsFromFile) {
  char path[] = "/tmp/tripline-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "scope: \"uts\"\nsensitive_paths { match: MATCH_PREFIX path: \"/etc/pam.d/\" }\n";
  }
  v1::SensorConfig cfg;
  Status s = LoadTextConfigFile(path, &cfg);
  unlink(path);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(cfg.scope(), "uts");
  ASSERT_EQ(cfg.sensitive_paths_size(), 1);
  EXPECT_EQ(cfg.sensitive_paths(0).match(), v1::PathRule::MATCH_PREFIX);
}

TEST(ConfigFileTest, RefusesHugeInput) {
  v1::SensorConfig cfg;
  std::string big(5 << 20, ' ');
  EXPECT_FALSE(ParseTextConfig(big, "big", &cfg).ok());
}

}  // namespace
}  // namespace tripline
