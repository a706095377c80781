// The response workflow's rules on a real RocksDB in a temp dir, with a fake clock.
#include "aggregator/response/action_book.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/response/response_service.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace tripline::response {
namespace {

using ::testing::HasSubstr;

class ActionBookTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    book_.reset();
    store_.reset();
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    ResponsePolicy policy;
    policy.approval_ttl_ns = 60 * kNanosPerSecond;
    policy.proposal_ttl_ns = 3600 * kNanosPerSecond;
    book_ = std::make_unique<ActionBook>(store_->db(), store_->column_family("actions"), policy,
                                         clock_);
  }
  v1::Action ProposeLock(const std::string& by = "alice") {
    Proposal p;
    p.kind = v1::Action::KIND_LOCK_ACCOUNT;
    p.target = "hostb/aiops";
    p.reason = "brute-forced";
    p.by = by;
    auto a = book_->Propose(p);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : v1::Action();
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<ActionBook> book_;
};

// What nft and usermod receive comes from the target: an embedded NUL must not hide a tail
// behind an address that inet_pton accepts.
TEST(ParseTargetTest, AnAddressWithAnEmbeddedNulIsRefused) {
  std::string host, subject;
  EXPECT_TRUE(
      ParseTarget(v1::Action::KIND_BLOCK_ADDRESS, "hostb/198.18.0.66", &host, &subject).ok());
  EXPECT_EQ(subject, "198.18.0.66");
  const std::string forged("hostb/198.18.0.66\0 ; flush ruleset", 35);
  EXPECT_FALSE(ParseTarget(v1::Action::KIND_BLOCK_ADDRESS, forged, &host, &subject).ok());
}

TEST_F(ActionBookTest, NothingIsApprovedButByAnotherPerson) {
  const v1::Action a = ProposeLock();
  EXPECT_EQ(a.state(), v1::Action::STATE_PROPOSED);
  EXPECT_EQ(a.host(), "hostb");
  EXPECT_EQ(a.subject(), "aiops");
  EXPECT_EQ(a.scope(), "account aiops on hostb");
  EXPECT_TRUE(a.proposed_by_person());

  auto self = book_->Approve(a.id(), "alice", "");
  EXPECT_EQ(self.status().code(), Status::Code::kPermissionDenied);
  EXPECT_THAT(self.status().message(), HasSubstr("cannot also approve"));

  clock_.AdvanceNs(5 * kNanosPerSecond);
  auto ok = book_->Approve(a.id(), "bob", "go");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->state(), v1::Action::STATE_APPROVED);
  EXPECT_EQ(ok->decided_by(), "bob");
  EXPECT_EQ(ok->approval_expires_ns(), clock_.NowNs() + 60 * kNanosPerSecond);
  // Decided once only.
  EXPECT_EQ(book_->Approve(a.id(), "carol", "").status().code(), Status::Code::kAborted);
  EXPECT_EQ(book_->Deny(a.id(), "carol", "no").status().code(), Status::Code::kAborted);

  // Withdrawn before the sensor ran it.
  auto reverted = book_->Revert(a.id(), "bob");
  ASSERT_TRUE(reverted.ok());
  EXPECT_EQ(reverted->state(), v1::Action::STATE_REVERTED);

  auto trail = book_->Trail(a.id(), 100);
  ASSERT_TRUE(trail.ok());
  ASSERT_EQ(trail->size(), 3u);
  EXPECT_THAT((*trail)[0].what(), HasSubstr("proposed lock account hostb/aiops"));
  EXPECT_EQ((*trail)[1].by(), "bob");
  EXPECT_THAT((*trail)[1].what(), HasSubstr("approved: go"));
  EXPECT_THAT((*trail)[2].what(), HasSubstr("withdrawn"));
  EXPECT_LT((*trail)[0].seq(), (*trail)[1].seq());
}

TEST_F(ActionBookTest, DenialNeedsAReasonAndIsFinal) {
  const v1::Action a = ProposeLock();
  EXPECT_TRUE(book_->Deny(a.id(), "bob", "").status().IsInvalidArgument());
  auto d = book_->Deny(a.id(), "bob", "false positive: a scheduled job");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::Action::STATE_DENIED);
  EXPECT_EQ(d->decision_comment(), "false positive: a scheduled job");
  EXPECT_EQ(book_->Approve(a.id(), "carol", "").status().code(), Status::Code::kAborted);
  EXPECT_EQ(book_->Revert(a.id(), "carol").status().code(), Status::Code::kAborted);
}

TEST_F(ActionBookTest, ProposalsAndApprovalsExpire) {
  const v1::Action undecided = ProposeLock();
  const v1::Action approved = ProposeLock("carol");
  ASSERT_NE(undecided.id(), approved.id());
  ASSERT_TRUE(book_->Approve(approved.id(), "bob", "").ok());
  clock_.AdvanceNs(61 * kNanosPerSecond);
  auto n = book_->ExpireOverdue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);  // the approval; the proposal has an hour
  EXPECT_EQ((*book_->Get(approved.id()))->state(), v1::Action::STATE_EXPIRED);
  clock_.AdvanceNs(3600 * kNanosPerSecond);
  // Approving a proposal past its time expires it instead.
  auto late = book_->Approve(undecided.id(), "bob", "");
  EXPECT_EQ(late.status().code(), Status::Code::kAborted);
  EXPECT_THAT(late.status().message(), HasSubstr("expired"));
  auto trail = book_->Trail(approved.id(), 10);
  EXPECT_THAT(trail->back().what(), HasSubstr("approval expired before the sensor executed it"));
}

TEST_F(ActionBookTest, TargetsAreCheckedForTheirKind) {
  Proposal p;
  p.by = "alice";
  for (auto [kind, target] : std::vector<std::pair<v1::Action::Kind, std::string>>{
           {v1::Action::KIND_LOCK_ACCOUNT, "hostb"},
           {v1::Action::KIND_LOCK_ACCOUNT, "hostb/-rf"},
           {v1::Action::KIND_LOCK_ACCOUNT, "host b/x"},
           {v1::Action::KIND_KILL_SESSION, "hostb/a;b"},
           {v1::Action::KIND_BLOCK_ADDRESS, "hostb/198.18.0.300"},
           {v1::Action::KIND_BLOCK_ADDRESS, "hostb/example.com"},
           {v1::Action::KIND_ISOLATE_HOST, "hostb/x"},
           {v1::Action::KIND_UNSPECIFIED, "hostb"}}) {
    p.kind = kind;
    p.target = target;
    EXPECT_TRUE(book_->Propose(p).status().IsInvalidArgument()) << target;
  }
  p.kind = v1::Action::KIND_BLOCK_ADDRESS;
  p.target = "hostb/2001:db8::66";
  EXPECT_TRUE(book_->Propose(p).ok());
  p.target = "hostb/198.18.0.66";
  EXPECT_TRUE(book_->Propose(p).ok());
  p.by = "";
  EXPECT_TRUE(book_->Propose(p).status().IsInvalidArgument());
}

TEST_F(ActionBookTest, IncidentsProposeOnceAndAnyPersonMayApprove) {
  v1::Incident incident;
  incident.set_id("inc-1");
  incident.set_title("account compromised, moving laterally hosta -> hostb -> hostc");
  incident.set_severity(v1::SEVERITY_CRITICAL);
  incident.set_updated_ns(clock_.NowNs());
  for (const char* h : {"hosta", "hostb", "hostc"}) incident.add_hosts(h);
  incident.add_identities("user:alice");
  incident.add_identities("source:198.18.0.66");
  v1::Hop* hop = incident.add_chain();
  hop->set_from("hosta");
  hop->set_to("hostb");
  hop->set_user("alice");
  hop = incident.add_chain();
  hop->set_from("hostb");
  hop->set_to("hostc");
  hop->set_user("alice");

  auto n = book_->ProposeForIncident(incident);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 6u);  // lock + end sessions on hostb and hostc, block at hosta, isolate hostc
  EXPECT_EQ(*book_->ProposeForIncident(incident), 0u);
  auto all = book_->List(v1::Action::STATE_PROPOSED, "inc-1");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 6u);
  std::vector<std::string> targets;
  for (const auto& a : *all) {
    EXPECT_FALSE(a.proposed_by_person());
    EXPECT_EQ(a.proposed_by(), "tripline");
    targets.push_back(std::string(KindText(a.kind())) + " " + a.target());
  }
  EXPECT_THAT(targets, ::testing::UnorderedElementsAre(
                           "lock account hostb/alice", "end sessions hostb/alice",
                           "lock account hostc/alice", "end sessions hostc/alice",
                           "block address hosta/198.18.0.66", "isolate host hostc"));
  // Nothing ran: every one waits for a person, and any approver may approve Tripline's.
  EXPECT_TRUE(book_->Approve(all->front().id(), "tripline-admin", "").ok());

  incident.set_severity(v1::SEVERITY_MEDIUM);
  incident.set_id("inc-2");
  EXPECT_EQ(*book_->ProposeForIncident(incident), 0u);
}

// The aggregator's maintenance finds stored incidents and proposes for them once.
TEST_F(ActionBookTest, MaintenanceProposesForStoredIncidentsAndExpires) {
  v1::Incident incident;
  incident.set_id("inc-9");
  incident.set_title("brute force then login");
  incident.set_severity(v1::SEVERITY_HIGH);
  incident.set_updated_ns(clock_.NowNs());
  incident.add_hosts("hosta");
  incident.add_identities("user:bob");
  incident.add_identities("source:198.18.0.66");
  ASSERT_TRUE(store_->PutIncident(incident.id(), incident.SerializeAsString()).ok());
  ResponseService service(book_.get(), store_.get(), nullptr);
  ASSERT_TRUE(service.Maintain().ok());
  ASSERT_TRUE(service.Maintain().ok());
  auto proposed = book_->List(v1::Action::STATE_PROPOSED, "inc-9");
  ASSERT_TRUE(proposed.ok());
  EXPECT_EQ(proposed->size(), 3u);  // lock and end sessions of bob on hosta, block the source
  clock_.AdvanceNs(3601 * kNanosPerSecond);
  ASSERT_TRUE(service.Maintain().ok());
  EXPECT_EQ(book_->List(v1::Action::STATE_EXPIRED, "")->size(), 3u);
}

TEST_F(ActionBookTest, TrailSurvivesReopenAndKeepsCounting) {
  const v1::Action a = ProposeLock();
  ASSERT_TRUE(book_->Approve(a.id(), "bob", "").ok());
  Open();
  auto got = book_->Get(a.id());
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->state(), v1::Action::STATE_APPROVED);
  ASSERT_TRUE(book_->Revert(a.id(), "bob").ok());
  auto trail = book_->Trail("", 100);
  ASSERT_TRUE(trail.ok());
  ASSERT_EQ(trail->size(), 3u);
  for (size_t i = 0; i < trail->size(); ++i) EXPECT_EQ((*trail)[i].seq(), i + 1);
  EXPECT_EQ(book_->Trail("", 2)->front().seq(), 2u);  // the newest two
}

}  // namespace
}  // namespace tripline::response
