// The sensor on real hosts: a wrong password, the right one, a read of /etc/shadow and an
// SSH hop from inside that session, seen by one `tripline-sensor --scope uts --output
// jsonl` per host. Every field that matters is checked, and so is what a sensor must NOT
// see (the other host's activity).
#include <gtest/gtest.h>

#include "tests/e2e/e2e_support.h"
#include "tools/lab/ssh_command.h"

namespace tripline::e2e {
namespace {

using nlohmann::json;

class SensorCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status ready = CheckE2ePrerequisites();
    if (!ready.ok()) {
      GTEST_SKIP() << "needs root, namespaces, sshd and BPF: " << ready.ToString();
    }
    lab::LabOptions options;
    options.hosts = {{"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 22}};
    options.clients = {{"attacker", "198.18.0.66", 22}};
    auto lab = lab::Lab::Create(options);
    ASSERT_TRUE(lab.ok()) << lab.status().ToString();
    lab_ = std::move(*lab);
    auto alice = lab_->AddUser("alice", "Corr3ct-Horse", {"shadow"});
    ASSERT_TRUE(alice.ok()) << alice.status().ToString();
    alice_ = *alice;
    for (const char* name : {"hosta", "hostb"}) {
      lab::SpawnOptions spawn;
      spawn.argv = {BinDir() + "/tripline-sensor",
                    "--aggregator",
                    "127.0.0.1:1",
                    "--scope",
                    "uts",
                    "--output",
                    "jsonl"};
      spawn.stderr_options.capture = false;
      spawn.stderr_options.log_path = lab_->dir() + "/sensor-" + name + ".log";
      auto sensor = lab_->host(name)->SpawnUtsOnly(std::move(spawn));
      ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
      sensors_.emplace(name, std::move(*sensor));
      auto ready_line = sensors_.at(name).ReadLineUntil(lab::OutputStream::kStdout,
                                                        lab::ContainsText("sensor ready"),
                                                        lab::DeadlineIn(std::chrono::seconds(30)));
      ASSERT_TRUE(ready_line.ok()) << name << ": " << ready_line.status().ToString();
    }
  }

  void TearDown() override {
    for (auto& [name, sensor] : sensors_) {
      auto code = sensor.Terminate(std::chrono::seconds(5));
      EXPECT_TRUE(code.ok() && *code == 0) << name << " sensor did not stop cleanly";
    }
    sensors_.clear();
    if (lab_) {
      Status closed = lab_->Close();
      EXPECT_TRUE(closed.ok()) << closed.ToString();
    }
  }

  std::unique_ptr<lab::Lab> lab_;
  lab::LabUser alice_;
  std::map<std::string, lab::Subprocess> sensors_;
};

bool IsLogin(const json& e, const std::string& user, const std::string& outcome) {
  return e.value("kind", "") == "login" && e["login"].value("user", "") == user &&
         e["login"].value("outcome", "") == outcome;
}

TEST_F(SensorCaptureTest, LoginShadowReadAndHopAreCompleteAndAttributed) {
  const lab::LabHost& hosta = *lab_->host("hosta");
  const lab::LabHost& hostb = *lab_->host("hostb");
  const std::string user = alice_.login;

  // 1. A wrong password from the attacker.
  lab::SshHop wrong = alice_.Hop(hosta);
  wrong.password = "Wr0ng-Horse";
  auto refused = lab_->SshCommand("attacker", wrong, "true");
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  ASSERT_NE(refused->exit_code, 0);

  // 2. The right one; in that session a read of /etc/shadow and an SSH hop to hostb.
  const std::string on_hosta =
      "cat /etc/shadow > /dev/null; " + lab::ChainedSshCommand({alice_.Hop(hostb)}, "hostname");
  auto played = lab_->SshCommand("attacker", alice_.Hop(hosta), on_hosta);
  ASSERT_TRUE(played.ok()) << played.status().ToString();
  ASSERT_EQ(played->exit_code, 0) << played->err;
  EXPECT_NE(played->out.find("hostb"), std::string::npos) << played->out;

  // Host A: the failure, the success, the shadow read, the cat and ssh execs, the connect.
  SensorOutput a;
  Status got = ReadEventsUntil(
      sensors_.at("hosta"), &a,
      [&](const SensorOutput& out) {
        bool failed = false, succeeded = false, shadow = false, connect = false;
        bool cat = false, ssh = false;
        for (const auto& e : out.events) {
          failed |= IsLogin(e, user, "failure");
          succeeded |=
              IsLogin(e, user, "success") && e["login"].value("stage", "") == "session_open";
          shadow |= e.value("kind", "") == "file_open" &&
                    e["file_open"].value("path", "") == "/etc/shadow" &&
                    e["process"].value("comm", "") == "cat";
          connect |=
              e.value("kind", "") == "net" && e["net"].value("remote_addr", "") == hostb.address();
          // Events of one host need not arrive in the order they happened (the sensor reads
          // a priority ring and a bulk ring): the ssh exec may come after its connect.
          if (e.value("kind", "") == "exec") {
            cat |= e["process"].value("comm", "") == "cat";
            ssh |= e["process"].value("comm", "") == "ssh";
          }
        }
        return failed && succeeded && shadow && connect && cat && ssh;
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(got.ok()) << got.ToString() << "\nhosta saw " << a.events.size() << " events";

  for (const auto& e : a.events) {
    EXPECT_EQ(e.value("host", ""), "hosta") << e.dump();
    EXPECT_FALSE(e.value("host_id", "").empty()) << e.dump();
  }

  // The failure: user, attacker's address, service, outcome, authenticating pid.
  const auto failures = Select(a, [&](const json& e) { return IsLogin(e, user, "failure"); });
  ASSERT_FALSE(failures.empty());
  bool pam_failure = false;
  for (const auto& f : failures) {
    const json& l = f["login"];
    EXPECT_EQ(l.value("remote_addr", ""), "198.18.0.66") << f.dump();
    if (l.value("source", "") == "pam") {
      pam_failure = true;
      EXPECT_EQ(l.value("service", ""), "sshd") << f.dump();
      EXPECT_EQ(l.value("stage", ""), "authenticate") << f.dump();
      EXPECT_GT(l.value("auth_pid", 0), 0) << f.dump();
      EXPECT_FALSE(l.value("reason", "").empty()) << f.dump();
    }
  }
  EXPECT_TRUE(pam_failure) << "no PAM failure event";

  // The success, and the login session it opened.
  const auto opened = Select(a, [&](const json& e) {
    return IsLogin(e, user, "success") && e["login"].value("stage", "") == "session_open";
  });
  ASSERT_FALSE(opened.empty());
  const json& login = opened.front();
  EXPECT_EQ(login["login"].value("remote_addr", ""), "198.18.0.66") << login.dump();
  EXPECT_EQ(login["login"].value("service", ""), "sshd") << login.dump();
  const std::string session = login.value("session", "");
  ASSERT_FALSE(session.empty()) << "the login carries no session: " << login.dump();

  // The read of /etc/shadow, by cat, as alice, attributed to that login. (sshd reads it
  // too, as root, to check passwords: those reads are events of their own.)
  const auto shadow = Select(a, [](const json& e) {
    return e.value("kind", "") == "file_open" &&
           e["file_open"].value("path", "") == "/etc/shadow" &&
           e["process"].value("comm", "") == "cat";
  });
  ASSERT_FALSE(shadow.empty());
  const json& read = shadow.front();
  EXPECT_EQ(read["file_open"].value("access", ""), "read") << read.dump();
  EXPECT_EQ(read["file_open"].value("result", -1), 0) << read.dump();
  EXPECT_EQ(read["process"].value("comm", ""), "cat") << read.dump();
  EXPECT_EQ(read["process"].value("uid", 0u), alice_.uid) << read.dump();
  EXPECT_EQ(read["process"].value("user", ""), user) << read.dump();
  EXPECT_EQ(read.value("session", ""), session) << read.dump();

  // The execs of cat and ssh in that session.
  for (const char* comm : {"cat", "ssh"}) {
    const auto execs = Select(a, [&](const json& e) {
      return e.value("kind", "") == "exec" && e["process"].value("comm", "") == comm;
    });
    ASSERT_FALSE(execs.empty()) << "no exec of " << comm;
    EXPECT_EQ(execs.front().value("session", ""), session) << execs.front().dump();
    EXPECT_EQ(execs.front()["process"].value("uid", 0u), alice_.uid);
    EXPECT_GT(execs.front()["process"].value("ppid", 0u), 0u);
    EXPECT_FALSE(execs.front()["exec"]["argv"].empty());
  }

  // The hop: the 5-tuple of the outbound connection, by ssh, in that session.
  const auto connects = Select(a, [&](const json& e) {
    return e.value("kind", "") == "net" && e["net"].value("remote_addr", "") == hostb.address();
  });
  ASSERT_FALSE(connects.empty());
  const json& c = connects.front();
  EXPECT_EQ(c["net"].value("direction", ""), "outbound") << c.dump();
  EXPECT_EQ(c["net"].value("remote_port", 0u), 22u) << c.dump();
  EXPECT_EQ(c["net"].value("local_addr", ""), hosta.address()) << c.dump();
  EXPECT_GT(c["net"].value("local_port", 0u), 0u) << c.dump();
  EXPECT_EQ(c["net"].value("protocol", 0u), 6u) << c.dump();
  EXPECT_EQ(c["process"].value("comm", ""), "ssh") << c.dump();
  EXPECT_EQ(c.value("session", ""), session) << c.dump();
  const uint32_t hop_port = c["net"].value("local_port", 0u);

  // Host B: the accepted connection and the login from A, with A's source port.
  SensorOutput b;
  got = ReadEventsUntil(
      sensors_.at("hostb"), &b,
      [&](const SensorOutput& out) {
        for (const auto& e : out.events) {
          if (IsLogin(e, user, "success") && e["login"].value("stage", "") == "session_open") {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(got.ok()) << got.ToString();
  const auto b_logins = Select(b, [&](const json& e) {
    return IsLogin(e, user, "success") && e["login"].value("stage", "") == "session_open";
  });
  ASSERT_FALSE(b_logins.empty());
  EXPECT_EQ(b_logins.front().value("host", ""), "hostb");
  EXPECT_EQ(b_logins.front()["login"].value("remote_addr", ""), hosta.address());
  EXPECT_EQ(b_logins.front()["login"].value("remote_port", 0u), hop_port)
      << b_logins.front().dump();
  const auto accepts = Select(b, [&](const json& e) {
    return e.value("kind", "") == "net" && e["net"].value("direction", "") == "accepted" &&
           e["net"].value("remote_port", 0u) == hop_port;
  });
  ASSERT_FALSE(accepts.empty()) << "hostb saw no accepted connection from port " << hop_port;
  EXPECT_EQ(accepts.front()["net"].value("remote_addr", ""), hosta.address());
  EXPECT_EQ(accepts.front()["net"].value("local_port", 0u), 22u);

  // Isolation: hostb's sensor saw nothing of hosta (its own sshd's reads of /etc/shadow
  // are hostb's), and nothing of the attacker.
  for (const auto& e : b.events) {
    EXPECT_EQ(e.value("host", ""), "hostb") << e.dump();
    EXPECT_NE(e["process"].value("uts_inum", 0u), read["process"].value("uts_inum", 1u))
        << e.dump();
    if (e.value("kind", "") == "login") {
      EXPECT_NE(e["login"].value("remote_addr", ""), "198.18.0.66") << e.dump();
    }
    EXPECT_NE(e["process"].value("comm", ""), "cat") << e.dump();
  }
}

}  // namespace
}  // namespace tripline::e2e
