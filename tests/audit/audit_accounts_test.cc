// Real accounts, groups, sudo rules and authorized keys created on this machine by the test
// (and removed after), read by the sensor's posture collector from the real /etc, sent over
// the real ingest stream to an aggregator with the posture audit, and read back with the
// real triplinectl binary; and an attack on such an account through the correlation engine,
// whose incident the posture makes more severe. Needs root (useradd, /etc/sudoers.d).
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "aggregator/audit/posture_auditor.h"
#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "sensor/host_files.h"
#include "sensor/posture_collector.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/support/unix_listener.h"

namespace tripline {
namespace {

using nlohmann::json;
using testing::RunCommand;

std::string Prefix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "tla%05x", rd() & 0xfffff);
  return buf;
}

// What the test created on the machine, removed in reverse order however the test ends.
class MachineChanges {
 public:
  ~MachineChanges() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (void)RunCommand(*it);
  }
  void Undo(std::vector<std::string> argv) { undo_.push_back(std::move(argv)); }

 private:
  std::vector<std::vector<std::string>> undo_;
};

void MustRun(const std::vector<std::string>& argv) {
  const auto r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << argv[0] << ": " << r.err;
}

class AuditAccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: creates accounts and sudo rules";
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ledger_ =
        std::make_unique<audit::FindingLedger>(store_->db(), store_->column_family("posture"));
    audit::AuditPolicy policy;
    policy.declared[aiops_] = "agent";
    policy.declared[deploy_] = "service";  // a login shell, but declared a service account
    // MCP servers by executable: this test's copies of a program.
    policy.processes.push_back(
        audit::ProcessRule{"", dir_.Sub(prefix_ + "-mcp*"), "", "agent", "", true, false, ""});
    CorrelationEngineOptions engine_options;
    auto engine = CorrelationEngine::Open(store_.get(), engine_options, SystemClock::Get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
    auto drift = audit::DriftBook::Open(store_->db(), store_->column_family("posture"));
    ASSERT_TRUE(drift.ok()) << drift.status().ToString();
    drift_ = std::move(*drift);
    drift_->SetWatchPeriod(policy.drift_min_period_ns);
    engine_->AttachDrift(drift_.get());
    auditor_ =
        std::make_unique<audit::PostureAuditor>(ledger_.get(), policy, engine_.get(), drift_.get());
    AggregatorServerOptions server_options;
    server_options.listen = HostPort{"127.0.0.1", 0};
    server_options.audit = auditor_.get();
    auto server = AggregatorServer::Start(server_options, store_.get(), auditor_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    target_ = server_->address().ToString();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(0);
  }

  // `rule` in sudoers_. Without sudo installed there is no /etc/sudoers: a minimal one that
  // includes /etc/sudoers.d (as Debian's does) is made and removed after; with no sudo
  // binary the rule is inert.
  void AddSudoRule(MachineChanges& changes, const std::string& rule) {
    if (!std::filesystem::exists("/etc/sudoers")) {
      {
        std::ofstream main_file("/etc/sudoers");
        main_file << "@includedir /etc/sudoers.d\n";
      }
      changes.Undo({"/usr/bin/rm", "-f", "/etc/sudoers"});
      ASSERT_EQ(chmod("/etc/sudoers", 0440), 0);
    }
    if (!std::filesystem::exists("/etc/sudoers.d")) {
      MustRun({"/usr/bin/install", "-d", "-m", "0750", "/etc/sudoers.d"});
      changes.Undo({"/usr/bin/rmdir", "/etc/sudoers.d"});
    }
    {
      std::ofstream out(sudoers_);
      out << rule << "\n";
    }
    changes.Undo({"/usr/bin/rm", "-f", sudoers_});
    ASSERT_EQ(chmod(sudoers_.c_str(), 0440), 0);
  }

  // The sensor's view of the real /etc, sent as host `host_`'s posture at `time_ns`.
  void SendPosture(uint64_t seq, int64_t time_ns,
                   std::optional<sensor::ProcessScanOptions> processes = std::nullopt,
                   std::vector<sensor::SensitivePath> sensitive = {}) {
    sensor::RootedHostFiles files("/");
    Event e;
    e.host = host_;
    e.time_ns = time_ns;
    e.body = sensor::PostureCollector(files, std::move(processes), std::move(sensitive)).Collect();
    testing::IngestClient client(target_);
    ASSERT_TRUE(client.Hello("audit-sensor").has_value());
    auto ack = client.Batch("audit-sensor", seq, {e});
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->error(), "");
    ASSERT_EQ(ack->durable_seq(), seq);
  }

  // Five wrong passwords for `user` on host_ from 198.18.0.66, then the right one, now.
  void SendBruteForceAndLogin(uint64_t first_seq, const std::string& user) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::vector<Event> events;
    for (int i = 0; i < 6; ++i) {
      Event e;
      e.host = host_;
      e.time_ns = now + i * kNanosPerSecond;
      e.process.comm = "sshd";
      e.process.exe = "/usr/sbin/sshd";
      LoginEvent l;
      l.service = "sshd";
      l.user = user;
      l.remote_addr = "198.18.0.66";
      l.remote_port = static_cast<uint32_t>(40001 + i);
      l.local_addr = "198.18.0.11";
      l.local_port = 22;
      l.outcome = i < 5 ? Outcome::kFailure : Outcome::kSuccess;
      l.source = LoginSource::kPam;
      l.stage = i < 5 ? LoginStage::kAuthenticate : LoginStage::kSessionOpen;
      l.auth_pid = static_cast<uint32_t>(2000 + i);
      if (i == 5) e.session = "audit:77";
      e.body = l;
      events.push_back(std::move(e));
    }
    testing::IngestClient client(target_);
    ASSERT_TRUE(client.Hello("audit-sensor").has_value());
    auto ack = client.Batch("audit-sensor", first_seq, events);
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->error(), "");
    engine_->Drain();
  }

  // triplinectl incidents --json: the one incident (of this test's own store).
  json HostIncident() {
    const auto r = RunCommand(
        {testing::BinPath("triplinectl"), "--aggregator", target_, "incidents", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json all = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(all.is_array() && all.size() == 1) << r.out;
    return all.is_array() && all.size() == 1 ? all[0] : json::object();
  }

  static std::string Explanation(const json& incident) {
    std::string text;
    for (const json& line : incident.value("explanation", json::array())) {
      text += line.get<std::string>() + "\n";
    }
    return text;
  }

  // triplinectl audit --json, only this test's accounts.
  std::vector<json> Audit(bool all) {
    std::vector<std::string> argv = {testing::BinPath("triplinectl"),
                                     "--aggregator",
                                     target_,
                                     "audit",
                                     "--json",
                                     "--host",
                                     host_};
    if (all) argv.push_back("--all");
    const auto r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> mine;
    for (const json& f : json::parse(r.out)) {
      if (f["identity"].get<std::string>().rfind(prefix_, 0) == 0) mine.push_back(f);
    }
    return mine;
  }

  static const json* Find(const std::vector<json>& fs, const std::string& identity,
                          const std::string& finding) {
    for (const json& f : fs) {
      if (f["identity"] == identity && f["finding"] == finding) return &f;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  const std::string prefix_ = Prefix();
  const std::string host_ = prefix_ + "-host";
  const std::string aiops_ = prefix_ + "-aiops";
  const std::string deploy_ = prefix_ + "-deploy";
  const std::string sudoers_ = "/etc/sudoers.d/" + prefix_ + "-deploy";
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<audit::FindingLedger> ledger_;
  std::unique_ptr<CorrelationEngine> engine_;
  std::unique_ptr<audit::DriftBook> drift_;
  std::unique_ptr<audit::PostureAuditor> auditor_;
  std::unique_ptr<AggregatorServer> server_;
  std::string target_;
};

TEST_F(AuditAccountsTest, RealAccountsGiveFindingsAndFixingResolvesThem) {
  MachineChanges changes;
  // The seed's case: an AI integration's service account in group root, with a password
  // that never expires.
  MustRun({"/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
           aiops_});
  changes.Undo({"/usr/sbin/userdel", aiops_});
  MustRun({"/usr/sbin/usermod", "-aG", "root", aiops_});
  const auto pw =
      RunCommand({"/bin/sh", "-c", "echo '" + aiops_ + ":Tl-audit-9x' | /usr/sbin/chpasswd"});
  ASSERT_EQ(pw.exit_code, 0) << pw.err;
  MustRun({"/usr/bin/chage", "-M", "99999", aiops_});
  // A deploy account with passwordless sudo for everything and three keys, one unpinned.
  MustRun({"/usr/sbin/useradd", "--create-home", "--shell", "/bin/bash", deploy_});
  changes.Undo({"/usr/sbin/userdel", "-r", deploy_});
  ASSERT_NO_FATAL_FAILURE(AddSudoRule(changes, deploy_ + " ALL=(ALL) NOPASSWD: ALL"));
  const std::string ssh = "/home/" + deploy_ + "/.ssh";
  MustRun({"/usr/bin/install", "-d", "-m", "0700", "-o", deploy_, "-g", deploy_, ssh});
  {
    std::ofstream keys(ssh + "/authorized_keys");
    keys << "from=\"198.18.0.1\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ci@a\n"
         << "from=\"198.18.0.2\",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ci@b\n"
         << "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC laptop\n";
  }
  MustRun({"/usr/bin/chown", deploy_ + ":" + deploy_, ssh + "/authorized_keys"});

  const int64_t t1 = testing::kBaseTimeNs;
  SendPosture(1, t1);
  auto found = Audit(false);
  const json* group = Find(found, aiops_, "root-equivalent-group");
  ASSERT_NE(group, nullptr) << json(found).dump(2);
  EXPECT_EQ((*group)["severity"], "high");
  EXPECT_EQ((*group)["kind"], "agent");
  EXPECT_EQ((*group)["subject"], "root");
  EXPECT_THAT((*group)["fix"].get<std::string>(), ::testing::HasSubstr("gpasswd -d " + aiops_));
  const json* eternal = Find(found, aiops_, "password-never-expires");
  ASSERT_NE(eternal, nullptr);
  EXPECT_EQ((*eternal)["severity"], "high");
  const json* sudo = Find(found, deploy_, "sudo-nopasswd-all");
  ASSERT_NE(sudo, nullptr);
  EXPECT_EQ((*sudo)["severity"], "high");
  const json* keys = Find(found, deploy_, "authorized-keys-unrestricted");
  ASSERT_NE(keys, nullptr);
  EXPECT_THAT((*keys)["detail"].get<std::string>(),
              ::testing::HasSubstr("3 authorized keys, 1 without a from= restriction"));
  EXPECT_TRUE((*group)["resolved"].is_null());

  // A brute force that gets in as aiops: five failures and a login (medium on its own) is
  // one level more severe for an account with root's power and an eternal password.
  SendBruteForceAndLogin(2, aiops_);
  json incident = HostIncident();
  EXPECT_EQ(incident["severity"], "high") << incident.dump(2);
  EXPECT_THAT(Explanation(incident),
              ::testing::HasSubstr("account " + aiops_ + " on " + host_ +
                                   " is in group root and has a password that never expires "
                                   "(privilege audit)"));
  EXPECT_THAT(Explanation(incident), ::testing::HasSubstr("from medium to high"));

  // The fixes a person would apply.
  MustRun({"/usr/bin/gpasswd", "-d", aiops_, "root"});
  MustRun({"/usr/bin/passwd", "-l", aiops_});
  MustRun({"/usr/bin/rm", "-f", sudoers_});
  SendPosture(8, t1 + 60 * kNanosPerSecond);
  engine_->Drain();
  found = Audit(false);
  EXPECT_EQ(Find(found, aiops_, "root-equivalent-group"), nullptr);
  EXPECT_EQ(Find(found, aiops_, "password-never-expires"), nullptr);
  EXPECT_EQ(Find(found, deploy_, "sudo-nopasswd-all"), nullptr);
  EXPECT_NE(Find(found, deploy_, "authorized-keys-unrestricted"), nullptr);  // not fixed
  const auto all = Audit(true);
  const json* resolved = Find(all, aiops_, "root-equivalent-group");
  ASSERT_NE(resolved, nullptr);
  EXPECT_EQ((*resolved)["resolved"], FormatTimeNs(t1 + 60 * kNanosPerSecond));
  EXPECT_EQ((*resolved)["first_seen"], FormatTimeNs(t1));
  // Fixed, the account no longer weighs on the incident: it is what the attack alone says.
  incident = HostIncident();
  EXPECT_EQ(incident["severity"], "medium") << incident.dump(2);
  EXPECT_THAT(Explanation(incident), ::testing::Not(::testing::HasSubstr("privilege audit")));

  // The table names the finding and its fix.
  const auto table = RunCommand(
      {testing::BinPath("triplinectl"), "--aggregator", target_, "audit", "--host", host_});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_THAT(table.out, ::testing::HasSubstr("MEDIUM  " + host_ + "  " + deploy_ +
                                              " (service)  authorized-keys-unrestricted"));
  EXPECT_THAT(table.out, ::testing::HasSubstr("fix: prefix each key"));
}

// The processes of a real agent account: started under its uid with a capability, in the
// group of a real container-runtime socket, and an MCP server (declared by executable)
// running as root. Each gives its finding; once the processes end, the next snapshot
// resolves them.
TEST_F(AuditAccountsTest, AnAgentsRealProcessesAreAuditedAndResolvedWhenTheyEnd) {
  MachineChanges changes;
  MustRun({"/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
           aiops_});
  changes.Undo({"/usr/sbin/userdel", aiops_});
  const std::string runtime_group = prefix_ + "-rt";
  MustRun({"/usr/sbin/groupadd", "--system", runtime_group});
  changes.Undo({"/usr/sbin/groupdel", runtime_group});
  MustRun({"/usr/sbin/usermod", "-aG", runtime_group, aiops_});
  const group* g = getgrnam(runtime_group.c_str());
  ASSERT_NE(g, nullptr);
  const gid_t runtime_gid = g->gr_gid;

  // The runtime's socket: root's, writable by its group, in a directory only they search.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  const std::string run = dir_.Sub("run");
  ASSERT_EQ(mkdir(run.c_str(), 0750), 0);
  ASSERT_EQ(chown(run.c_str(), 0, runtime_gid), 0);
  const std::string socket_path = run + "/containerd.sock";
  testing::UnixListener listener(socket_path);
  ASSERT_GE(listener.fd(), 0);
  ASSERT_EQ(chown(socket_path.c_str(), 0, runtime_gid), 0);
  ASSERT_EQ(chmod(socket_path.c_str(), 0660), 0);

  // The agent's program and the MCP server: copies of sleep, so that only these processes
  // run them.
  const std::string agent_exe = dir_.Sub(prefix_ + "-agent");
  const std::string mcp_exe = dir_.Sub(prefix_ + "-mcp-files");
  for (const std::string& exe : {agent_exe, mcp_exe}) {
    std::filesystem::copy_file("/bin/sleep", exe);
    ASSERT_EQ(chmod(exe.c_str(), 0755), 0);
  }
  auto agent = std::make_unique<testing::Child>(
      std::vector<std::string>{"/usr/bin/setpriv", "--reuid=" + aiops_, "--regid=" + aiops_,
                               "--init-groups", "--inh-caps=+dac_read_search",
                               "--ambient-caps=+dac_read_search", agent_exe, "120"},
      dir_.Sub("agent.log"));
  auto mcp = std::make_unique<testing::Child>(std::vector<std::string>{mcp_exe, "120"},
                                              dir_.Sub("mcp.log"));
  const pid_t agent_pid = agent->pid();
  // Both children run their program only once they exec it (setpriv execs the agent's):
  // wait until each does, or the scan may see the test's own binary in their place.
  for (const auto& [pid, exe] :
       {std::make_pair(agent_pid, agent_exe), std::make_pair(mcp->pid(), mcp_exe)}) {
    for (int i = 0; i < 200; ++i) {
      std::error_code ec;
      if (std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec) == exe) {
        break;
      }
      usleep(20'000);
    }
  }

  sensor::ProcessScanOptions scan;
  scan.runtime_sockets = {socket_path};
  const int64_t t1 = testing::kBaseTimeNs;
  SendPosture(1, t1, scan);
  auto found = Audit(false);
  const json* caps = Find(found, aiops_, "process-capabilities");
  ASSERT_NE(caps, nullptr) << json(found).dump(2);
  EXPECT_EQ((*caps)["severity"], "high");  // cap_dac_read_search reads /etc/shadow
  EXPECT_EQ((*caps)["kind"], "agent");
  EXPECT_EQ((*caps)["subject"], agent_exe);
  EXPECT_THAT((*caps)["detail"].get<std::string>(),
              ::testing::HasSubstr("cap_dac_read_search (1 process, pid " +
                                   std::to_string(agent_pid) + "), one of which gives it root"));
  const json* socket_finding = Find(found, aiops_, "runtime-socket");
  ASSERT_NE(socket_finding, nullptr) << json(found).dump(2);
  EXPECT_EQ((*socket_finding)["severity"], "high");
  EXPECT_EQ((*socket_finding)["subject"], agent_exe + " " + socket_path);
  EXPECT_THAT((*socket_finding)["fix"].get<std::string>(),
              ::testing::HasSubstr("gpasswd -d " + aiops_));
  const json* root = Find(found, prefix_ + "-mcp-files", "process-root");
  ASSERT_NE(root, nullptr) << json(found).dump(2);
  EXPECT_EQ((*root)["severity"], "high");
  EXPECT_THAT(
      (*root)["detail"].get<std::string>(),
      ::testing::HasSubstr("MCP server " + prefix_ + "-mcp-files runs " + mcp_exe + " as root"));

  // The processes end (killed and reaped): the next snapshot resolves their findings.
  agent.reset();
  mcp.reset();
  SendPosture(2, t1 + 60 * kNanosPerSecond, scan);
  found = Audit(false);
  EXPECT_EQ(Find(found, aiops_, "process-capabilities"), nullptr);
  EXPECT_EQ(Find(found, aiops_, "runtime-socket"), nullptr);
  EXPECT_EQ(Find(found, prefix_ + "-mcp-files", "process-root"), nullptr);
  const auto all = Audit(true);
  const json* resolved = Find(all, aiops_, "runtime-socket");
  ASSERT_NE(resolved, nullptr);
  EXPECT_EQ((*resolved)["first_seen"], FormatTimeNs(t1));
  EXPECT_EQ((*resolved)["resolved"], FormatTimeNs(t1 + 60 * kNanosPerSecond));
}

// Drift weighs on incidents: a real service account that may log in (a shell and a
// password that expires: no standing privilege the audit calls risky) and that never did in
// the three weeks it was watched. A brute force that gets in as it (medium on its own) is
// one level more severe, and the incident says why.
TEST_F(AuditAccountsTest, AServiceAccountsFirstLoginInWeeksIsMoreSevere) {
  MachineChanges changes;
  MustRun({"/usr/sbin/useradd", "--create-home", "--shell", "/bin/bash", deploy_});
  changes.Undo({"/usr/sbin/userdel", "-r", deploy_});
  const auto pw =
      RunCommand({"/bin/sh", "-c", "echo '" + deploy_ + ":Tl-drift-3k' | /usr/sbin/chpasswd"});
  ASSERT_EQ(pw.exit_code, 0) << pw.err;
  MustRun({"/usr/bin/chage", "-M", "90", deploy_});
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  SendPosture(1, now - 21 * 86400 * kNanosPerSecond);
  SendBruteForceAndLogin(2, deploy_);
  const json incident = HostIncident();
  EXPECT_EQ(incident["severity"], "high") << incident.dump(2);
  EXPECT_THAT(Explanation(incident),
              ::testing::HasSubstr("The service account " + deploy_ + " on " + host_ +
                                   " holds login and never used it in the 21 days it was "
                                   "watched (privilege drift)"));
  EXPECT_THAT(Explanation(incident), ::testing::HasSubstr("from medium to high"));
  EXPECT_THAT(Explanation(incident), ::testing::Not(::testing::HasSubstr("privilege audit")));
}

// Drift from a real replayed period: a real service account with a login, a sudo rule and
// two root-equivalent groups, its posture read from the real /etc three weeks ago, then two
// weeks of its auth log (a login and a sudo command) replayed with `triplinectl import`:
// login and sudo are used; adm and shadow were never exercised and are recommended for
// removal, with the command.
TEST_F(AuditAccountsTest, DriftFromAReplayedPeriodOfActivity) {
  MachineChanges changes;
  MustRun(
      {"/usr/sbin/useradd", "--create-home", "--shell", "/bin/bash", "-G", "adm,shadow", deploy_});
  changes.Undo({"/usr/sbin/userdel", "-r", deploy_});
  const auto pw =
      RunCommand({"/bin/sh", "-c", "echo '" + deploy_ + ":Tl-drift-7q' | /usr/sbin/chpasswd"});
  ASSERT_EQ(pw.exit_code, 0) << pw.err;
  ASSERT_NO_FATAL_FAILURE(
      AddSudoRule(changes, deploy_ + " ALL=(root) NOPASSWD: /usr/bin/systemctl"));

  // A secret the account owns, in a directory the sensor's sensitive paths name.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  const std::string secrets = dir_.Sub("secrets");
  ASSERT_EQ(mkdir(secrets.c_str(), 0755), 0);
  const std::string token = secrets + "/api.token";
  std::ofstream(token) << "t0ken\n";
  ASSERT_EQ(chmod(token.c_str(), 0600), 0);
  const passwd* account = getpwnam(deploy_.c_str());
  ASSERT_NE(account, nullptr);
  ASSERT_EQ(chown(token.c_str(), account->pw_uid, account->pw_gid), 0);

  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  constexpr int64_t kDay = 86400LL * kNanosPerSecond;
  SendPosture(1, now - 21 * kDay, std::nullopt,
              {{sensor::SensitivePath::Match::kPrefix, secrets + "/"}});

  // Its auth log of a week ago, as sshd and sudo wrote it.
  const auto stamp = [](int64_t ns) {
    const time_t secs = static_cast<time_t>(ns / kNanosPerSecond);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tm);
    return std::string(buf);
  };
  const int64_t t = now - 7 * kDay;
  const std::string log = dir_.Sub("auth.log");
  {
    std::ofstream out(log);
    out << stamp(t) << " " << host_ << " sshd[4100]: Accepted password for " << deploy_
        << " from 198.18.0.21 port 50122 ssh2\n"
        << stamp(t) << " " << host_ << " sshd[4100]: pam_unix(sshd:session): session opened for "
        << "user " << deploy_ << "(uid=1234) by (uid=0)\n"
        << stamp(t + 60 * kNanosPerSecond) << " " << host_ << " sudo:   " << deploy_
        << " : TTY=pts/0 ; PWD=/home/" << deploy_
        << " ; USER=root ; COMMAND=/usr/bin/systemctl restart app\n";
  }
  time_t year_secs = static_cast<time_t>(t / kNanosPerSecond);
  struct tm year_tm {};
  gmtime_r(&year_secs, &year_tm);
  const auto imported = RunCommand({testing::BinPath("triplinectl"), "--aggregator", target_,
                                    "import", "--format", "sshd-syslog", "--host", host_, "--year",
                                    std::to_string(1900 + year_tm.tm_year), log});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;

  const auto r = RunCommand({testing::BinPath("triplinectl"), "--aggregator", target_, "audit",
                             "--drift", "--json", "--identity", deploy_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json items = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(items.is_array()) << r.out;
  std::map<std::string, json> by_privilege;
  for (const json& d : items) by_privilege[d.value("privilege", "")] = d;
  SCOPED_TRACE(items.dump(2));
  ASSERT_EQ(by_privilege.size(), 5u);
  EXPECT_EQ(by_privilege["login"]["state"], "used");
  // The secret it may read and never opened.
  EXPECT_EQ(by_privilege["read:" + token]["state"], "unused");
  EXPECT_THAT(by_privilege["read:" + token]["evidence"].get<std::string>(),
              ::testing::HasSubstr("may read " + token));
  EXPECT_EQ(by_privilege["sudo"]["state"], "used");
  for (const char* group : {"group:adm", "group:shadow"}) {
    EXPECT_EQ(by_privilege[group]["state"], "unused") << group;
    EXPECT_THAT(by_privilege[group]["evidence"].get<std::string>(),
                ::testing::HasSubstr("21 days"));
  }
  EXPECT_EQ(by_privilege["group:adm"]["fix"], "gpasswd -d " + deploy_ + " adm");
  EXPECT_EQ(items[0]["state"], "unused");  // the recommendations first

  // The text view says the same, with the fix.
  const auto text = RunCommand({testing::BinPath("triplinectl"), "--aggregator", target_, "audit",
                                "--drift", "--identity", deploy_});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, ::testing::HasSubstr("UNUSED  " + host_ + "  " + deploy_));
  EXPECT_THAT(text.out, ::testing::HasSubstr("fix: gpasswd -d " + deploy_ + " shadow"));
}

}  // namespace
}  // namespace tripline
