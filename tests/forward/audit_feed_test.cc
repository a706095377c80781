// The audit feed on a real RocksDB store with the real response book and a file output:
// every step reaches the output once, in order; steps written while the feed was not
// running (a crash between the trail write and the outbox write) are queued at the next
// start; a first start does not send the history; with no output the cursor still moves.
#include "aggregator/forward/audit_feed.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "aggregator/forward/forward_target.h"
#include "aggregator/response/action_book.h"
#include "aggregator/server/audit_sources.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace tripline::forward {
namespace {

using tripline::testing::TempDir;

class AuditFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksDbStore::Open({.path = dir_.Sub("data")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    book_ = std::make_unique<response::ActionBook>(store_->db(), store_->column_family("actions"),
                                                   response::ResponsePolicy{});
    outputs_ = std::make_unique<ForwardOutputs>(store_->db(), store_->column_family("outbox"),
                                                SystemClock::Get());
    source_ = std::make_unique<ResponseTrailSource>(book_.get());
  }
  void TearDown() override {
    if (book_) book_->SetTrailListener(nullptr);
    feed_.reset();
  }

  void StartOutputs() {
    auto target = ParseForwardUrl("file://" + dir_.Sub("audit.jsonl") + "?format=ocsf");
    ASSERT_TRUE(target.ok());
    ASSERT_TRUE(outputs_->Start({*target}, ForwarderOptions{}).ok());
  }
  void StartFeed() {
    feed_ = std::make_unique<AuditFeed>(outputs_.get(), std::vector<AuditSource*>{source_.get()});
    ASSERT_TRUE(feed_->Start().ok());
    book_->SetTrailListener([feed = feed_.get()] { feed->Notify(); });
  }
  void StopFeed() {
    book_->SetTrailListener(nullptr);
    feed_.reset();
  }
  std::string Propose(const std::string& target) {
    response::Proposal p;
    p.kind = v1::Action::KIND_LOCK_ACCOUNT;
    p.target = target;
    p.by = "alice";
    auto a = book_->Propose(p);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->id() : "";
  }
  // The complete lines of the file output, once there are `n` of them (or after 10 s).
  std::vector<nlohmann::json> Received(size_t n) {
    std::vector<nlohmann::json> out;
    for (int i = 0; i < 500; ++i) {
      out.clear();
      std::ifstream in(dir_.Sub("audit.jsonl"));
      std::string line;
      while (std::getline(in, line) && !in.eof()) out.push_back(nlohmann::json::parse(line));
      if (out.size() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return out;
  }
  static std::vector<std::string> Ids(const std::vector<nlohmann::json>& records) {
    std::vector<std::string> ids;
    for (const auto& r : records) ids.push_back(r["metadata"]["uid"]);
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<response::ActionBook> book_;
  std::unique_ptr<ForwardOutputs> outputs_;
  std::unique_ptr<ResponseTrailSource> source_;
  std::unique_ptr<AuditFeed> feed_;
};

TEST_F(AuditFeedTest, EveryStepOnceInOrderAndNoneLostToAStop) {
  // History from before the feed existed is not sent.
  const std::string old = Propose("hosta/old");
  StartOutputs();
  StartFeed();
  const std::string id = Propose("hostb/aiops");
  ASSERT_TRUE(book_->Approve(id, "bob", "confirmed").ok());
  auto got = Received(2);
  ASSERT_EQ(Ids(got), (std::vector<std::string>{"response-2", "response-3"}));
  EXPECT_EQ(got[0]["class_uid"], 3004);
  EXPECT_EQ(got[0]["actor"]["user"]["name"], "alice");
  EXPECT_EQ(got[0]["unmapped"]["step"], "proposed");
  EXPECT_EQ(got[1]["actor"]["user"]["name"], "bob");
  EXPECT_EQ(got[1]["unmapped"]["step"], "approved");
  EXPECT_EQ(got[1]["entity"]["uid"], id);
  EXPECT_EQ(got[1]["entity"]["data"]["target"], "hostb/aiops");

  // The feed stops (as a crash would, between the trail write and the outbox write): the
  // steps taken meanwhile are in the trail only, and are queued at the next start.
  StopFeed();
  ASSERT_TRUE(book_->Deny(old, "bob", "stale").ok());
  ASSERT_TRUE(book_->Revert(id, "bob").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Received(0).size(), 2u);
  StartFeed();
  got = Received(4);
  EXPECT_EQ(Ids(got),
            (std::vector<std::string>{"response-2", "response-3", "response-4", "response-5"}));
  EXPECT_EQ(got[2]["unmapped"]["step"], "denied");
  EXPECT_EQ(got[3]["unmapped"]["step"], "withdrawn");
  // Started again with nothing new: nothing sent twice.
  StopFeed();
  StartFeed();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Received(0).size(), 4u);

  // No output running: the cursor moves, what happened meanwhile is not sent later.
  outputs_->Stop();
  Propose("hostc/x");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto cursor = outputs_->AuditCursor("response");
  ASSERT_TRUE(cursor.ok());
  for (int i = 0; i < 100 && *cursor != std::optional<uint64_t>(6); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cursor = outputs_->AuditCursor("response");
  }
  EXPECT_EQ(*cursor, std::optional<uint64_t>(6));
  StartOutputs();
  Propose("hostd/y");
  got = Received(5);
  EXPECT_EQ(Ids(got), (std::vector<std::string>{"response-2", "response-3", "response-4",
                                                "response-5", "response-7"}));
}

}  // namespace
}  // namespace tripline::forward
