// The response workflow through the real aggregator binary with mutual TLS and the real
// triplinectl: who proposes and who approves comes from the client certificates, --by must
// match them, only configured approvers decide, nobody approves their own proposal, and
// every step is in the trail and reaches the SIEM output. Unprivileged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_pki.h"
#include "tests/support/temp_dir.h"

namespace tripline {
namespace {

using nlohmann::json;
using testing::BinPath;
using ::testing::HasSubstr;
using testing::RunCommand;
using testing::RunResult;

class ResponseCtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto ca = testing::IssueCa("Tripline Test CA");
    ASSERT_TRUE(ca.ok());
    auto server =
        testing::IssueLeaf("tripline-aggregator", *ca, "serverAuth", "IP:127.0.0.1,DNS:localhost");
    ASSERT_TRUE(server.ok());
    ASSERT_TRUE(testing::WriteCert(dir_.Sub("ca.pem"), *ca).ok());
    ASSERT_TRUE(testing::WriteCert(dir_.Sub("server.pem"), *server).ok());
    ASSERT_TRUE(testing::WriteKey(dir_.Sub("server-key.pem"), *server).ok());
    const std::string approver = "URI:tripline:role:operator,URI:tripline:role:approver";
    for (auto [name, san] : std::vector<std::pair<std::string, std::string>>{
             {"alice", approver},
             {"bob", approver},
             {"carol", approver},  // an approver's certificate, but not a configured approver
             {"mallory", "URI:tripline:role:operator"}}) {
      auto c = testing::IssueLeaf(name, *ca, "clientAuth", san);
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE(testing::WriteCert(dir_.Sub(name + ".pem"), *c).ok());
      ASSERT_TRUE(testing::WriteKey(dir_.Sub(name + "-key.pem"), *c).ok());
    }
    WriteConfig("response {\n  approvers: \"alice\"\n  approvers: \"bob\"\n}\n");
    agg_ = std::make_unique<testing::Child>(
        std::vector<std::string>{BinPath("tripline-aggregator"), "--config",
                                 dir_.Sub("aggregator.textproto")},
        dir_.Sub("aggregator.stderr"));
    const auto line = agg_->ReadLine(30000);
    ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0)
        << testing::ReadWholeFile(dir_.Sub("aggregator.stderr"));
    address_ = line->substr(strlen("listening on "));
  }
  void TearDown() override {
    if (agg_) {
      agg_->Signal(SIGTERM);
      EXPECT_EQ(agg_->Wait(20000), std::optional<int>(0));
    }
  }

  // The aggregator's configuration: mutual TLS, then `response`.
  void WriteConfig(const std::string& response) {
    std::ofstream(dir_.Sub("aggregator.textproto"))
        << "listen: \"127.0.0.1:0\"\n"
        << "data_dir: \"" << dir_.Sub("data") << "\"\n"
        << "tls {\n  cert_file: \"" << dir_.Sub("server.pem") << "\"\n  key_file: \""
        << dir_.Sub("server-key.pem") << "\"\n  ca_file: \"" << dir_.Sub("ca.pem") << "\"\n}\n"
        << "forward: \"file://" << dir_.Sub("audit.jsonl") << "?format=ecs\"\n"
        << response;
  }
  // Sends SIGHUP and waits for the aggregator's log to say `what` for the `n`th time.
  bool ReloadSays(const std::string& what, size_t n) {
    agg_->Signal(SIGHUP);
    for (int i = 0; i < 200; ++i) {
      const std::string log = testing::ReadWholeFile(dir_.Sub("aggregator.stderr"));
      size_t count = 0;
      for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) {
        ++count;
      }
      if (count >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // triplinectl as `who` (the certificate of that name).
  RunResult Ctl(const std::string& who, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("triplinectl"),
                                     "--aggregator",
                                     address_,
                                     "--ca",
                                     dir_.Sub("ca.pem"),
                                     "--cert",
                                     dir_.Sub(who + ".pem"),
                                     "--key",
                                     dir_.Sub(who + "-key.pem"),
                                     "--server-name",
                                     "localhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::Child> agg_;
  std::string address_;
};

TEST_F(ResponseCtlTest, OnlyAnotherConfiguredPersonApprovesAsThemself) {
  RunResult r = Ctl("alice", {"propose", "lock", "hostb/aiops", "--reason", "brute-forced",
                              "--duration", "30m", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json proposed = json::parse(r.out);
  const std::string id = proposed["id"];
  EXPECT_EQ(proposed["state"], "proposed");
  EXPECT_EQ(proposed["proposed_by"], "alice");  // from the certificate, not a flag
  EXPECT_EQ(proposed["scope"], "account aiops on hostb");

  // Proposing under another name is refused.
  r = Ctl("alice", {"propose", "lock", "hostb/aiops", "--by", "bob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));

  r = Ctl("alice", {"approve", id, "--by", "alice"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot also approve"));
  r = Ctl("bob", {"approve", id, "--by", "alice"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does not match the client certificate, which names 'bob'"));
  r = Ctl("mallory", {"approve", id, "--by", "mallory"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tripline:role:approver"));
  r = Ctl("carol", {"approve", id, "--by", "carol"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not one of the configured approvers"));
  r = Ctl("bob", {"approve", id});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("approve needs --by NAME"));

  // Still proposed after every refusal.
  r = Ctl("mallory", {"actions", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(json::parse(r.out).size(), 1u);
  EXPECT_EQ(json::parse(r.out)[0]["state"], "proposed");

  r = Ctl("bob", {"approve", id, "--by", "bob", "--comment", "confirmed with the owner"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("approved"));
  r = Ctl("alice", {"deny", id, "--by", "alice", "--reason", "too late"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("only a proposed action is denied"));

  r = Ctl("bob", {"revert", id});  // --by from the certificate
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctl("mallory", {"actions", "--state", "reverted", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(json::parse(r.out).size(), 1u);
  EXPECT_EQ(json::parse(r.out)[0]["decided_by"], "bob");

  r = Ctl("mallory", {"trail", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json trail = json::parse(r.out);
  ASSERT_EQ(trail.size(), 3u);
  EXPECT_EQ(trail[0]["by"], "alice");
  EXPECT_THAT(trail[0]["what"].get<std::string>(), HasSubstr("proposed lock account hostb/aiops"));
  EXPECT_EQ(trail[1]["by"], "bob");
  EXPECT_THAT(trail[1]["what"].get<std::string>(), HasSubstr("approved: confirmed with the owner"));
  EXPECT_EQ(trail[2]["by"], "bob");
  r = Ctl("mallory", {"actions"});
  EXPECT_THAT(r.out, HasSubstr("reverted"));

  // The SIEM output received every step, each with the person the certificate names.
  std::vector<json> events;
  for (int i = 0; i < 250 && events.size() < 3; ++i) {
    events.clear();
    std::ifstream in(dir_.Sub("audit.jsonl"));
    std::string line;
    while (std::getline(in, line) && !in.eof()) events.push_back(json::parse(line));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(events.size(), 3u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"response-proposed", "alice"}, {"response-approved", "bob"}, {"response-withdrawn", "bob"}};
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(events[k]["event"]["action"], expected[k].first) << events[k].dump();
    EXPECT_EQ(events[k]["user"]["name"], expected[k].second) << events[k].dump();
    EXPECT_EQ(events[k]["tripline"]["audit"]["action"]["id"], id);
    EXPECT_EQ(events[k]["tripline"]["audit"]["what"], trail[k]["what"]);
  }
}

TEST_F(ResponseCtlTest, DenialIsRecordedWithItsReason) {
  RunResult r = Ctl("bob", {"propose", "block", "hosta/198.18.0.66", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = json::parse(r.out)["id"];
  r = Ctl("alice", {"deny", id, "--by", "alice"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("deny needs --reason"));
  r = Ctl("alice", {"deny", id, "--by", "alice", "--reason", "our scanner", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["state"], "denied");
  EXPECT_EQ(json::parse(r.out)["comment"], "our scanner");
  r = Ctl("bob", {"approve", id, "--by", "bob"});
  EXPECT_EQ(r.exit_code, 1);
  r = Ctl("bob", {"propose", "block", "hosta/not-an-address"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
}

// The approvers are re-read on SIGHUP: a person added decides from then on, one removed no
// longer does, and a list that does not check changes nothing.
TEST_F(ResponseCtlTest, ApproversAreReloadedOnSighup) {
  RunResult r = Ctl("alice", {"propose", "isolate", "hostc", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first = json::parse(r.out)["id"];
  r = Ctl("alice", {"propose", "isolate", "hostd", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string second = json::parse(r.out)["id"];
  r = Ctl("carol", {"approve", first, "--by", "carol"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not one of the configured approvers"));

  // An empty name: refused, named, nothing changed.
  WriteConfig("response {\n  approvers: \"carol\"\n  approvers: \"\"\n}\n");
  ASSERT_TRUE(ReloadSays("reload failed, nothing changed", 1));
  EXPECT_THAT(testing::ReadWholeFile(dir_.Sub("aggregator.stderr")),
              HasSubstr("response.approvers[1] is empty"));
  r = Ctl("carol", {"approve", first, "--by", "carol"});
  EXPECT_EQ(r.exit_code, 1);

  // carol in, bob out.
  WriteConfig("response {\n  approvers: \"alice\"\n  approvers: \"carol\"\n}\n");
  ASSERT_TRUE(ReloadSays("reload: 2 approvers", 1));
  r = Ctl("carol", {"approve", first, "--by", "carol"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Ctl("bob", {"approve", second, "--by", "bob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not one of the configured approvers"));
}

}  // namespace
}  // namespace tripline
