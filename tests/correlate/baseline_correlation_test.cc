// The correlator with learned baselines attached: a valid-password login unlike the
// account's history is an attack stage even without failures before it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "aggregator/baseline/baselines.h"
#include "aggregator/baseline/trust_book.h"
#include "aggregator/correlate/correlator.h"
#include "tests/correlate/story_builder.h"

namespace tripline::correlate {
namespace {

using testing::Delivery;
using ::testing::HasSubstr;
using testing::StoryBuilder;

constexpr double kDay = 86400;
constexpr double kHour = 3600;
// StoryBuilder's t = 0 is Wednesday 2026-11-25 03:41:00 UTC.
constexpr double kMidnight = -(3 * kHour + 41 * 60);

class World {
 public:
  World() : correlator_(CorrelatorOptions{}, clock_) { correlator_.AttachBaselines(&baselines_); }
  // With declared identities and agents' trust levels.
  explicit World(std::vector<baseline::IdentityRule> rules)
      : baselines_(baseline::BaselineOptions{}, baseline::IdentityResolver(std::move(rules))),
        correlator_(CorrelatorOptions{}, clock_) {
    correlator_.AttachBaselines(&baselines_);
    correlator_.AttachTrust(&trust_);
  }

  void Feed(const std::vector<Delivery>& stream) {
    for (const Delivery& d : stream) {
      clock_.SetNs(std::max(clock_.NowNs(), d.event.time_ns));
      for (Incident& in : correlator_.Handle(d.sensor, d.event)) latest_[in.id] = std::move(in);
    }
  }

  // Six weeks of alice's ordinary working days: logins to hosta at 09:xx and 14:xx from
  // the office /24 (different addresses in it), weekdays only.
  void WarmUp(StoryBuilder& b) {
    int session = 1000;
    for (int day = 42; day >= 1; --day) {
      const double midnight = kMidnight - day * kDay;
      const int dow = ((3 - day) % 7 + 7) % 7;  // t = 0 is a Wednesday (3)
      if (dow == 0 || dow == 6) continue;
      for (double hour : {9.0, 14.0}) {
        const std::string addr = "198.51.100." + std::to_string(10 + (day + int(hour)) % 9);
        Feed({b.Login("hosta", "alice", addr, 40000 + session % 1000,
                      "audit:" + std::to_string(session), midnight + hour * kHour + 7 * 60)});
        ++session;
      }
    }
    latest_.clear();
  }

  // alice logs in to hosta at `t` from `addr` and hops to hostb a minute later.
  void LoginAndHop(StoryBuilder& b, const std::string& addr, double t) {
    Feed({b.Login("hosta", "alice", addr, 41000, "audit:1", t),
          b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, t + 60),
          b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", t + 61)});
  }

  baseline::Baselines& baselines() { return baselines_; }
  Correlator& correlator() { return correlator_; }
  const std::map<std::string, Incident>& incidents() const { return latest_; }

 private:
  FakeClock clock_;
  baseline::Baselines baselines_;
  baseline::TrustBook trust_;
  Correlator correlator_;
  std::map<std::string, Incident> latest_;
};

std::string Explanation(const Incident& in) {
  std::string s;
  for (const std::string& line : in.explanation) s += line + "\n";
  return s;
}

TEST(BaselineCorrelationTest, NightLoginFromANewNetworkThenAHopRaisesOneIncident) {
  StoryBuilder b;
  World w;
  w.WarmUp(b);
  ASSERT_TRUE(w.baselines().IsWarm({baseline::IdentityKind::kHuman, "alice"}));
  // 03:12 on a Wednesday, from a /24 alice never used, no failure before.
  w.LoginAndHop(b, "203.0.113.9", -29 * 60);
  ASSERT_EQ(w.incidents().size(), 1u);
  const Incident& in = w.incidents().begin()->second;
  const std::string ex = Explanation(in);
  EXPECT_THAT(ex, HasSubstr("203.0.113.0/24"));
  EXPECT_THAT(ex, HasSubstr("03:12"));
  EXPECT_THAT(ex, HasSubstr("09:00-15:00"));
  EXPECT_THAT(in.techniques, ::testing::Contains("T1078"));
  EXPECT_THAT(in.techniques, ::testing::Contains("T1021.004"));
  EXPECT_EQ(in.chain.size(), 1u);
}

TEST(BaselineCorrelationTest, UsualNetworkAtOfficeHoursRaisesNothing) {
  StoryBuilder b;
  World w;
  w.WarmUp(b);
  // 10:00 the same Wednesday, from the office /24.
  w.LoginAndHop(b, "198.51.100.12", kMidnight + 10 * kHour);
  EXPECT_TRUE(w.incidents().empty());
  EXPECT_EQ(w.correlator().stats().hops, 1u);
}

TEST(BaselineCorrelationTest, WithoutWarmUpTheRulesDecide) {
  // No history: the same night login and hop are judged by the rules alone (a first-time
  // source and one hop never raise on their own).
  StoryBuilder b;
  World w;
  w.LoginAndHop(b, "203.0.113.9", -29 * 60);
  EXPECT_TRUE(w.incidents().empty());
}

TEST(BaselineCorrelationTest, TheAttackIsNotLearned) {
  StoryBuilder b;
  World w;
  w.WarmUp(b);
  w.LoginAndHop(b, "203.0.113.9", -29 * 60);
  ASSERT_EQ(w.incidents().size(), 1u);
  // A day of ordinary logins later, everything before is past the learning delay.
  w.Feed({b.Login("hosta", "alice", "198.51.100.12", 42000, "audit:77",
                  kMidnight + kDay + 9 * kHour)});
  auto d = w.baselines().Describe("alice");
  ASSERT_TRUE(d.ok());
  for (const auto& f : d->features) {
    EXPECT_THAT(f.name, ::testing::Not(HasSubstr("203.0.113"))) << f.name;
    EXPECT_NE(f.name, "edge:hosta>hostb");
  }
  EXPECT_GE(w.baselines().stats().withheld_anomalous + w.baselines().stats().withheld_incident, 1u);
}

// Three failures and then the right password from alice's own network at her usual hour
// are a typo; the same from a network she never used are a guess that worked.
TEST(BaselineCorrelationTest, ATypoFromAKnownNetworkRaisesNothing) {
  for (const bool known : {true, false}) {
    SCOPED_TRACE(known ? "known network" : "new network");
    StoryBuilder b;
    World w;
    w.WarmUp(b);
    const std::string addr = known ? "198.51.100.12" : "203.0.113.50";
    const double t = kMidnight + 10 * kHour;
    w.Feed({b.Failure("hosta", "alice", addr, 41000, t),
            b.Failure("hosta", "alice", addr, 41000, t + 3),
            b.Failure("hosta", "alice", addr, 41000, t + 6),
            b.Login("hosta", "alice", addr, 41000, "audit:1", t + 9)});
    EXPECT_EQ(w.incidents().size(), known ? 0u : 1u);
  }
}

// From a network alice never used, at her usual hour, two hops to hosts she never logs in
// to: no stage is enough alone, together they are someone else at her keyboard.
TEST(BaselineCorrelationTest, CorroboratedQuietStagesRaiseOneIncident) {
  StoryBuilder b;
  b.SetAddress("hostc", "198.18.0.13");
  World w;
  w.WarmUp(b);
  const double t = kMidnight + 10 * kHour;
  w.Feed({b.Login("hosta", "alice", "203.0.113.9", 41000, "audit:1", t),
          b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, t + 300),
          b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", t + 301),
          b.Connect("hostb", "audit:5", "alice", 50002, "198.18.0.13", 22, t + 600),
          b.Login("hostc", "alice", "198.18.0.12", 50002, "audit:6", t + 601)});
  ASSERT_EQ(w.incidents().size(), 1u);
  const Incident& in = w.incidents().begin()->second;
  EXPECT_THAT(in.techniques, ::testing::Contains("T1078"));
  const std::string ex = Explanation(in);
  EXPECT_THAT(in.title, HasSubstr("acted unlike its habits"));
  EXPECT_THAT(ex, HasSubstr("login ever of alice on hostb"));
  EXPECT_THAT(ex, ::testing::Not(HasSubstr("normally logs in")));  // 10:00 is her hour
}

// The later part of a quiet chain, seen before the hop that links it to its entry, waits
// for that hop instead of being raised as an incident of its own.
TEST(BaselineCorrelationTest, AQuietChainSeenBeforeItsEntryIsRaisedOnce) {
  StoryBuilder b;
  b.SetAddress("hostc", "198.18.0.13");
  World w;
  w.WarmUp(b);
  const double t = -29 * 60;  // 03:12
  // hostb's and hostc's sensors deliver first; hosta's (the entry and the first hop) last.
  w.Feed({b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", t + 301),
          b.Connect("hostb", "audit:5", "alice", 50002, "198.18.0.13", 22, t + 600),
          b.Login("hostc", "alice", "198.18.0.12", 50002, "audit:6", t + 601)});
  EXPECT_TRUE(w.incidents().empty());
  w.Feed({b.Login("hosta", "alice", "203.0.113.9", 41000, "audit:1", t),
          b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, t + 300)});
  ASSERT_EQ(w.incidents().size(), 1u);
  EXPECT_EQ(w.incidents().begin()->second.chain.size(), 2u);
}

}  // namespace
}  // namespace tripline::correlate

namespace tripline::correlate {
namespace {

// An admin who hops hosta -> hostb every working day, then one morning, from the usual
// network at the usual hour and without a failure, goes hosta -> hostc -> hostd -> hoste:
// hosts and paths the account never used. No rule catches it; the hops' scores do.
TEST(BaselineCorrelationTest, QuietHopsWhereTheAccountNeverGoesRaiseOneIncident) {
  for (const bool stray : {true, false}) {
    SCOPED_TRACE(stray ? "new path" : "usual path");
    StoryBuilder b;
    b.SetAddress("hoste", "198.18.0.15");
    World w;
    int session = 2000;
    uint32_t port = 30000;
    for (int day = 42; day >= 1; --day) {
      const int dow = ((3 - day) % 7 + 7) % 7;
      if (dow == 0 || dow == 6) continue;
      const double t = kMidnight - day * kDay + 9 * kHour + 5 * 60;
      const std::string a = "audit:" + std::to_string(session++);
      const std::string c = "audit:" + std::to_string(session++);
      w.Feed({b.Login("hosta", "alice", "198.51.100.12", 40000 + session, a, t),
              b.Connect("hosta", a, "alice", port, "198.18.0.12", 22, t + 300),
              b.Login("hostb", "alice", "198.18.0.11", port, c, t + 301)});
      ++port;
    }
    const std::map<std::string, Incident> before = w.incidents();
    ASSERT_TRUE(before.empty());
    const double t = kMidnight + 9 * kHour + 10 * 60;  // Wednesday 09:10
    if (stray) {
      w.Feed({b.Login("hosta", "alice", "198.51.100.12", 41000, "audit:1", t),
              b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.13", 22, t + 600),
              b.Login("hostc", "alice", "198.18.0.11", 50001, "audit:5", t + 601),
              b.Connect("hostc", "audit:5", "alice", 50002, "198.18.0.14", 22, t + 1200),
              b.Login("hostd", "alice", "198.18.0.13", 50002, "audit:6", t + 1201),
              b.Connect("hostd", "audit:6", "alice", 50003, "198.18.0.15", 22, t + 1800),
              b.Login("hoste", "alice", "198.18.0.14", 50003, "audit:7", t + 1801)});
      ASSERT_EQ(w.incidents().size(), 1u);
      const Incident& in = w.incidents().begin()->second;
      EXPECT_THAT(in.techniques, ::testing::Contains("T1078"));
      EXPECT_EQ(in.chain.size(), 3u);
      std::string ex;
      for (const std::string& line : in.explanation) ex += line + "\n";
      EXPECT_THAT(ex, HasSubstr("first login ever of alice on hostc"));
    } else {
      w.Feed({b.Login("hosta", "alice", "198.51.100.12", 41000, "audit:1", t),
              b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, t + 300),
              b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", t + 301)});
      EXPECT_TRUE(w.incidents().empty());
    }
  }
}

// An agent declared by its container's cgroup, not by the account it runs as: on
// probation, what its baselines find unusual in a session (its first sudo, in three weeks
// of the same five programs) is raised as an incident that says so; trusted, the same
// session raises nothing.
TEST(BaselineCorrelationTest, AnAgentOnProbationDeclaredByItsCgroupIsEscalated) {
  for (const bool probation : {false, true}) {
    SCOPED_TRACE(probation ? "on probation" : "trusted");
    StoryBuilder b;
    baseline::IdentityRule rule;
    rule.kind = baseline::IdentityKind::kAgent;
    rule.cgroup = "opsbot-*";
    rule.name = "opsbot";
    rule.probation = probation;
    World w({rule});
    const auto in_container = [](Delivery d) {
      d.event.process.container_id = "opsbot-1";
      return d;
    };
    int session = 2000;
    for (int hour = 21 * 24; hour >= 1; --hour) {
      const std::string key = "audit:" + std::to_string(session++);
      int i = 0;
      for (const char* program :
           {"/usr/bin/git", "/usr/bin/make", "/usr/bin/cc", "/usr/bin/ls", "/usr/bin/cat"}) {
        w.Feed({in_container(b.Exec("hosta", key, "svc-ops", 998, program, -hour * kHour + ++i))});
      }
    }
    ASSERT_TRUE(w.incidents().empty());
    w.Feed({in_container(b.Exec("hosta", "audit:9999", "svc-ops", 998, "/usr/bin/sudo", 60))});
    if (!probation) {
      EXPECT_TRUE(w.incidents().empty());
      continue;
    }
    ASSERT_EQ(w.incidents().size(), 1u);
    const std::string ex = Explanation(w.incidents().begin()->second);
    EXPECT_THAT(ex, HasSubstr("The agent opsbot is on probation"));
    EXPECT_THAT(ex, HasSubstr("/usr/bin/sudo"));
  }
}

}  // namespace
}  // namespace tripline::correlate
