// The synthetic fleet: deterministic, labelled consistently, and the same test period
// whatever the warm-up, so that runs with different warm-ups judge the same attacks.
#include "tools/eval/fleet_sim.h"

#include <gtest/gtest.h>

#include <set>

namespace tripline::eval {
namespace {

FleetSpec Small() {
  FleetSpec s;
  s.servers = 8;
  s.people = 12;
  s.admins = 2;
  s.service_accounts = 2;
  s.agents = 1;
  s.warmup_days = 3;
  s.test_days = 7;
  s.compromises = 32;
  return s;
}

const Event& At(const Fleet& f, const EventKey& k) {
  return f.sensors.at(k.first).at(k.second - 1);
}

TEST(FleetSim, SequenceNumbersAreDenseAndEventsInTimeOrderPerSensor) {
  const Fleet f = GenerateFleet(Small());
  ASSERT_FALSE(f.sensors.empty());
  uint64_t total = 0;
  for (const auto& [id, events] : f.sensors) {
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].seq, i + 1);
      if (i > 0) {
        EXPECT_LE(events[i - 1].time_ns, events[i].time_ns);
      }
      EXPECT_EQ(events[i].host, f.sensor_host.at(id));
    }
    total += events.size();
  }
  EXPECT_EQ(total, f.events);
}

TEST(FleetSim, EveryCombinationOfStealthIsPlayedAndLabelled) {
  const Fleet f = GenerateFleet(Small());
  ASSERT_EQ(f.compromises.size(), 32u);
  std::set<std::tuple<bool, bool, bool, int>> combos;
  for (const auto& c : f.compromises) {
    combos.insert({c.failures, c.unusual_hour, c.new_network, c.hops});
    ASSERT_FALSE(c.events.empty());
    const Event& entry = At(f, c.entry_login);
    const auto* l = entry.As<LoginEvent>();
    ASSERT_NE(l, nullptr) << c.Label();
    EXPECT_EQ(l->stage, LoginStage::kSessionOpen);
    EXPECT_EQ(l->user, c.victim);
    EXPECT_EQ(l->remote_addr, c.source);
    EXPECT_GE(entry.time_ns, f.spec.test_start_ns);
    // Failures come before the entry, from the attacker's address, only when labelled so.
    int failures = 0, hops = 0;
    for (const auto& k : c.events) {
      const Event& e = At(f, k);
      if (const auto* x = e.As<LoginEvent>(); x && x->outcome == Outcome::kFailure) {
        ++failures;
        EXPECT_EQ(x->remote_addr, c.source);
      }
      if (const auto* n = e.As<NetConnectEvent>(); n && n->direction == NetDirection::kOutbound) {
        ++hops;
      }
    }
    EXPECT_EQ(failures > 0, c.failures) << c.Label();
    EXPECT_EQ(hops, c.hops) << c.Label();
  }
  EXPECT_EQ(combos.size(), 32u);
  std::set<std::string> sources;
  for (const auto& c : f.compromises) sources.insert(c.source);
  EXPECT_EQ(sources.size(), f.compromises.size());
}

TEST(FleetSim, TestPeriodDoesNotDependOnWarmUp) {
  FleetSpec a = Small(), b = Small();
  b.warmup_days = 10;
  const Fleet fa = GenerateFleet(a), fb = GenerateFleet(b);
  EXPECT_EQ(fa.benign_sessions_test, fb.benign_sessions_test);
  EXPECT_LT(fa.benign_sessions_warmup, fb.benign_sessions_warmup);
  ASSERT_EQ(fa.compromises.size(), fb.compromises.size());
  for (size_t i = 0; i < fa.compromises.size(); ++i) {
    EXPECT_EQ(fa.compromises[i].Label(), fb.compromises[i].Label());
    EXPECT_EQ(fa.compromises[i].source, fb.compromises[i].source);
    EXPECT_EQ(fa.compromises[i].start_ns, fb.compromises[i].start_ns);
    EXPECT_EQ(fa.compromises[i].events.size(), fb.compromises[i].events.size());
  }
  // And the same seed gives the same fleet.
  const Fleet again = GenerateFleet(a);
  EXPECT_EQ(again.events, fa.events);
  EXPECT_EQ(again.compromises[5].events, fa.compromises[5].events);
}

TEST(FleetSim, BenignLoginsAreSessionOpensOfPeopleServicesAndAgents) {
  const Fleet f = GenerateFleet(Small());
  std::set<std::string> users;
  for (const auto& [k, test] : f.benign_logins) {
    const Event& e = At(f, k);
    const auto* l = e.As<LoginEvent>();
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->stage, LoginStage::kSessionOpen);
    EXPECT_EQ(test, e.time_ns >= f.spec.test_start_ns);
    users.insert(l->user.substr(0, 4));
  }
  EXPECT_EQ(f.benign_logins.size(), f.benign_sessions_test + f.benign_sessions_warmup);
  EXPECT_TRUE(users.count("user") && users.count("admi") && users.count("svc-") &&
              users.count("agen"));
}

}  // namespace
}  // namespace tripline::eval
