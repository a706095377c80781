// /metrics of the real tripline-aggregator and tripline-sensor binaries, scraped by a real
// Prometheus (Debian's prometheus) that the test starts with a config of its own on
// loopback: both targets are up, the values are the ones Tripline reports, and
// `promtool check metrics` finds nothing wrong in either output. The sensor loads its BPF
// programs, so this needs root (label root).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/metrics/metrics_text.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"
#include "tests/support/metrics_scrape.h"

namespace tripline {
namespace {

using correlate::testing::Delivery;
using correlate::testing::StoryBuilder;
using nlohmann::json;
using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

// A free loopback port for Prometheus's own listener (it cannot report one it picked).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// `promtool check metrics` on `text`; its complaints, "" when none.
std::string PromtoolCheck(const std::string& text, const std::string& path) {
  std::ofstream(path) << text;
  const RunResult r =
      RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < '" + path + "' 2>&1"});
  return r.exit_code == 0 ? "" : "exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

TEST(MetricsTest, MetricsTextEscapesLabelValues) {
  MetricsText m;
  m.Family("tripline_test_total", MetricType::kCounter, "Help with a \\ and\na newline.");
  m.Sample("tripline_test_total", 3, {{"host", "a\"b\\c\nd"}});
  EXPECT_EQ(m.text(),
            "# HELP tripline_test_total Help with a \\\\ and\\na newline.\n"
            "# TYPE tripline_test_total counter\n"
            "tripline_test_total{host=\"a\\\"b\\\\c\\nd\"} 3\n");
  TempDir dir;
  EXPECT_EQ(PromtoolCheck(m.text(), dir.Sub("m.txt")), "");
}

// Off by default; the config file's metrics_listen turns it on; a bad address is refused.
TEST(MetricsTest, AggregatorMetricsFromTheConfigFileAndBadAddresses) {
  TempDir dir;
  std::ofstream(dir.Sub("agg.textproto")) << "metrics_listen: \"127.0.0.1:0\"\n";
  Child agg({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
             dir.Sub("data"), "--config", dir.Sub("agg.textproto")},
            dir.Sub("aggregator.err"));
  ASSERT_TRUE(agg.ReadLine(20000)) << ReadWholeFile(dir.Sub("aggregator.err"));
  const auto line = agg.ReadLine(5000);
  ASSERT_TRUE(line && line->rfind("metrics on 127.0.0.1:", 0) == 0)
      << ReadWholeFile(dir.Sub("aggregator.err"));
  const std::string text = testing::HttpGet(line->substr(strlen("metrics on ")), "/metrics");
  EXPECT_NE(text.find("tripline_aggregator_incidents{severity=\"critical\"} 0"), std::string::npos)
      << text;
  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(20000), std::optional<int>(0)) << ReadWholeFile(dir.Sub("aggregator.err"));

  for (const char* bad : {"nope", "127.0.0.1:99999", ""}) {
    const RunResult r = RunCommand({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0",
                                    "--data-dir", dir.Sub("data"), "--metrics", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find("--metrics"), std::string::npos) << r.err;
  }
  // Without --metrics nothing more than "listening on" is printed.
  Child plain(
      {BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir", dir.Sub("data2")},
      dir.Sub("plain.err"));
  ASSERT_TRUE(plain.ReadLine(20000));
  plain.Signal(SIGTERM);
  EXPECT_FALSE(plain.ReadLine(5000).has_value());
  EXPECT_EQ(plain.Wait(20000), std::optional<int>(0));
}

TEST(MetricsTest, PrometheusScrapesAggregatorAndSensor) {
  ASSERT_EQ(geteuid(), 0u) << "the sensor loads BPF programs: run as root";
  TempDir dir;
  Child agg({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
             dir.Sub("data"), "--metrics", "127.0.0.1:0"},
            dir.Sub("aggregator.err"));
  const auto listening = agg.ReadLine(20000);
  ASSERT_TRUE(listening && listening->rfind("listening on ", 0) == 0)
      << ReadWholeFile(dir.Sub("aggregator.err"));
  const std::string address = listening->substr(strlen("listening on "));
  const auto metrics_line = agg.ReadLine(5000);
  ASSERT_TRUE(metrics_line && metrics_line->rfind("metrics on 127.0.0.1:", 0) == 0)
      << ReadWholeFile(dir.Sub("aggregator.err"));
  const std::string agg_metrics = metrics_line->substr(strlen("metrics on "));

  // The seed story from a "sensor" of the test: events and a critical incident to count.
  StoryBuilder b;
  std::vector<Event> events;
  const int64_t shift = SystemClock::Get().NowNs() - 60 * kNanosPerSecond - StoryBuilder::At(31);
  for (int i = 0; i < 5; ++i)
    events.push_back(b.Failure("hosta", "alice", "198.18.0.66", 40001 + i, i).event);
  events.push_back(b.Login("hosta", "alice", "198.18.0.66", 40010, "audit:1", 7.2).event);
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].time_ns += shift;
    events[i].seq = i + 1;
  }
  {
    IngestClient client(address);
    ASSERT_TRUE(client.Hello("sensor-story"));
    const auto ack = client.Batch("sensor-story", 1, events);
    ASSERT_TRUE(ack && ack->error().empty()) << (ack ? ack->DebugString() : "no ack");
    ASSERT_TRUE(client.Finish().ok());
  }

  // A real sensor on this host, streaming to the aggregator, with its own /metrics.
  Child sensor({BinPath("tripline-sensor"), "--aggregator", address, "--spool-dir",
                dir.Sub("spool"), "--host-name", "metrics-test-host", "--metrics", "0"},
               dir.Sub("sensor.err"));
  const auto ready = sensor.ReadLine(30000);
  ASSERT_EQ(ready, std::optional<std::string>("sensor ready"))
      << ReadWholeFile(dir.Sub("sensor.err"));
  const auto sensor_line = sensor.ReadLine(5000);
  ASSERT_TRUE(sensor_line && sensor_line->rfind("metrics on 127.0.0.1:", 0) == 0)
      << ReadWholeFile(dir.Sub("sensor.err"));
  const std::string sensor_metrics = sensor_line->substr(strlen("metrics on "));

  // Both outputs pass promtool; the names a dashboard needs are there.
  std::string agg_text, sensor_text;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    agg_text = testing::HttpGet(agg_metrics, "/metrics");
    sensor_text = testing::HttpGet(sensor_metrics, "/metrics");
    if (sensor_text.find("tripline_sensor_hook_family_live{") != std::string::npos &&
        agg_text.find("sensor=\"sensor-story\"") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(PromtoolCheck(agg_text, dir.Sub("agg.txt")), "") << agg_text;
  EXPECT_EQ(PromtoolCheck(sensor_text, dir.Sub("sensor.txt")), "") << sensor_text;
  for (const char* name :
       {"tripline_aggregator_events_stored_total", "tripline_aggregator_ingest_events_per_second",
        "tripline_aggregator_correlation_backlog_events", "tripline_aggregator_incidents{",
        "tripline_aggregator_store_sst_bytes{column_family=\"events\"}",
        "tripline_aggregator_sensor_stream_lag_seconds{",
        "tripline_aggregator_sensors_connected"}) {
    EXPECT_NE(agg_text.find(name), std::string::npos) << name << "\n" << agg_text;
  }
  for (const char* name :
       {"tripline_sensor_events_total{kind=\"login\"}", "tripline_sensor_ringbuf_drops_total",
        "tripline_sensor_hook_families_disabled", "tripline_sensor_spool_events",
        "tripline_sensor_spool_bytes", "tripline_sensor_delivery_connected"}) {
    EXPECT_NE(sensor_text.find(name), std::string::npos) << name << "\n" << sensor_text;
  }
  EXPECT_EQ(testing::HttpGet(agg_metrics, "/other"), "");

  // A real Prometheus scrapes both every second.
  const int port = FreePort();
  const std::string web = "127.0.0.1:" + std::to_string(port);
  std::ofstream(dir.Sub("prometheus.yml"))
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n"
      << "  - job_name: aggregator\n    static_configs:\n      - targets: ['" << agg_metrics
      << "']\n"
      << "  - job_name: sensor\n    static_configs:\n      - targets: ['" << sensor_metrics
      << "']\n";
  Child prometheus({"/usr/bin/prometheus", "--config.file=" + dir.Sub("prometheus.yml"),
                    "--storage.tsdb.path=" + dir.Sub("tsdb"), "--web.listen-address=" + web},
                   dir.Sub("prometheus.err"));
  const auto query = [&](const std::string& promql) {
    httplib::Params params{{"query", promql}};
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1);
    auto r = client.Get("/api/v1/query", params, httplib::Headers{});
    if (!r || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  };
  json up, stored;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    up = query("up == 1");
    stored = query("tripline_aggregator_sensor_events_total{sensor=\"sensor-story\"}");
    if (up.is_object() && up["data"]["result"].size() == 2 && stored.is_object() &&
        stored["data"]["result"].size() == 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(up.is_object()) << ReadWholeFile(dir.Sub("prometheus.err"));
  std::set<std::string> jobs;
  for (const json& r : up["data"]["result"]) jobs.insert(r["metric"].value("job", ""));
  EXPECT_EQ(jobs, (std::set<std::string>{"aggregator", "sensor"})) << up.dump();
  ASSERT_EQ(stored["data"]["result"].size(), 1u) << stored.dump();
  EXPECT_EQ(stored["data"]["result"][0]["value"][1], std::to_string(events.size()))
      << stored.dump();
  const json families = query("tripline_sensor_hook_families_disabled");
  EXPECT_EQ(families["data"]["result"].size(), 1u) << families.dump();

  prometheus.Signal(SIGTERM);
  prometheus.Wait(10000);
  sensor.Signal(SIGTERM);
  EXPECT_EQ(sensor.Wait(10000), std::optional<int>(0)) << ReadWholeFile(dir.Sub("sensor.err"));
  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(20000), std::optional<int>(0)) << ReadWholeFile(dir.Sub("aggregator.err"));
}

}  // namespace
}  // namespace tripline
