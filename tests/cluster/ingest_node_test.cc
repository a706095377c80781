// tripline-aggregator --ingest-node: the real binary as two ingest nodes of three
// nats-server processes clustered on loopback, a sensor's stream moving from one to the
// other, the events read back from the cluster; and the flags' errors.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <optional>
#include <set>

#include "aggregator/cluster/stream_sink.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_fixture.h"
#include "tests/cluster/stream_reader.h"
#include "tests/support/metrics_scrape.h"

namespace tripline::cluster {
namespace {

using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::NatsCluster;
using testing::RunCommand;
using testing::TempDir;

// A tripline-aggregator ingest node on 127.0.0.1:0; its address once it said so.
struct Node {
  Node(const std::string& servers, const std::string& log, bool metrics_too = false)
      : child(
            [&] {
              std::vector<std::string> args{BinPath("tripline-aggregator"),
                                            "--ingest-node",
                                            servers,
                                            "--listen",
                                            "127.0.0.1:0",
                                            "--config",
                                            "/dev/null"};
              if (metrics_too) args.insert(args.end(), {"--metrics", "127.0.0.1:0"});
              return args;
            }(),
            log) {
    const auto line = child.ReadLine(30000);
    if (line && line->rfind("listening on ", 0) == 0) address = line->substr(13);
    if (metrics_too) {
      const auto next = child.ReadLine(30000);
      if (next && next->rfind("metrics on ", 0) == 0) metrics = next->substr(11);
    }
  }
  Child child;
  std::string address, metrics;
};

TEST(IngestNodeTest, TwoNodesTakeOneSensorsStreamInTurnAndStopCleanly) {
  std::unique_ptr<NatsCluster> nats;
  ASSERT_NO_FATAL_FAILURE(testing::StartNatsCluster(&nats));
  if (::testing::Test::IsSkipped()) return;
  TempDir dir;
  Node a(nats->url_list(), dir.Sub("a.log"));
  ASSERT_FALSE(a.address.empty()) << testing::ReadWholeFile(dir.Sub("a.log"));
  Node b(nats->url(2), dir.Sub("b.log"), /*metrics_too=*/true);  // one server: it learns the rest
  ASSERT_FALSE(b.address.empty()) << testing::ReadWholeFile(dir.Sub("b.log"));
  ASSERT_FALSE(b.metrics.empty()) << testing::ReadWholeFile(dir.Sub("b.log"));

  const std::vector<Event> events = testing::SyntheticEvents(600, 3, 4);
  {
    IngestClient client(a.address);
    ASSERT_TRUE(client.Hello("sensor-p").has_value());
    for (size_t i = 0; i < 400; i += 100) {
      auto ack = client.Batch("sensor-p", i + 1, {events.begin() + i, events.begin() + i + 100});
      ASSERT_TRUE(ack.has_value()) << client.Finish().error_message();
      EXPECT_EQ(ack->durable_seq(), i + 100);
    }
  }
  // Node a stops (SIGTERM: exit 0); the sensor reconnects to b and resends from 301.
  a.child.Signal(SIGTERM);
  EXPECT_EQ(a.child.Wait(15000), 0) << testing::ReadWholeFile(dir.Sub("a.log"));
  {
    IngestClient client(b.address);
    auto hello = client.Hello("sensor-p");
    ASSERT_TRUE(hello.has_value());
    EXPECT_EQ(hello->durable_seq(), 400u);
    for (size_t i = 300; i < 600; i += 100) {
      auto ack = client.Batch("sensor-p", i + 1, {events.begin() + i, events.begin() + i + 100});
      ASSERT_TRUE(ack.has_value()) << client.Finish().error_message();
      EXPECT_EQ(ack->durable_seq(), i + 100);
    }
    // While the sensor streams to b, b's metrics say so, and what b wrote: 401-600 new,
    // 301-400 resent.
    const std::string text = testing::HttpGet(b.metrics);
    EXPECT_EQ(testing::MetricSample(text, "tripline_ingest_node_events_total"), 200.0) << text;
    EXPECT_EQ(testing::MetricSample(text, "tripline_ingest_node_duplicates_dropped_total"), 100.0);
    EXPECT_EQ(testing::MetricSample(text, "tripline_ingest_node_batches_total"), 3.0);
    EXPECT_EQ(testing::MetricSample(text, "tripline_ingest_node_batches_rejected_total"), 0.0);
    EXPECT_EQ(testing::MetricSample(text, "tripline_ingest_node_sensors_connected"), 1.0);
    EXPECT_NE(text.find("\ntripline_ingest_node_sensor_connected{sensor=\"sensor-p\","),
              std::string::npos);
    std::ofstream(dir.Sub("b.metrics")) << text;
    const testing::RunResult check = RunCommand(
        {"/bin/sh", "-c", "/usr/bin/promtool check metrics < '" + dir.Sub("b.metrics") + "' 2>&1"});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  }
  b.child.Signal(SIGTERM);
  EXPECT_EQ(b.child.Wait(15000), 0) << testing::ReadWholeFile(dir.Sub("b.log"));

  ClusterOptions o;
  o.servers = nats->urls();
  auto js = JetStream::Connect(o);
  ASSERT_TRUE(js.ok()) << js.status().ToString();
  const auto got = testing::ReadEventsStream(**js, "check", 600);
  ASSERT_EQ(got.size(), 600u);
  for (size_t seq = 1; seq <= 600; ++seq) {
    const auto it = got.find({"sensor-p", seq});
    EXPECT_TRUE(it != got.end() && it->second.size() == 1u) << "lost or twice: " << seq;
  }
}

TEST(IngestNodeTest, BadClusterFlagsAndAnUnreachableClusterAreClearErrors) {
  const std::string bin = BinPath("tripline-aggregator");
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--ingest-node", "", "--listen", "127.0.0.1:0"}, 2, "--ingest-node wants"},
      {{"--ingest-node", "http://127.0.0.1:4222", "--listen", "127.0.0.1:0"},
       2,
       "'http://127.0.0.1:4222' is not nats://HOST:PORT"},
      {{"--ingest-node", "nats://127.0.0.1", "--listen", "127.0.0.1:0"}, 2, "is not nats://"},
      {{"--ingest-node", "nats://127.0.0.1:1", "--listen", "127.0.0.1:0"},
       1,
       "connecting to nats://127.0.0.1:1"},
      // Workers: a data directory, one role, a valid name.
      {{"--worker", "", "--listen", "127.0.0.1:0"}, 2, "--worker wants"},
      {{"--worker", "nats://127.0.0.1:1", "--listen", "127.0.0.1:0"}, 2, "--data-dir is required"},
      {{"--worker", "nats://127.0.0.1:1", "--ingest-node", "nats://127.0.0.1:1", "--listen",
        "127.0.0.1:0", "--data-dir", "/nonexistent"},
       2,
       "one or the other"},
      {{"--worker", "tls://127.0.0.1:1", "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent"},
       2,
       "is not nats://"},
      {{"--worker", "nats://127.0.0.1:1", "--listen", "127.0.0.1:0", "--data-dir", dir.Sub("w")},
       1,
       "connecting to nats://127.0.0.1:1"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {bin};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto r = RunCommand(argv, 30000);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args[1] << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args[1] << "\n" << r.err;
  }
}

}  // namespace
}  // namespace tripline::cluster
