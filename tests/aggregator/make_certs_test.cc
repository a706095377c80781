// scripts/make-certs end to end: the certificates it makes serve the real aggregator with
// mutual TLS, a sensor certificate ingests through the real DeliveryClient, an operator
// certificate queries with the real triplinectl, and neither may do the other's part.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "sensor/delivery/delivery_client.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"

namespace tripline {
namespace {

using testing::BinPath;
using testing::Child;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::TempDir;

TEST(MakeCertsTest, CertificatesServeSensorsAndOperators) {
  TempDir dir;
  const std::string certs = dir.Sub("certs");
  const auto made = RunCommand({std::string(TRIPLINE_SOURCE_DIR) + "/scripts/make-certs", certs,
                                "--aggregator", "localhost", "--aggregator", "127.0.0.1",
                                "--sensor", "web-1", "--operator", "alice"});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  for (const char* f : {"ca.pem", "aggregator.pem", "aggregator-key.pem", "sensor-web-1.pem",
                        "sensor-web-1-key.pem", "operator-alice.pem", "operator-alice-key.pem"}) {
    EXPECT_FALSE(ReadWholeFile(certs + "/" + f).empty()) << f;
  }

  const std::string config = dir.Sub("aggregator.textproto");
  std::ofstream(config) << "tls {\n  cert_file: \"" << certs << "/aggregator.pem\"\n  key_file: \""
                        << certs << "/aggregator-key.pem\"\n  ca_file: \"" << certs
                        << "/ca.pem\"\n}\n";
  Child agg({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
             dir.Sub("data"), "--config", config},
            dir.Sub("aggregator.err"));
  const auto line = agg.ReadLine(30000);
  ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0)
      << ReadWholeFile(dir.Sub("aggregator.err"));
  const std::string address = line->substr(strlen("listening on "));

  // A sensor of host web-1 with its own certificate.
  delivery::DeliveryOptions o;
  o.target = address;
  o.spool.dir = dir.Sub("spool");
  o.host = "web-1";
  o.host_id = "id-web-1";
  o.version = "make-certs-test";
  o.batch_max_delay_ms = 10;
  o.tls.enabled = true;
  o.tls.ca_file = certs + "/ca.pem";
  o.tls.cert_file = certs + "/sensor-web-1.pem";
  o.tls.key_file = certs + "/sensor-web-1-key.pem";
  o.tls.server_name = "localhost";
  constexpr size_t kN = 20;
  std::vector<Event> events = testing::DistinctEvents(kN);
  for (Event& e : events) e.host = "web-1";
  {
    auto client = delivery::DeliveryClient::Create(o, SystemClock::Get());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    for (const Event& e : events) ASSERT_TRUE((*client)->Submit(e).ok());
    const Status flushed =
        (*client)->Flush(SystemClock::Get().MonotonicNs() + 30 * kNanosPerSecond);
    EXPECT_TRUE(flushed.ok()) << flushed.ToString() << "; " << (*client)->Stats().last_error;
    EXPECT_EQ((*client)->Stats().durable_seq, kN);
    (*client)->Stop();
  }

  const std::vector<std::string> ctl = {BinPath("triplinectl"), "--aggregator",  address,    "--ca",
                                        certs + "/ca.pem",      "--server-name", "localhost"};
  auto with = [&](const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> argv = ctl;
    argv.insert(argv.end(),
                {"--cert", certs + "/" + who + ".pem", "--key", certs + "/" + who + "-key.pem"});
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  const auto listed = with("operator-alice", {"events", "--limit", "100", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto j = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << listed.out;
  EXPECT_EQ(j.size(), kN);
  for (const auto& e : j) EXPECT_EQ(e.value("host", ""), "web-1") << e.dump();

  // The sensor's certificate reads nothing.
  const auto denied = with("sensor-web-1", {"events", "--json"});
  EXPECT_EQ(denied.exit_code, 1) << denied.out << denied.err;
  EXPECT_NE(denied.err.find("tripline:role:operator"), std::string::npos) << denied.err;
  // Without a certificate nobody gets in.
  std::vector<std::string> anonymous = ctl;
  anonymous.insert(anonymous.end(), {"stats"});
  EXPECT_NE(RunCommand(anonymous).exit_code, 0);

  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(20000), std::optional<int>(0)) << ReadWholeFile(dir.Sub("aggregator.err"));
}

}  // namespace
}  // namespace tripline
