// Configuration reload (SIGHUP): the two-phase registry (common/reload.h), the identity
// declarations' checks, and the real tripline-aggregator binary reloading, refusing a bad
// file without changing anything, and stopping cleanly afterwards. Also --version on
// every program.
#include "common/reload.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "aggregator/server/config_reload.h"
#include "common/version.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"

namespace tripline {
namespace {

using testing::BinPath;
using testing::Child;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::TempDir;

TEST(ReloadRegistryTest, AppliesEveryStepOnlyWhenAllPrepared) {
  ReloadRegistry<int> reloads;
  int a = 0, b = 0;
  reloads.Register("a", [&](const int& v) -> Result<ReloadRegistry<int>::Apply> {
    return ReloadRegistry<int>::Apply([&a, v] { a = v; });
  });
  reloads.Register("b", [&](const int& v) -> Result<ReloadRegistry<int>::Apply> {
    if (v < 0) return Status::InvalidArgument("negative");
    return ReloadRegistry<int>::Apply([&b, v] { b = v; });
  });
  EXPECT_EQ(reloads.names(), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(reloads.ReloadAll(7).ok());
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 7);
  // b refuses: a, although it prepared, is not applied either.
  Status s = reloads.ReloadAll(-1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("b: negative"), std::string::npos) << s.message();
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 7);
}

TEST(ReloadRegistryTest, EmptyRegistryReloadsNothing) {
  ReloadRegistry<int> reloads;
  EXPECT_TRUE(reloads.ReloadAll(1).ok());
  EXPECT_TRUE(reloads.names().empty());
}

TEST(IdentityRulesFromConfigTest, AcceptsServicesAndAgentsAndNamesTheBadRule) {
  v1::AggregatorConfig c;
  auto* r = c.add_identities();
  r->set_kind("service");
  r->set_user("backup");
  r = c.add_identities();
  r->set_kind("agent");
  r->set_exe("/usr/bin/ansible*");
  r->set_name("ansible");
  auto rules = IdentityRulesFromConfig(c);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[1].name, "ansible");

  r = c.add_identities();
  r->set_kind("human");
  r->set_user("x");
  rules = IdentityRulesFromConfig(c);
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("identities[2]: kind 'human'"), std::string::npos)
      << rules.status().message();

  c.mutable_identities(2)->set_kind("service");
  c.mutable_identities(2)->clear_user();
  rules = IdentityRulesFromConfig(c);
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("needs user, exe, cgroup or k8s_service_account"),
            std::string::npos);

  // A pod's service account, as NAMESPACE/NAME.
  c.mutable_identities(2)->set_k8s_service_account("payments/api-runner");
  rules = IdentityRulesFromConfig(c);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ((*rules)[2].k8s_service_account, "payments/api-runner");
  // The privilege audit checks the processes of the exe and service-account rules.
  const std::vector<audit::ProcessRule> processes = DeclaredProcesses(*rules);
  ASSERT_EQ(processes.size(), 2u);
  EXPECT_EQ(processes[0].exe, "/usr/bin/ansible*");
  EXPECT_EQ(processes[0].name, "ansible");
  EXPECT_EQ(processes[1].k8s_service_account, "payments/api-runner");
  EXPECT_EQ(processes[1].kind, "service");
  c.mutable_identities(2)->set_k8s_service_account("api-runner");
  rules = IdentityRulesFromConfig(c);
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("wants NAMESPACE/NAME"), std::string::npos);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path + ".tmp");
  out << text;
  out.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// Waits until `needle` appears in the file (the child's stderr) at least `count` times.
bool WaitForLog(const std::string& path, const std::string& needle, int count = 1,
                int timeout_ms = 10000) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    const std::string text = ReadWholeFile(path);
    int n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + 1)) {
      ++n;
    }
    if (n >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(AggregatorReloadTest, SighupReloadsIdentitiesAndRefusesABadFile) {
  TempDir dir;
  const std::string config = dir.Sub("aggregator.textproto");
  const std::string err = dir.Sub("stderr");
  WriteFile(config, "listen: \"127.0.0.1:0\"\ndata_dir: \"" + dir.Sub("data") + "\"\n");
  Child agg({BinPath("tripline-aggregator"), "--config", config}, err);
  auto line = agg.ReadLine(20000);
  ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0) << ReadWholeFile(err);

  // A valid file with two declarations.
  WriteFile(config, "listen: \"127.0.0.1:0\"\ndata_dir: \"" + dir.Sub("data") +
                        "\"\nidentities { kind: \"service\" user: \"backup\" }\n"
                        "identities { kind: \"agent\" exe: \"/usr/bin/ansible*\" }\n");
  agg.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(err, "reload: 2 identity declarations")) << ReadWholeFile(err);
  ASSERT_TRUE(WaitForLog(err, "reload done (identities, approvers, outputs)"))
      << ReadWholeFile(err);

  // A file that does not parse: the error with its line, nothing applied.
  WriteFile(config, "listen: \"127.0.0.1:0\"\nno_such_option: 1\n");
  agg.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(err, "reload failed, nothing changed")) << ReadWholeFile(err);
  EXPECT_NE(ReadWholeFile(err).find("no_such_option"), std::string::npos) << ReadWholeFile(err);
  EXPECT_TRUE(WaitForLog(err, "identity declarations", 1));

  // A rule without a pattern: refused, named.
  WriteFile(config, "listen: \"127.0.0.1:0\"\ndata_dir: \"" + dir.Sub("data") +
                        "\"\nidentities { kind: \"service\" }\n");
  agg.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(err, "reload failed, nothing changed", 2)) << ReadWholeFile(err);
  EXPECT_NE(ReadWholeFile(err).find("identities: identities[0]: a rule needs"), std::string::npos)
      << ReadWholeFile(err);

  // A listener change is accepted but needs a restart, and says so.
  WriteFile(config, "listen: \"127.0.0.1:1\"\ndata_dir: \"" + dir.Sub("data") + "\"\n");
  agg.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(err, "reload: 0 identity declarations")) << ReadWholeFile(err);
  EXPECT_TRUE(WaitForLog(err, "listen changed; it takes effect at the next restart"))
      << ReadWholeFile(err);

  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(15000), std::optional<int>(0)) << ReadWholeFile(err);
}

TEST(VersionTest, EveryProgramPrintsItsVersion) {
  for (const char* name : {"tripline-aggregator", "triplinectl", "tripline-sensor"}) {
    const auto r = RunCommand({BinPath(name), "--version"});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, std::string(name) + " " + TRIPLINE_VERSION + "\n");
  }
}

}  // namespace
}  // namespace tripline
