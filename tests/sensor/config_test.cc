#include "sensor/config.h"

#include <gtest/gtest.h>

#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

Result<SensorSettings> Resolve(const std::vector<std::string>& args) {
  Result<SensorFlags> flags = ParseSensorFlags(args);
  if (!flags.ok()) return flags.status();
  return ResolveSensorSettings(*flags);
}

TEST(SensorFlagsTest, ParsesBothSpellings) {
  auto flags = ParseSensorFlags(
      {"--aggregator", "127.0.0.1:7000", "--scope=uts", "--output", "jsonl", "--log-level=debug"});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(*flags->aggregator, "127.0.0.1:7000");
  EXPECT_EQ(*flags->scope, "uts");
  EXPECT_EQ(*flags->output, "jsonl");
  EXPECT_FALSE(flags->host_name.has_value());
  EXPECT_TRUE(ParseSensorFlags({"--help"})->help);
}

TEST(SensorFlagsTest, BadFlagsAreErrorsThatNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--frobnicate"}, "unknown flag --frobnicate"},
      {{"--aggregator"}, "--aggregator needs a value"},
      {{"--scope="}, "--scope needs a value"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--output", "jsonl", "--output", "grpc"}, "--output given twice"},
  };
  for (const Case& c : cases) {
    auto flags = ParseSensorFlags(c.args);
    ASSERT_FALSE(flags.ok()) << c.message;
    EXPECT_TRUE(flags.status().IsInvalidArgument());
    EXPECT_EQ(flags.status().message(), c.message);
  }
}

TEST(SensorFlagsTest, BadValuesAreRejected) {
  EXPECT_FALSE(Resolve({"--aggregator", "nocolon"}).ok());
  EXPECT_FALSE(Resolve({"--aggregator", "h:1", "--scope", "galaxy"}).ok());
  EXPECT_FALSE(Resolve({"--aggregator", "h:1", "--output", "xml"}).ok());
  EXPECT_FALSE(Resolve({"--aggregator", "h:1", "--log-level", "loud"}).ok());
  auto no_aggregator = Resolve({"--output", "grpc"});
  ASSERT_FALSE(no_aggregator.ok());
  EXPECT_NE(no_aggregator.status().message().find("--aggregator"), std::string::npos);
  // jsonl needs no aggregator.
  auto jsonl = Resolve({"--output", "jsonl", "--scope", "uts"});
  ASSERT_TRUE(jsonl.ok()) << jsonl.status().ToString();
  EXPECT_EQ(jsonl->output, OutputMode::kJsonl);
  EXPECT_EQ(jsonl->scope, Scope::kUts);
  EXPECT_EQ(jsonl->health_interval_s, 10u);
  EXPECT_EQ(jsonl->posture_interval_s, 300u);
  EXPECT_EQ(jsonl->host_root, "/");
  EXPECT_EQ(Resolve({"--output", "jsonl", "--host-root", "/host/"})->host_root, "/host");
  EXPECT_FALSE(Resolve({"--output", "jsonl", "--host-root", "host"}).ok());
  // /metrics: off unless asked; a bare port is on loopback.
  EXPECT_FALSE(jsonl->metrics.has_value());
  EXPECT_EQ(Resolve({"--output", "jsonl", "--metrics", "9465"})->metrics->ToString(),
            "127.0.0.1:9465");
  EXPECT_EQ(Resolve({"--output", "jsonl", "--metrics", "0.0.0.0:9465"})->metrics->ToString(),
            "0.0.0.0:9465");
  EXPECT_FALSE(Resolve({"--output", "jsonl", "--metrics", "nope"}).ok());
}

TEST(SensorConfigTest, FlagsWinOverTheFile) {
  TempTree tree;
  tree.Write("/sensor.textproto",
             "aggregator: \"10.0.0.1:7000\"\n"
             "scope: \"uts\"\n"
             "host_name: \"from-file\"\n"
             "health_interval_s: 5\n"
             "extra_sensitive_paths { match: MATCH_PREFIX path: \"/srv/secrets/\" }\n");
  std::string path = tree.root() + "/sensor.textproto";
  auto s = Resolve({"--config", path, "--scope", "host", "--aggregator", "127.0.0.1:9"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->aggregator->ToString(), "127.0.0.1:9");
  EXPECT_EQ(s->scope, Scope::kHost);
  EXPECT_EQ(s->host_name, "from-file");
  EXPECT_EQ(s->health_interval_s, 5u);
  EXPECT_FALSE(s->replace_default_paths);
  ASSERT_EQ(s->sensitive_paths.size(), 1u);
  EXPECT_EQ(s->sensitive_paths[0].match, PathRuleSetting::Match::kPrefix);
  EXPECT_EQ(s->config.aggregator(), "127.0.0.1:9");  // what delivery sees
}

TEST(SensorConfigTest, FileErrorsCarryLineAndColumn) {
  TempTree tree;
  tree.Write("/bad.textproto", "aggregator: \"h:1\"\nhealth_intervall_s: 5\n");
  auto s = Resolve({"--config", tree.root() + "/bad.textproto"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("health_intervall_s"), std::string::npos)
      << s.status().ToString();
  EXPECT_NE(s.status().message().find(":2:"), std::string::npos) << s.status().ToString();

  tree.Write("/rel.textproto",
             "aggregator: \"h:1\"\nsensitive_paths { match: MATCH_EXACT path: \"etc/x\" }\n");
  auto rel = Resolve({"--config", tree.root() + "/rel.textproto"});
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.status().message().find("sensitive_paths[0]"), std::string::npos);

  EXPECT_TRUE(Resolve({"--config", tree.root() + "/missing"}).status().IsNotFound());
}

}  // namespace
}  // namespace tripline::sensor

namespace tripline::sensor {
namespace {

TEST(SensorSettingsTest, ClearTextOffLoopbackIsAWarning) {
  auto off = Resolve({"--aggregator", "198.51.100.7:4317"});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  ASSERT_EQ(off->warnings.size(), 1u);
  EXPECT_NE(off->warnings[0].find("events go to 198.51.100.7:4317 in clear text"),
            std::string::npos)
      << off->warnings[0];

  auto loopback = Resolve({"--aggregator", "127.0.0.1:4317"});
  ASSERT_TRUE(loopback.ok());
  EXPECT_TRUE(loopback->warnings.empty());

  auto jsonl = Resolve({"--aggregator", "198.51.100.7:4317", "--output", "jsonl"});
  ASSERT_TRUE(jsonl.ok());
  EXPECT_TRUE(jsonl->warnings.empty());  // nothing leaves the host

  TempTree tree;
  tree.Write("/sensor.textproto", "tls { ca_file: \"/etc/tripline/ca.pem\" }\n");
  auto tls =
      Resolve({"--aggregator", "198.51.100.7:4317", "--config", tree.root() + "/sensor.textproto"});
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  EXPECT_TRUE(tls->warnings.empty());
}

}  // namespace
}  // namespace tripline::sensor
