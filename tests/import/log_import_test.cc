// triplinectl import against a real aggregator: RocksDB in a temp dir, the ingest and query
// services on 127.0.0.1:0 and the correlator. Counts what the store holds after imports.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"
#include "tools/ctl/ctl_commands.h"
#include "tools/import/log_importer.h"

namespace tripline {
namespace {

using testing::TempDir;

constexpr char kLog[] =
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 192.0.2.66\n"
    "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication failure; logname= "
    "uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.66 \n"
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from "
    "192.0.2.66 port 38926 ssh2\n"
    "Dec 10 06:55:48 LabSZ sshd[24200]: Connection closed by 192.0.2.66 [preauth]\n"
    "Dec 10 07:13:43 LabSZ sshd[24227]: Failed password for root from 192.0.2.77 port 42393 ssh2\n"
    "Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed password for root from "
    "192.0.2.77 port 42393 ssh2]\n"
    "Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 198.51.100.142 port 49116 "
    "ssh2\n"
    "Dec 10 09:32:20 LabSZ sshd[24680]: pam_unix(sshd:session): session opened for user fztu by "
    "(uid=0)\n"
    "Dec 10 09:40:00 LabSZ sshd[24680]: something this parser has never seen\n"
    "Dec 10 09:45:06 LabSZ sshd[24680]: pam_unix(sshd:session): session closed for user fztu\n";
constexpr uint64_t kLogEvents = 1 + 1 + 1 + 1 + 5 + 1 + 1 + 1;

class LogImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksDbStore::Open({.path = dir_.Sub("db")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto engine = CorrelationEngine::Open(store_.get(), {}, SystemClock::Get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    AggregatorServerOptions options;
    options.listen = HostPort{"127.0.0.1", 0};
    auto server = AggregatorServer::Start(options, store_.get(), engine_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(kNanosPerSecond);
    engine_.reset();
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.Sub(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  int Ctl(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
    std::ostringstream o, e;
    std::vector<std::string> all = {"--aggregator", server_->address().ToString()};
    all.insert(all.end(), args.begin(), args.end());
    const int rc = ctl::RunCtl(all, o, e);
    if (out) *out = o.str();
    if (err) *err = e.str();
    return rc;
  }

  uint64_t StoredEvents() {
    auto n = store_->CountEvents({});
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 0;
  }

  TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<CorrelationEngine> engine_;
  std::unique_ptr<AggregatorServer> server_;
};

TEST_F(LogImportTest, ReimportStoresNothingTwice) {
  const std::string path = Write("auth.log", kLog);
  std::string out, err;
  ASSERT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "labsz", "--year", "2025", path},
                &out, &err),
            0)
      << out << err;
  EXPECT_NE(out.find("newly stored         " + std::to_string(kLogEvents)), std::string::npos)
      << out;
  EXPECT_NE(out.find("not understood       1"), std::string::npos) << out;
  EXPECT_NE(out.find("line 9: sshd message not understood"), std::string::npos) << out;
  EXPECT_EQ(StoredEvents(), kLogEvents);

  // The same file again, and a copy of it under another name: nothing new.
  ASSERT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "labsz", "--year", "2025", path},
                &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("already stored       " + std::to_string(kLogEvents)), std::string::npos)
      << out;
  EXPECT_NE(out.find("newly stored         0"), std::string::npos) << out;
  const std::string copy = Write("auth.log.copy", kLog);
  ASSERT_EQ(Ctl({"import", "--format=sshd-syslog", "--host=labsz", "--year=2025", copy}), 0);
  EXPECT_EQ(StoredEvents(), kLogEvents);

  // The log grew: only the new lines' events are added.
  Write("auth.log", std::string(kLog) +
                        "Dec 10 10:00:00 LabSZ sshd[1]: Failed password for root from "
                        "192.0.2.78 port 1 ssh2\n");
  ASSERT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "labsz", "--year", "2025", path}),
            0);
  EXPECT_EQ(StoredEvents(), kLogEvents + 1);

  // Another host's log with the same lines is another sensor.
  ASSERT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "other", "--year", "2025", path}),
            0);
  EXPECT_EQ(StoredEvents(), 2 * (kLogEvents + 1));
  auto labsz = store_->CountEvents({.host = "labsz"});
  ASSERT_TRUE(labsz.ok());
  EXPECT_EQ(*labsz, kLogEvents + 1);
}

TEST_F(LogImportTest, ImportedEventsAreWhatTheQueryServiceShows) {
  const std::string path = Write("auth.log", kLog);
  ASSERT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "labsz", "--year", "2025", path}),
            0);
  std::string out, err;
  ASSERT_EQ(
      Ctl({"events", "--host", "labsz", "--user", "fztu", "--limit", "0", "--json"}, &out, &err), 0)
      << err;
  const auto events = nlohmann::json::parse(out);
  ASSERT_EQ(events.size(), 3u) << out;
  EXPECT_EQ(events[0]["login"]["remote_addr"], "198.51.100.142");
  EXPECT_EQ(events[0]["time"], "2025-12-10T09:32:20.000Z");
  EXPECT_EQ(events[1]["session"], events[2]["session"]);
  EXPECT_EQ(events[0]["sensor_id"].get<std::string>().rfind("import-", 0), 0u);
}

TEST_F(LogImportTest, ExitCodesSayWhatWentWrong) {
  std::string out, err;
  // Unreadable file.
  EXPECT_EQ(
      Ctl({"import", "--format", "sshd-syslog", "--host", "h", dir_.Sub("missing")}, &out, &err),
      2);
  EXPECT_NE(err.find("cannot read"), std::string::npos) << err;
  // Usage.
  EXPECT_EQ(Ctl({"import", "--host", "h", dir_.Sub("x")}, &out, &err), 2);
  EXPECT_NE(err.find("--format"), std::string::npos);
  EXPECT_EQ(Ctl({"import", "--format", "sshd-syslog", dir_.Sub("x")}, &out, &err), 2);
  EXPECT_EQ(
      Ctl({"import", "--format", "sshd-syslog", "--host", "h", "--year", "20x6", "f"}, &out, &err),
      2);
  EXPECT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "h\xff", "f"}, &out, &err), 2);
  EXPECT_NE(err.find("--host wants a host name"), std::string::npos) << err;
  // The wrong format: nothing in the file is a line of it.
  const std::string path = Write("auth.log", kLog);
  EXPECT_EQ(Ctl({"import", "--format", "journal-json", "--host", "h", path}, &out, &err), 4);
  EXPECT_NE(err.find("is --format right?"), std::string::npos) << err;
  EXPECT_NE(out.find("malformed            10"), std::string::npos) << out;
  // The aggregator is gone: exit 6 (unreachable), and the import can be run again later.
  server_->Shutdown(kNanosPerSecond);
  const std::string address = server_->address().ToString();
  server_.reset();
  std::ostringstream o, e;
  EXPECT_EQ(ctl::RunCtl({"--aggregator", address, "--timeout", "2s", "import", "--format",
                         "sshd-syslog", "--host", "h", path},
                        o, e),
            6);
  EXPECT_NE(e.str().find("import:"), std::string::npos) << e.str();
}

TEST_F(LogImportTest, RejectedBatchesAreCountedShownAndExitThree) {
  // An aggregator that takes at most 4 events per batch refuses the import's batch of 12.
  server_->Shutdown(kNanosPerSecond);
  AggregatorServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.ingest.max_batch_events = 4;
  auto server = AggregatorServer::Start(options, store_.get(), engine_.get());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  server_ = std::move(server).value();
  const std::string path = Write("auth.log", kLog);
  std::string out, err;
  EXPECT_EQ(Ctl({"import", "--format", "sshd-syslog", "--host", "labsz", "--year", "2025", path},
                &out, &err),
            3)
      << out << err;
  EXPECT_NE(out.find("rejected             " + std::to_string(kLogEvents)), std::string::npos)
      << out;
  EXPECT_NE(out.find("batches the aggregator rejected:\n  seq 1: "), std::string::npos) << out;
  EXPECT_EQ(StoredEvents(), 0u);
}

TEST_F(LogImportTest, DryRunNeedsNoAggregator) {
  const std::string path = Write("auth.log", kLog);
  std::ostringstream o, e;
  ASSERT_EQ(ctl::RunCtl({"import", "--dry-run", "--format", "sshd-syslog", "--host", "labsz",
                         "--year", "2025", path},
                        o, e),
            0)
      << e.str();
  EXPECT_NE(o.str().find("events                 " + std::to_string(kLogEvents)), std::string::npos)
      << o.str();
  EXPECT_EQ(StoredEvents(), 0u);

  std::ostringstream jo, je;
  ASSERT_EQ(ctl::RunCtl({"import", "--dry-run", "--json", "--format", "sshd-syslog", "--host",
                         "labsz", "--year", "2025", path},
                        jo, je),
            0)
      << je.str();
  const auto j = nlohmann::json::parse(jo.str());
  EXPECT_EQ(j["events"], kLogEvents);
  EXPECT_EQ(j["lines"], 10);
  EXPECT_EQ(j["lines_unrecognized"], 1);
  EXPECT_EQ(j["unrecognized_examples"][0]["line"], 9);
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["sensor_id"].get<std::string>().rfind("import-", 0), 0u);
}

TEST(ImportSensorId, StableUnderAppendsAndDistinctPerHostAndHead) {
  const std::string head = "line one\nline two\n";
  const auto id = import::ImportSensorId(import::LogFormat::kSshdSyslog, "h", head);
  EXPECT_EQ(id.rfind("import-", 0), 0u);
  EXPECT_EQ(id.size(), 7u + 32u);
  EXPECT_EQ(id, import::ImportSensorId(import::LogFormat::kSshdSyslog, "h", head + "line thr"));
  EXPECT_NE(id, import::ImportSensorId(import::LogFormat::kSshdSyslog, "h2", head));
  EXPECT_NE(id, import::ImportSensorId(import::LogFormat::kJournalJson, "h", head));
  EXPECT_NE(id, import::ImportSensorId(import::LogFormat::kSshdSyslog, "h", "line one\nline 2\n"));
}

}  // namespace
}  // namespace tripline
