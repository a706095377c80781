// Posture findings from canned snapshots, and the ledger that keeps them with first-seen
// and resolved times in a real RocksDB in a temp dir.
#include "aggregator/audit/posture_findings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "aggregator/audit/finding_ledger.h"
#include "aggregator/audit/posture_auditor.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace tripline::audit {
namespace {

using ::testing::HasSubstr;

Account ServiceAccount(std::string name) {
  Account a;
  a.name = std::move(name);
  a.uid = 998;
  a.gid = 998;
  a.groups = {a.name};
  a.shell = "/usr/sbin/nologin";
  return a;
}

Account Person(std::string name) {
  Account a;
  a.name = std::move(name);
  a.uid = 1001;
  a.gid = 1001;
  a.groups = {a.name};
  a.shell = "/bin/bash";
  a.interactive_shell = true;
  a.password_set = true;
  a.max_password_age_days = 90;
  return a;
}

const Finding* FindCheck(const std::vector<Finding>& fs, std::string_view identity,
                         std::string_view check, std::string_view subject = {}) {
  for (const Finding& f : fs) {
    if (f.identity == identity && f.check == check && (subject.empty() || f.subject == subject)) {
      return &f;
    }
  }
  return nullptr;
}

// The seed's case: an AI integration's service account in group root with a password that
// never expires.
TEST(PostureFindingsTest, ServiceAccountInRootWithEternalPasswordIsHigh) {
  PostureSnapshot snap;
  Account aiops = ServiceAccount("aiops");
  aiops.groups.push_back("root");
  aiops.password_set = true;
  aiops.max_password_age_days = -1;
  snap.accounts.push_back(aiops);
  AuditPolicy policy;
  policy.declared["aiops"] = "agent";

  const auto fs = FindingsFromPosture("hosta", snap, policy);
  const Finding* group = FindCheck(fs, "aiops", "root-equivalent-group", "root");
  ASSERT_NE(group, nullptr);
  EXPECT_EQ(group->severity, Severity::kHigh);
  EXPECT_EQ(group->kind, "agent");
  EXPECT_EQ(group->host, "hosta");
  EXPECT_THAT(group->detail, HasSubstr("agent account aiops is in group root"));
  EXPECT_THAT(group->fix, HasSubstr("gpasswd -d aiops root"));
  const Finding* password = FindCheck(fs, "aiops", "password-never-expires");
  ASSERT_NE(password, nullptr);
  EXPECT_EQ(password->severity, Severity::kHigh);  // raised: the account has root's power
  EXPECT_THAT(password->fix, HasSubstr("passwd -l aiops"));
  ASSERT_NE(FindCheck(fs, "aiops", "password-on-service"), nullptr);
}

TEST(PostureFindingsTest, EveryRootEquivalentGroupIsFound) {
  PostureSnapshot snap;
  Account svc = ServiceAccount("svc");
  for (std::string_view g : kRootEquivalentGroups) svc.groups.emplace_back(g);
  svc.groups.push_back("video");
  snap.accounts.push_back(svc);
  const auto fs = FindingsFromPosture("h", snap, {});
  for (std::string_view g : kRootEquivalentGroups) {
    const Finding* f = FindCheck(fs, "svc", "root-equivalent-group", g);
    ASSERT_NE(f, nullptr) << g;
    EXPECT_EQ(f->severity, Severity::kHigh) << g;
  }
  EXPECT_EQ(FindCheck(fs, "svc", "root-equivalent-group", "video"), nullptr);
}

TEST(PostureFindingsTest, PeopleGetOneLevelLessAndRootOnlyKeyFindings) {
  PostureSnapshot snap;
  Account alice = Person("alice");
  alice.groups.push_back("sudo");
  alice.max_password_age_days = -1;
  alice.sudo_rules = {"%sudo ALL=(ALL:ALL) ALL (/etc/sudoers:50)"};
  snap.accounts.push_back(alice);
  Account root;
  root.name = "root";
  root.groups = {"root"};
  root.password_set = true;
  root.max_password_age_days = -1;
  root.authorized_keys = 1;
  root.authorized_keys_unrestricted = 1;
  snap.accounts.push_back(root);

  const auto fs = FindingsFromPosture("h", snap, {});
  EXPECT_EQ(FindCheck(fs, "alice", "root-equivalent-group", "sudo")->severity, Severity::kMedium);
  EXPECT_EQ(FindCheck(fs, "alice", "sudo-all")->severity, Severity::kLow);
  // Root's power makes the eternal password high, person or not.
  EXPECT_EQ(FindCheck(fs, "alice", "password-never-expires")->severity, Severity::kHigh);
  EXPECT_EQ(FindCheck(fs, "alice", "password-on-service"), nullptr);
  // Root is root: only its unrestricted keys are a finding.
  size_t root_findings = 0;
  for (const Finding& f : fs) root_findings += f.identity == "root";
  EXPECT_EQ(root_findings, 1u);
  const Finding* keys = FindCheck(fs, "root", "authorized-keys-unrestricted");
  ASSERT_NE(keys, nullptr);
  EXPECT_EQ(keys->severity, Severity::kMedium);
}

TEST(PostureFindingsTest, NopasswdAllUidZeroAndKeys) {
  PostureSnapshot snap;
  Account deploy = ServiceAccount("deploy");
  deploy.sudo_rules = {"deploy ALL=(root) NOPASSWD: ALL (/etc/sudoers.d/deploy:1)",
                       "deploy ALL=(root) NOPASSWD: /usr/bin/systemctl (/etc/sudoers.d/x:2)"};
  deploy.sudo_nopasswd = true;
  deploy.authorized_keys = 3;
  deploy.authorized_keys_unrestricted = 1;
  snap.accounts.push_back(deploy);
  Account toor = ServiceAccount("toor");
  toor.uid = 0;
  snap.accounts.push_back(toor);

  const auto fs = FindingsFromPosture("h", snap, {});
  const Finding* sudo = FindCheck(fs, "deploy", "sudo-nopasswd-all");
  ASSERT_NE(sudo, nullptr);
  EXPECT_EQ(sudo->severity, Severity::kHigh);
  EXPECT_THAT(sudo->detail, HasSubstr("may run any command as root without a password"));
  size_t sudo_findings = 0;
  for (const Finding& f : fs) sudo_findings += f.check.rfind("sudo", 0) == 0;
  EXPECT_EQ(sudo_findings, 1u);  // the systemctl rule is narrow
  const Finding* keys = FindCheck(fs, "deploy", "authorized-keys-unrestricted");
  ASSERT_NE(keys, nullptr);
  EXPECT_THAT(keys->detail, HasSubstr("3 authorized keys, 1 without a from= restriction"));
  EXPECT_EQ(FindCheck(fs, "toor", "uid-zero")->severity, Severity::kCritical);
}

TEST(PostureFindingsTest, SudoRuleParsing) {
  bool nopasswd = false;
  EXPECT_TRUE(SudoRuleRunsAll("a ALL=(ALL) NOPASSWD: ALL (/etc/sudoers:1)", &nopasswd));
  EXPECT_TRUE(nopasswd);
  EXPECT_TRUE(SudoRuleRunsAll("a ALL = (ALL:ALL) ALL", &nopasswd));
  EXPECT_FALSE(nopasswd);
  EXPECT_TRUE(SudoRuleRunsAll("a ALL=NOPASSWD:SETENV: /bin/ls, ALL", &nopasswd));
  EXPECT_TRUE(nopasswd);
  EXPECT_FALSE(SudoRuleRunsAll("a ALL=(root) NOPASSWD: /usr/bin/apt (/etc/sudoers:2)", &nopasswd));
  EXPECT_FALSE(SudoRuleRunsAll("a ALL=(root) /usr/bin/ALLx", &nopasswd));
  EXPECT_FALSE(SudoRuleRunsAll("no equals sign", &nopasswd));
  EXPECT_FALSE(SudoRuleRunsAll("a ALL=(unclosed ALL", &nopasswd));
  EXPECT_FALSE(SudoRuleRunsAll("", &nopasswd));
}

class FindingLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ledger_ = std::make_unique<FindingLedger>(store_->db(), store_->column_family("posture"));
  }

  static std::vector<Finding> Seed(bool in_root, bool eternal) {
    PostureSnapshot snap;
    Account aiops = ServiceAccount("aiops");
    if (in_root) aiops.groups.push_back("root");
    aiops.password_set = eternal;
    aiops.max_password_age_days = eternal ? -1 : 90;
    snap.accounts.push_back(aiops);
    return FindingsFromPosture("hosta", snap, {});
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<FindingLedger> ledger_;
};

TEST_F(FindingLedgerTest, FirstSeenStaysAndFixingResolves) {
  auto r = ledger_->Apply("hosta", 100, Seed(true, false));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->opened, 1u);
  r = ledger_->Apply("hosta", 200, Seed(true, false));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->still_open, 1u);
  auto open = ledger_->List({});
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].first_seen_ns, 100);
  EXPECT_EQ((*open)[0].last_seen_ns, 200);
  EXPECT_EQ((*open)[0].resolved_ns, 0);

  // aiops leaves group root: the finding is resolved at that snapshot.
  r = ledger_->Apply("hosta", 300, Seed(false, false));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->resolved, 1u);
  EXPECT_TRUE(ledger_->List({})->empty());
  auto all = ledger_->List({.include_resolved = true});
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].resolved_ns, 300);
  EXPECT_EQ((*all)[0].first_seen_ns, 100);

  // A late snapshot from before the fix changes nothing.
  r = ledger_->Apply("hosta", 250, Seed(true, false));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stale);
  EXPECT_TRUE(ledger_->List({})->empty());

  // Put back later: reopened with a new first-seen time.
  r = ledger_->Apply("hosta", 400, Seed(true, false));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->opened, 1u);
  open = ledger_->List({});
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].first_seen_ns, 400);
  EXPECT_EQ((*open)[0].resolved_ns, 0);
}

TEST_F(FindingLedgerTest, HostsAreSeparateFilteredAndSurviveReopen) {
  ASSERT_TRUE(ledger_->Apply("hosta", 100, Seed(true, true)).ok());
  PostureSnapshot other;
  Account bob = ServiceAccount("bob");
  bob.groups.push_back("docker");
  other.accounts.push_back(bob);
  ASSERT_TRUE(ledger_->Apply("hostb", 100, FindingsFromPosture("hostb", other, {})).ok());
  // hostb's snapshot resolves nothing on hosta.
  // group root, the eternal password, a password on a service account
  EXPECT_EQ(ledger_->List({.host = "hosta"})->size(), 3u);
  EXPECT_EQ(ledger_->List({.host = "hostb"})->size(), 1u);
  EXPECT_EQ(ledger_->List({.identity = "bob"})->size(), 1u);
  EXPECT_EQ(ledger_->List({.host = "host"})->size(), 0u);  // exact host, not a prefix

  ledger_.reset();
  ASSERT_TRUE(store_->Close().ok());
  RocksDbStoreOptions options;
  options.path = dir_.Sub("db");
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok());
  FindingLedger again((*store)->db(), (*store)->column_family("posture"));
  auto all = again.List({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  // Most severe first.
  EXPECT_EQ(all->front().finding.severity, Severity::kHigh);
  EXPECT_EQ(all->back().finding.check, "password-on-service");
}

// Declared kinds change with a reload: a person-looking account declared a service is judged
// as one from the next snapshot on.
TEST_F(FindingLedgerTest, AuditorTakesNewDeclaredKinds) {
  PostureAuditor auditor(ledger_.get(), {}, nullptr);
  PostureSnapshot snap;
  snap.accounts.push_back(Person("deploy"));
  ASSERT_TRUE(auditor.Audit("hosta", 100, snap).ok());
  const auto has_service_password = [&] {
    const Result<std::vector<StoredFinding>> open = ledger_->List({});
    if (!open.ok()) return false;
    return std::any_of(open->begin(), open->end(), [](const StoredFinding& f) {
      return f.finding.identity == "deploy" && f.finding.check == "password-on-service";
    });
  };
  EXPECT_FALSE(has_service_password());
  auditor.SetDeclared({{"deploy", "service"}});
  ASSERT_TRUE(auditor.Audit("hosta", 200, snap).ok());
  EXPECT_TRUE(has_service_password());
}

ProcessPrivilege Process(std::string exe, uint32_t uid, std::string user, uint64_t caps,
                         std::vector<std::string> sockets = {}) {
  ProcessPrivilege p;
  p.exe = std::move(exe);
  p.uid = uid;
  p.user = std::move(user);
  p.cap_effective = caps;
  p.runtime_sockets = std::move(sockets);
  p.processes = 1;
  p.pids = {4242};
  return p;
}

// The processes of declared agents, service accounts and MCP servers: root, capabilities
// and container runtime sockets. Nobody else's processes are judged.
TEST(PostureFindingsTest, ProcessesOfDeclaredIdentitiesAreJudged) {
  PostureSnapshot snap;
  snap.accounts = {ServiceAccount("aiops"), Person("alice")};
  constexpr uint64_t kNetRaw = uint64_t{1} << 13;
  constexpr uint64_t kSysPtrace = uint64_t{1} << 19;
  snap.processes = {
      // aiops (declared by account): cap_net_raw only, and the Docker socket.
      Process("/usr/bin/python3", 998, "aiops", kNetRaw, {"/run/docker.sock"}),
      // The same account's other program with cap_sys_ptrace, which gives root.
      Process("/usr/local/bin/aiops-worker", 998, "aiops", kSysPtrace | kNetRaw),
      // An MCP server declared by its executable, running as root.
      Process("/opt/mcp/bin/mcp-files", 0, "root", ~uint64_t{0} >> 23, {"/run/docker.sock"}),
      // A person's process with every reach: a person's processes are not this check's.
      Process("/usr/bin/bash", 1001, "alice", kSysPtrace, {"/run/docker.sock"}),
      // Root's own daemons are not declared: nothing.
      Process("/usr/sbin/sshd", 0, "root", ~uint64_t{0} >> 23),
  };
  AuditPolicy policy;
  policy.declared["aiops"] = "agent";
  policy.processes.push_back(
      ProcessRule{"", "/opt/mcp/bin/mcp-*", "", "agent", "", true, false, ""});
  const auto fs = FindingsFromPosture("ai1", snap, policy);

  const Finding* caps = FindCheck(fs, "aiops", "process-capabilities", "/usr/bin/python3");
  ASSERT_NE(caps, nullptr);
  EXPECT_EQ(caps->severity, Severity::kMedium);  // cap_net_raw gives no root
  EXPECT_EQ(caps->kind, "agent");
  EXPECT_THAT(caps->detail, HasSubstr("cap_net_raw"));
  EXPECT_THAT(caps->detail, HasSubstr("pid 4242"));
  const Finding* ptrace =
      FindCheck(fs, "aiops", "process-capabilities", "/usr/local/bin/aiops-worker");
  ASSERT_NE(ptrace, nullptr);
  EXPECT_EQ(ptrace->severity, Severity::kHigh);
  EXPECT_THAT(ptrace->detail, HasSubstr("cap_net_raw, cap_sys_ptrace"));
  EXPECT_THAT(ptrace->detail, HasSubstr("gives it root"));
  const Finding* socket =
      FindCheck(fs, "aiops", "runtime-socket", "/usr/bin/python3 /run/docker.sock");
  ASSERT_NE(socket, nullptr);
  EXPECT_EQ(socket->severity, Severity::kHigh);
  EXPECT_THAT(socket->detail, HasSubstr("agent account aiops"));
  EXPECT_THAT(socket->fix, HasSubstr("gpasswd -d aiops docker"));

  // The MCP server: named after its executable; root says it all (no capability or socket
  // finding besides).
  const Finding* root = FindCheck(fs, "mcp-files", "process-root");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->severity, Severity::kHigh);
  EXPECT_THAT(root->detail, HasSubstr("MCP server mcp-files runs /opt/mcp/bin/mcp-files as root"));
  EXPECT_EQ(FindCheck(fs, "mcp-files", "process-capabilities"), nullptr);
  EXPECT_EQ(FindCheck(fs, "mcp-files", "runtime-socket"), nullptr);

  for (const Finding& f : fs) {
    EXPECT_NE(f.identity, "alice") << f.detail;
    EXPECT_NE(f.subject, "/usr/sbin/sshd") << f.detail;
  }
  // Without the declarations nothing about processes is found.
  for (const Finding& f : FindingsFromPosture("ai1", snap, AuditPolicy{})) {
    EXPECT_EQ(f.check.rfind("process-", 0), std::string::npos) << f.detail;
    EXPECT_NE(f.check, "runtime-socket") << f.detail;
  }
  // A rule naming a user as well matches only that user's processes of the executable.
  AuditPolicy narrow;
  narrow.processes.push_back(
      ProcessRule{"svc-*", "/opt/mcp/bin/*", "", "service", "", false, false, ""});
  EXPECT_EQ(FindCheck(FindingsFromPosture("ai1", snap, narrow), "mcp-files", "process-root"),
            nullptr);
}

// An agent declared by its container: its processes there are judged, the same program
// on the host (or in another container) is not.
TEST(PostureFindingsTest, ProcessesOfAnAgentDeclaredByItsContainer) {
  PostureSnapshot snap;
  ProcessPrivilege in_container =
      Process("/usr/bin/python3", 0, "root", ~uint64_t{0} >> 23, {"/run/docker.sock"});
  in_container.container_id = "opsbot-7f3a";
  ProcessPrivilege elsewhere = in_container;
  elsewhere.container_id = "web-1";
  ProcessPrivilege on_host = in_container;
  on_host.container_id.clear();
  snap.processes = {in_container, elsewhere, on_host};
  AuditPolicy policy;
  policy.processes.push_back(ProcessRule{"", "", "opsbot-*", "agent", "opsbot", false, false, ""});
  const auto fs = FindingsFromPosture("k8s-node-3", snap, policy);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].identity, "opsbot");
  EXPECT_EQ(fs[0].check, "process-root");
  EXPECT_THAT(fs[0].detail, HasSubstr("container opsbot-7f3a"));
}

// An agent declared by its pod's service account only: the processes of pods that run
// under that account are audited and named after it; a pod of another account and the
// same program outside any pod are not.
TEST(PostureFindingsTest, ProcessesOfAnAgentDeclaredByItsServiceAccountAreAudited) {
  PostureSnapshot snap;
  ProcessPrivilege in_pod =
      Process("/usr/bin/python3", 1000, "", 0, {"/run/containerd/containerd.sock"});
  in_pod.container_id = std::string(64, 'c');
  in_pod.k8s_service_account = "aiops/agent-runner";
  ProcessPrivilege other_pod = in_pod;
  other_pod.k8s_service_account = "web/frontend";
  ProcessPrivilege on_host = in_pod;
  on_host.container_id.clear();
  on_host.k8s_service_account.clear();
  snap.processes = {in_pod, other_pod, on_host};
  AuditPolicy policy;
  ProcessRule rule;
  rule.kind = "agent";
  rule.k8s_service_account = "aiops/*";
  policy.processes.push_back(rule);
  const auto fs = FindingsFromPosture("k8s-node-3", snap, policy);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].identity, "aiops/agent-runner");
  EXPECT_EQ(fs[0].kind, "agent");
  EXPECT_EQ(fs[0].check, "runtime-socket");
  EXPECT_THAT(fs[0].detail, HasSubstr("/run/containerd/containerd.sock"));
}

}  // namespace
}  // namespace tripline::audit
