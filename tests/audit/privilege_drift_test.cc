// Privilege drift: which events exercise which privilege, how each provisioned privilege is
// judged, and the book on real RocksDB (persisted, reopened, accounts that leave a host).
#include "aggregator/audit/privilege_drift.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/audit/posture_findings.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace tripline::audit {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDay = 86400LL * kNanosPerSecond;
constexpr int64_t kT0 = 1'795'392'000LL * kNanosPerSecond;

// A declared agent with a login, a sudo rule and root-equivalent groups.
Account Agent() {
  Account a;
  a.name = "aiops";
  a.uid = 990;
  a.groups = {"aiops", "docker", "shadow", "disk"};
  a.shell = "/bin/bash";
  a.interactive_shell = true;
  a.authorized_keys = 1;
  a.sudo_rules = {"aiops ALL=(ALL) NOPASSWD: ALL"};
  return a;
}

AuditPolicy Declared() {
  AuditPolicy p;
  p.declared["aiops"] = "agent";
  return p;
}

Event Exec(const std::string& host, const std::string& user, const std::string& exe, int64_t t) {
  Event e;
  e.host = host;
  e.time_ns = t;
  e.process.user = user;
  e.process.exe = exe;
  ExecEvent x;
  x.filename = exe;
  e.body = x;
  return e;
}

Event Login(const std::string& host, const std::string& user, Outcome outcome, int64_t t) {
  Event e;
  e.host = host;
  e.time_ns = t;
  LoginEvent l;
  l.user = user;
  l.outcome = outcome;
  e.body = l;
  return e;
}

Event Open(const std::string& host, const std::string& user, const std::string& path, int64_t t) {
  Event e;
  e.host = host;
  e.time_ns = t;
  e.process.user = user;
  FileOpenEvent f;
  f.path = path;
  e.body = f;
  return e;
}

const DriftItem* Find(const std::vector<DriftItem>& items, const std::string& host,
                      const std::string& privilege) {
  for (const DriftItem& d : items) {
    if (d.host == host && d.privilege == privilege) return &d;
  }
  return nullptr;
}

TEST(PrivilegeDriftTest, WhatExercisesWhat) {
  using P = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(PrivilegesExercised(Login("h", "aiops", Outcome::kSuccess, 1)),
            (P{{"login", "aiops"}}));
  EXPECT_TRUE(PrivilegesExercised(Login("h", "aiops", Outcome::kFailure, 1)).empty());
  EXPECT_EQ(PrivilegesExercised(Exec("h", "aiops", "/usr/bin/docker", 1)),
            (P{{"group:docker", "aiops"}}));
  Event sudo = Exec("h", "root", "/usr/bin/sudo", 1);
  sudo.process.login_user = "aiops";  // sudo runs as root for the account that ran it
  const P by_sudo = PrivilegesExercised(sudo);
  EXPECT_NE(std::find(by_sudo.begin(), by_sudo.end(),
                      std::make_pair(std::string("sudo"), std::string("aiops"))),
            by_sudo.end());
  EXPECT_EQ(PrivilegesExercised(Open("h", "aiops", "/etc/shadow", 1)),
            (P{{"read:/etc/shadow", "aiops"}, {"group:shadow", "aiops"}}));
  EXPECT_EQ(PrivilegesExercised(Open("h", "aiops", "/var/log/auth.log", 1)),
            (P{{"read:/var/log/auth.log", "aiops"}, {"group:adm", "aiops"}}));
  Event written = Open("h", "aiops", "/etc/sudoers.d/ops", 1);
  std::get<FileOpenEvent>(written.body).access = FileAccess::kWrite;  // not a read
  EXPECT_TRUE(PrivilegesExercised(written).empty());
  Event refused = Open("h", "aiops", "/etc/shadow", 1);
  std::get<FileOpenEvent>(refused.body).result = -13;  // EACCES: nothing was used
  EXPECT_TRUE(PrivilegesExercised(refused).empty());
  EXPECT_TRUE(PrivilegesExercised(Exec("h", "aiops", "/usr/bin/ls", 1)).empty());
}

TEST(PrivilegeDriftTest, JudgedUsedUnusedWatchingOrUnobservable) {
  Provisioned p;
  p.kind = "agent";
  p.login = true;
  p.sudo_rules = {"aiops ALL=(ALL) NOPASSWD: ALL"};
  p.groups = {"disk", "docker", "shadow"};
  p.first_seen_ns = kT0;
  Usage u;
  u.last_ns["login"] = kT0 + 3 * kDay;
  // Watched 30 days of the 14 needed: what was never exercised is unused, with a fix.
  auto items = JudgeDrift("hosta", "aiops", p, u, kT0 + 30 * kDay, 14 * kDay);
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(Find(items, "hosta", "login")->state, "used");
  EXPECT_EQ(Find(items, "hosta", "login")->last_used_ns, kT0 + 3 * kDay);
  const DriftItem* sudo = Find(items, "hosta", "sudo");
  EXPECT_EQ(sudo->state, "unused");
  EXPECT_THAT(sudo->evidence, HasSubstr("never exercised"));
  EXPECT_THAT(sudo->evidence, HasSubstr("30 days"));
  EXPECT_THAT(sudo->fix, HasSubstr("sudoers"));
  EXPECT_EQ(Find(items, "hosta", "group:docker")->state, "unused");
  EXPECT_EQ(Find(items, "hosta", "group:docker")->fix, "gpasswd -d aiops docker");
  EXPECT_EQ(Find(items, "hosta", "group:disk")->state, "unobservable");
  EXPECT_TRUE(Find(items, "hosta", "group:disk")->fix.empty());
  // Watched 2 days: too early to recommend anything.
  items = JudgeDrift("hosta", "aiops", p, u, kT0 + 2 * kDay, 14 * kDay);
  EXPECT_EQ(Find(items, "hosta", "sudo")->state, "watching");
  EXPECT_TRUE(Find(items, "hosta", "sudo")->fix.empty());
}

class DriftBookTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    book_.reset();
    store_.reset();
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto book = DriftBook::Open(store_->db(), store_->column_family("posture"));
    ASSERT_TRUE(book.ok()) << book.status().ToString();
    book_ = std::move(*book);
  }
  static PostureSnapshot Snapshot(std::vector<Account> accounts) {
    PostureSnapshot s;
    s.accounts = std::move(accounts);
    return s;
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<DriftBook> book_;
};

TEST_F(DriftBookTest, UseOnOneHostIsNotUseOnAnotherAndSurvivesAReopen) {
  Account person;
  person.name = "alice";
  person.uid = 1000;
  person.shell = "/bin/bash";
  person.interactive_shell = true;
  person.password_set = true;
  person.max_password_age_days = 90;
  person.groups = {"docker"};
  for (const char* host : {"hosta", "hostb"}) {
    ASSERT_TRUE(book_->SetProvisioned(host, kT0, Snapshot({Agent(), person}), Declared()).ok());
  }
  ASSERT_TRUE(book_
                  ->Observe({Login("hosta", "aiops", Outcome::kSuccess, kT0 + kDay),
                             Exec("hosta", "aiops", "/usr/bin/docker", kT0 + kDay),
                             Exec("hosta", "alice", "/usr/bin/docker", kT0 + kDay),
                             Login("hostc", "aiops", Outcome::kSuccess, kT0 + kDay)})
                  .ok());
  Reopen();
  const auto items = book_->Report("", "", kT0 + 20 * kDay, 14 * kDay);
  // People are not tracked; neither is a host the account is not provisioned on.
  for (const DriftItem& d : items) {
    EXPECT_EQ(d.identity, "aiops");
    EXPECT_NE(d.host, "hostc");
  }
  EXPECT_EQ(Find(items, "hosta", "login")->state, "used");
  EXPECT_EQ(Find(items, "hosta", "group:docker")->state, "used");
  EXPECT_EQ(Find(items, "hostb", "login")->state, "unused");
  EXPECT_EQ(Find(items, "hostb", "group:docker")->state, "unused");
  EXPECT_EQ(Find(items, "hosta", "group:shadow")->state, "unused");
  EXPECT_EQ(items.front().state, "unused");  // unused first
  // One host, one identity.
  for (const DriftItem& d : book_->Report("hostb", "aiops", kT0 + 20 * kDay, 14 * kDay)) {
    EXPECT_EQ(d.host, "hostb");
  }
}

// Sensitive files the account may read: one it opened is used, one it never opened is a
// recommendation; reads of files it was not given are not kept; both survive a reopen.
TEST_F(DriftBookTest, ReadableSensitiveFilesAreUsedOrUnused) {
  Account a = Agent();
  a.readable_files = {"/etc/ssh/ssh_host_ed25519_key", "/etc/private/token"};
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0, Snapshot({a}), Declared()).ok());
  ASSERT_TRUE(book_
                  ->Observe({Open("hosta", "aiops", "/etc/private/token", kT0 + kDay),
                             Open("hosta", "aiops", "/etc/pam.d/sshd", kT0 + kDay)})
                  .ok());
  Reopen();
  const auto items = book_->Report("hosta", "aiops", kT0 + 20 * kDay, 14 * kDay);
  const DriftItem* token = Find(items, "hosta", "read:/etc/private/token");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ(token->state, "used");
  EXPECT_EQ(token->last_used_ns, kT0 + kDay);
  const DriftItem* key = Find(items, "hosta", "read:/etc/ssh/ssh_host_ed25519_key");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->state, "unused");
  EXPECT_THAT(key->evidence, HasSubstr("may read /etc/ssh/ssh_host_ed25519_key on hosta"));
  EXPECT_THAT(key->fix, HasSubstr("ls -l /etc/ssh/ssh_host_ed25519_key"));
  EXPECT_EQ(Find(items, "hosta", "read:/etc/pam.d/sshd"), nullptr);
}

TEST_F(DriftBookTest, AnAccountThatLeavesAHostIsForgottenThere) {
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0, Snapshot({Agent()}), Declared()).ok());
  ASSERT_TRUE(book_->Observe({Login("hosta", "aiops", Outcome::kSuccess, kT0 + 1)}).ok());
  ASSERT_FALSE(book_->Report("hosta", "", kT0 + kDay, kDay).empty());
  // Removed from docker: the group is no longer provisioned; the account's first-seen
  // time stays.
  Account fewer = Agent();
  fewer.groups = {"aiops"};
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0 + kDay, Snapshot({fewer}), Declared()).ok());
  auto items = book_->Report("hosta", "", kT0 + 2 * kDay, kDay);
  EXPECT_EQ(Find(items, "hosta", "group:docker"), nullptr);
  EXPECT_EQ(Find(items, "hosta", "login")->since_ns, kT0);
  // A late snapshot (older than the newest) changes nothing.
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0 + 1, Snapshot({Agent()}), Declared()).ok());
  EXPECT_EQ(Find(book_->Report("hosta", "", kT0 + 2 * kDay, kDay), "hosta", "group:docker"),
            nullptr);
  // Gone from the host: nothing left, after a reopen too.
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0 + 2 * kDay, Snapshot({}), Declared()).ok());
  EXPECT_TRUE(book_->Report("", "", kT0 + 3 * kDay, kDay).empty());
  Reopen();
  EXPECT_TRUE(book_->Report("", "", kT0 + 3 * kDay, kDay).empty());
}

// What a chain is judged by (correlate::DriftView): the privileges unused before the
// chain's first event. Its own first use of one does not count as use; a use before it
// does; a host watched too briefly has nothing unused yet.
TEST_F(DriftBookTest, UnusedBeforeAChainCountsTheChainsOwnFirstUseAsNone) {
  book_->SetWatchPeriod(14 * kDay);
  ASSERT_TRUE(book_->SetProvisioned("hosta", kT0, Snapshot({Agent()}), Declared()).ok());
  // Docker used in its first week; the login only on day 20.
  ASSERT_TRUE(book_->Observe({Exec("hosta", "aiops", "/usr/bin/docker", kT0 + 2 * kDay)}).ok());
  const int64_t chain = kT0 + 20 * kDay;
  ASSERT_TRUE(book_
                  ->Observe({Login("hosta", "aiops", Outcome::kSuccess, chain),
                             Exec("hosta", "aiops", "/usr/bin/docker", chain + 60)})
                  .ok());
  Reopen();  // first times survive a reopen
  book_->SetWatchPeriod(14 * kDay);
  const correlate::UnusedPrivileges u = book_->Unused("hosta", "aiops", chain);
  EXPECT_EQ(u.kind, "agent");
  EXPECT_EQ(u.watched_ns, 20 * kDay);
  // login: first used by the chain; sudo and shadow: never; docker: used before.
  EXPECT_EQ(u.privileges, (std::vector<std::string>{"login", "sudo", "group:shadow"}));
  // After the chain, the login counts as used.
  EXPECT_EQ(book_->Unused("hosta", "aiops", chain + kDay).privileges,
            (std::vector<std::string>{"sudo", "group:shadow"}));
  // Watched for less than the period by the chain's start: nothing is called unused.
  EXPECT_TRUE(book_->Unused("hosta", "aiops", kT0 + 3 * kDay).privileges.empty());
  // Untracked accounts and hosts: nothing.
  EXPECT_TRUE(book_->Unused("hostb", "aiops", chain).privileges.empty());
  EXPECT_TRUE(book_->Unused("hosta", "alice", chain).privileges.empty());
}

TEST(DriftRecordTest, DamagedRecordsAreRefusedSayingWhat) {
  const std::string p = std::string("p/hosta") + '\0' + "aiops";
  EXPECT_TRUE(DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":["docker"],)"
                                   R"("first":1,"seen":2})")
                  .ok());
  EXPECT_THAT(DecodeDriftRecord(p, "{").status().message(), HasSubstr("not JSON"));
  EXPECT_THAT(DecodeDriftRecord(p, R"({"kind":"human","login":true,"sudo":[],"groups":[],)"
                                   R"("first":1,"seen":2})")
                  .status()
                  .message(),
              HasSubstr("kind"));
  EXPECT_THAT(DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":["staff"],)"
                                   R"("first":1,"seen":2})")
                  .status()
                  .message(),
              HasSubstr("staff"));
  EXPECT_THAT(DecodeDriftRecord(std::string("u/hosta") + '\0' + "aiops", R"({"login":-1})")
                  .status()
                  .message(),
              HasSubstr("bad entry"));
  // A number beyond int64 is a JSON float: refused, never cast (found by drift_record_fuzz).
  EXPECT_EQ(DecodeDriftRecord(std::string("u/hosta") + '\0' + "aiops",
                              R"({"login":17954784000082000000000000})")
                .status()
                .code(),
            Status::Code::kCorruption);
  EXPECT_EQ(DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":[],)"
                                 R"("first":1e300,"seen":2e300})")
                .status()
                .code(),
            Status::Code::kCorruption);
  // Usage with first times; a record of last times only (as written before first times
  // were kept) reads each first time as its last.
  const std::string u = std::string("u/hosta") + '\0' + "aiops";
  auto both = DecodeDriftRecord(u, R"({"l":{"login":20,"sudo":9},"f":{"login":3,"sudo":9}})");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->u.first_ns.at("login"), 3);
  EXPECT_EQ(both->u.last_ns.at("login"), 20);
  auto old = DecodeDriftRecord(u, R"({"login":20})");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->u.first_ns.at("login"), 20);
  EXPECT_THAT(DecodeDriftRecord(u, R"({"l":{"login":2},"f":{"login":3}})").status().message(),
              HasSubstr("first used after its last use"));
  EXPECT_THAT(DecodeDriftRecord(u, R"({"l":{"login":2}})").status().message(),
              HasSubstr("wants l and f"));
  EXPECT_EQ(DecodeDriftRecord(u, R"({"l":{"login":2},"f":[]})").status().code(),
            Status::Code::kCorruption);
  EXPECT_EQ(DecodeDriftRecord("x/hosta", "{}").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeDriftRecord("p/hosta", "{}").status().code(), Status::Code::kCorruption);
  // Readable files: absolute paths, when present.
  auto files = DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":[],)"
                                    R"("first":1,"seen":2,"files":["/etc/shadow"]})");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->p.files, (std::vector<std::string>{"/etc/shadow"}));
  EXPECT_THAT(DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":[],)"
                                   R"("first":1,"seen":2,"files":["shadow"]})")
                  .status()
                  .message(),
              HasSubstr("absolute path"));
  EXPECT_EQ(DecodeDriftRecord(p, R"({"kind":"agent","login":true,"sudo":[],"groups":[],)"
                                 R"("first":1,"seen":2,"files":[1]})")
                .status()
                .code(),
            Status::Code::kCorruption);
}

}  // namespace
}  // namespace tripline::audit
