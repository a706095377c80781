// Rule hits as stages of the correlator's chains (Correlator::FeedRuleHit): a hit on hostb
// in a session reached from hosta raises the chain's incident, named in its title and
// explanation; a hit outside any session raises nothing; the finding survives a snapshot.
#include <gtest/gtest.h>

#include <algorithm>

#include "aggregator/correlate/correlator.h"
#include "aggregator/rules/sigma.h"
#include "tests/correlate/story_builder.h"

namespace tripline::correlate {
namespace {

using testing::Delivery;
using testing::StoryBuilder;

std::vector<Delivery> Chain(StoryBuilder& b) {
  std::vector<Delivery> s;
  s.push_back(b.Login("hosta", "alice", "198.18.0.66", 40010, "audit:1", 1));
  s.push_back(b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 10));
  s.push_back(b.Accept("hostb", 22, "198.18.0.11", 50001, 10.1));
  s.push_back(b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 11));
  return s;
}

const RuleHit kHistory{"1182f3b3", "History File Deletion", "high", {"T1565.001"}};

TEST(RuleStage, HitOnSecondHostRaisesTheChain) {
  FakeClock clock(StoryBuilder::At(0));
  Correlator c({}, clock);
  StoryBuilder b;
  std::vector<Incident> raised;
  for (const Delivery& d : Chain(b)) {
    clock.SetNs(d.event.time_ns);
    for (Incident& i : c.Handle(d.sensor, d.event)) raised.push_back(std::move(i));
  }
  EXPECT_TRUE(raised.empty()) << "a hop alone is not an incident";
  Delivery rm = b.Exec("hostb", "audit:5", "alice", 1000, "/usr/bin/rm", 20);
  rm.event.As<ExecEvent>()->argv = {"rm", "/home/alice/.bash_history"};
  c.Feed(rm.sensor, rm.event);
  c.FeedRuleHit(rm.sensor, rm.event, kHistory);
  raised = c.TakeChanged();
  ASSERT_EQ(raised.size(), 1u);
  const Incident& in = raised[0];
  EXPECT_EQ(in.hosts, (std::vector<std::string>{"hosta", "hostb"}));
  EXPECT_NE(in.title.find("matched \"History File Deletion\""), std::string::npos) << in.title;
  EXPECT_TRUE(std::count(in.techniques.begin(), in.techniques.end(), "T1565.001"));
  bool named = false;
  for (const std::string& s : in.explanation) {
    named = named || s.find(
                         "Sigma rule \"History File Deletion\" (high, 1182f3b3) matched on "
                         "hostb as alice") != std::string::npos;
  }
  EXPECT_TRUE(named);
  // The same rule on the same host again changes nothing.
  c.FeedRuleHit(rm.sensor, rm.event, kHistory);
  EXPECT_TRUE(c.TakeChanged().empty());

  // Snapshot and restore keep the finding.
  const std::string state = c.SerializeState();
  EXPECT_NE(state.find("History File Deletion"), std::string::npos);
  Correlator restored({}, clock);
  ASSERT_TRUE(restored.RestoreState(state).ok());
  EXPECT_EQ(restored.SerializeState(), state);
}

TEST(RuleStage, LowLevelOrSessionlessHitsDoNotRaise) {
  FakeClock clock(StoryBuilder::At(0));
  Correlator c({}, clock);
  StoryBuilder b;
  Delivery login = b.Login("hosta", "bob", "198.18.0.70", 40010, "audit:3", 1);
  c.Handle(login.sensor, login.event);
  Delivery tar = b.Exec("hosta", "audit:3", "bob", 1001, "/usr/bin/tar", 5);
  c.Feed(tar.sensor, tar.event);
  c.FeedRuleHit(tar.sensor, tar.event, {"x", "Data Compressed", "low", {"T1560.001"}});
  EXPECT_TRUE(c.TakeChanged().empty());
  Delivery cron = b.Exec("hosta", "", "root", 0, "/usr/bin/rm", 6);
  c.Feed(cron.sensor, cron.event);
  c.FeedRuleHit(cron.sensor, cron.event, kHistory);
  EXPECT_TRUE(c.TakeChanged().empty());
}

}  // namespace
}  // namespace tripline::correlate
