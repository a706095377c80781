#include "aggregator/baseline/trust_book.h"

#include <gtest/gtest.h>

#include <string>

namespace tripline::baseline {
namespace {

const Identity kOnProbation{IdentityKind::kAgent, "aiops", true};
const Identity kTrusted{IdentityKind::kAgent, "builder", false};

TEST(TrustBookTest, DeclarationsUntilAPersonDecidesThenTheLatestDecision) {
  TrustBook book;
  EXPECT_TRUE(book.OnProbation(kOnProbation));
  EXPECT_FALSE(book.OnProbation(kTrusted));
  // Only agents are on probation, whatever their rule says.
  EXPECT_FALSE(book.OnProbation({IdentityKind::kService, "aiops", true}));

  auto r = book.Decide(kOnProbation, TrustLevel::kTrusted, "carol", "reviewed", 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->level, TrustLevel::kTrusted);
  ASSERT_EQ(r->history.size(), 1u);
  EXPECT_EQ(r->history[0].by, "carol");
  EXPECT_EQ(r->history[0].at_ns, 100);
  EXPECT_FALSE(book.OnProbation(kOnProbation));
  // The same level again is not an act.
  EXPECT_EQ(book.Decide(kOnProbation, TrustLevel::kTrusted, "carol", "", 200).status().code(),
            Status::Code::kAlreadyExists);
  ASSERT_TRUE(book.Decide(kOnProbation, TrustLevel::kProbation, "dave", "odd hours", 300).ok());
  EXPECT_TRUE(book.OnProbation(kOnProbation));
  EXPECT_EQ(book.Get(kOnProbation)->history.size(), 2u);
  EXPECT_EQ(book.Get(kTrusted).status().code(), Status::Code::kNotFound);
}

// An agent known by name alone (a baseline fact's identity): which rules could have made it
// and put it on probation.
TEST(TrustBookTest, DeclaredProbationOfAnAgentKnownByName) {
  IdentityRule by_cgroup;
  by_cgroup.kind = IdentityKind::kAgent;
  by_cgroup.cgroup = "opsbot-*";
  by_cgroup.name = "opsbot";
  by_cgroup.probation = true;
  IdentityRule by_user;  // named after the account: svc-* accounts running the agent
  by_user.kind = IdentityKind::kAgent;
  by_user.user = "svc-*";
  by_user.exe = "/opt/agent/bin/*";
  by_user.probation = true;
  IdentityRule trusted;
  trusted.kind = IdentityKind::kAgent;
  trusted.name = "helper";
  trusted.exe = "/opt/helper";
  IdentityRule service;
  service.kind = IdentityKind::kService;
  service.name = "backup";
  service.user = "backup";
  const IdentityResolver r({by_cgroup, by_user, trusted, service});
  EXPECT_TRUE(r.DeclaredOnProbation("opsbot"));
  EXPECT_TRUE(r.DeclaredOnProbation("svc-ops"));
  EXPECT_FALSE(r.DeclaredOnProbation("helper"));
  EXPECT_FALSE(r.DeclaredOnProbation("backup"));
  EXPECT_FALSE(r.DeclaredOnProbation("alice"));
}

TEST(TrustBookTest, RefusesWhatIsNotAnAgentOrTooLong) {
  TrustBook book;
  EXPECT_EQ(
      book.Decide({IdentityKind::kHuman, "alice", false}, TrustLevel::kProbation, "carol", "x", 1)
          .status()
          .code(),
      Status::Code::kInvalidArgument);
  EXPECT_FALSE(book.Decide(kTrusted, TrustLevel::kProbation, "", "x", 1).ok());
  EXPECT_FALSE(book.Decide(kTrusted, TrustLevel::kProbation, std::string(257, 'b'), "x", 1).ok());
  EXPECT_FALSE(
      book.Decide(kTrusted, TrustLevel::kProbation, "carol", std::string(1025, 'r'), 1).ok());
  EXPECT_EQ(book.decided(), 0u);
}

TEST(TrustBookTest, HistoryIsBoundedAndSurvivesItsRecords) {
  TrustBook book;
  for (size_t i = 0; i < TrustBook::kMaxHistory + 5; ++i) {
    const TrustLevel level = i % 2 == 0 ? TrustLevel::kTrusted : TrustLevel::kProbation;
    ASSERT_TRUE(book.Decide(kOnProbation, level, "p" + std::to_string(i), "r\n\"\x01",
                            static_cast<int64_t>(i))
                    .ok());
  }
  const auto records = book.TakeDirty();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].first, "trust/aiops");
  EXPECT_TRUE(book.TakeDirty().empty());
  TrustBook again;
  ASSERT_TRUE(again.Load(records[0].first, records[0].second).ok());
  const auto r = again.Get(kOnProbation);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->history.size(), TrustBook::kMaxHistory);
  EXPECT_EQ(r->history.front().by, "p5");
  EXPECT_EQ(r->history.back().reason, "r\n\"\x01");
  EXPECT_EQ(r->level, book.Get(kOnProbation)->level);

  for (const char* bad :
       {"", "[]", "{}", R"({"agent":"other","history":[["trusted","c","",1]]})",
        R"({"agent":"aiops","history":[]})", R"({"agent":"aiops","history":[["maybe","c","",1]]})",
        R"({"agent":"aiops","history":[["trusted","","",1]]})",
        R"({"agent":"aiops","history":[["trusted","c","",-1]]})"}) {
    TrustBook b;
    EXPECT_EQ(b.Load("trust/aiops", bad).code(), Status::Code::kCorruption) << bad;
    EXPECT_EQ(b.decided(), 0u);
  }
  TrustBook b;
  EXPECT_FALSE(b.Load("other/aiops", records[0].second).ok());
}

// Decisions are numbered over every agent (the SIEM feed follows the numbers); the numbers
// survive the records, go on above the highest loaded, and a record from before numbering
// (four fields) loads with 0, which the feed never sends.
TEST(TrustBookTest, DecisionsAreNumberedOverEveryAgentAndAcrossReload) {
  TrustBook book;
  EXPECT_EQ(book.last_seq(), 0u);
  ASSERT_TRUE(book.Decide(kOnProbation, TrustLevel::kTrusted, "carol", "ok", 10).ok());
  ASSERT_TRUE(book.Decide(kTrusted, TrustLevel::kProbation, "dave", "odd", 10).ok());
  ASSERT_TRUE(book.Decide(kOnProbation, TrustLevel::kProbation, "dave", "again", 20).ok());
  EXPECT_EQ(book.last_seq(), 3u);
  std::vector<AgentDecision> after = book.DecisionsAfter(1, 10);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].agent, "builder");
  EXPECT_EQ(after[0].decision.seq, 2u);
  EXPECT_EQ(after[0].decision.by, "dave");
  EXPECT_EQ(after[1].agent, "aiops");
  EXPECT_EQ(after[1].decision.seq, 3u);
  EXPECT_EQ(book.DecisionsAfter(0, 1).size(), 1u);
  EXPECT_TRUE(book.DecisionsAfter(3, 10).empty());

  TrustBook again;
  for (const auto& [key, value] : book.TakeDirty()) ASSERT_TRUE(again.Load(key, value).ok());
  EXPECT_EQ(again.last_seq(), 3u);
  ASSERT_TRUE(again.Decide(kTrusted, TrustLevel::kTrusted, "erin", "", 30).ok());
  after = again.DecisionsAfter(3, 10);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].decision.seq, 4u);

  TrustBook old;
  ASSERT_TRUE(
      old.Load("trust/aiops", R"({"agent":"aiops","history":[["trusted","c","",1]]})").ok());
  EXPECT_EQ(old.last_seq(), 0u);
  EXPECT_TRUE(old.DecisionsAfter(0, 10).empty());
  EXPECT_EQ(
      old.Load("trust/aiops", R"({"agent":"aiops","history":[["trusted","c","",1,-2]]})").code(),
      Status::Code::kCorruption);
}

TEST(TrustBookTest, ListShowsDeclaredAndDecidedAgents) {
  TrustBook book;
  ASSERT_TRUE(book.Decide(kTrusted, TrustLevel::kProbation, "carol", "new tools", 5).ok());
  const auto list = book.List({"aiops"});
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].agent, "aiops");
  EXPECT_EQ(list[0].level, TrustLevel::kProbation);
  EXPECT_TRUE(list[0].declared_probation);
  EXPECT_TRUE(list[0].history.empty());
  EXPECT_EQ(list[1].agent, "builder");
  EXPECT_EQ(list[1].level, TrustLevel::kProbation);
  EXPECT_EQ(list[1].history.size(), 1u);
}

}  // namespace
}  // namespace tripline::baseline
