#include "sensor/session_tracker.h"

#include <gtest/gtest.h>

#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

Event Login(uint32_t tgid, uint32_t audit_session, LoginStage stage, Outcome outcome) {
  Event e;
  e.process.pid = e.process.tgid = tgid;
  e.process.ppid = 500;  // the sshd listener
  e.process.audit_session = audit_session;
  LoginEvent l;
  l.service = "sshd";
  l.user = "alice";
  l.remote_addr = "198.18.0.66";
  l.stage = stage;
  l.outcome = outcome;
  l.auth_pid = tgid;
  e.body = l;
  return e;
}

Event Exec(uint32_t tgid, uint32_t ppid, uint32_t audit_session) {
  Event e;
  e.process.pid = e.process.tgid = tgid;
  e.process.ppid = ppid;
  e.process.audit_session = audit_session;
  e.body = ExecEvent{};
  return e;
}

Event FileOpen(uint32_t tgid, uint32_t ppid, uint32_t audit_session) {
  Event e;
  e.process.pid = e.process.tgid = tgid;
  e.process.ppid = ppid;
  e.process.audit_session = audit_session;
  FileOpenEvent f;
  f.path = "/etc/shadow";
  e.body = f;
  return e;
}

class SessionTrackerTest : public ::testing::Test {
 protected:
  TempTree tree_;  // an empty /proc: every pid is "gone" unless an event named it
  RootedHostFiles files_{tree_.root()};
  SessionTracker tracker_{SessionTrackerOptions{}, files_};
};

// What a real sshd login looks like with pam_loginuid (see session_tracker.h): the failed
// and pre-session attempts carry no audit id, the monitor has the new id when
// pam_open_session returns, and everything in the session inherits it.
TEST_F(SessionTrackerTest, AuditSessionIdIsThePrimaryKey) {
  Event failed = Login(600, kUnsetId, LoginStage::kAuthenticate, Outcome::kFailure);
  tracker_.Attribute(&failed, 0);
  EXPECT_EQ(failed.session, "");

  Event account = Login(700, kUnsetId, LoginStage::kAccount, Outcome::kSuccess);
  tracker_.Attribute(&account, 1);
  EXPECT_EQ(account.session, "");  // before the session exists

  Event open = Login(700, 3, LoginStage::kSessionOpen, Outcome::kSuccess);
  tracker_.Attribute(&open, 2);
  EXPECT_EQ(open.session, "audit:3");
  const LoginRecord* rec = tracker_.FindLogin("audit:3");
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->user, "alice");
  EXPECT_EQ(rec->remote_addr, "198.18.0.66");
  EXPECT_EQ(rec->auth_pid, 700u);

  Event cat = FileOpen(720, 710, 3);
  tracker_.Attribute(&cat, 3);
  EXPECT_EQ(cat.session, "audit:3");

  // A process of the same lineage that somehow lacks the audit id (kernel thread handoff,
  // audit disabled later) still lands in the session through the monitor's pid.
  Event shell = Exec(710, 700, kUnsetId);
  tracker_.Attribute(&shell, 4);
  EXPECT_EQ(shell.session, "audit:3");
}

TEST_F(SessionTrackerTest, AncestryFallbackWithoutAudit) {
  Event account = Login(700, kUnsetId, LoginStage::kAccount, Outcome::kSuccess);
  tracker_.Attribute(&account, 0);
  Event open = Login(700, kUnsetId, LoginStage::kSessionOpen, Outcome::kSuccess);
  tracker_.Attribute(&open, 1);
  EXPECT_EQ(open.session, "login:700.0");

  // sshd monitor 700 -> privsep child 710 -> bash 720 -> cat 730 / ssh 740.
  Event child = Exec(710, 700, kUnsetId);
  Event bash = Exec(720, 710, kUnsetId);
  Event cat = FileOpen(730, 720, kUnsetId);
  tracker_.Attribute(&child, 2);
  tracker_.Attribute(&bash, 3);
  tracker_.Attribute(&cat, 4);
  EXPECT_EQ(child.session, "login:700.0");
  EXPECT_EQ(bash.session, "login:700.0");
  EXPECT_EQ(cat.session, "login:700.0");

  // The shell exits and the grandchild is reparented to init: the first parent is kept.
  Event orphan = FileOpen(730, 1, kUnsetId);
  tracker_.Attribute(&orphan, 5);
  EXPECT_EQ(orphan.session, "login:700.0");

  // Unrelated processes get no session.
  Event cron = Exec(900, 1, kUnsetId);
  tracker_.Attribute(&cron, 6);
  EXPECT_EQ(cron.session, "");

  // A failed login never opens a session for its descendants.
  Event failed = Login(800, kUnsetId, LoginStage::kAuthenticate, Outcome::kFailure);
  tracker_.Attribute(&failed, 7);
  Event under_failed = Exec(810, 800, kUnsetId);
  tracker_.Attribute(&under_failed, 8);
  EXPECT_EQ(under_failed.session, "");
}

TEST_F(SessionTrackerTest, UnknownParentsAreReadFromProc) {
  tree_.Write("/proc/710/stat", "710 (sshd) S 700 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 111 0 0\n");
  tree_.Write("/proc/700/stat", "700 (sshd) S 500 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n");
  Event open = Login(700, kUnsetId, LoginStage::kSessionOpen, Outcome::kSuccess);
  tracker_.Attribute(&open, 0);
  EXPECT_EQ(open.session, "login:700.100");  // start time from /proc keeps reused pids apart
  // 720's exec was never seen; its parent 710 is only in /proc.
  Event cat = FileOpen(720, 710, kUnsetId);
  tracker_.Attribute(&cat, 1);
  EXPECT_EQ(cat.session, "login:700.100");
}

TEST_F(SessionTrackerTest, ExecOnTheLoginPidEndsTheFallbackSessionAndMemoryIsBounded) {
  SessionTrackerOptions options;
  options.max_processes = 4;
  SessionTracker tracker(options, files_);
  Event open = Login(700, kUnsetId, LoginStage::kSessionOpen, Outcome::kSuccess);
  tracker.Attribute(&open, 0);
  // pid 700 is reused by a new program.
  Event reuse = Exec(700, 1, kUnsetId);
  tracker.Attribute(&reuse, 1);
  EXPECT_EQ(reuse.session, "");
  for (uint32_t pid = 1000; pid < 1100; ++pid) {
    Event e = Exec(pid, pid - 1, kUnsetId);
    tracker.Attribute(&e, 2);
  }
  EXPECT_LE(tracker.tracked_processes(), 4u);
}

}  // namespace
}  // namespace tripline::sensor
