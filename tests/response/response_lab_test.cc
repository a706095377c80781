// Response actions against real test hosts: a lab (network + UTS namespaces with
// 198.18.0.0/15 addresses and a real sshd), a real account, the aggregator's action book
// on real RocksDB, orders signed with a real Ed25519 key, the sensor's verifier and ledger,
// and the executor running usermod, pkill and nft (inside the lab host's network
// namespace). For each action: proposed -> nothing runs -> approved -> executed and
// verified -> reverted and verified; unapproved, denied, expired, replayed and forged orders
// never run. Needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/response/action_book.h"
#include "aggregator/store/rocksdb_store.h"
#include "sensor/response/action_executor.h"
#include "sensor/response/action_order.h"
#include "tests/support/temp_dir.h"
#include "tools/lab/lab.h"

namespace tripline {
namespace {

using response::ActionBook;
using response::Proposal;
using ::testing::HasSubstr;

class ResponseLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status ready = lab::Lab::CheckPrerequisites();
    if (!ready.ok()) GTEST_SKIP() << "lab prerequisites missing: " << ready.ToString();
    lab::LabOptions options;
    options.hosts = {{"hosta", "198.18.0.1", 22}, {"agg", "198.18.0.10", 22}};
    options.clients = {{"attacker", "198.18.0.66", 22}};
    auto l = lab::Lab::Create(options);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lab_ = std::move(*l);
    auto user = lab_->AddUser("victim", "Victim-pw-7");
    ASSERT_TRUE(user.ok()) << user.status().ToString();
    victim_ = *user;
    hosta_ = lab_->host("hosta");

    RocksDbStoreOptions store_options;
    store_options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(store_options);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    clock_.SetNs(SystemClock::Get().NowNs());
    response::ResponsePolicy policy;
    policy.approval_ttl_ns = 120 * kNanosPerSecond;
    book_ = std::make_unique<ActionBook>(store_->db(), store_->column_family("actions"), policy,
                                         clock_);
    ASSERT_TRUE(sensor::MakeOrderKeyPair(&pub_, &secret_).ok());
    auto ledger = sensor::ExecutedLedger::Open(dir_.Sub("executed"));
    ASSERT_TRUE(ledger.ok());
    ledger_ = std::make_unique<sensor::ExecutedLedger>(std::move(*ledger));
    sensor::ExecutorOptions exec;
    exec.net_prefix = {"/usr/bin/nsenter", "--net=" + hosta_->netns_path()};
    executor_ = std::make_unique<sensor::ActionExecutor>(exec);
  }
  void TearDown() override {
    if (lab_) {
      EXPECT_TRUE(lab_->Close().ok());
    }
  }

  std::string Propose(v1::Action::Kind kind, const std::string& target) {
    Proposal p;
    p.kind = kind;
    p.target = target;
    p.by = "alice";
    auto a = book_->Propose(p);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->id() : "";
  }

  // The sensor's side: verify, record, run, report. The status of the verification or run.
  Status Deliver(const v1::SignedActionOrder& signed_order) {
    const sensor::OrderVerifier verifier(pub_, "hosta");
    auto order = verifier.Verify(signed_order, clock_.NowNs(), *ledger_);
    if (!order.ok()) return order.status();
    TL_RETURN_IF_ERROR(ledger_->Record(order->action_id(), order->revert()));
    auto detail = executor_->Run(*order);
    v1::ActionReport report;
    report.set_action_id(order->action_id());
    report.set_revert(order->revert());
    report.set_ok(detail.ok());
    report.set_detail(detail.ok() ? *detail : detail.status().message());
    TL_RETURN_IF_ERROR(book_->RecordReport(report, "hosta").status());
    return detail.status();
  }
  // The aggregator's side: the order for an action, signed; Aborted when it may not go out.
  Result<v1::SignedActionOrder> Order(const std::string& id, bool revert) {
    TL_ASSIGN_OR_RETURN(v1::ActionOrder o, book_->OrderFor(id, revert, "198.18.0.10:22"));
    return sensor::SignOrder(o, secret_);
  }
  Status Send(const std::string& id, bool revert) {
    TL_ASSIGN_OR_RETURN(v1::SignedActionOrder o, Order(id, revert));
    return Deliver(o);
  }
  v1::Action::State State(const std::string& id) { return (*book_->Get(id))->state(); }

  bool VictimLogsIn() {
    auto r = lab_->SshCommand("attacker", victim_.Hop(*hosta_), "true", std::chrono::seconds(15));
    return r.ok() && r->exit_code == 0;
  }
  // A TCP connection from machine `from` to ADDRESS:PORT within 2 s.
  bool Connects(const std::string& from, const std::string& address, int port) {
    auto r = lab_->host(from)->Run({"/usr/bin/timeout", "2", "/bin/bash", "-c",
                                    "exec 3<>/dev/tcp/" + address + "/" + std::to_string(port)},
                                   std::chrono::seconds(10));
    return r.ok() && r->exit_code == 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<lab::Lab> lab_;
  lab::LabUser victim_;
  const lab::LabHost* hosta_ = nullptr;
  FakeClock clock_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<ActionBook> book_;
  sensor::OrderPublicKey pub_;
  sensor::OrderSecretKey secret_;
  std::unique_ptr<sensor::ExecutedLedger> ledger_;
  std::unique_ptr<sensor::ActionExecutor> executor_;
};

TEST_F(ResponseLabTest, LockedAccountCannotLogInUntilReverted) {
  ASSERT_TRUE(VictimLogsIn());
  const std::string id = Propose(v1::Action::KIND_LOCK_ACCOUNT, "hosta/" + victim_.login);
  // Proposed: no order leaves the aggregator, nothing changed.
  EXPECT_EQ(Order(id, false).status().code(), Status::Code::kAborted);
  // A forged order (another key) for the same thing never runs.
  sensor::OrderPublicKey other_pub;
  sensor::OrderSecretKey other_secret;
  ASSERT_TRUE(sensor::MakeOrderKeyPair(&other_pub, &other_secret).ok());
  v1::ActionOrder forged;
  forged.set_action_id(id);
  forged.set_kind(v1::Action::KIND_LOCK_ACCOUNT);
  forged.set_host("hosta");
  forged.set_subject(victim_.login);
  forged.set_not_after_ns(clock_.NowNs() + kNanosPerSecond * 60);
  EXPECT_THAT(Deliver(*sensor::SignOrder(forged, other_secret)).message(),
              HasSubstr("does not verify"));
  ASSERT_TRUE(VictimLogsIn());

  ASSERT_TRUE(book_->Approve(id, "bob", "").ok());
  auto signed_order = Order(id, false);
  ASSERT_TRUE(signed_order.ok()) << signed_order.status().ToString();
  ASSERT_TRUE(Deliver(*signed_order).ok());
  EXPECT_EQ(State(id), v1::Action::STATE_EXECUTED);
  EXPECT_FALSE(VictimLogsIn());
  // Replayed: refused, still locked.
  EXPECT_THAT(Deliver(*signed_order).message(), HasSubstr("replay"));

  ASSERT_TRUE(book_->Revert(id, "bob").ok());
  ASSERT_TRUE(Send(id, true).ok());
  EXPECT_EQ(State(id), v1::Action::STATE_REVERTED);
  EXPECT_TRUE(VictimLogsIn());
}

TEST_F(ResponseLabTest, EndSessionsKillsTheAccountsProcesses) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(victim_.uid) != 0 || setuid(victim_.uid) != 0) _exit(1);
    execl("/bin/sleep", "sleep", "60", nullptr);
    _exit(127);
  }
  const std::string id = Propose(v1::Action::KIND_KILL_SESSION, "hosta/" + victim_.login);
  EXPECT_EQ(Order(id, false).status().code(), Status::Code::kAborted);
  usleep(200 * 1000);
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), 0);  // not approved: still running
  ASSERT_TRUE(book_->Approve(id, "bob", "").ok());
  ASSERT_TRUE(Send(id, false).ok());
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(State(id), v1::Action::STATE_EXECUTED);
}

TEST_F(ResponseLabTest, BlockedAddressCannotConnectUntilReverted) {
  ASSERT_TRUE(Connects("attacker", "198.18.0.1", 22));
  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  ASSERT_TRUE(book_->Approve(id, "bob", "").ok());
  ASSERT_TRUE(Send(id, false).ok());
  EXPECT_FALSE(Connects("attacker", "198.18.0.1", 22));
  EXPECT_TRUE(Connects("agg", "198.18.0.1", 22));  // only that address
  ASSERT_TRUE(book_->Revert(id, "bob").ok());
  ASSERT_TRUE(Send(id, true).ok());
  EXPECT_TRUE(Connects("attacker", "198.18.0.1", 22));
  ASSERT_TRUE(
      hosta_->Run({"/usr/sbin/nft", "delete", "table", "inet", "tripline"}, std::chrono::seconds(5))
          .ok());
}

TEST_F(ResponseLabTest, IsolatedHostReachesOnlyTheAggregator) {
  ASSERT_TRUE(Connects("attacker", "198.18.0.1", 22));
  const std::string id = Propose(v1::Action::KIND_ISOLATE_HOST, "hosta");
  ASSERT_TRUE(book_->Approve(id, "bob", "").ok());
  ASSERT_TRUE(Send(id, false).ok()) << book_->Get(id)->value().result();
  EXPECT_FALSE(Connects("attacker", "198.18.0.1", 22));
  EXPECT_TRUE(Connects("hosta", "198.18.0.10", 22));  // the sensor's path to the aggregator
  EXPECT_FALSE(Connects("agg", "198.18.0.1", 22));    // but nothing else, not even from there
  ASSERT_TRUE(book_->Revert(id, "bob").ok());
  ASSERT_TRUE(Send(id, true).ok());
  EXPECT_TRUE(Connects("attacker", "198.18.0.1", 22));
}

TEST_F(ResponseLabTest, DeniedAndExpiredActionsNeverRun) {
  const std::string denied = Propose(v1::Action::KIND_LOCK_ACCOUNT, "hosta/" + victim_.login);
  ASSERT_TRUE(book_->Deny(denied, "bob", "expected maintenance").ok());
  EXPECT_EQ(Order(denied, false).status().code(), Status::Code::kAborted);

  Proposal p;
  p.kind = v1::Action::KIND_BLOCK_ADDRESS;
  p.target = "hosta/198.18.0.66";
  p.by = "carol";
  auto expired = book_->Propose(p);
  ASSERT_TRUE(expired.ok());
  ASSERT_TRUE(book_->Approve(expired->id(), "bob", "").ok());
  auto signed_order = Order(expired->id(), false);  // sent, but delivered too late
  ASSERT_TRUE(signed_order.ok());
  clock_.AdvanceNs(121 * kNanosPerSecond);
  EXPECT_THAT(Deliver(*signed_order).message(), HasSubstr("expired"));
  EXPECT_EQ(Order(expired->id(), false).status().code(), Status::Code::kAborted);
  EXPECT_TRUE(VictimLogsIn());
  EXPECT_TRUE(Connects("attacker", "198.18.0.1", 22));
}

}  // namespace
}  // namespace tripline
