#include "aggregator/correlate/correlator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "aggregator/correlate/attack_stages.h"
#include "aggregator/correlate/chain_scorer.h"
#include "aggregator/correlate/correlator_state.h"
#include "aggregator/correlate/json_writer.h"
#include "model/incident_proto.h"
#include "tests/correlate/story_builder.h"

namespace tripline::correlate {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using testing::Delivery;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StoryBuilder;

constexpr char kAttacker[] = "198.18.0.66";

// What came out of a run: every reported incident revision, and the latest per id.
struct Outcome {
  std::vector<Incident> reports;
  std::map<std::string, Incident> latest;
};

class Harness {
 public:
  explicit Harness(CorrelatorOptions options = {})
      : correlator_(std::make_unique<Correlator>(std::move(options), clock_)) {}

  // Delivers in order; the clock shows each delivery's arrival time (its event time unless
  // the test says it arrives late).
  void Feed(const std::vector<Delivery>& stream) {
    for (const Delivery& d : stream) {
      clock_.SetNs(std::max(clock_.NowNs(), d.arrive_ns != 0 ? d.arrive_ns : d.event.time_ns));
      Collect(correlator_->Handle(d.sensor, d.event));
    }
  }
  void Collect(std::vector<Incident> incidents) {
    for (Incident& in : incidents) {
      outcome_.latest[in.id] = in;
      outcome_.reports.push_back(std::move(in));
    }
  }
  Correlator& correlator() { return *correlator_; }
  FakeClock& clock() { return clock_; }
  const Outcome& outcome() const { return outcome_; }
  const Incident& Only() const {
    EXPECT_EQ(outcome_.latest.size(), 1u);
    return outcome_.latest.begin()->second;
  }

 private:
  FakeClock clock_{StoryBuilder::kT0};
  std::unique_ptr<Correlator> correlator_;
  Outcome outcome_;
};

std::string AllText(const Incident& in) {
  std::string s;
  for (const std::string& line : in.explanation) s += line + "\n";
  return s;
}

// The seed story: five failed passwords for alice on hosta from the attacker (two of them
// also reported by utmp, which must not double count), a success from the same address,
// /etc/shadow read in that session, then ssh hosta -> hostb -> hostc.
std::vector<Delivery> SeedStory(StoryBuilder& b, const std::string& user_on_b = "alice") {
  std::vector<Delivery> s;
  for (int i = 0; i < 5; ++i) {
    s.push_back(b.Failure("hosta", "alice", kAttacker, 40001 + i, 1.0 * i));
    if (i < 2)
      s.push_back(
          b.Failure("hosta", "alice", kAttacker, 40001 + i, 1.0 * i + 0.1, LoginSource::kUtmp));
  }
  s.push_back(b.Login("hosta", "alice", kAttacker, 40010, "", 7, 22, LoginStage::kAuthenticate));
  s.push_back(b.Login("hosta", "alice", kAttacker, 40010, "audit:1", 7.2));
  s.push_back(b.Exec("hosta", "audit:1", "alice", 1000, "/usr/bin/id", 10));
  s.push_back(
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
  s.push_back(b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30));
  s.push_back(b.Accept("hostb", 22, "198.18.0.11", 50001, 30.1));
  s.push_back(b.Login("hostb", user_on_b, "198.18.0.11", 50001, "audit:5", 31));
  s.push_back(b.Connect("hostb", "audit:5", user_on_b, 50002, "198.18.0.13", 22, 70));
  s.push_back(b.Accept("hostc", 22, "198.18.0.12", 50002, 70.1));
  s.push_back(b.Login("hostc", user_on_b, "198.18.0.12", 50002, "audit:9", 71));
  return s;
}

TEST(CorrelatorTest, SeedStoryRaisesOneCriticalIncident) {
  StoryBuilder b;
  Harness h;
  h.Feed(SeedStory(b));
  const Incident& in = h.Only();
  EXPECT_EQ(in.severity, Severity::kCritical);
  EXPECT_THAT(in.hosts, ElementsAre("hosta", "hostb", "hostc"));
  EXPECT_THAT(in.techniques, AllOf(Contains("T1110.001"), Contains("T1078"), Contains("T1003.008"),
                                   Contains("T1021.004")));
  ASSERT_EQ(in.chain.size(), 2u);
  EXPECT_EQ(in.chain[0].from, "hosta");
  EXPECT_EQ(in.chain[0].to, "hostb");
  EXPECT_EQ(in.chain[0].user, "alice");
  EXPECT_EQ(in.chain[0].port, 22u);
  EXPECT_EQ(in.chain[0].at_ns, StoryBuilder::At(31));
  EXPECT_EQ(in.chain[1].from, "hostb");
  EXPECT_EQ(in.chain[1].to, "hostc");
  EXPECT_EQ(in.title,
            "Account alice compromised: brute-forced, moving laterally hosta → hostb → hostc");
  std::string text = AllText(in);
  EXPECT_THAT(text, HasSubstr("alice failed 5 passwords from 198.18.0.66 on hosta, then logged "
                              "in from the same address at 03:41:07 UTC."));
  EXPECT_THAT(text, HasSubstr("/etc/shadow"));
  EXPECT_THAT(text, HasSubstr("Then moved hosta → hostb → hostc over SSH, the last hop 1 min 4 s "
                              "after the first login"));
  EXPECT_THAT(text, HasSubstr("block 198.18.0.66"));
  EXPECT_THAT(in.identities, AllOf(Contains("user:alice"), Contains("host:hostc"),
                                   Contains("source:198.18.0.66")));
  EXPECT_EQ(in.first_seen_ns, StoryBuilder::At(0));
  EXPECT_EQ(in.last_seen_ns, StoryBuilder::At(71));
  EXPECT_DOUBLE_EQ(in.confidence, 1.0);
  EXPECT_GE(in.score, 80);
  EXPECT_TRUE(in.id.starts_with("inc-"));
  // Each failed attempt is listed once, although two of them were reported by PAM and utmp.
  EXPECT_EQ(std::count_if(in.events.begin(), in.events.end(),
                          [](const EventRef& e) {
                            return e.kind == "login" &&
                                   e.summary.find("failed") != std::string::npos;
                          }),
            5);
  // Evidence: failures, the login, the shadow read, both hops, ordered by time.
  EXPECT_TRUE(
      std::is_sorted(in.events.begin(), in.events.end(),
                     [](const EventRef& x, const EventRef& y) { return x.time_ns < y.time_ns; }));
  EXPECT_TRUE(std::any_of(in.events.begin(), in.events.end(), [](const EventRef& e) {
    return e.kind == "file_open" && e.summary.find("/etc/shadow") != std::string::npos &&
           e.sensor_id == "sensor-hosta";
  }));
  EXPECT_EQ(h.correlator().stats().hops, 2u);
  // The stages where they happened, by time: the brute force, the login and the shadow read
  // on hosta, then a hop into hostb and one into hostc.
  std::vector<std::string> stages;
  for (const Stage& st : in.stages) stages.push_back(st.host + " " + st.technique);
  EXPECT_THAT(stages, ElementsAre("hosta T1110.001", "hosta T1078", "hosta T1003.008",
                                  "hostb T1021.004", "hostc T1021.004"));
  ASSERT_EQ(in.stages.size(), 5u);
  EXPECT_EQ(in.stages[0].what, "5 failed logins from 198.18.0.66");
  EXPECT_EQ(in.stages[1].what, "logged in as alice");
  EXPECT_EQ(in.stages[2].what, "read /etc/shadow (cat)");
  EXPECT_EQ(in.stages[3].what, "hop from hosta as alice");
  EXPECT_EQ(in.stages[3].at_ns, StoryBuilder::At(31));
  EXPECT_TRUE(std::is_sorted(in.stages.begin(), in.stages.end(),
                             [](const Stage& x, const Stage& y) { return x.at_ns < y.at_ns; }));
}

// As real sshd reports it: on hostb the authenticate stage (no session yet) comes first,
// then the session's own processes (motd scripts) under audit:5, and only then the
// session-open event that names audit:5. The hop to hostc leaves from audit:5 and must
// still continue the chain that reached hostb by auth pid.
TEST(CorrelatorTest, SessionActivitySeenBeforeSessionOpenJoinsTheLogin) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s;
  for (int i = 0; i < 5; ++i) s.push_back(b.Failure("hosta", "alice", kAttacker, 40001 + i, i));
  s.push_back(b.Login("hosta", "alice", kAttacker, 40010, "", 7, 22, LoginStage::kAuthenticate));
  s.push_back(b.Exec("hosta", "audit:1", "alice", 1000, "/usr/bin/uname", 7.1));
  s.push_back(b.Login("hosta", "alice", kAttacker, 40010, "audit:1", 7.2));
  s.push_back(
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
  s.push_back(b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30));
  s.push_back(b.Accept("hostb", 22, "198.18.0.11", 50001, 30.1));
  s.push_back(
      b.Login("hostb", "alice", "198.18.0.11", 50001, "", 31, 22, LoginStage::kAuthenticate));
  s.push_back(b.Exec("hostb", "audit:5", "alice", 1000, "/usr/bin/uname", 31.1));
  s.push_back(b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31.2));
  s.push_back(b.Connect("hostb", "audit:5", "alice", 50002, "198.18.0.13", 22, 70));
  s.push_back(b.Accept("hostc", 22, "198.18.0.12", 50002, 70.1));
  s.push_back(
      b.Login("hostc", "alice", "198.18.0.12", 50002, "", 71, 22, LoginStage::kAuthenticate));
  s.push_back(b.Exec("hostc", "audit:9", "alice", 1000, "/usr/bin/uname", 71.1));
  s.push_back(b.Login("hostc", "alice", "198.18.0.12", 50002, "audit:9", 71.2));
  h.Feed(s);
  const Incident& in = h.Only();
  EXPECT_EQ(in.severity, Severity::kCritical);
  EXPECT_THAT(in.hosts, ElementsAre("hosta", "hostb", "hostc"));
  ASSERT_EQ(in.chain.size(), 2u);
  EXPECT_EQ(in.chain[1].from, "hostb");
  EXPECT_EQ(in.chain[1].to, "hostc");
}

TEST(CorrelatorTest, UserChangesBetweenHopsStillJoins) {
  StoryBuilder b;
  Harness h;
  h.Feed(SeedStory(b, "root"));
  const Incident& in = h.Only();
  EXPECT_EQ(in.severity, Severity::kCritical);
  EXPECT_THAT(in.hosts, ElementsAre("hosta", "hostb", "hostc"));
  ASSERT_EQ(in.chain.size(), 2u);
  EXPECT_EQ(in.chain[0].from_user, "alice");
  EXPECT_EQ(in.chain[0].user, "root");
  EXPECT_THAT(in.identities, AllOf(Contains("user:alice"), Contains("user:root")));
  EXPECT_THAT(AllText(in), HasSubstr("alice on hosta logged in as root on hostb"));
  EXPECT_THAT(AllText(in), HasSubstr("Privileged access"));
}

TEST(CorrelatorTest, HopThroughPortLearnedFromSshdAccept) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s = {
      b.Failure("hosta", "alice", kAttacker, 40001, 0),
      b.Failure("hosta", "alice", kAttacker, 40002, 1),
      b.Failure("hosta", "alice", kAttacker, 40003, 2),
      b.Login("hosta", "alice", kAttacker, 40010, "audit:1", 7),
      // hostb's sshd listens on 2222; its accept of an unrelated client tells us so.
      b.Accept("hostb", 2222, "10.1.1.1", 33333, 8),
      b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 2222, 30),
      b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31),
  };
  h.Feed(s);
  const Incident& in = h.Only();
  ASSERT_EQ(in.chain.size(), 1u);
  EXPECT_EQ(in.chain[0].port, 2222u);
  EXPECT_THAT(in.hosts, ElementsAre("hosta", "hostb"));
}

// Either half of a hop can wait across a restart: the restored state finds it, whichever
// half arrives after.
TEST(CorrelatorTest, HopHalvesWaitingAcrossARestoreStillMatch) {
  for (bool connect_first : {true, false}) {
    SCOPED_TRACE(connect_first ? "connect waits" : "login waits");
    StoryBuilder b;
    const Delivery login = b.Login("hosta", "alice", "203.0.113.5", 41000, "audit:1", 5);
    const Delivery connect = b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30);
    const Delivery hop = b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31);
    Harness first;
    first.Feed({login, connect_first ? connect : hop});
    Harness second;
    second.clock().SetNs(first.clock().NowNs());
    ASSERT_TRUE(second.correlator().RestoreState(first.correlator().SerializeState()).ok());
    second.Feed({connect_first ? hop : connect});
    EXPECT_EQ(second.correlator().stats().hops, 1u);
    // The matched half no longer waits: only the entry login does.
    EXPECT_EQ(second.correlator().pending_items(), 1u);
  }
}

// Sensors report addresses as text, and nothing makes them IP literals: an address that
// extends another with "|..." is not that address. A login from 198.18.0.11 whose port is
// unknown takes a waiting connect from 198.18.0.11, never one from "198.18.0.11|5".
TEST(CorrelatorTest, AnAddressThatExtendsAnotherIsNotThatAddress) {
  for (const bool hostile : {true, false}) {
    SCOPED_TRACE(hostile ? "connect from 198.18.0.11|5" : "connect from 198.18.0.11");
    StoryBuilder b;
    Harness h;
    Delivery connect = b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30);
    std::string& from = std::get<NetConnectEvent>(connect.event.body).local_addr;
    ASSERT_EQ(from, "198.18.0.11");
    if (hostile) from += "|5";
    h.Feed({b.Login("hosta", "alice", "10.0.0.5", 40010, "audit:1", 7), connect,
            b.Login("hostb", "alice", "198.18.0.11", 0, "audit:5", 31)});
    EXPECT_EQ(h.correlator().stats().hops, hostile ? 0u : 1u);
  }
}

TEST(CorrelatorTest, NoHopToPortNeverSeenAsSsh) {
  StoryBuilder b;
  Harness h;
  h.Feed({b.Login("hosta", "alice", "10.0.0.5", 40010, "audit:1", 7),
          b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 8080, 30),
          b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31)});
  EXPECT_EQ(h.correlator().stats().hops, 0u);
}

TEST(CorrelatorTest, OutOfOrderAndLateDeliveryGiveTheSameIncident) {
  StoryBuilder b;
  std::vector<Delivery> s = SeedStory(b);
  // hostb's sensor was paused: its events arrive 30 s after hostc's last one, and hosta's
  // connect to hostb is delivered after hostb's login.
  const int64_t hostc_done = StoryBuilder::At(71);
  std::vector<Delivery> reordered;
  std::vector<Delivery> hostb, connect_a;
  for (Delivery& d : s) {
    if (d.event.host == "hostb") {
      hostb.push_back(d);
    } else if (d.event.host == "hosta" && d.event.kind() == EventKind::kNet) {
      connect_a.push_back(d);
    } else {
      reordered.push_back(d);
    }
  }
  int64_t arrive = hostc_done + 30 * kNanosPerSecond;
  for (Delivery& d : hostb) {
    d.arrive_ns = arrive;
    arrive += kNanosPerSecond;
    reordered.push_back(d);
    if (d.event.kind() == EventKind::kLogin) {
      for (Delivery& c : connect_a) {
        c.arrive_ns = arrive;
        reordered.push_back(c);
      }
    }
  }
  Harness h;
  h.Feed(reordered);
  const Incident& in = h.Only();
  EXPECT_EQ(in.severity, Severity::kCritical);
  EXPECT_THAT(in.hosts, ElementsAre("hosta", "hostb", "hostc"));
  ASSERT_EQ(in.chain.size(), 2u);
  EXPECT_EQ(in.chain[0].to, "hostb");
  EXPECT_EQ(in.chain[1].to, "hostc");
  // hostb's address is one of ours, not an entry point to block.
  EXPECT_THAT(in.identities, Not(Contains("source:198.18.0.12")));
  // Only the attacker's entry login still waits (in case a late connect shows it was a hop).
  EXPECT_EQ(h.correlator().pending_items(), 1u);
}

TEST(CorrelatorTest, IncidentGrowsInsteadOfDuplicating) {
  StoryBuilder b;
  Harness h;
  h.Feed(SeedStory(b));
  const auto& reports = h.outcome().reports;
  ASSERT_GE(reports.size(), 3u);
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].id, reports[0].id);
    EXPECT_EQ(reports[i].revision, i + 1);
    if (i > 0) {
      EXPECT_GE(static_cast<int>(reports[i].severity), static_cast<int>(reports[i - 1].severity));
      EXPECT_GE(reports[i].chain.size(), reports[i - 1].chain.size());
    }
  }
  EXPECT_LT(reports.front().severity, Severity::kCritical);
  EXPECT_EQ(reports.back().severity, Severity::kCritical);
  // More activity with nothing new does not raise a new revision.
  size_t before = reports.size();
  h.Feed({b.Exec("hostc", "audit:9", "alice", 1000, "/usr/bin/vim", 90)});
  EXPECT_EQ(h.outcome().reports.size(), before);
  // A new stage does, under the same id.
  h.Feed({b.Open("hostc", "audit:9", "alice", 1000, "cat", "/home/alice/.ssh/id_ed25519",
                 FileAccess::kRead, 95)});
  ASSERT_EQ(h.outcome().reports.size(), before + 1);
  EXPECT_EQ(h.outcome().reports.back().id, reports[0].id);
  EXPECT_THAT(h.outcome().reports.back().techniques, Contains("T1552.004"));
}

TEST(CorrelatorTest, BenignAdminHopRaisesNothingAboveLow) {
  StoryBuilder b;
  Harness h;
  h.Feed({
      b.Login("hosta", "admin", "10.0.0.5", 51000, "audit:3", 0),
      b.Exec("hosta", "audit:3", "admin", 1000, "/usr/bin/ls", 5),
      b.Exec("hosta", "audit:3", "admin", 1000, "/usr/bin/sudo", 8),
      // sudo checking admin's password, and ssh using admin's key: not credential theft.
      b.Open("hosta", "audit:3", "admin", 0, "sudo", "/etc/shadow", FileAccess::kRead, 8.1),
      b.Exec("hosta", "audit:3", "admin", 0, "/usr/bin/systemctl", 9),
      b.Open("hosta", "audit:3", "admin", 1000, "ssh", "/home/admin/.ssh/id_ed25519",
             FileAccess::kRead, 20),
      b.Connect("hosta", "audit:3", "admin", 52000, "198.18.0.12", 22, 20.1),
      b.Accept("hostb", 22, "198.18.0.11", 52000, 20.2),
      b.Login("hostb", "admin", "198.18.0.11", 52000, "audit:4", 21),
      b.Exec("hostb", "audit:4", "admin", 1000, "/usr/bin/df", 25),
  });
  EXPECT_EQ(h.correlator().stats().hops, 1u);
  for (const Incident& in : h.outcome().reports) EXPECT_LE(in.severity, Severity::kLow) << in.title;
  EXPECT_TRUE(h.outcome().reports.empty());
}

TEST(CorrelatorTest, SprayingFromOneSourceIsT1110_003) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s;
  const std::vector<std::string> users = {"alice", "bob",   "carol", "dave",
                                          "erin",  "frank", "grace", "heidi"};
  double t = 0;
  for (int round = 0; round < 2; ++round) {
    for (const std::string& u : users)
      s.push_back(b.Failure("hosta", u, "198.18.0.77", 41000, t += 2));
  }
  h.Feed(s);
  const Incident& in = h.Only();
  EXPECT_THAT(in.techniques, Contains("T1110.003"));
  EXPECT_THAT(in.techniques, Not(Contains("T1110.004")));
  EXPECT_THAT(in.title, HasSubstr("Password spraying from 198.18.0.77 against 8 accounts"));
  EXPECT_LE(in.severity, Severity::kMedium);
}

TEST(CorrelatorTest, StuffingIsManyAccountsEachTriedOnce) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s;
  for (int i = 0; i < 12; ++i) {
    s.push_back(b.Failure("hosta", "user" + std::to_string(i), "198.18.0.78", 42000 + i, i));
  }
  h.Feed(s);
  const Incident& in = h.Only();
  EXPECT_THAT(in.techniques, Contains("T1110.004"));
  EXPECT_THAT(in.techniques, Not(Contains("T1110.003")));
}

TEST(CorrelatorTest, AuthorizedKeysWriteIsT1098_004) {
  StoryBuilder b;
  Harness h;
  h.Feed({b.Login("hosta", "bob", "10.0.0.9", 43000, "audit:7", 0),
          b.Open("hosta", "audit:7", "bob", 1000, "vim", "/home/bob/.ssh/authorized_keys",
                 FileAccess::kRead, 3)});
  EXPECT_TRUE(h.outcome().reports.empty());  // reading it is not persistence
  h.Feed({b.Open("hosta", "audit:7", "bob", 1000, "bash", "/home/bob/.ssh/authorized_keys",
                 FileAccess::kWrite, 5)});
  const Incident& in = h.Only();
  EXPECT_THAT(in.techniques, Contains("T1098.004"));
  EXPECT_THAT(AllText(in), HasSubstr("authorized_keys"));
  EXPECT_GE(in.severity, Severity::kLow);
}

TEST(CorrelatorTest, DropsOnAHostOfTheChainLowerConfidence) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s = SeedStory(b);
  s.push_back(b.Health("hostb", 120, 60));
  s.push_back(b.Health("hostd", 5000, 61));  // not in the chain: no effect
  h.Feed(s);
  const Incident& in = h.Only();
  EXPECT_DOUBLE_EQ(in.confidence, 0.75);
  EXPECT_EQ(in.severity, Severity::kCritical);  // drops lower confidence, not severity
  EXPECT_THAT(AllText(in), HasSubstr("hostb's sensor reported 120 dropped events"));
  EXPECT_THAT(AllText(in), Not(HasSubstr("hostd")));
  // A later report with the same cumulative count adds nothing.
  size_t before = h.outcome().reports.size();
  h.Feed({b.Health("hostb", 120, 90)});
  EXPECT_EQ(h.outcome().reports.size(), before);
}

TEST(CorrelatorTest, AHostBlindToAFamilySaysWhatWasNotSeenAndLowersConfidence) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s = SeedStory(b);
  // hostc's sensor runs without its file hooks; hostb's net hooks are on a fallback.
  s.push_back(b.Health("hostc", 0, 60,
                       {{"file", "disabled", "", "syscall tracepoints refused: E2BIG", "fix"},
                        {"exec", "live", "tp_btf", "", ""}}));
  s.push_back(b.Health("hostb", 0, 61,
                       {{"net", "degraded", "syscall tracepoints", "fentry refused", "allow"}}));
  s.push_back(b.Health("hostd", 0, 62, {{"file", "disabled", "", "x", "y"}}));  // not in it
  h.Feed(s);
  const Incident& in = h.Only();
  EXPECT_DOUBLE_EQ(in.confidence, 0.6 * 0.9);
  EXPECT_EQ(in.severity, Severity::kCritical);
  const std::string text = AllText(in);
  EXPECT_THAT(text, HasSubstr("Tripline cannot see sensitive file opens on hostc"));
  EXPECT_THAT(text, HasSubstr("syscall tracepoints refused: E2BIG"));
  EXPECT_THAT(text, HasSubstr("On hostb the sensor sees network connections (SSH hops) "
                              "through fallback hooks (syscall tracepoints)"));
  EXPECT_THAT(text, Not(HasSubstr("hostd")));
  EXPECT_THAT(text, Not(HasSubstr("process executions")));  // live families are not named

  // The file hooks come back on hostc: the incident is revised and says so no more.
  h.Feed({b.Health("hostc", 0, 90, {{"file", "live", "fentry", "", ""}})});
  const Incident& latest = h.outcome().reports.back();
  EXPECT_DOUBLE_EQ(latest.confidence, 0.9);
  EXPECT_THAT(AllText(latest), Not(HasSubstr("cannot see")));
}

TEST(CorrelatorTest, RestartMidStreamContinuesTheSameIncident) {
  StoryBuilder b1, b2;
  std::vector<Delivery> s = SeedStory(b1);
  Harness whole;
  whole.Feed(SeedStory(b2));

  Harness first;
  size_t half = s.size() / 2;
  first.Feed({s.begin(), s.begin() + static_cast<long>(half)});
  std::string bytes = first.correlator().SerializeState();

  Harness second;
  second.clock().SetNs(first.clock().NowNs());
  ASSERT_TRUE(second.correlator().RestoreState(bytes).ok());
  EXPECT_EQ(second.correlator().SerializeState(), bytes);
  second.Feed({s.begin() + static_cast<long>(half), s.end()});

  const Incident& want = whole.Only();
  const Incident& got = second.Only();
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.severity, want.severity);
  EXPECT_EQ(got.hosts, want.hosts);
  EXPECT_EQ(got.techniques, want.techniques);
  EXPECT_EQ(got.chain, want.chain);
  EXPECT_EQ(got.explanation, want.explanation);
  EXPECT_EQ(got.events, want.events);
  // Revisions continue from before the restart rather than starting again at 1.
  EXPECT_EQ(got.revision, want.revision);
}

// Incidents as Feed/TakeChanged report them when taken every `take_every` events (0: once,
// at the end), next to what Handle reports event by event.
struct FedInBatches {
  Outcome batched;
  Outcome by_event;
  CorrelatorStats batched_stats;
  CorrelatorStats by_event_stats;
  std::string batched_state;
  std::string by_event_state;
};

FedInBatches FeedBothWays(const std::vector<Delivery>& stream, size_t take_every,
                          CorrelatorOptions options = {}) {
  FedInBatches out;
  Harness by_event(options);
  by_event.Feed(stream);
  out.by_event = by_event.outcome();
  out.by_event_stats = by_event.correlator().stats();
  out.by_event_state = by_event.correlator().SerializeState();

  Harness batched(options);
  size_t since_take = 0;
  auto take = [&] {
    std::vector<Incident> taken = batched.correlator().TakeChanged();
    std::set<std::string> ids;
    for (const Incident& in : taken) {
      EXPECT_TRUE(ids.insert(in.id).second) << in.id << " reported twice in one take";
    }
    batched.Collect(std::move(taken));
    since_take = 0;
  };
  for (const Delivery& d : stream) {
    batched.clock().SetNs(
        std::max(batched.clock().NowNs(), d.arrive_ns != 0 ? d.arrive_ns : d.event.time_ns));
    batched.correlator().Feed(d.sensor, d.event);
    if (take_every != 0 && ++since_take == take_every) take();
  }
  take();
  out.batched = batched.outcome();
  out.batched_stats = batched.correlator().stats();
  out.batched_state = batched.correlator().SerializeState();
  return out;
}

// Everything a reader sees but the revision and when it was made.
void ExpectSameContent(const Incident& got, const Incident& want) {
  Incident a = got, b = want;
  a.revision = b.revision = 0;
  a.updated_ns = b.updated_ns = 0;
  EXPECT_EQ(a, b) << got.id;
}

void ExpectSameLatest(const FedInBatches& r) {
  ASSERT_EQ(r.batched.latest.size(), r.by_event.latest.size());
  for (const auto& [id, want] : r.by_event.latest) {
    auto it = r.batched.latest.find(id);
    ASSERT_NE(it, r.batched.latest.end()) << id;
    ExpectSameContent(it->second, want);
    EXPECT_LE(it->second.revision, want.revision);
  }
  EXPECT_EQ(r.batched_stats.incidents_raised, r.by_event_stats.incidents_raised);
  EXPECT_EQ(r.batched_stats.hops, r.by_event_stats.hops);
  EXPECT_EQ(r.batched_stats.sessions_evicted, r.by_event_stats.sessions_evicted);
  EXPECT_EQ(r.batched_stats.pending_evicted, r.by_event_stats.pending_evicted);
}

TEST(CorrelatorTest, FeedReportsEachIncidentOnceWithTheLatestContent) {
  StoryBuilder b;
  const std::vector<Delivery> story = SeedStory(b);
  const FedInBatches once = FeedBothWays(story, 0);
  ExpectSameLatest(once);
  ASSERT_EQ(once.batched.reports.size(), 1u);
  EXPECT_EQ(once.batched.reports[0].revision, 1u);
  ASSERT_GE(once.by_event.reports.size(), 3u);

  for (size_t every = 2; every <= 6; ++every) {
    SCOPED_TRACE("taken every " + std::to_string(every) + " events");
    ExpectSameLatest(FeedBothWays(story, every));
  }
  // Taken after each event, Feed is Handle: the same revisions and the same state.
  const FedInBatches each = FeedBothWays(story, 1);
  ASSERT_EQ(each.batched.reports.size(), each.by_event.reports.size());
  for (size_t i = 0; i < each.batched.reports.size(); ++i) {
    EXPECT_EQ(each.batched.reports[i].id, each.by_event.reports[i].id);
    EXPECT_EQ(each.batched.reports[i].revision, each.by_event.reports[i].revision);
    ExpectSameContent(each.batched.reports[i], each.by_event.reports[i]);
  }
  EXPECT_EQ(each.batched_state, each.by_event_state);
}

// Two chains raised on their own, then joined by a hop within one batch: the joined one's
// last revision points to the survivor, as when reported event by event.
TEST(CorrelatorTest, FeedReportsAChainJoiningAnotherIncident) {
  StoryBuilder b;
  const std::vector<Delivery> story = {
      b.Login("hosta", "alice", "203.0.113.5", 41000, "audit:1", 5),
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20),
      b.Login("hostb", "bob", "198.18.0.11", 50001, "audit:5", 31),
      b.Open("hostb", "audit:5", "bob", 1000, "cat", "/etc/shadow", FileAccess::kRead, 32),
      b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30),
  };
  const FedInBatches r = FeedBothWays(story, 0);
  ASSERT_EQ(r.by_event.latest.size(), 2u);
  size_t joined = 0;
  for (const auto& [id, in] : r.by_event.latest) {
    joined += AllText(in).find("joined incident") != std::string::npos ? 1 : 0;
  }
  ASSERT_EQ(joined, 1u);
  ExpectSameLatest(r);
  EXPECT_EQ(r.batched.reports.size(), 2u);
}

// A raised chain forgotten (its session evicted) before its changes were taken still gets
// them reported.
TEST(CorrelatorTest, FeedReportsAChainForgottenBeforeTheTake) {
  CorrelatorOptions o;
  o.max_sessions = 1;
  StoryBuilder b;
  const std::vector<Delivery> story = {
      b.Login("hosta", "alice", "203.0.113.5", 41000, "audit:1", 5),
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20),
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/gshadow", FileAccess::kRead, 21),
      b.Login("hostb", "bob", "203.0.113.6", 41001, "audit:5", 31),
  };
  const FedInBatches r = FeedBothWays(story, 0, o);
  ASSERT_EQ(r.by_event.latest.size(), 1u);
  EXPECT_GE(r.by_event_stats.sessions_evicted, 1u);
  ExpectSameLatest(r);
  ASSERT_EQ(r.batched.reports.size(), 1u);
  EXPECT_EQ(r.batched.reports[0].revision, 1u);
}

TEST(CorrelatorTest, HandleAndTickAlsoReturnWhatFeedLeft) {
  StoryBuilder b;
  const std::vector<Delivery> story = SeedStory(b);
  Harness h;
  for (const Delivery& d : story) {
    h.clock().SetNs(d.event.time_ns);
    h.correlator().Feed(d.sensor, d.event);
  }
  std::vector<Incident> ticked = h.correlator().Tick();
  ASSERT_EQ(ticked.size(), 1u);
  EXPECT_EQ(ticked[0].severity, Severity::kCritical);
  EXPECT_TRUE(h.correlator().TakeChanged().empty());

  h.correlator().Feed(story[0].sensor, b.Open("hostc", "audit:9", "alice", 1000, "cat",
                                              "/home/alice/.ssh/id_ed25519", FileAccess::kRead, 95)
                                           .event);
  std::vector<Incident> handled = h.correlator().Handle(
      "sensor-hostc", b.Exec("hostc", "audit:9", "alice", 1000, "/usr/bin/vim", 96).event);
  ASSERT_EQ(handled.size(), 1u);
  EXPECT_EQ(handled[0].id, ticked[0].id);
  EXPECT_EQ(handled[0].revision, 2u);
  EXPECT_THAT(handled[0].techniques, Contains("T1552.004"));
}

TEST(CorrelatorTest, EvictionKeepsMemoryBounded) {
  CorrelatorOptions o;
  o.max_sessions = 10000;
  o.max_pending = 10000;
  o.max_trackers = 10000;
  Harness h(o);
  StoryBuilder b;
  for (int i = 0; i < 200000; ++i) {
    std::string host = "host" + std::to_string(i % 50);
    Delivery d = b.Login(host, "u" + std::to_string(i % 5000),
                         "10.9." + std::to_string(i % 250) + "." + std::to_string(i / 250 % 250),
                         30000 + i % 30000, "audit:" + std::to_string(i), i * 0.01);
    h.Feed({d});
    ASSERT_LE(h.correlator().tracked_sessions(), 10000u);
  }
  EXPECT_EQ(h.correlator().tracked_sessions(), 10000u);
  EXPECT_LE(h.correlator().pending_items(), 10000u);
  EXPECT_GE(h.correlator().stats().sessions_evicted, 190000u);
}

// A bastion: thousands of logins from one address whose source port is unknown all wait
// under one (address, port) key; the key's bucket stays bounded.
TEST(CorrelatorTest, PendingItemsOfOneAddressStayBounded) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s;
  for (int i = 0; i < 3000; ++i) {
    s.push_back(b.Login("host" + std::to_string(i % 50), "user" + std::to_string(i), "198.18.0.200",
                        0, "audit:" + std::to_string(i), 0.01 * i));
  }
  h.Feed(s);
  EXPECT_LE(h.correlator().pending_items(), 256u);
  EXPECT_GE(h.correlator().stats().pending_evicted, 3000u - 256u);
}

TEST(CorrelatorTest, TickForgetsIdleState) {
  CorrelatorOptions o;
  o.session_ttl_ns = 3600 * kNanosPerSecond;
  Harness h(o);
  StoryBuilder b;
  h.Feed({b.Login("hosta", "alice", "10.0.0.5", 40000, "audit:1", 0),
          b.Connect("hosta", "audit:1", "alice", 50000, "198.18.0.99", 22, 1)});
  EXPECT_EQ(h.correlator().tracked_sessions(), 1u);
  EXPECT_EQ(h.correlator().pending_items(), 2u);  // the login and the unanswered connect
  h.clock().AdvanceNs(11 * 60 * kNanosPerSecond);
  h.Collect(h.correlator().Tick());
  EXPECT_EQ(h.correlator().pending_items(), 0u);
  EXPECT_EQ(h.correlator().tracked_sessions(), 1u);
  h.clock().AdvanceNs(3600 * kNanosPerSecond);
  h.Collect(h.correlator().Tick());
  EXPECT_EQ(h.correlator().tracked_sessions(), 0u);
}

TEST(CorrelatorTest, RestoreRejectsCorruptStateAndKeepsTheOldOne) {
  StoryBuilder b;
  Harness h;
  h.Feed(SeedStory(b));
  std::string good = h.correlator().SerializeState();
  size_t sessions = h.correlator().tracked_sessions();
  nlohmann::json j = nlohmann::json::parse(good);
  nlohmann::json bad_ref = j;
  bad_ref["sessions"][0]["chain"] = "no-such-chain";
  nlohmann::json bad_type = j;
  bad_type["chains"][0]["failures"] = "five";
  nlohmann::json negative = j;
  negative["sessions"][0]["login_ns"] = -5;
  const std::vector<std::string> inputs = {
      "",
      "{",
      "[]",
      "null",
      good.substr(0, good.size() / 2),
      R"({"format":"something-else"})",
      std::string(100000, '['),
      bad_ref.dump(),
      bad_type.dump(),
      negative.dump(),
  };
  for (const std::string& in : inputs) {
    Status s = h.correlator().RestoreState(in);
    EXPECT_TRUE(s.IsCorruption()) << in.substr(0, 60) << " -> " << s.ToString();
    EXPECT_EQ(h.correlator().tracked_sessions(), sessions);
  }
  EXPECT_THAT(h.correlator().RestoreState(bad_type.dump()).message(),
              HasSubstr("chains[0].failures"));
  EXPECT_EQ(h.correlator().SerializeState(), good);
}

TEST(CorrelatorTest, PrivilegeComesFromPostureAndConfiguration) {
  CorrelatorOptions o;
  o.privileged_users = {"ops"};
  Harness h(o);
  StoryBuilder b;
  Event e = b.Base("hosta", 0);
  PostureSnapshot p;
  Account alice;
  alice.name = "alice";
  alice.uid = 1000;
  alice.groups = {"alice", "wheel"};
  Account bob;
  bob.name = "bob";
  bob.uid = 1001;
  bob.groups = {"bob"};
  p.accounts = {alice, bob};
  e.body = p;
  h.Feed({b.Wrap("hosta", e)});
  EXPECT_TRUE(h.correlator().IsPrivileged("hosta", "alice", 1000));
  EXPECT_FALSE(h.correlator().IsPrivileged("hostb", "alice", 1000));
  EXPECT_FALSE(h.correlator().IsPrivileged("hosta", "bob", 1001));
  EXPECT_TRUE(h.correlator().IsPrivileged("hosta", "bob", 0));
  EXPECT_TRUE(h.correlator().IsPrivileged("hostz", "root", kUnsetId));
  EXPECT_TRUE(h.correlator().IsPrivileged("hostz", "ops", 1002));
}

// A posture snapshot of `host` with one account.
Delivery PostureWith(StoryBuilder& b, const std::string& host, const Account& a, double t) {
  Event e = b.Base(host, t);
  PostureSnapshot p;
  p.accounts = {a};
  e.body = p;
  return b.Wrap(host, e);
}

// The seed's AI integration account: no login shell, in group root, a password that never
// expires.
Account AiopsAccount() {
  Account a;
  a.name = "aiops";
  a.uid = 998;
  a.gid = 998;
  a.groups = {"aiops", "root"};
  a.shell = "/usr/sbin/nologin";
  a.password_set = true;
  a.max_password_age_days = -1;
  return a;
}

// Brute force and a login after it (45 points, medium) for `user` on hosta.
std::vector<Delivery> BruteForceAndLogin(StoryBuilder& b, const std::string& user) {
  std::vector<Delivery> s;
  for (int i = 0; i < 5; ++i) s.push_back(b.Failure("hosta", user, kAttacker, 40001 + i, 1.0 * i));
  s.push_back(b.Login("hosta", user, kAttacker, 40010, "audit:1", 7));
  return s;
}

TEST(CorrelatorTest, AServiceAccountWithRootPowerAndANeverExpiringPasswordRaisesSeverity) {
  StoryBuilder b;
  {
    Harness h;
    h.Feed(BruteForceAndLogin(b, "aiops"));
    ASSERT_EQ(h.Only().severity, Severity::kMedium);
  }
  Harness h;
  h.Feed({PostureWith(b, "hosta", AiopsAccount(), 0)});
  h.Feed(BruteForceAndLogin(b, "aiops"));
  const Incident& in = h.Only();
  EXPECT_EQ(in.severity, Severity::kHigh);
  const std::string text = AllText(in);
  EXPECT_THAT(text, HasSubstr("The service account aiops on hosta is in group root and has a "
                              "password that never expires (privilege audit): whoever holds it "
                              "holds root's power for good."));
  EXPECT_THAT(text, HasSubstr("Severity raised from medium to high: one level for those "
                              "standing privileges."));
}

TEST(CorrelatorTest, PostureArrivingLaterOrFixedChangesTheIncident) {
  StoryBuilder b;
  Harness h;
  h.Feed(BruteForceAndLogin(b, "aiops"));
  ASSERT_EQ(h.Only().severity, Severity::kMedium);
  // The snapshot arrives after the incident: the incident is reported again, more severe.
  h.Feed({PostureWith(b, "hosta", AiopsAccount(), 20)});
  EXPECT_EQ(h.Only().severity, Severity::kHigh);
  const uint32_t revision = h.Only().revision;
  // Someone locks the password: still in group root, still high.
  Account locked = AiopsAccount();
  locked.password_locked = true;
  h.Feed({PostureWith(b, "hosta", locked, 40)});
  EXPECT_EQ(h.Only().severity, Severity::kHigh);
  EXPECT_THAT(AllText(h.Only()), HasSubstr("The service account aiops on hosta is in group root "
                                           "(privilege audit): whoever holds it holds root's "
                                           "power."));
  EXPECT_GT(h.Only().revision, revision);
  // And takes it out of group root: back to what the chain alone says.
  Account fixed = locked;
  fixed.groups = {"aiops"};
  h.Feed({PostureWith(b, "hosta", fixed, 60)});
  EXPECT_EQ(h.Only().severity, Severity::kMedium);
  EXPECT_THAT(AllText(h.Only()), Not(HasSubstr("privilege audit")));
}

TEST(CorrelatorTest, PeopleAndOtherHostsPostureDoNotRaiseSeverity) {
  StoryBuilder b;
  // A person (login shell, uid 1000) in sudo with a never-expiring password: an admin, as
  // most are; the privileged-access stage weighs that, not posture.
  Account alice;
  alice.name = "alice";
  alice.uid = 1000;
  alice.groups = {"alice", "sudo"};
  alice.interactive_shell = true;
  alice.password_set = true;
  Harness h;
  h.Feed({PostureWith(b, "hosta", alice, 0), PostureWith(b, "hostb", AiopsAccount(), 0)});
  std::vector<Delivery> s = BruteForceAndLogin(b, "alice");
  h.Feed(s);
  EXPECT_EQ(h.Only().severity, Severity::kMedium);
  EXPECT_THAT(AllText(h.Only()), Not(HasSubstr("privilege audit")));
  // aiops on hostb is not aiops on hosta.
  Harness other;
  other.Feed({PostureWith(b, "hostb", AiopsAccount(), 0)});
  other.Feed(BruteForceAndLogin(b, "aiops"));
  EXPECT_EQ(other.Only().severity, Severity::kMedium);
  // Any account other than root with uid 0 is root under another name: that raises.
  Account toor = alice;
  toor.name = "toor";
  toor.uid = 0;
  Harness root_alias;
  root_alias.Feed({PostureWith(b, "hosta", toor, 0)});
  root_alias.Feed(BruteForceAndLogin(b, "toor"));
  EXPECT_EQ(root_alias.Only().severity, Severity::kHigh);
  EXPECT_THAT(AllText(root_alias.Only()),
              HasSubstr("The service account toor on hosta has uid 0, is in group sudo and has "
                        "a password that never expires (privilege audit)"));
}

TEST(CorrelatorTest, ABruteForceAgainstARiskyServiceAccountIsMoreSevere) {
  StoryBuilder b;
  Harness h;
  h.Feed({PostureWith(b, "hosta", AiopsAccount(), 0)});
  std::vector<Delivery> s;
  for (int i = 0; i < 5; ++i) s.push_back(b.Failure("hosta", "aiops", kAttacker, 40001 + i, i));
  h.Feed(s);
  EXPECT_EQ(h.Only().severity, Severity::kMedium);  // 20 points, low, and one level up
  EXPECT_THAT(AllText(h.Only()), HasSubstr("from low to medium"));
}

// sshd runs the PAM session modules and motd scripts as root inside the user's new audit
// session; that is not the user acting as root. Running sudo is.
TEST(CorrelatorTest, RootProcessesOfTheLoginMachineryAreNotEscalation) {
  StoryBuilder b;
  std::vector<Delivery> s = SeedStory(b);
  s.insert(s.begin() + 12, b.Exec("hosta", "audit:1", "alice", 0, "/usr/bin/run-parts", 7.3));
  s.insert(s.begin() + 13, b.Exec("hosta", "audit:1", "alice", 0, "/usr/bin/uname", 7.4));
  {
    Harness h;
    h.Feed(s);
    const std::string text = AllText(h.Only());
    EXPECT_THAT(text, Not(HasSubstr("as root"))) << text;
  }
  s.push_back(b.Exec("hostc", "audit:9", "alice", 1000, "/usr/bin/sudo", 72));
  Harness h;
  h.Feed(s);
  EXPECT_THAT(AllText(h.Only()), HasSubstr("alice (as root) on hostc"));
}

TEST(CorrelatorTest, DiscoveryBurstAddsT1083ButDoesNotRaiseAlone) {
  StoryBuilder b;
  Harness h;
  std::vector<Delivery> s = {b.Login("hosta", "carol", "10.0.0.7", 44000, "audit:2", 0)};
  const char* cmds[] = {"/usr/bin/id", "/usr/bin/whoami", "/usr/bin/uname",
                        "/usr/bin/ps", "/usr/sbin/ip",    "/usr/bin/ls"};
  double t = 1;
  for (const char* c : cmds) s.push_back(b.Exec("hosta", "audit:2", "carol", 1000, c, t += 1));
  h.Feed(s);
  EXPECT_TRUE(h.outcome().reports.empty());
  h.Feed({b.Open("hosta", "audit:2", "carol", 1000, "cat", "/etc/gshadow", FileAccess::kRead, 12,
                 -13)});
  const Incident& in = h.Only();
  EXPECT_THAT(in.techniques, AllOf(Contains("T1083"), Contains("T1003.008")));
  EXPECT_THAT(AllText(in), HasSubstr("tried to read /etc/gshadow"));
}

TEST(AttackStagesTest, ClassifiesSensitiveFiles) {
  ProcessInfo cat;
  cat.comm = "cat";
  ProcessInfo ssh;
  ssh.comm = "ssh";
  ProcessInfo chkpwd;
  chkpwd.comm = "unix_chkpwd";
  FileOpenEvent f;
  f.access = FileAccess::kRead;
  f.path = "/etc/shadow";
  EXPECT_EQ(ClassifyFileOpen(f, cat), kShadowDump);
  EXPECT_EQ(ClassifyFileOpen(f, chkpwd), "");
  f.path = "/root/.ssh/id_rsa";
  EXPECT_EQ(ClassifyFileOpen(f, cat), kPrivateKeys);
  EXPECT_EQ(ClassifyFileOpen(f, ssh), "");
  f.path = "/root/.ssh/id_rsa.pub";
  EXPECT_EQ(ClassifyFileOpen(f, cat), "");
  f.path = "/etc/ssh/ssh_host_ed25519_key";
  EXPECT_EQ(ClassifyFileOpen(f, cat), kPrivateKeys);
  f.path = "/home/a/.ssh/authorized_keys";
  EXPECT_EQ(ClassifyFileOpen(f, cat), "");
  f.access = FileAccess::kUnspecified;
  f.flags = 02000 | 01;  // O_APPEND | O_WRONLY
  EXPECT_EQ(ClassifyFileOpen(f, cat), kAuthorizedKeys);
  EXPECT_TRUE(IsDiscoveryCommand("/usr/bin/whoami"));
  EXPECT_FALSE(IsDiscoveryCommand("/usr/bin/vim"));
}

TEST(ChainScorerTest, PostureRaisesSeverityOneLevelNeverTheScoreOrTheRaise) {
  Chain c;
  c.brute_force = true;
  c.failures = 3;  // 15 points: not raised
  const Standing risks = {{{"hosta", "aiops", "service", {"is in group root"}, true, {}, 0}}, {}};
  Assessment plain = AssessChain(c, {});
  Assessment risky = AssessChain(c, {}, risks);
  EXPECT_EQ(plain.severity, Severity::kInfo);
  EXPECT_EQ(risky.severity, Severity::kLow);
  EXPECT_EQ(risky.scored_severity, Severity::kInfo);
  EXPECT_TRUE(risky.posture_raised);
  EXPECT_EQ(risky.score, plain.score);
  EXPECT_EQ(risky.raise, plain.raise);
  EXPECT_FALSE(risky.raise);
  // Critical stays critical, and nothing is said to have been raised.
  c.success_after_failures = true;
  c.files.push_back({"hosta", "aiops", "/etc/shadow", "T1003.008", true, 0, "cat"});
  c.hops.resize(3);
  Assessment top = AssessChain(c, {}, risks);
  EXPECT_EQ(top.severity, Severity::kCritical);
  EXPECT_FALSE(top.posture_raised);
  const Incident in = BuildIncident(c, top, {}, risks);
  EXPECT_THAT(AllText(in), HasSubstr("The service account aiops on hosta is in group root"));
  EXPECT_THAT(AllText(in), Not(HasSubstr("Severity raised")));
}

// A drifted identity (privileges it holds and never used) raises a level like a risky
// posture, and the explanation names the privileges and how long they lay unused.
TEST(ChainScorerTest, ADriftedIdentityRaisesSeverityAndSaysWhatLayUnused) {
  Chain c;
  c.brute_force = true;
  c.failures = 3;
  const Standing drifted = {
      {{"hosta", "backup", "service", {}, false, {"login", "sudo"}, 21 * 86400 * kNanosPerSecond}},
      {}};
  const Assessment a = AssessChain(c, {}, drifted);
  EXPECT_TRUE(a.posture_raised);
  EXPECT_EQ(a.severity, Severity::kLow);
  const std::string text = AllText(BuildIncident(c, a, {}, drifted));
  EXPECT_THAT(text, HasSubstr("The service account backup on hosta holds login and sudo and "
                              "never used them in the 21 days it was watched (privilege drift)"));
  EXPECT_THAT(text, Not(HasSubstr("privilege audit")));
  EXPECT_THAT(text, HasSubstr("Severity raised from info to low"));
}

TEST(ChainScorerTest, AnAgentOnProbationIsOneLevelMoreAndItsAnomaliesRaise) {
  Chain c;
  c.baseline.warm = true;
  c.baseline.login = 0.6;  // somewhat unusual: 12 points, not raising for anyone else
  const Standing probation = {{}, {"aiops"}};
  const Assessment trusted = AssessChain(c, {});
  const Assessment on_probation = AssessChain(c, {}, probation);
  EXPECT_FALSE(trusted.raise);
  EXPECT_EQ(on_probation.score, trusted.score);
  EXPECT_FALSE(on_probation.raise);  // 12 points: below what any incident needs
  c.discovery = {"aiops on hosta"};  // 22 points
  EXPECT_FALSE(AssessChain(c, {}).raise);
  const Assessment raised = AssessChain(c, {}, probation);
  EXPECT_TRUE(raised.raise);
  EXPECT_TRUE(raised.probation_anomaly);
  EXPECT_EQ(raised.scored_severity, Severity::kLow);
  EXPECT_EQ(raised.severity, Severity::kMedium);
  // Posture and probation each add a level.
  const Standing both = {{{"hosta", "aiops", "agent", {"is in group root"}, false, {}, 0}},
                         {"aiops"}};
  const Assessment two = AssessChain(c, {}, both);
  EXPECT_EQ(two.severity, Severity::kHigh);
  const std::string text = AllText(BuildIncident(c, two, {}, both));
  EXPECT_THAT(text, HasSubstr("The agent aiops is on probation: its anomalies count one level "
                              "more until a person promotes it (triplinectl trust promote aiops), "
                              "and what its baselines found unusual is raised as an incident on "
                              "its own."));
  EXPECT_THAT(text, HasSubstr("Severity raised from low to high: one level for those standing "
                              "privileges and one for an agent on probation."));
}

TEST(ChainScorerTest, SeverityBands) {
  EXPECT_EQ(SeverityForScore(0), Severity::kInfo);
  EXPECT_EQ(SeverityForScore(19.9), Severity::kInfo);
  EXPECT_EQ(SeverityForScore(20), Severity::kLow);
  EXPECT_EQ(SeverityForScore(40), Severity::kMedium);
  EXPECT_EQ(SeverityForScore(60), Severity::kHigh);
  EXPECT_EQ(SeverityForScore(80), Severity::kCritical);
}

TEST(IncidentTest, JsonHasContractFieldsAndRoundTrips) {
  StoryBuilder b;
  Harness h;
  h.Feed(SeedStory(b));
  const Incident& in = h.Only();
  nlohmann::json j = IncidentToJson(in);
  for (const char* k :
       {"id", "severity", "title", "identities", "hosts", "techniques", "first_seen", "last_seen",
        "chain", "events", "explanation", "confidence"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["severity"], "critical");
  EXPECT_EQ(j["chain"][0]["at"], "2026-11-25T03:41:31.000Z");
  EXPECT_EQ(j["first_seen"], "2026-11-25T03:41:00.000Z");
  Result<Incident> back = IncidentFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, in);
  ASSERT_FALSE(in.stages.empty());
  // And through the wire form.
  v1::Incident wire;
  ToProto(in, &wire);
  EXPECT_EQ(wire.stages_size(), static_cast<int>(in.stages.size()));
  Result<Incident> from_wire = FromProto(wire);
  ASSERT_TRUE(from_wire.ok()) << from_wire.status().ToString();
  EXPECT_EQ(*from_wire, in);
  // An incident written before stages existed reads back without them.
  nlohmann::json old = j;
  old.erase("stages");
  Result<Incident> older = IncidentFromJson(old);
  ASSERT_TRUE(older.ok()) << older.status().ToString();
  EXPECT_TRUE(older->stages.empty());
  j["stages"][0]["at_ns"] = "soon";
  EXPECT_FALSE(IncidentFromJson(j).ok());
  j["stages"][0]["at_ns"] = 1;
  j["chain"][0].erase("at_ns");
  EXPECT_FALSE(IncidentFromJson(j).ok());
  Severity s;
  EXPECT_TRUE(ParseSeverityName("high", &s));
  EXPECT_EQ(s, Severity::kHigh);
  EXPECT_EQ(SeverityName(Severity::kInfo), "info");
}

// What SerializeState wrote when it built the whole document with nlohmann::json: the
// reference the streaming writer is held to (same members, types, order and escaping).
nlohmann::json RefDocument(const EventRef& r) {
  return {{"sensor_id", r.sensor_id}, {"seq", r.seq},   {"host", r.host},
          {"time_ns", r.time_ns},     {"kind", r.kind}, {"summary", r.summary}};
}

nlohmann::json RefsDocument(const std::vector<EventRef>& refs) {
  nlohmann::json a = nlohmann::json::array();
  for (const EventRef& r : refs) a.push_back(RefDocument(r));
  return a;
}

nlohmann::json ChainDocument(const Chain& c) {
  nlohmann::json hops = nlohmann::json::array();
  for (const Hop& h : c.hops) {
    hops.push_back({{"from", h.from},
                    {"to", h.to},
                    {"user", h.user},
                    {"from_user", h.from_user},
                    {"at_ns", h.at_ns},
                    {"port", h.port}});
  }
  nlohmann::json files = nlohmann::json::array();
  for (const FileFinding& f : c.files) {
    files.push_back({{"host", f.host},
                     {"user", f.user},
                     {"path", f.path},
                     {"technique", f.technique},
                     {"succeeded", f.succeeded},
                     {"at_ns", f.at_ns},
                     {"process", f.process}});
  }
  return {{"key", c.key},
          {"incident_id", c.incident_id},
          {"revision", c.revision},
          {"fingerprint", c.fingerprint},
          {"last_activity_ns", c.last_activity_ns},
          {"members", c.members},
          {"hosts", c.hosts},
          {"users", c.users},
          {"sources", c.sources},
          {"hops", std::move(hops)},
          {"files", std::move(files)},
          {"discovery", c.discovery},
          {"privileged", c.privileged},
          {"failures", c.failures},
          {"failure_user", c.failure_user},
          {"failure_host", c.failure_host},
          {"failure_source", c.failure_source},
          {"sprayed_accounts", c.sprayed_accounts},
          {"brute_force", c.brute_force},
          {"spraying", c.spraying},
          {"stuffing", c.stuffing},
          {"success_after_failures", c.success_after_failures},
          {"failures_before_success", c.failures_before_success},
          {"compromised_user", c.compromised_user},
          {"compromised_host", c.compromised_host},
          {"compromise_ns", c.compromise_ns},
          {"new_source_login", c.new_source_login},
          {"new_source_detail", c.new_source_detail},
          {"first_login_ns", c.first_login_ns},
          {"events", RefsDocument(c.events)},
          {"first_ns", c.first_ns},
          {"last_ns", c.last_ns}};
}

nlohmann::json StateDocument(const CorrelatorState& s) {
  using nlohmann::json;
  json j;
  j["format"] = "tripline.correlator.v1";
  j["next_pending_id"] = s.next_pending_id;
  j["stats"] = {{"events", s.stats.events},
                {"sessions_evicted", s.stats.sessions_evicted},
                {"pending_evicted", s.stats.pending_evicted},
                {"trackers_evicted", s.stats.trackers_evicted},
                {"hops", s.stats.hops},
                {"incidents_raised", s.stats.incidents_raised},
                {"incident_updates", s.stats.incident_updates}};
  json sessions = json::array();
  s.sessions.ForEachOldestFirst([&](const std::string&, const SessionNode& n) {
    sessions.push_back({{"key", n.key},
                        {"host", n.host},
                        {"user", n.user},
                        {"service", n.service},
                        {"remote_addr", n.remote_addr},
                        {"remote_port", n.remote_port},
                        {"login_ns", n.login_ns},
                        {"last_activity_ns", n.last_activity_ns},
                        {"parent", n.parent},
                        {"chain", n.chain},
                        {"privileged", n.privileged},
                        {"discovery_flagged", n.discovery_flagged},
                        {"new_source", n.new_source},
                        {"discovery_times", n.discovery_times},
                        {"aliases", n.aliases}});
  });
  j["sessions"] = std::move(sessions);
  std::map<std::string, const Chain*> chains;
  for (const auto& [k, c] : s.chains) chains.emplace(k, &c);
  json chain_array = json::array();
  for (const auto& [k, c] : chains) chain_array.push_back(ChainDocument(*c));
  j["chains"] = std::move(chain_array);
  std::map<std::string, std::string> source_chain(s.source_chain.begin(), s.source_chain.end());
  json sc = json::array();
  for (const auto& [addr, chain] : source_chain) sc.push_back(json::array({addr, chain}));
  j["source_chain"] = std::move(sc);
  j["raised"] = std::vector<std::string>(s.raised.begin(), s.raised.end());
  json failures = json::array();
  s.failures.ForEachOldestFirst([&](const std::string& k, const FailureTracker& f) {
    json attempts = json::array();
    for (const auto& [t, signal] : f.attempts) attempts.push_back(json::array({t, signal}));
    failures.push_back({{"key", k},
                        {"touched_ns", f.touched_ns},
                        {"attempts", std::move(attempts)},
                        {"refs", RefsDocument(f.refs)}});
  });
  j["failures"] = std::move(failures);
  json sources = json::array();
  s.sources.ForEachOldestFirst([&](const std::string& addr, const SourceTracker& t) {
    json users = json::array();
    for (const auto& [user, a] : t.users) {
      users.push_back(
          {{"user", user},
           {"failures", a.failures},
           {"by_signal", std::vector<uint32_t>(std::begin(a.by_signal), std::end(a.by_signal))},
           {"last_index", a.last_index}});
    }
    sources.push_back({{"addr", addr},
                       {"touched_ns", t.touched_ns},
                       {"users", std::move(users)},
                       {"attempts", t.attempts},
                       {"revisits", t.revisits},
                       {"first_ns", t.first_ns},
                       {"last_ns", t.last_ns},
                       {"hosts", t.hosts},
                       {"refs", RefsDocument(t.refs)}});
  });
  j["sources"] = std::move(sources);
  json user_sources = json::array();
  s.user_sources.ForEachOldestFirst(
      [&](const std::string& user, const std::vector<std::string>& addrs) {
        user_sources.push_back({{"user", user}, {"addrs", addrs}});
      });
  j["user_sources"] = std::move(user_sources);
  json addresses = json::array();
  s.addresses.ForEachOldestFirst([&](const std::string& addr, const std::string& host) {
    addresses.push_back(json::array({addr, host}));
  });
  j["addresses"] = std::move(addresses);
  json hosts = json::array();
  s.hosts.ForEachOldestFirst([&](const std::string& host, const HostKnowledge& k) {
    json counters = json::array();
    for (const auto& [sensor, n] : k.drop_counters) counters.push_back(json::array({sensor, n}));
    json drops = json::array();
    for (const auto& [t, n] : k.drops) drops.push_back(json::array({t, n}));
    json blind = json::array();
    for (const auto& f : k.blind) {
      blind.push_back(json::array({f.name, f.state, f.hooks, f.reason, f.remedy}));
    }
    json posture = json::array();
    for (const auto& [account, p] : k.posture) {
      posture.push_back(json::array({account, p.never_expires, p.looks_human, p.root_powers}));
    }
    hosts.push_back({{"blind", std::move(blind)},
                     {"host", host},
                     {"posture", std::move(posture)},
                     {"ssh_ports", std::vector<uint32_t>(k.ssh_ports.begin(), k.ssh_ports.end())},
                     {"privileged_users", std::vector<std::string>(k.privileged_users.begin(),
                                                                   k.privileged_users.end())},
                     {"drop_counters", std::move(counters)},
                     {"drops", std::move(drops)}});
  });
  j["hosts"] = std::move(hosts);
  json pending = json::array();
  for (const auto& [id, p] : s.pending) {
    pending.push_back({{"id", id},
                       {"kind", static_cast<uint32_t>(p.kind)},
                       {"index_addr", p.index_addr},
                       {"index_port", p.index_port},
                       {"host", p.host},
                       {"session", p.session},
                       {"peer_addr", p.peer_addr},
                       {"peer_port", p.peer_port},
                       {"time_ns", p.time_ns},
                       {"arrived_ns", p.arrived_ns},
                       {"ref", RefDocument(p.ref)}});
  }
  j["pending"] = std::move(pending);
  return j;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Names as sensors may report them: JSON's special characters, every control character,
// DEL, a NUL, and UTF-8 of two to four bytes (U+2028 included).
const std::string kQuoted = "qu\"o\"te";
const std::string kSlashes = "back\\slash/and\\\\two";
const std::string kControls = std::string("nul\0", 4) + "\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f end";
const std::string kUnicode = "h\xC3\xB6st-\xE2\x82\xAC-\xF0\x9F\x90\x9F-\xE2\x80\xA8";

EventRef NastyRef(uint64_t seq, const std::string& host) {
  return {"sensor-" + host,
          seq,
          host,
          StoryBuilder::At(static_cast<double>(seq)),
          "file_open",
          "read \"" + kControls + "\" as " + kUnicode};
}

// Every section of the state, every field set, no field equal to its neighbour; valid
// UTF-8 throughout (what RestoreState can read).
CorrelatorState RichState() {
  CorrelatorState s;
  const int64_t t = StoryBuilder::kT0;
  const std::string root_key = kQuoted + "|audit:1";
  const std::string hop_key = kUnicode + "|audit:5";
  const std::string other_key = kControls + "|pid:42";
  SessionNode root;
  root.key = root_key;
  root.host = kQuoted;
  root.user = kSlashes;
  root.service = "sshd";
  root.remote_addr = "198.18.0.66";
  root.remote_port = 40010;
  root.login_ns = t + 1;
  root.last_activity_ns = t + 2;
  root.chain = root_key;
  root.privileged = true;
  root.new_source = true;
  root.discovery_times = {t + 3, t + 4};
  root.aliases = {kQuoted + "|pid:" + kUnicode};
  SessionNode hop;
  hop.key = hop_key;
  hop.host = kUnicode;
  hop.user = kControls;
  hop.service = "sshd";
  hop.remote_addr = "198.18.0.11";
  hop.remote_port = 50001;
  hop.login_ns = t + 5;
  hop.last_activity_ns = (int64_t{1} << 62);
  hop.parent = root_key;
  hop.chain = root_key;
  hop.discovery_flagged = true;
  SessionNode other;
  other.key = other_key;
  other.host = kControls;
  other.last_activity_ns = t + 6;
  other.chain = other_key;
  s.sessions.Put(hop.key, hop);
  s.sessions.Put(other.key, other);
  s.sessions.Put(root.key, root);  // the most recently used last

  Chain c;
  c.key = root_key;
  c.incident_id = "inc-00000000deadbeef";
  c.revision = 7;
  c.fingerprint = UINT64_MAX;
  c.last_activity_ns = t + 10;
  c.members = {root_key, hop_key};
  c.hosts = {kQuoted, kUnicode};
  c.users = {kSlashes, kControls};
  c.sources = {"198.18.0.66"};
  c.hops = {{kQuoted, kUnicode, kControls, kSlashes, t + 11, 2222}};
  c.files = {{kQuoted, kSlashes, "/etc/" + kUnicode, "T1003.008", true, t + 12, kControls},
             {kUnicode, kControls, "/root/.ssh/\"id\"", "T1552.004", false, t + 13, "cat"}};
  c.discovery = {kSlashes + " on " + kQuoted};
  c.privileged = {kSlashes + "@" + kQuoted};
  c.failures = 5;
  c.failure_user = kSlashes;
  c.failure_host = kQuoted;
  c.failure_source = "198.18.0.66";
  c.sprayed_accounts = 3;
  c.brute_force = true;
  c.stuffing = true;
  c.success_after_failures = true;
  c.failures_before_success = 4;
  c.compromised_user = kSlashes;
  c.compromised_host = kQuoted;
  c.compromise_ns = t + 14;
  c.new_source_login = true;
  c.new_source_detail = kSlashes + " from 198.18.0.66 on " + kQuoted;
  c.first_login_ns = t + 15;
  c.events = {NastyRef(1, kQuoted), NastyRef(2, kUnicode)};
  c.first_ns = t + 16;
  c.last_ns = t + 17;
  Chain quiet;
  quiet.key = other_key;
  quiet.members = {other_key};
  s.chains.emplace(c.key, c);
  s.chains.emplace(quiet.key, quiet);
  s.source_chain = {{"198.18.0.66", root_key}, {kUnicode, other_key}, {"10.0.0.1", root_key}};
  s.raised = {root_key};

  FailureTracker f;
  f.touched_ns = t + 20;
  f.attempts = {{t + 21, 0}, {t + 22, 5}};
  f.refs = {NastyRef(3, kQuoted)};
  s.failures.Put(kQuoted + "|" + kSlashes + "|198.18.0.66", f);
  s.failures.Put(kUnicode + "||10.0.0.9", {});
  SourceTracker src;
  src.touched_ns = t + 23;
  src.users[kSlashes] = {4, {1, 2, 3, 4, 5, 0xffffffffu}, 9};
  src.users[kUnicode] = {1, {0, 1, 0, 0, 0, 0}, 10};
  src.attempts = 11;
  src.revisits = 2;
  src.first_ns = t + 24;
  src.last_ns = t + 25;
  src.hosts = {kQuoted, kControls};
  src.refs = {NastyRef(4, kQuoted), NastyRef(5, kQuoted)};
  s.sources.Put("198.18.0.66", src);
  s.user_sources.Put(kSlashes, {"198.18.0.66", kUnicode});
  s.user_sources.Put(kControls, {});
  s.addresses.Put("198.18.0.11", kQuoted);
  s.addresses.Put("198.18.0.12", kUnicode);
  HostKnowledge k;
  k.ssh_ports = {22, 2222, 65535};
  k.privileged_users = {"root", kSlashes, kUnicode};
  k.drop_counters = {{"sensor-" + kQuoted, 120}, {"sensor-b", UINT64_MAX}};
  k.drops = {{t + 26, 120}, {t + 27, 3}};
  k.blind = {{"file", "disabled", "", kQuoted, kControls}, {"net", "degraded", kUnicode, "", ""}};
  k.posture[kSlashes] = {{"is in group " + kControls, "has uid 0"}, true, false};
  k.posture[kUnicode] = {{}, true, true};
  s.hosts.Put(kQuoted, k);
  s.hosts.Put(kUnicode, {});

  PendingItem connect;
  connect.kind = PendingItem::kConnect;
  connect.index_addr = "198.18.0.12";
  connect.index_port = 50002;
  connect.host = kUnicode;
  connect.session = hop_key;
  connect.peer_addr = "198.18.0.13";
  connect.peer_port = 22;
  connect.time_ns = t + 28;
  connect.arrived_ns = t + 29;
  connect.ref = NastyRef(6, kUnicode);
  PendingItem login;
  login.kind = PendingItem::kLogin;
  login.index_addr = kControls;
  login.host = kControls;
  login.session = other_key;
  login.time_ns = t + 30;
  login.arrived_ns = t + 31;
  login.ref = NastyRef(7, kControls);
  s.pending.emplace(3, connect);
  s.pending.emplace(8, login);
  s.next_pending_id = 9;
  s.stats = {1, 2, 3, 4, 5, 6, 7};
  return s;
}

TEST(StateCodecTest, StateIsTheDocumentNlohmannJsonWouldWrite) {
  const nlohmann::json want = StateDocument(RichState());
  const std::string want_text = Dump(want);
  Harness h;
  ASSERT_TRUE(h.correlator().RestoreState(want_text).ok());
  const std::string got = h.correlator().SerializeState();
  EXPECT_EQ(nlohmann::json::parse(got), want);
  EXPECT_EQ(got, want_text);  // members, escaping and numbers byte for byte
  EXPECT_THAT(got, HasSubstr(R"("nul\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f)"
                             "\x7f end"));
  EXPECT_THAT(got, HasSubstr(R"("back\\slash/and\\\\two")"));
  EXPECT_THAT(got, HasSubstr(R"("fingerprint":18446744073709551615)"));

  Harness again;
  ASSERT_TRUE(again.correlator().RestoreState(got).ok());
  EXPECT_EQ(again.correlator().SerializeState(), got);
}

// A state the correlator built itself from events whose names hold JSON's special
// characters, control characters, UTF-8 and invalid UTF-8; every section has entries.
TEST(StateCodecTest, StateFromHostileNamesRoundTripsByteForByte) {
  const std::string ha = "host\"a\\";
  const std::string hb = kUnicode;
  const std::string hc = "ctl\x01\x1f\t\n\x7f";
  const std::string user = "al\"ice\\";
  const std::string bad_user = "bad\xFF\xFE-\xC3\x28-\xE2\x82";  // invalid, cut short
  const std::string bad_path = "/home/\xC0\xAF\"x\\/.ssh/authorized_keys";
  StoryBuilder b;
  b.SetAddress(ha, "198.18.0.11");
  b.SetAddress(hb, "198.18.0.12");
  b.SetAddress(hc, "198.18.0.13");
  std::vector<Delivery> s;
  for (int i = 0; i < 4; ++i) s.push_back(b.Failure(ha, user, kAttacker, 40001 + i, i));
  for (int i = 0; i < 3; ++i) s.push_back(b.Failure(hc, bad_user, kAttacker, 41001 + i, i + 0.5));
  s.push_back(b.Login(ha, user, kAttacker, 40010, "audit:1", 7));
  s.push_back(b.Open(ha, "audit:1", user, 1000, "cat", "/etc/shadow", FileAccess::kRead, 8));
  s.push_back(b.Connect(ha, "audit:1", user, 50001, "198.18.0.12", 22, 9));
  s.push_back(b.Accept(hb, 22, "198.18.0.11", 50001, 9.1));
  s.push_back(b.Login(hb, bad_user, "198.18.0.11", 50001, "audit:5", 10));
  s.push_back(b.Open(hb, "audit:5", bad_user, 0, "tee", bad_path, FileAccess::kWrite, 11));
  // Halves still waiting: a connect to hc that sshd never accepted, and a login on hc from
  // hb's address on a port no connect used.
  s.push_back(b.Connect(hb, "audit:5", bad_user, 50002, "198.18.0.13", 22, 12));
  s.push_back(b.Login(hc, user, "198.18.0.12", 50999, "audit:" + bad_user, 13));
  s.push_back(b.Health(hb, 120, 14));
  Event posture = b.Base(ha, 15);
  PostureSnapshot p;
  Account root_like;
  root_like.name = "r\xC3\xB6ot\"";
  root_like.uid = 0;
  Account admin;
  admin.name = bad_user;
  admin.uid = 1001;
  admin.groups = {"wheel"};
  p.accounts = {root_like, admin};
  posture.body = p;
  s.push_back(b.Wrap(ha, posture));
  Harness h;
  h.Feed(s);

  const std::string got = h.correlator().SerializeState();
  const nlohmann::json j = nlohmann::json::parse(got);
  for (const char* section : {"sessions", "chains", "source_chain", "raised", "failures", "sources",
                              "user_sources", "addresses", "hosts", "pending"}) {
    EXPECT_FALSE(j[section].empty()) << section;
  }
  std::set<uint64_t> pending_kinds;
  for (const nlohmann::json& item : j["pending"]) {
    pending_kinds.insert(item["kind"].get<uint64_t>());
  }
  EXPECT_EQ(pending_kinds, (std::set<uint64_t>{PendingItem::kConnect, PendingItem::kLogin}));
  // Invalid UTF-8 is replaced as nlohmann's dump(..., replace) replaces it: one U+FFFD per
  // byte that cannot start a sequence, one for a start whose next byte cannot continue it
  // (that byte is kept), one for a sequence cut short by the end.
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_THAT(got, HasSubstr("bad" + fffd + fffd + "-" + fffd + "(-" + fffd + "\""));
  EXPECT_THAT(got, HasSubstr("/home/" + fffd + fffd + R"(\"x\\/.ssh/authorized_keys)"));
  EXPECT_THAT(got, HasSubstr("r\xC3\xB6ot\\\""));
  // What nlohmann writes for the document it reads: members, escaping, numbers.
  EXPECT_EQ(got, Dump(j));

  Harness again;
  ASSERT_TRUE(again.correlator().RestoreState(got).ok());
  EXPECT_EQ(again.correlator().SerializeState(), got);
}

std::string WrittenString(std::string_view s) {
  std::string out;
  JsonWriter w(&out);
  w.String(s);
  return out;
}

TEST(JsonWriterTest, StringsAreWrittenAsNlohmannDumpWritesThem) {
  int mismatches = 0;
  auto expect_same = [&](const std::string& s) {
    const std::string got = WrittenString(s), want = Dump(nlohmann::json(s));
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << ::testing::PrintToString(s) << ": " << got << " != " << want;
    }
  };
  // Every string of one or two bytes.
  for (int a = 0; a < 256; ++a) {
    expect_same(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) {
      expect_same(std::string{static_cast<char>(a), static_cast<char>(b)});
    }
  }
  // Every string of three and four bytes over the bytes where UTF-8's rules change.
  std::vector<char> edges;
  for (int v : {0x00, 0x1f, 0x22, 0x5c, 0x61, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5}) {
    edges.push_back(static_cast<char>(v));
  }
  for (char a : edges) {
    for (char b : edges) {
      for (char c : edges) {
        expect_same({a, b, c});
        for (char d : edges) expect_same({a, b, c, d});
      }
    }
  }
  // Longer strings of random bytes, mostly ASCII.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string r(rng() % 40, '\0');
    for (char& ch : r) ch = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 0x20 + rng() % 95);
    expect_same(r);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(JsonWriterTest, ValuesAndNestingAreWrittenAsNlohmannDumpWritesThem) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a").BeginArray();
  w.EndArray();
  w.Key("b").BeginObject();
  w.EndObject();
  w.Key("c").BeginArray();
  w.Int(INT64_MIN);
  w.Int(-1);
  w.Int(0);
  w.Int(INT64_MAX);
  w.Uint(0);
  w.Uint(UINT64_MAX);
  w.Bool(true);
  w.Bool(false);
  w.String("");
  w.BeginArray();
  w.BeginObject();
  w.EndObject();
  w.EndArray();
  w.EndArray();
  w.Key("d").Uint(1);
  w.EndObject();
  const nlohmann::json want = {{"a", nlohmann::json::array()},
                               {"b", nlohmann::json::object()},
                               {"c",
                                {INT64_MIN, -1, 0, INT64_MAX, uint64_t{0}, UINT64_MAX, true, false,
                                 "", nlohmann::json::array({nlohmann::json::object()})}},
                               {"d", 1u}};
  EXPECT_EQ(out, Dump(want));
}

}  // namespace
}  // namespace tripline::correlate
