#include "aggregator/correlate/correlator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "aggregator/correlate/attack_stages.h"
#include "aggregator/correlate/chain_scorer.h"
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
  j["chain"][0].erase("at_ns");
  EXPECT_FALSE(IncidentFromJson(j).ok());
  Severity s;
  EXPECT_TRUE(ParseSeverityName("high", &s));
  EXPECT_EQ(s, Severity::kHigh);
  EXPECT_EQ(SeverityName(Severity::kInfo), "info");
}

}  // namespace
}  // namespace tripline::correlate
