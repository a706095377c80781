// Sigma rules end to end, unprivileged: the real tripline-aggregator with --rules, events
// of a chain hosta -> hostb sent over the real ingest protocol, then on hostb a command a
// community rule targets (History File Deletion, SigmaHQ). The chain's incident names the
// rule; `triplinectl rules` lists it with its hit; `triplinectl rules test` runs a rule on
// recorded events. Where the reference rules (../shared/data/sigma) are absent, the test
// writes a rule of the same detection into its own directory.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "model/event_json.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"
#include "tests/rules/history_rule.h"

namespace tripline {
namespace {

using correlate::testing::Delivery;
using correlate::testing::StoryBuilder;
using nlohmann::json;
using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::kHistoryRule;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

std::string RulesDir(const TempDir& dir) {
#ifndef TRIPLINE_WITHOUT_SHARED_DATA
  (void)dir;
  return std::string(TRIPLINE_SHARED_DATA) + "/sigma";
#else
  const std::string d = dir.Sub("rules");
  std::filesystem::create_directories(d);
  std::ofstream(d + "/history.yml") << kHistoryRule;
  return d;
#endif
}

std::vector<Delivery> Story() {
  StoryBuilder b;
  std::vector<Delivery> s;
  s.push_back(b.Login("hosta", "alice", "198.18.0.66", 40010, "audit:1", 1));
  s.push_back(b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 10));
  s.push_back(b.Accept("hostb", 22, "198.18.0.11", 50001, 10.1));
  s.push_back(b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 11));
  Delivery rm = b.Exec("hostb", "audit:5", "alice", 1000, "/usr/bin/rm", 20);
  rm.event.As<ExecEvent>()->argv = {"rm", "-f", "/home/alice/.bash_history"};
  s.push_back(rm);
  const int64_t shift = SystemClock::Get().NowNs() - 30 * kNanosPerSecond - StoryBuilder::At(20);
  for (Delivery& d : s) d.event.time_ns += shift;
  return s;
}

TEST(RulesEndToEnd, ACommunityRuleOnHostBRaisesTheChainFromA) {
  TempDir dir;
  const std::string rules = RulesDir(dir);
  Child agg({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
             dir.Sub("data"), "--rules", rules},
            dir.Sub("aggregator.err"));
  const auto line = agg.ReadLine(20000);
  ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0)
      << ReadWholeFile(dir.Sub("aggregator.err"));
  const std::string address = line->substr(strlen("listening on "));
  auto ctl = [&](const std::vector<std::string>& args) { return testing::RunCtl(address, args); };

  std::map<std::string, std::vector<Event>> by_sensor;
  for (const Delivery& d : Story()) by_sensor[d.sensor].push_back(d.event);
  for (const auto& [sensor, events] : by_sensor) {
    IngestClient client(address);
    ASSERT_TRUE(client.Hello(sensor));
    const auto ack = client.Batch(sensor, events.front().seq, events);
    ASSERT_TRUE(ack && ack->error().empty()) << (ack ? ack->DebugString() : "no ack");
    EXPECT_TRUE(client.Finish().ok());
  }
  json incident;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (incident.is_null() && std::chrono::steady_clock::now() < deadline) {
    RunResult r = ctl({"incidents", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const json& i : json::parse(r.out)) {
      if (i.value("title", "").find("History File Deletion") != std::string::npos) incident = i;
    }
    if (incident.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(incident.is_null()) << ctl({"incidents", "--json"}).out;
  EXPECT_EQ(incident["hosts"], json::array({"hosta", "hostb"})) << incident.dump(2);
  EXPECT_NE(std::find(incident["techniques"].begin(), incident["techniques"].end(), "T1565.001"),
            incident["techniques"].end())
      << incident.dump(2);
  EXPECT_NE(incident["explanation"].dump().find("Sigma rule \\\"History File Deletion\\\""),
            std::string::npos)
      << incident.dump(2);

  // The rule is listed with its hit.
  RunResult list = ctl({"rules", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json rules_json = json::parse(list.out);
  bool found = false;
  for (const json& r : rules_json["rules"]) {
    if (r["title"] == "History File Deletion") {
      found = true;
      EXPECT_EQ(r["state"], "loaded");
      EXPECT_EQ(r["hits"], 1);
    }
  }
  EXPECT_TRUE(found) << list.out;
  RunResult table = ctl({"rules"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("History File Deletion"), std::string::npos);

  // SIGHUP reloads; the aggregator keeps running.
  agg.Signal(SIGHUP);
  EXPECT_EQ(ctl({"rules", "--json"}).exit_code, 0);

  // An author's test bench: the rule on recorded events.
  std::ofstream(dir.Sub("rule.yml")) << kHistoryRule;
  {
    std::ofstream ev(dir.Sub("events.jsonl"));
    for (const Delivery& d : Story()) ev << EventToJson(d.event).dump() << "\n";
  }
  RunResult test = RunCommand({BinPath("triplinectl"), "rules", "test", dir.Sub("rule.yml"),
                               "--events", dir.Sub("events.jsonl")});
  EXPECT_EQ(test.exit_code, 0) << test.err;
  EXPECT_NE(test.out.find("events.jsonl:5: History File Deletion"), std::string::npos) << test.out;
  EXPECT_NE(test.out.find("1 matches in 5 lines"), std::string::npos) << test.out;
  std::ofstream(dir.Sub("broken.yml"))
      << "title: x\nlogsource:\n  product: linux\n  category: process_creation\n"
         "detection:\n  sel:\n    Image|nope: x\n  condition: sel\n";
  RunResult broken = RunCommand({BinPath("triplinectl"), "rules", "test", dir.Sub("broken.yml"),
                                 "--events", dir.Sub("events.jsonl")});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.err.find("broken.yml:7"), std::string::npos) << broken.err;

  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(20000), std::optional<int>(0)) << ReadWholeFile(dir.Sub("aggregator.err"));
}

TEST(RulesEndToEnd, AnUnreadableRulesDirectoryIsAnError) {
  TempDir dir;
  RunResult r = RunCommand({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
                            dir.Sub("data"), "--rules", dir.Sub("missing")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--rules: rules directory"), std::string::npos) << r.err;
  // The configuration file's rules_dir works like the flag.
  std::ofstream(dir.Sub("agg.conf")) << "rules_dir: \"" << dir.Sub("missing2") << "\"\n";
  r = RunCommand({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
                  dir.Sub("data"), "--config", dir.Sub("agg.conf")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing2"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tripline
