// The story Tripline exists for, end to end: real sshd on three lab hosts, a real sensor
// per host streaming to a real aggregator, and incidents read back with triplinectl.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "aggregator/console/console_auth.h"
#include "common/clock.h"
#include "tests/console/browser_driver.h"
#include "tests/e2e/e2e_support.h"
#include "tools/scenario/fleet.h"
#include "tools/scenario/story.h"

namespace tripline::e2e {
namespace {

using nlohmann::json;
using scenario::AttackStory;
using scenario::Fleet;

bool HasTechnique(const json& incident, const std::string& prefix) {
  for (const auto& t : incident.value("techniques", json::array())) {
    if (t.get<std::string>().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> Hosts(const json& incident) {
  std::vector<std::string> hosts;
  for (const auto& h : incident.value("hosts", json::array()))
    hosts.push_back(h.get<std::string>());
  return hosts;
}

int SeverityRank(const std::string& s) {
  static const std::vector<std::string> order = {"info", "low", "medium", "high", "critical"};
  auto it = std::find(order.begin(), order.end(), s);
  return it == order.end() ? -1 : static_cast<int>(it - order.begin());
}

// The events of `triplinectl events --json` output (an array, or an object with "events").
json EventList(const json& out) {
  return out.is_object() ? out.value("events", json::array()) : out;
}

bool IsLoginOf(const json& e, const std::string& host, const std::string& user,
               const std::string& outcome) {
  return e.value("kind", "") == "login" && e.value("host", "") == host &&
         e["login"].value("user", "") == user && e["login"].value("outcome", "") == outcome;
}

// Polls `probe` every 100 ms until it returns true or `timeout` passes; never a fixed sleep.
bool PollUntil(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (probe()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

class AttackChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status ready = CheckE2ePrerequisites();
    if (!ready.ok()) {
      GTEST_SKIP() << "needs root, namespaces, sshd and BPF: " << ready.ToString();
    }
  }

  // Builds hosta, hostb, hostc (hostb's sshd on `hostb_port`), an attacker and an admin
  // workstation, and starts the fleet. With `orders`, the aggregator signs action orders
  // with a key made by `tripline-aggregator --make-order-key`, and each sensor carries out
  // those for its host, its nftables rules in its lab host's network namespace. With
  // `console` (and `orders`), it also serves the analyst console on loopback, where bob
  // (the approver) signs in with kBobPassword.
  void Build(int hostb_port = 22, bool orders = false, bool console = false) {
    lab::LabOptions options;
    options.hosts = {{"hosta", "198.18.0.1", 22},
                     {"hostb", "198.18.0.2", hostb_port},
                     {"hostc", "198.18.0.3", 22}};
    options.clients = {{"attacker", "198.18.0.66", 22}, {"admin-ws", "198.18.0.10", 22}};
    auto lab = lab::Lab::Create(options);
    ASSERT_TRUE(lab.ok()) << lab.status().ToString();
    lab_ = std::move(*lab);
    scenario::FleetOptions fleet_options;
    fleet_options.bin_dir = BinDir();
    fleet_options.work_dir = work_.path();
    if (orders) {
      ASSERT_NO_FATAL_FAILURE(EnableOrders(&fleet_options, console));
    }
    auto fleet = Fleet::Start(*lab_, fleet_options);
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
  }

  static constexpr char kBobPassword[] = "bob's console password";

  void EnableOrders(scenario::FleetOptions* options, bool console) {
    const std::string key = work_.path() + "/order.key";
    auto made = lab_->host("hosta")->Run(
        {BinDir() + "/tripline-aggregator", "--make-order-key", key}, std::chrono::seconds(20));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    ASSERT_EQ(made->exit_code, 0) << made->err;
    const std::string marker = "order_public_key: \"";
    const size_t at = made->out.find(marker);
    ASSERT_NE(at, std::string::npos) << made->out;
    const std::string pub = made->out.substr(at + marker.size(), 64);
    const std::string aggregator_conf = work_.path() + "/aggregator.conf";
    std::string conf = "response { order_key_file: \"" + key + "\" approvers: \"bob\" }\n";
    if (console) {
      const auto hash = console::HashPassword(kBobPassword);
      ASSERT_TRUE(hash.ok()) << hash.status().ToString();
      conf += "console { users { name: \"bob\" password_hash: \"" + *hash +
              "\" role: \"approver\" } }\n";
    }
    ASSERT_TRUE(WriteFile(aggregator_conf, conf));
    options->aggregator_args = {"--config", aggregator_conf};
    if (console) {
      options->aggregator_args.insert(options->aggregator_args.end(), {"--console", "127.0.0.1:0"});
    }
    for (const char* host : {"hosta", "hostb", "hostc"}) {
      const std::string conf = work_.path() + "/sensor-" + host + ".conf";
      ASSERT_TRUE(WriteFile(conf, "order_public_key: \"" + pub + "\"\norder_net_namespace: \"" +
                                      lab_->host(host)->netns_path() + "\"\n"));
      options->sensor_args_by_host[host] = {"--config", conf};
    }
  }

  static bool WriteFile(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    const bool ok = std::fputs(text.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
  }

  // The action of `incident` with kind and target, as triplinectl shows it; empty if none.
  json FindAction(const std::string& incident, const std::string& kind, const std::string& target) {
    auto out = fleet_->CtlJson({"actions", "--incident", incident});
    if (!out.ok()) return {};
    const json list = out->is_object() ? out->value("actions", json::array()) : *out;
    for (const json& a : list) {
      if (a.value("kind", "") == kind && a.value("target", "") == target) return a;
    }
    return {};
  }

  // Plays the seed story (alice brute-forced on hosta, hops to hostb and hostc) and waits
  // for Tripline to propose locking alice on hostb: fills the incident's id and the action.
  void PlaySeedStoryUntilLockProposed(const lab::LabUser& alice, std::string* incident_id,
                                      json* action) {
    AttackStory story;
    story.victim = alice;
    story.hops = {{"hostb", alice}, {"hostc", alice}};
    const json incident = PlayAndExpectOneCritical(story, std::chrono::seconds(5));
    ASSERT_FALSE(incident.empty());
    *incident_id = incident.value("id", "");
    // Tripline proposes to lock each account that arrived on a host by a hop: alice on hostb
    // (and on hostc).
    const std::string target = "hostb/" + alice.login;
    ASSERT_TRUE(PollUntil(
        [&] {
          *action = FindAction(*incident_id, "lock", target);
          return !action->empty();
        },
        std::chrono::seconds(40)))
        << "Tripline never proposed to lock " << target
        << "; actions: " << fleet_->CtlJson({"actions"}).value_or(json()).dump(2);
  }

  void TearDown() override {
    if (fleet_) {
      Status stopped = fleet_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped.ToString();
    }
    fleet_.reset();
    if (lab_) {
      Status closed = lab_->Close();
      EXPECT_TRUE(closed.ok()) << closed.ToString();
    }
  }

  // Stored events matching the filters (`triplinectl events ... --json`); empty on error.
  json Events(std::vector<std::string> filters) {
    std::vector<std::string> args = {"events", "--limit", "5000"};
    args.insert(args.end(), filters.begin(), filters.end());
    auto out = fleet_->CtlJson(args);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? EventList(*out) : json::array();
  }

  // Waits until everything the sensors of `hosts` saw so far is stored and correlated.
  // A marker command runs on each host; a sensor numbers events in the order it reads them
  // and the aggregator stores each sensor's events in sequence order, so once a marker's
  // exec is stored, everything its host's sensor saw before is too. Then the correlator
  // must have fed every event stored by then (stats: fed >= stored, nothing behind).
  void WaitUntilArrivedAndCorrelated(const std::vector<std::string>& hosts) {
    static std::atomic<int> round{0};
    const std::string marker = "tripline-e2e-marker-" + std::to_string(++round);
    for (const std::string& host : hosts) {
      auto ran = lab_->host(host)->Run({"/bin/echo", marker}, std::chrono::seconds(10));
      ASSERT_TRUE(ran.ok()) << host << ": " << ran.status().ToString();
    }
    for (const std::string& host : hosts) {
      const bool arrived = PollUntil(
          [&] {
            for (const json& e : Events({"--host", host, "--kind", "exec"})) {
              const json argv =
                  e.contains("exec") ? e["exec"].value("argv", json::array()) : json::array();
              for (const json& a : argv) {
                if (a.is_string() && a.get<std::string>() == marker) return true;
              }
            }
            return false;
          },
          std::chrono::seconds(30));
      ASSERT_TRUE(arrived) << "the marker exec of " << host << " never reached the aggregator";
    }
    auto stats = fleet_->CtlJson({"stats"});
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    const uint64_t stored = stats->value("events_stored", uint64_t{0});
    const bool caught_up = PollUntil(
        [&] {
          auto now = fleet_->CtlJson({"stats"});
          return now.ok() && !now->value("correlation_behind", true) &&
                 now->value("correlation_events_fed", uint64_t{0}) >= stored;
        },
        std::chrono::seconds(30));
    ASSERT_TRUE(caught_up) << "the correlator never fed the " << stored << " events stored";
  }

  lab::LabUser User(const std::string& name, std::vector<std::string> groups = {}) {
    auto u = lab_->AddUser(name, "Pw-" + name + "-2026!", groups);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? *u : lab::LabUser{};
  }

  // Plays the story and waits for the critical incident over all its hosts; checks it is
  // visible within `budget` of the last hop and that it is the only incident of the chain.
  json PlayAndExpectOneCritical(const AttackStory& story, std::chrono::milliseconds budget) {
    auto played = scenario::PlayAttack(*lab_, story);
    EXPECT_TRUE(played.ok()) << played.status().ToString();
    if (!played.ok()) return {};
    std::vector<std::string> want = {story.entry_host};
    for (const auto& hop : story.hops) want.push_back(hop.host);
    auto incident = scenario::WaitForIncident(
        *fleet_,
        [&](const json& i) { return i.value("severity", "") == "critical" && Hosts(i) == want; },
        std::chrono::seconds(30));
    EXPECT_TRUE(incident.ok()) << incident.status().ToString();
    if (!incident.ok()) return {};
    const int64_t seen = SystemClock::Get().NowNs();
    EXPECT_LE(seen - played->last_hop_ns, budget.count() * kNanosPerMilli)
        << "incident visible " << FormatDurationNs(seen - played->last_hop_ns)
        << " after the last hop";
    // Late events must extend it, not open another: look again once every event of the
    // story's hosts has arrived and been correlated.
    std::vector<std::string> hosts = want;
    std::sort(hosts.begin(), hosts.end());
    hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
    WaitUntilArrivedAndCorrelated(hosts);
    auto all = fleet_->CtlJson({"incidents"});
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    if (all.ok()) {
      const json& items = all->is_object() ? (*all)["incidents"] : *all;
      int touching_entry = 0;
      for (const auto& i : items) {
        const auto hosts = Hosts(i);
        if (std::find(hosts.begin(), hosts.end(), story.entry_host) != hosts.end() &&
            SeverityRank(i.value("severity", "")) >= SeverityRank("medium")) {
          ++touching_entry;
        }
      }
      EXPECT_EQ(touching_entry, 1) << all->dump(2);
    }
    return *incident;
  }

  TempDir work_;
  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(AttackChainTest, SeedStoryIsOneCriticalIncident) {
  ASSERT_NO_FATAL_FAILURE(Build());
  lab::LabUser alice = User("alice", {"shadow"});
  AttackStory story;
  story.victim = alice;
  story.hops = {{"hostb", alice}, {"hostc", alice}};
  const json incident = PlayAndExpectOneCritical(story, std::chrono::seconds(5));
  ASSERT_FALSE(incident.empty());
  SCOPED_TRACE(incident.dump(2));
  EXPECT_EQ(Hosts(incident), (std::vector<std::string>{"hosta", "hostb", "hostc"}));
  EXPECT_TRUE(HasTechnique(incident, "T1110"));
  EXPECT_TRUE(HasTechnique(incident, "T1078"));
  EXPECT_TRUE(HasTechnique(incident, "T1003.008"));
  EXPECT_TRUE(HasTechnique(incident, "T1021.004"));
  ASSERT_EQ(incident["chain"].size(), 2u);
  EXPECT_EQ(incident["chain"][0].value("from", ""), "hosta");
  EXPECT_EQ(incident["chain"][0].value("to", ""), "hostb");
  EXPECT_EQ(incident["chain"][1].value("from", ""), "hostb");
  EXPECT_EQ(incident["chain"][1].value("to", ""), "hostc");
  EXPECT_EQ(incident["chain"][1].value("user", ""), alice.login);
  EXPECT_FALSE(incident.value("explanation", json::array()).empty());
  const std::string explanation = incident["explanation"].dump();
  EXPECT_NE(explanation.find("198.18.0.66"), std::string::npos);
  EXPECT_NE(explanation.find("/etc/shadow"), std::string::npos);
  const double confidence = incident.value("confidence", -1.0);
  EXPECT_GT(confidence, 0.0);
  EXPECT_LE(confidence, 1.0);
  for (const char* field : {"id", "title", "identities", "first_seen", "last_seen", "events"}) {
    EXPECT_TRUE(incident.contains(field)) << field;
  }

  // The text view draws the chain.
  auto shown = fleet_->Ctl({"incident", incident.value("id", "")});
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->exit_code, 0) << shown->err;
  EXPECT_NE(shown->out.find("hosta"), std::string::npos) << shown->out;
  EXPECT_NE(shown->out.find("hostc"), std::string::npos) << shown->out;
}

// The seed story as the person watching it opens it: the incident in the console (a real
// Chromium), its chain drawn across the three hosts in order, the lock Tripline proposed
// approved from the page, and the audit trail saying bob approved it.
TEST_F(AttackChainTest, TheConsoleShowsTheChainAndTheLockIsApprovedFromThePage) {
  ASSERT_NO_FATAL_FAILURE(Build(22, /*orders=*/true, /*console=*/true));
  ASSERT_FALSE(fleet_->console_url().empty());
  lab::LabUser alice = User("alice", {"shadow"});
  std::string incident_id;
  json action;
  ASSERT_NO_FATAL_FAILURE(PlaySeedStoryUntilLockProposed(alice, &incident_id, &action));
  const std::string target = "hostb/" + alice.login;
  const std::string id = action.value("id", "");

  auto seen = console_test::RunConsoleBrowser(
      {"--url", fleet_->console_url() + "/", "--name", "bob", "--password", kBobPassword,
       "--incident", incident_id, "--approve", id, "--reason", "alice is on leave: lock it"},
      console_test::ArtifactsDir("seed-story"));
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  SCOPED_TRACE(seen->dump(2));
  EXPECT_EQ((*seen)["chain_hosts"], json::array({"hosta", "hostb", "hostc"}));
  // The stages marked where they happened: the brute force, the valid login and the shadow
  // read on hosta, a hop into each of hostb and hostc.
  const json stages = (*seen)["stages_by_host"];
  const auto marked = [&](const std::string& host, const std::string& technique) {
    for (const json& t : stages.value(host, json::array())) {
      if (t.get<std::string>().rfind(technique, 0) == 0) return true;
    }
    return false;
  };
  EXPECT_TRUE(marked("hosta", "T1110"));
  EXPECT_TRUE(marked("hosta", "T1078"));
  EXPECT_TRUE(marked("hosta", "T1003.008"));
  EXPECT_TRUE(marked("hostb", "T1021.004"));
  EXPECT_TRUE(marked("hostc", "T1021.004"));
  EXPECT_FALSE(marked("hosta", "T1021.004"));
  const std::string state = seen->value("state_after", "");
  EXPECT_TRUE(state == "approved" || state == "executed") << state;
  bool approved_by_bob = false;
  for (const json& line : (*seen)["trail"]) {
    const std::string text = line.get<std::string>();
    if (text.find("approved by bob") != std::string::npos &&
        text.find("alice is on leave: lock it") != std::string::npos) {
      approved_by_bob = true;
    }
  }
  EXPECT_TRUE(approved_by_bob);
  EXPECT_EQ(seen->value("after_sign_out", 0), 401);
  EXPECT_TRUE((*seen)["console_errors"].empty());
  // The workflow recorded the person signed in to the console as the approver.
  const json decided = FindAction(incident_id, "lock", target);
  EXPECT_EQ(decided.value("decided_by", ""), "bob") << decided.dump(2);
}

// The response half of the story: Tripline proposes to lock the victim's account, nothing
// happens until a person approves, then the host's sensor locks it (the account can no
// longer log in over ssh) and reports; a revert unlocks it the same way.
TEST_F(AttackChainTest, AnApprovedLockReachesTheHostAndHoldsUntilReverted) {
  ASSERT_NO_FATAL_FAILURE(Build(22, /*orders=*/true));
  lab::LabUser alice = User("alice", {"shadow"});
  std::string incident_id;
  json action;
  ASSERT_NO_FATAL_FAILURE(PlaySeedStoryUntilLockProposed(alice, &incident_id, &action));
  const std::string target = "hostb/" + alice.login;
  const auto logs_in = [&] {
    auto r = lab_->SshCommand("attacker", alice.Hop(*lab_->host("hostb")), "true",
                              std::chrono::seconds(15));
    return r.ok() && r->exit_code == 0;
  };
  const std::string id = action.value("id", "");
  EXPECT_EQ(action.value("state", ""), "proposed");
  EXPECT_TRUE(logs_in()) << "a proposal must change nothing";

  // `verb` (approve, revert) by bob, then the action's state reaching `state`.
  const auto decide_and_wait = [&](const std::string& verb, const std::string& state) {
    auto decided = fleet_->Ctl({verb, id, "--by", "bob"});
    if (!decided.ok() || decided->exit_code != 0) {
      ADD_FAILURE() << verb << ": " << (decided.ok() ? decided->err : decided.status().ToString());
      return false;
    }
    const bool reached = PollUntil(
        [&] {
          action = FindAction(incident_id, "lock", target);
          return action.value("state", "") == state;
        },
        std::chrono::seconds(30));
    EXPECT_TRUE(reached) << "never " << state << ": " << action.dump(2);
    return reached;
  };
  ASSERT_TRUE(decide_and_wait("approve", "executed"));
  EXPECT_FALSE(logs_in()) << "the locked account still logs in";
  const std::string trail = action["trail"].dump();
  EXPECT_NE(trail.find("order sent to hostb"), std::string::npos) << trail;
  EXPECT_NE(trail.find("execution succeeded"), std::string::npos) << trail;

  ASSERT_TRUE(decide_and_wait("revert", "reverted"));
  EXPECT_TRUE(logs_in()) << "the account is still locked after the revert";
}

TEST_F(AttackChainTest, UserChangesBetweenHops) {
  ASSERT_NO_FATAL_FAILURE(Build());
  lab::LabUser alice = User("alice", {"shadow"});
  lab::LabUser bob = User("bob");
  lab::LabUser carol = User("carol");
  AttackStory story;
  story.victim = alice;
  story.hops = {{"hostb", bob}, {"hostc", carol}};
  const json incident = PlayAndExpectOneCritical(story, std::chrono::seconds(5));
  ASSERT_FALSE(incident.empty());
  ASSERT_EQ(incident["chain"].size(), 2u);
  EXPECT_EQ(incident["chain"][0].value("user", ""), bob.login);
  EXPECT_EQ(incident["chain"][1].value("user", ""), carol.login);
}

TEST_F(AttackChainTest, HopThroughNonStandardSshPort) {
  ASSERT_NO_FATAL_FAILURE(Build(/*hostb_port=*/2222));
  lab::LabUser alice = User("alice", {"shadow"});
  AttackStory story;
  story.victim = alice;
  story.hops = {{"hostb", alice}, {"hostc", alice}};
  const json incident = PlayAndExpectOneCritical(story, std::chrono::seconds(5));
  ASSERT_FALSE(incident.empty());
  EXPECT_EQ(Hosts(incident), (std::vector<std::string>{"hosta", "hostb", "hostc"}));
}

TEST_F(AttackChainTest, LateAndOutOfOrderDelivery) {
  ASSERT_NO_FATAL_FAILURE(Build());
  lab::LabUser alice = User("alice", {"shadow"});
  // hostb's sensor is paused through the whole attack: its events arrive after hostc's.
  ASSERT_TRUE(fleet_->PauseSensor("hostb").ok());
  AttackStory story;
  story.victim = alice;
  story.hops = {{"hostb", alice}, {"hostc", alice}};
  auto played = scenario::PlayAttack(*lab_, story);
  ASSERT_TRUE(played.ok()) << played.status().ToString();
  // hostc's login, the last hop, has arrived while hostb's, which came before it, has not:
  // hostb's events are late and out of order.
  const bool hostc_arrived = PollUntil(
      [&] {
        for (const json& e : Events({"--host", "hostc", "--kind", "login"})) {
          if (IsLoginOf(e, "hostc", alice.login, "success")) return true;
        }
        return false;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(hostc_arrived) << "hostc's login never reached the aggregator";
  for (const json& e : Events({"--host", "hostb"})) {
    EXPECT_FALSE(IsLoginOf(e, "hostb", alice.login, "success"))
        << "hostb's login arrived while its sensor was paused: " << e.dump();
  }
  ASSERT_TRUE(fleet_->ResumeSensor("hostb").ok());
  auto incident = scenario::WaitForIncident(
      *fleet_,
      [](const json& i) {
        return i.value("severity", "") == "critical" &&
               Hosts(i) == std::vector<std::string>{"hosta", "hostb", "hostc"};
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(incident.ok()) << incident.status().ToString();
  ASSERT_NO_FATAL_FAILURE(WaitUntilArrivedAndCorrelated({"hosta", "hostb", "hostc"}));
  auto all = fleet_->CtlJson({"incidents"});
  ASSERT_TRUE(all.ok());
  const json& items = all->is_object() ? (*all)["incidents"] : *all;
  int serious = 0;
  for (const auto& i : items) serious += SeverityRank(i.value("severity", "")) >= 2;
  EXPECT_EQ(serious, 1) << all->dump(2);
}

TEST_F(AttackChainTest, BenignAdminHopIsNotAnIncident) {
  ASSERT_NO_FATAL_FAILURE(Build());
  lab::LabUser ops = User("ops");
  ASSERT_TRUE(scenario::PlayBenignAdmin(*lab_, "admin-ws", ops, "hosta", "hostb").ok());
  ASSERT_TRUE(scenario::PlayBenignAdmin(*lab_, "admin-ws", ops, "hostc", "").ok());
  // "No incident" means something only once the admin's work has arrived and been
  // correlated: all three logins, and the hop from hosta to hostb.
  ASSERT_NO_FATAL_FAILURE(WaitUntilArrivedAndCorrelated({"hosta", "hostb", "hostc"}));
  const json list = Events({"--user", ops.login});
  for (const char* host : {"hosta", "hostb", "hostc"}) {
    EXPECT_TRUE(
        std::any_of(list.begin(), list.end(),
                    [&](const json& e) { return IsLoginOf(e, host, ops.login, "success"); }))
        << "the admin's login on " << host << " never reached the aggregator: " << list.dump(2);
  }
  EXPECT_TRUE(std::any_of(list.begin(), list.end(), [](const json& e) {
    return e.value("kind", "") == "net" && e.value("host", "") == "hosta" &&
           e["net"].value("remote_addr", "") == "198.18.0.2";
  })) << "the admin's hop from hosta to hostb never reached the aggregator";
  auto all = fleet_->CtlJson({"incidents"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  const json& items = all->is_object() ? (*all)["incidents"] : *all;
  for (const auto& i : items) {
    EXPECT_LE(SeverityRank(i.value("severity", "")), SeverityRank("low")) << i.dump(2);
  }
}

}  // namespace
}  // namespace tripline::e2e
