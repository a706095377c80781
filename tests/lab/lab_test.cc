// End-to-end tests of the lab: real namespaces, a real sshd, real accounts. They need root
// and skip, saying why, without it.
#include "tools/lab/lab.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include "gtest/gtest.h"

namespace tripline::lab {
namespace {

using std::chrono::seconds;

LabOptions TwoHostsAndAnAttacker() {
  LabOptions options;
  // hostb listens on a non-standard port, so every test that reaches it covers that too.
  options.hosts = {{"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 2222}};
  options.clients = {{"attacker", "198.18.0.66"}};
  return options;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string NamespaceId(const std::string& ns_file) {
  struct stat st {};
  if (stat(ns_file.c_str(), &st) != 0) return "missing " + ns_file;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// Live processes whose real uid is `uid`, from /proc/<pid>/status.
int CountProcessesOf(uid_t uid) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      // A zombie is dead already; only its exit status waits for the (re)parent.
      if (line.rfind("State:", 0) == 0 && line.find('Z') != std::string::npos) break;
      if (line.rfind("Uid:", 0) == 0) {
        if (std::stoul(line.substr(4)) == uid) ++count;
        break;
      }
    }
  }
  return count;
}

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status ready = Lab::CheckPrerequisites();
    if (!ready.ok()) GTEST_SKIP() << "lab prerequisites missing: " << ready.ToString();
    Result<std::unique_ptr<Lab>> lab = Lab::Create(TwoHostsAndAnAttacker());
    ASSERT_TRUE(lab.ok()) << lab.status().ToString();
    lab_ = std::move(*lab);
    Result<LabUser> alice = lab_->AddUser("alice", "correct horse 'battery'");
    ASSERT_TRUE(alice.ok()) << alice.status().ToString();
    alice_ = *alice;
  }

  void TearDown() override {
    if (lab_) {
      Status closed = lab_->Close();
      EXPECT_TRUE(closed.ok()) << closed.ToString();
    }
  }

  const LabHost& Host(std::string_view name) {
    const LabHost* h = lab_->host(name);
    EXPECT_NE(h, nullptr) << name;
    return *h;
  }

  std::unique_ptr<Lab> lab_;
  LabUser alice_;
};

TEST_F(LabTest, EachMachineHasItsOwnHostnameAndNetwork) {
  char root_hostname[256] = {};
  ASSERT_EQ(gethostname(root_hostname, sizeof(root_hostname) - 1), 0);
  for (const char* name : {"hosta", "hostb", "attacker"}) {
    const LabHost& m = Host(name);
    Result<RunResult> r = m.Run({"hostname"}, seconds(10));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Trim(r->out), name);
    EXPECT_NE(Trim(r->out), root_hostname);

    Result<RunResult> addr = m.Run({"ip", "-o", "-4", "addr", "show", "dev", "eth0"}, seconds(10));
    ASSERT_TRUE(addr.ok()) << addr.status().ToString();
    EXPECT_NE(addr->out.find(" " + m.address() + "/24"), std::string::npos) << addr->out;
  }
  // Machines reach each other over the bridge: hostb's sshd banner, read by the attacker.
  Result<RunResult> banner =
      Host("attacker")
          .Run({"bash", "-c", "exec 3<>/dev/tcp/198.18.0.2/2222 && head -c 8 <&3"}, seconds(10));
  ASSERT_TRUE(banner.ok()) << banner.status().ToString();
  EXPECT_EQ(banner->out, "SSH-2.0-") << banner->err;
}

TEST_F(LabTest, SpawnJoinsNetAndUtsButSpawnUtsOnlyKeepsTheRootNetwork) {
  const LabHost& hosta = Host("hosta");
  const std::string root_net = NamespaceId("/proc/self/ns/net");
  const std::string host_net = NamespaceId(hosta.netns_path());
  const std::string host_uts = NamespaceId(hosta.uts_ns_path());
  ASSERT_NE(root_net, host_net);

  // The child reports its own namespaces and hostname.
  const std::string script = "stat -L -c '%d:%i' /proc/self/ns/net /proc/self/ns/uts; hostname";
  auto probe = [&](bool uts_only) -> std::vector<std::string> {
    SpawnOptions options;
    options.argv = {"sh", "-c", script};
    Result<Subprocess> p = uts_only ? hosta.SpawnUtsOnly(options) : hosta.Spawn(options);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return {};
    Result<RunResult> r = p->Finish(DeadlineIn(seconds(10)));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> lines;
    std::istringstream in(r.ok() ? r->out : "");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  // stat's %d is decimal like st_dev here.
  EXPECT_EQ(probe(false), (std::vector<std::string>{host_net, host_uts, "hosta"}));
  EXPECT_EQ(probe(true), (std::vector<std::string>{root_net, host_uts, "hosta"}));
}

TEST_F(LabTest, WrongPasswordFailsQuicklyRightPasswordLogsIn) {
  const LabHost& hosta = Host("hosta");
  SshHop wrong = alice_.Hop(hosta);
  wrong.password = "not it";
  auto start = std::chrono::steady_clock::now();
  Result<RunResult> denied = lab_->SshCommand("attacker", wrong, "hostname");
  ASSERT_TRUE(denied.ok()) << denied.status().ToString();
  EXPECT_NE(denied->exit_code, 0);
  EXPECT_EQ(denied->out, "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));

  Result<RunResult> ok = lab_->SshCommand("attacker", alice_.Hop(hosta), "id -un; hostname");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->exit_code, 0) << ok->err;
  EXPECT_EQ(ok->out, alice_.login + "\nhosta\n");

  // Both attempts are in hosta's sshd log, with the attacker's address.
  std::ifstream log(hosta.sshd_log_path());
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Failed password for " + alice_.login + " from 198.18.0.66"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Accepted password for " + alice_.login + " from 198.18.0.66"),
            std::string::npos)
      << text;
}

TEST_F(LabTest, NonStandardPortIsTheOnlyOneOpen) {
  const LabHost& hostb = Host("hostb");
  ASSERT_EQ(hostb.ssh_port(), 2222);
  Result<RunResult> r = lab_->SshCommand("attacker", alice_.login, alice_.password, hostb.address(),
                                         2222, "hostname");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "hostb\n");

  Result<RunResult> refused =
      lab_->SshCommand("attacker", alice_.login, alice_.password, hostb.address(), 22, "hostname");
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_NE(refused->exit_code, 0);
  EXPECT_NE(refused->err.find("refused"), std::string::npos) << refused->err;
}

TEST_F(LabTest, NestedHopReachesTheLastHost) {
  const std::string on_hosta = ChainedSshCommand({alice_.Hop(Host("hostb"))}, "hostname; id -un");
  Result<RunResult> r = lab_->SshCommand("attacker", alice_.Hop(Host("hosta")), on_hosta);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "hostb\n" + alice_.login + "\n");

  // hostb saw the login coming from hosta, not from the attacker.
  std::ifstream log(Host("hostb").sshd_log_path());
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Accepted password for " + alice_.login + " from 198.18.0.1"),
            std::string::npos)
      << text;
}

TEST_F(LabTest, RootNamespaceShowsNothingOfTheLab) {
  Result<RunResult> links = Subprocess::Run({"ip", "-o", "link"}, seconds(10));
  ASSERT_TRUE(links.ok()) << links.status().ToString();
  EXPECT_EQ(links->out.find(lab_->prefix()), std::string::npos) << links->out;
  Result<RunResult> addrs = Subprocess::Run({"ip", "-o", "addr"}, seconds(10));
  ASSERT_TRUE(addrs.ok()) << addrs.status().ToString();
  EXPECT_EQ(addrs->out.find("198.18."), std::string::npos) << addrs->out;
}

TEST_F(LabTest, CloseRemovesEverythingEvenWithASessionOpen) {
  // A login that is still running when the lab closes.
  const LabHost& attacker = Host("attacker");
  SpawnOptions options;
  options.argv = SshArgv(alice_.Hop(Host("hosta")), "echo in; exec sleep 60");
  Result<Subprocess> session = attacker.Spawn(options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  ASSERT_TRUE(
      session->ReadLineUntil(OutputStream::kStdout, ContainsText("in"), DeadlineIn(seconds(15)))
          .ok());
  ASSERT_GT(CountProcessesOf(alice_.uid), 0);

  const std::vector<std::string> netns = lab_->netns_names();
  const std::vector<pid_t> pids = lab_->started_pids();
  std::vector<std::string> uts_files;
  for (const auto& m : lab_->machines()) uts_files.push_back(m->uts_ns_path());
  const std::string dir = lab_->dir();
  ASSERT_EQ(netns.size(), 4u);
  ASSERT_FALSE(pids.empty());

  auto start = std::chrono::steady_clock::now();
  Status closed = lab_->Close();
  ASSERT_TRUE(closed.ok()) << closed.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(15));
  EXPECT_TRUE(lab_->Close().ok());  // idempotent

  // The client saw its session end.
  Result<int> client_exit = session->Wait(seconds(10));
  EXPECT_TRUE(client_exit.ok()) << client_exit.status().ToString();

  Result<RunResult> list = Subprocess::Run({"ip", "netns", "list"}, seconds(10));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  for (const std::string& name : netns) {
    EXPECT_EQ(list->out.find(name), std::string::npos) << name << " still in " << list->out;
    EXPECT_FALSE(std::filesystem::exists("/run/netns/" + name)) << name;
  }
  EXPECT_EQ(getpwnam(alice_.login.c_str()), nullptr) << alice_.login;
  EXPECT_FALSE(std::filesystem::exists(alice_.home)) << alice_.home;
  EXPECT_EQ(CountProcessesOf(alice_.uid), 0);
  for (pid_t pid : pids) EXPECT_FALSE(ProcessExists(pid)) << "pid " << pid;
  for (const std::string& f : uts_files) EXPECT_FALSE(std::filesystem::exists(f)) << f;
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

TEST(LabOptionsTest, RejectsAddressesOutsideTheBenchmarkRange) {
  LabOptions options;
  options.hosts = {{"hosta", "10.0.0.1"}};
  Result<std::unique_ptr<Lab>> lab = Lab::Create(options);
  EXPECT_TRUE(lab.status().IsInvalidArgument()) << lab.status().ToString();

  options.hosts = {{"hosta", "198.18.0.1"}, {"hostb", "198.18.0.1"}};
  EXPECT_TRUE(Lab::Create(options).status().IsInvalidArgument());
  options.hosts = {{"hosta", "198.18.0.1"}, {"hosta", "198.18.0.2"}};
  EXPECT_TRUE(Lab::Create(options).status().IsInvalidArgument());
  options.hosts = {{"Host_A", "198.18.0.1"}};
  EXPECT_TRUE(Lab::Create(options).status().IsInvalidArgument());
  options.hosts = {{"hosta", "198.18.0.1"}, {"hostb", "198.18.1.2"}};
  EXPECT_TRUE(Lab::Create(options).status().IsInvalidArgument());
}

}  // namespace
}  // namespace tripline::lab
