// Sigma rules on real hosts: lab hosts with real sshd and a real sensor each, the
// aggregator run with --rules. An intruder logs in to hosta (no failed passwords: nothing
// else raises), hops to hostb and there deletes the shell history, which a community rule
// (History File Deletion, SigmaHQ) targets: the chain hosta -> hostb becomes an incident
// that names the rule. The rule is written by the test into its own directory (the
// reference rules are not copied into the repository).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/e2e_support.h"
#include "tests/rules/history_rule.h"
#include "tools/scenario/fleet.h"
#include "tools/scenario/story.h"

namespace tripline::e2e {
namespace {

using nlohmann::json;
using testing::kHistoryRule;

TEST(RulesChainTest, CommunityRuleOnSecondHostRaisesTheChain) {
  Status ready = CheckE2ePrerequisites();
  if (!ready.ok()) GTEST_SKIP() << "needs root, namespaces, sshd and BPF: " << ready.ToString();
  TempDir work;
  const std::string rules = work.path() + "/rules";
  std::filesystem::create_directories(rules);
  std::ofstream(rules + "/history.yml") << kHistoryRule;

  lab::LabOptions options;
  options.hosts = {{"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 22}};
  options.clients = {{"attacker", "198.18.0.66", 22}};
  auto lab = lab::Lab::Create(options);
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  scenario::FleetOptions fleet_options;
  fleet_options.bin_dir = BinDir();
  fleet_options.work_dir = work.path();
  fleet_options.aggregator_args = {"--rules", rules};
  auto fleet = scenario::Fleet::Start(**lab, fleet_options);
  ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();

  auto alice = (*lab)->AddUser("alice", "Pw-alice-2026!", {});
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  scenario::AttackStory story;
  story.victim = *alice;
  story.failures = 0;
  story.entry_command = "true";
  story.hops = {{"hostb", *alice}};
  story.last_host_command = "rm -f ~/.bash_history";
  auto played = scenario::PlayAttack(**lab, story);
  ASSERT_TRUE(played.ok()) << played.status().ToString();

  auto incident = scenario::WaitForIncident(
      **fleet,
      [](const json& i) {
        return i.value("title", "").find("History File Deletion") != std::string::npos;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(incident.ok()) << incident.status().ToString() << "\n"
                             << (*fleet)->CtlJson({"incidents"})->dump(2);
  SCOPED_TRACE(incident->dump(2));
  EXPECT_EQ((*incident)["hosts"], json::array({"hosta", "hostb"}));
  EXPECT_NE((*incident)["explanation"].dump().find("matched on hostb as " + alice->login),
            std::string::npos);
  auto listed = (*fleet)->CtlJson({"rules"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_GE((*listed)["rules"][0].value("hits", 0), 1);

  EXPECT_TRUE((*fleet)->Stop().ok());
  fleet->reset();
  EXPECT_TRUE((*lab)->Close().ok());
}

}  // namespace
}  // namespace tripline::e2e
