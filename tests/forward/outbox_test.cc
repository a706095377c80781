// The outbox on a real RocksDB store in a temp dir: which revisions are queued, order per
// output, pop, survival across a reopen, the queues of outputs no longer configured, and
// audit events queued among incidents with their source's cursor.
#include "aggregator/forward/outbox.h"

#include <gtest/gtest.h>

#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace tripline::forward {
namespace {

using tripline::testing::TempDir;

v1::Incident Revision(const std::string& id, uint32_t revision, v1::Severity severity, int hops) {
  v1::Incident i;
  i.set_id(id);
  i.set_revision(revision);
  i.set_severity(severity);
  for (int h = 0; h < hops; ++h) i.add_chain()->set_to("host" + std::to_string(h));
  return i;
}

class OutboxTest : public ::testing::Test {
 protected:
  void Open(const std::vector<std::string>& outputs) {
    outbox_.reset();
    store_.reset();
    auto store = RocksDbStore::Open({.path = dir_.Sub("data"), .clock = &clock_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto outbox = Outbox::Open(store_->db(), store_->column_family("outbox"), outputs, clock_);
    ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
    outbox_ = std::move(*outbox);
  }
  std::vector<std::pair<std::string, uint32_t>> Queued(size_t output) {
    auto entries = outbox_->Peek(output, 1000);
    EXPECT_TRUE(entries.ok());
    std::vector<std::pair<std::string, uint32_t>> out;
    for (const OutboxEntry& e : *entries) {
      if (e.audit) {
        v1::AuditEvent a;
        EXPECT_TRUE(a.ParseFromString(e.record));
        out.emplace_back(a.id(), 0);
        continue;
      }
      v1::Incident i;
      EXPECT_TRUE(i.ParseFromString(e.record));
      out.emplace_back(i.id(), i.revision());
    }
    return out;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, QueuesNewIncidentsAndRisesOnlyInOrderForEveryOutput) {
  Open({"syslog+tcp://127.0.0.1:1", "file:///tmp/x"});
  using S = v1::Severity;
  EXPECT_TRUE(*outbox_->Offer(Revision("inc-a", 1, S::SEVERITY_MEDIUM, 0)));
  EXPECT_FALSE(*outbox_->Offer(Revision("inc-a", 2, S::SEVERITY_MEDIUM, 0)));  // no rise
  EXPECT_TRUE(*outbox_->Offer(Revision("inc-b", 1, S::SEVERITY_LOW, 0)));
  EXPECT_TRUE(*outbox_->Offer(Revision("inc-a", 3, S::SEVERITY_HIGH, 0)));     // severity rose
  EXPECT_TRUE(*outbox_->Offer(Revision("inc-a", 4, S::SEVERITY_HIGH, 1)));     // chain grew
  EXPECT_FALSE(*outbox_->Offer(Revision("inc-a", 5, S::SEVERITY_MEDIUM, 1)));  // fell
  const std::vector<std::pair<std::string, uint32_t>> expected = {
      {"inc-a", 1}, {"inc-b", 1}, {"inc-a", 3}, {"inc-a", 4}};
  EXPECT_EQ(Queued(0), expected);
  EXPECT_EQ(Queued(1), expected);
  EXPECT_EQ(outbox_->Backlog(0), 4u);
  EXPECT_EQ(outbox_->OldestQueuedNs(0), clock_.NowNs());

  // Output 0 delivers two; output 1 nothing: each keeps its own place.
  auto head = outbox_->Peek(0, 2);
  ASSERT_TRUE(head.ok());
  ASSERT_EQ(head->size(), 2u);
  ASSERT_TRUE(outbox_->Pop(0, (*head)[1].seq).ok());
  EXPECT_EQ(outbox_->Backlog(0), 2u);
  EXPECT_EQ(outbox_->Backlog(1), 4u);
  EXPECT_EQ(Queued(0), (std::vector<std::pair<std::string, uint32_t>>{{"inc-a", 3}, {"inc-a", 4}}));
}

TEST_F(OutboxTest, SurvivesReopenAndDropsQueuesOfRemovedOutputs) {
  Open({"a", "b"});
  ASSERT_TRUE(*outbox_->Offer(Revision("inc-a", 1, v1::SEVERITY_HIGH, 1)));
  ASSERT_TRUE(*outbox_->Offer(Revision("inc-b", 1, v1::SEVERITY_HIGH, 1)));
  auto head = outbox_->Peek(0, 1);
  ASSERT_TRUE(outbox_->Pop(0, (*head)[0].seq).ok());
  clock_.AdvanceNs(kNanosPerSecond);

  Open({"a", "b"});
  EXPECT_EQ(Queued(0), (std::vector<std::pair<std::string, uint32_t>>{{"inc-b", 1}}));
  EXPECT_EQ(outbox_->Backlog(1), 2u);
  // What was queued stays decided: the same revision again is not queued twice.
  EXPECT_FALSE(*outbox_->Offer(Revision("inc-a", 1, v1::SEVERITY_HIGH, 1)));
  ASSERT_TRUE(*outbox_->Offer(Revision("inc-c", 1, v1::SEVERITY_LOW, 0)));
  EXPECT_EQ(Queued(0), (std::vector<std::pair<std::string, uint32_t>>{{"inc-b", 1}, {"inc-c", 1}}));

  // "b" is no longer configured: its queue is deleted; "c" starts empty.
  Open({"a", "c"});
  EXPECT_EQ(outbox_->Backlog(0), 2u);
  EXPECT_EQ(outbox_->Backlog(1), 0u);
  Open({"b"});
  EXPECT_EQ(outbox_->Backlog(0), 0u);
}

v1::AuditEvent Audit(uint64_t seq) {
  v1::AuditEvent a;
  a.set_id("response-" + std::to_string(seq));
  a.set_source(v1::AuditEvent::SOURCE_RESPONSE);
  a.set_seq(seq);
  a.set_by("bob");
  a.set_what("approved");
  return a;
}

// Audit events take their place in every output's queue among incidents, and the
// source's cursor moves in the same write; both survive a reopen. Without an open outbox
// the cursor is read and moved alone.
TEST_F(OutboxTest, AuditEventsQueueInOrderWithTheirSourcesCursor) {
  Open({"a", "b"});
  auto cursor = Outbox::ReadAuditCursor(store_->db(), store_->column_family("outbox"), "response");
  ASSERT_TRUE(cursor.ok());
  EXPECT_FALSE(cursor->has_value());
  ASSERT_TRUE(*outbox_->Offer(Revision("inc-a", 1, v1::SEVERITY_HIGH, 1)));
  ASSERT_TRUE(outbox_->OfferAudit("response", {Audit(7), Audit(8)}, 8).ok());
  ASSERT_TRUE(*outbox_->Offer(Revision("inc-b", 1, v1::SEVERITY_HIGH, 1)));
  const std::vector<std::pair<std::string, uint32_t>> expected = {
      {"inc-a", 1}, {"response-7", 0}, {"response-8", 0}, {"inc-b", 1}};
  EXPECT_EQ(Queued(0), expected);
  EXPECT_EQ(Queued(1), expected);
  auto head = outbox_->Peek(1, 2);
  ASSERT_TRUE(head.ok());
  ASSERT_EQ(head->size(), 2u);
  EXPECT_FALSE((*head)[0].audit);
  EXPECT_TRUE((*head)[1].audit);
  ASSERT_TRUE(outbox_->Pop(1, (*head)[1].seq).ok());

  Open({"a", "b"});
  EXPECT_EQ(Queued(0), expected);
  EXPECT_EQ(Queued(1),
            (std::vector<std::pair<std::string, uint32_t>>{{"response-8", 0}, {"inc-b", 1}}));
  cursor = Outbox::ReadAuditCursor(store_->db(), store_->column_family("outbox"), "response");
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(*cursor, std::optional<uint64_t>(8));
  // An empty run moves the cursor only.
  ASSERT_TRUE(outbox_->OfferAudit("response", {}, 9).ok());
  EXPECT_EQ(outbox_->Backlog(0), 4u);
  outbox_.reset();
  ASSERT_TRUE(
      Outbox::WriteAuditCursor(store_->db(), store_->column_family("outbox"), "trust", 3).ok());
  cursor = Outbox::ReadAuditCursor(store_->db(), store_->column_family("outbox"), "trust");
  EXPECT_EQ(*cursor, std::optional<uint64_t>(3));
  cursor = Outbox::ReadAuditCursor(store_->db(), store_->column_family("outbox"), "response");
  EXPECT_EQ(*cursor, std::optional<uint64_t>(9));
}

}  // namespace
}  // namespace tripline::forward
