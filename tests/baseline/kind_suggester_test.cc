// KindSuggester: accounts that behave like services or agents are suggested (with the
// evidence), people are not, and decisions persist.
#include "aggregator/baseline/kind_suggester.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tripline::baseline {
namespace {

constexpr int64_t kT0 = 1'795'392'000LL * kNanosPerSecond;  // 2026-11-23 00:00 UTC
constexpr int64_t kHour = 3600 * kNanosPerSecond;

Event Exec(const std::string& user, const std::string& exe, int64_t t,
           std::vector<std::string> argv = {}) {
  Event e;
  e.time_ns = t;
  e.host = "web1";
  e.process.user = user;
  e.process.exe = exe;
  ExecEvent x;
  x.filename = exe;
  x.argv = argv.empty() ? std::vector<std::string>{exe} : std::move(argv);
  e.body = x;
  return e;
}

Event Login(const std::string& user, int64_t t, const std::string& tty = "ssh") {
  Event e;
  e.time_ns = t;
  e.host = "web1";
  LoginEvent l;
  l.service = "sshd";
  l.user = user;
  l.remote_addr = "198.18.0.5";
  l.outcome = Outcome::kSuccess;
  l.stage = LoginStage::kAuthenticate;
  l.tty = tty;
  e.body = l;
  return e;
}

// A backup job: every hour for three days, a login without a terminal and a burst of the
// same few programs.
void Backup(KindSuggester& s, const IdentityResolver& r, const std::string& user = "backup") {
  for (int h = 0; h < 72; ++h) {
    const int64_t t = kT0 + h * kHour + (h % 3) * kNanosPerSecond;  // a few seconds of jitter
    s.Observe(Login(user, t), r);
    s.Observe(Exec(user, "/usr/local/bin/backup", t + kNanosPerSecond), r);
    s.Observe(Exec(user, "/usr/bin/tar", t + 2 * kNanosPerSecond), r);
    s.Observe(Exec(user, "/usr/bin/gzip", t + 3 * kNanosPerSecond), r);
  }
}

// An agent: a few times a day, bursts of varied commands 150 ms apart, no schedule.
void Agent(KindSuggester& s, const IdentityResolver& r, const std::string& user = "aiops") {
  const char* tools[] = {"/usr/bin/ls",        "/usr/bin/cat",        "/usr/bin/grep",
                         "/usr/bin/ps",        "/usr/bin/df",         "/usr/bin/curl",
                         "/usr/bin/systemctl", "/usr/bin/journalctl", "/usr/bin/find",
                         "/usr/bin/kubectl"};
  int64_t t = kT0;
  for (int burst = 0; burst < 12; ++burst) {
    t += (3 + (burst * 7) % 11) * kHour + burst * 97 * kNanosPerSecond;  // irregular
    s.Observe(Login(user, t), r);
    for (int i = 0; i < 8; ++i) {
      s.Observe(Exec(user, tools[(burst + i * 3) % 10], t + (i + 1) * 150 * kNanosPerMilli), r);
    }
  }
}

// A person: logs in on a terminal, runs things at a person's pace, and has a cron job.
void Person(KindSuggester& s, const IdentityResolver& r, const std::string& user = "alice") {
  for (int d = 0; d < 3; ++d) {
    const int64_t t = kT0 + d * 24 * kHour + 9 * kHour;
    s.Observe(Login(user, t, "pts/0"), r);
    s.Observe(Exec(user, "/usr/bin/bash", t + kNanosPerSecond, {"-bash"}), r);
    for (int i = 0; i < 10; ++i)
      s.Observe(Exec(user, "/usr/bin/vim", t + (i + 2) * 20 * kNanosPerSecond), r);
  }
  for (int h = 0; h < 72; ++h) s.Observe(Exec(user, "/home/alice/bin/sync", kT0 + h * kHour), r);
}

TEST(KindSuggesterTest, ScheduledNonInteractiveAccountIsSuggestedAsService) {
  KindSuggester s;
  IdentityResolver r;
  Backup(s, r);
  const std::vector<KindSuggestion> list = s.Suggestions();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].user, "backup");
  EXPECT_EQ(list[0].kind, IdentityKind::kService);
  EXPECT_EQ(list[0].state, SuggestionState::kSuggested);
  ASSERT_EQ(list[0].evidence.size(), 2u);
  EXPECT_NE(list[0].evidence[0].find("none of 72 logins had a terminal"), std::string::npos)
      << list[0].evidence[0];
  EXPECT_NE(list[0].evidence[1].find("ran 72 times, every 1h00m"), std::string::npos)
      << list[0].evidence[1];
  EXPECT_EQ(s.stats().suggested, 1u);
}

TEST(KindSuggesterTest, MachineSpeedVariedAccountIsSuggestedAsAgent) {
  KindSuggester s;
  IdentityResolver r;
  Agent(s, r);
  Result<KindSuggestion> got = s.Get("aiops");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->kind, IdentityKind::kAgent);
  ASSERT_EQ(got->evidence.size(), 3u);
  EXPECT_NE(got->evidence[1].find("100% of the gaps"), std::string::npos) << got->evidence[1];
  EXPECT_NE(got->evidence[2].find("at least 8 different programs"), std::string::npos);
}

TEST(KindSuggesterTest, APersonIsNeverSuggestedEvenWithAScheduledJob) {
  KindSuggester s;
  IdentityResolver r;
  Person(s, r);
  EXPECT_TRUE(s.Suggestions().empty());
  Result<KindSuggestion> got = s.Get("alice");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("logged in on pts/0"), std::string::npos)
      << got.status().ToString();
  // A login shell alone is enough to rule an account out.
  KindSuggester t;
  Backup(t, r, "ops");
  t.Observe(Exec("ops", "/usr/bin/bash", kT0 + 80 * kHour, {"-bash"}), r);
  EXPECT_TRUE(t.Suggestions().empty());
}

TEST(KindSuggesterTest, TooLittleHistorySuggestsNothing) {
  KindSuggester s;
  IdentityResolver r;
  for (int h = 0; h < 8; ++h) s.Observe(Exec("job", "/usr/bin/job", kT0 + h * kHour), r);
  EXPECT_TRUE(s.Suggestions().empty());  // 8 events over 7 hours
  EXPECT_EQ(s.Get("nobody").status().code(), Status::Code::kNotFound);
}

TEST(KindSuggesterTest, DeclaredAccountsAndRootAreNotFollowed) {
  KindSuggester s;
  IdentityRule declared;
  declared.user = "backup";
  IdentityResolver r({declared});
  Backup(s, r);
  Backup(s, r, "root");
  EXPECT_TRUE(s.Suggestions().empty());
  EXPECT_EQ(s.stats().accounts, 0u);
}

TEST(KindSuggesterTest, ConfirmDeclaresTheAccountLiterally) {
  KindSuggester s;
  IdentityResolver r;
  Backup(s, r, "svc*");
  Result<IdentityRule> rule = s.Confirm("svc*", IdentityKind::kService, "", kT0);
  EXPECT_EQ(rule.status().code(), Status::Code::kInvalidArgument);  // nobody named
  rule = s.Confirm("svc*", IdentityKind::kHuman, "carol", kT0);
  EXPECT_EQ(rule.status().code(), Status::Code::kInvalidArgument);
  rule = s.Confirm("svc*", IdentityKind::kService, "carol", kT0 + kHour);
  ASSERT_TRUE(rule.ok()) << rule.status().ToString();
  IdentityResolver declared;
  declared.Add(*rule);
  EXPECT_EQ(declared.Resolve("svc*", nullptr).kind, IdentityKind::kService);
  EXPECT_EQ(declared.Resolve("svcX", nullptr).kind, IdentityKind::kHuman);  // not a glob
  Result<KindSuggestion> got = s.Get("svc*");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, SuggestionState::kConfirmed);
  EXPECT_EQ(got->decided_by, "carol");
  EXPECT_EQ(got->decided_ns, kT0 + kHour);
  EXPECT_EQ(s.Confirm("svc*", IdentityKind::kAgent, "dave", kT0).status().code(),
            Status::Code::kAlreadyExists);
  EXPECT_EQ(s.ConfirmedRules().size(), 1u);
  EXPECT_EQ(s.stats().confirmed, 1u);
}

TEST(KindSuggesterTest, DismissHidesUntilConfirmed) {
  KindSuggester s;
  IdentityResolver r;
  Agent(s, r);
  ASSERT_TRUE(s.Dismiss("aiops", "carol", kT0).ok());
  const std::vector<KindSuggestion> list = s.Suggestions();
  ASSERT_EQ(list.size(), 1u);  // shown as decided
  EXPECT_EQ(list[0].state, SuggestionState::kDismissed);
  EXPECT_EQ(s.stats().suggested, 0u);
  EXPECT_EQ(s.stats().dismissed, 1u);
  EXPECT_TRUE(s.Confirm("aiops", IdentityKind::kAgent, "dave", kT0).ok());
  EXPECT_EQ(s.Dismiss("aiops", "erin", kT0).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(s.Dismiss("nobody", "erin", kT0).code(), Status::Code::kNotFound);
}

TEST(KindSuggesterTest, RecordsRoundTripAndFollowingGoesOn) {
  KindSuggester s;
  IdentityResolver r;
  Backup(s, r);
  Agent(s, r);
  Person(s, r);
  ASSERT_TRUE(s.Dismiss("aiops", "carol", kT0).ok());
  KindSuggester t;
  for (const auto& [key, value] : s.TakeDirty()) {
    ASSERT_EQ(key.rfind(KindSuggester::kKeyPrefix, 0), 0u);
    ASSERT_TRUE(t.Load(key, value).ok()) << key;
  }
  EXPECT_TRUE(s.TakeDirty().empty());
  const auto a = s.Suggestions();
  const auto b = t.Suggestions();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].user, b[i].user);
    EXPECT_EQ(a[i].kind, b[i].kind);
    EXPECT_EQ(a[i].state, b[i].state);
    EXPECT_EQ(a[i].evidence, b[i].evidence);
  }
  // The restored schedule goes on where it was: one more hourly run is counted.
  t.Observe(Exec("backup", "/usr/local/bin/backup", kT0 + 72 * kHour), r);
  Result<KindSuggestion> got = t.Get("backup");
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->evidence[1].find("ran 73 times"), std::string::npos) << got->evidence[1];
}

TEST(KindSuggesterTest, DamagedRecordsAreRefused) {
  KindSuggester s;
  EXPECT_EQ(s.Load("kind-suggestion/x", "not msgpack").code(), Status::Code::kCorruption);
  EXPECT_EQ(s.Load("other/x", "").code(), Status::Code::kCorruption);
  KindSuggester good;
  IdentityResolver r;
  Backup(good, r);
  auto records = good.TakeDirty();
  ASSERT_EQ(records.size(), 1u);
  std::string value = records[0].second;
  value.resize(value.size() / 2);
  EXPECT_EQ(s.Load(records[0].first, value).code(), Status::Code::kCorruption);
  EXPECT_TRUE(s.Suggestions().empty());
}

TEST(KindSuggesterTest, FollowsAtMostMaxAccounts) {
  KindSuggesterOptions o;
  o.max_accounts = 2;
  KindSuggester s(o);
  IdentityResolver r;
  for (const char* u : {"a", "b", "c", "d"}) s.Observe(Exec(u, "/bin/true", kT0), r);
  EXPECT_EQ(s.stats().accounts, 2u);
  EXPECT_EQ(s.stats().accounts_untracked, 2u);
}

}  // namespace
}  // namespace tripline::baseline
