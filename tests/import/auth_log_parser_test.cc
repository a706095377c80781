// The auth log parser line by line: what each OpenSSH, PAM and sudo message becomes, the
// year of stamps that have none, the journal's JSON, and hostile lines.
#include "tools/import/auth_log_parser.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace tripline::import {
namespace {

// 2026-06-15T12:00:00Z
constexpr int64_t kNow = 1'781'524'800LL * kNanosPerSecond;

int64_t At(const char* rfc3339) { return *ParseTimeNs(rfc3339); }

class ParserTest : public ::testing::Test {
 protected:
  AuthLogParser Syslog(int year = 2026) {
    return AuthLogParser(
        {.format = LogFormat::kSshdSyslog, .host = "web1", .year = year, .now_ns = kNow});
  }
  // Parses one line and expects `kind`.
  std::vector<Event> One(AuthLogParser& p, std::string_view line, LineKind kind) {
    std::vector<Event> out;
    std::string why;
    EXPECT_EQ(p.Parse(line, &out, &why), kind) << line << ": " << why;
    if (kind == LineKind::kMalformed || kind == LineKind::kUnrecognized) {
      EXPECT_FALSE(why.empty());
    }
    return out;
  }
  static const LoginEvent& L(const Event& e) { return std::get<LoginEvent>(e.body); }
};

TEST_F(ParserTest, FailedPasswordIsTheBtmpRecordSshdWrites) {
  auto p = Syslog();
  auto ev = One(p,
                "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from "
                "5.36.59.76 port 42393 ssh2",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 1u);
  const Event& e = ev[0];
  EXPECT_EQ(e.host, "web1");  // --host, not the name in the line
  EXPECT_EQ(e.time_ns, At("2026-12-10T06:55:48Z"));
  EXPECT_EQ(e.process.tgid, 24200u);
  EXPECT_EQ(e.process.comm, "sshd");
  EXPECT_EQ(L(e).service, "sshd");
  EXPECT_EQ(L(e).user, "root");
  EXPECT_EQ(L(e).remote_addr, "5.36.59.76");
  EXPECT_EQ(L(e).remote_port, 42393u);
  EXPECT_EQ(L(e).outcome, Outcome::kFailure);
  EXPECT_EQ(L(e).source, LoginSource::kUtmp);
  EXPECT_EQ(L(e).stage, LoginStage::kFailedRecord);
  EXPECT_EQ(L(e).auth_pid, 24200u);
}

TEST_F(ParserTest, InvalidUsersKeepTheirNameAndEmptyNamesParse) {
  auto p = Syslog();
  auto ev = One(p,
                "Dec 10 07:07:45 LabSZ sshd[24206]: Failed password for invalid user test9 "
                "from 52.80.34.196 port 36060 ssh2",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(L(ev[0]).user, "test9");
  EXPECT_EQ(L(ev[0]).reason, "user unknown");
  ev = One(p,
           "Dec 10 07:07:46 LabSZ sshd[24207]: Failed password for invalid user  from "
           "52.80.34.196 port 36061 ssh2",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "");
  // A user name with " from " in it cannot move the address.
  ev = One(p,
           "Dec 10 07:07:47 LabSZ sshd[24208]: Failed password for invalid user a from b "
           "from 52.80.34.197 port 1 ssh2",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "a from b");
  EXPECT_EQ(L(ev[0]).remote_addr, "52.80.34.197");
  // "Invalid user" is a failure of its own source, so it does not double the btmp count.
  ev = One(p, "Dec 10 07:07:38 LabSZ sshd[24206]: Invalid user test9 from 52.80.34.196",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).source, LoginSource::kUnspecified);
  EXPECT_EQ(L(ev[0]).outcome, Outcome::kFailure);
  EXPECT_EQ(L(ev[0]).remote_port, 0u);
}

TEST_F(ParserTest, RefusedKeysAndTheNoneProbeAreNoFailedLogin) {
  auto p = Syslog();
  One(p, "Dec 10 07:00:00 h sshd[1]: Failed none for invalid user x from 192.0.2.1 port 2 ssh2",
      LineKind::kNoEvent);
  One(p, "Dec 10 07:00:00 h sshd[1]: Failed publickey for bob from 192.0.2.1 port 2 ssh2",
      LineKind::kNoEvent);
  auto ev = One(p,
                "Dec 10 07:00:00 h sshd[1]: Failed keyboard-interactive/pam for bob from "
                "192.0.2.1 port 2 ssh2",
                LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).outcome, Outcome::kFailure);
}

TEST_F(ParserTest, MessageRepeatedStandsForThatManyCopies) {
  auto p = Syslog();
  auto ev = One(p,
                "Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed "
                "password for root from 5.36.59.76 port 42393 ssh2]",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 5u);
  for (const Event& e : ev) EXPECT_EQ(L(e).user, "root");
  One(p,
      "Dec 10 07:13:56 h sshd[1]: message repeated 10001 times: [ Failed password for root "
      "from 5.36.59.76 port 1 ssh2]",
      LineKind::kMalformed);
  One(p, "Dec 10 07:13:56 h sshd[1]: message repeated 2 times: [ Connection closed by x]",
      LineKind::kNoEvent);
}

TEST_F(ParserTest, PamFailureTakesAddressAndUserFromTheSameSshd) {
  auto p = Syslog();
  One(p,
      "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for "
      "ns.example [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
      LineKind::kNoEvent);
  One(p, "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
      LineKind::kEvents);
  One(p, "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): check pass; user unknown",
      LineKind::kNoEvent);
  auto ev = One(p,
                "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication "
                "failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=ns.example ",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(L(ev[0]).user, "webmaster");
  EXPECT_EQ(L(ev[0]).remote_addr, "173.234.31.186");
  EXPECT_EQ(L(ev[0]).source, LoginSource::kPam);
  EXPECT_EQ(L(ev[0]).stage, LoginStage::kAuthenticate);
  EXPECT_EQ(L(ev[0]).pam_code, 7);
  // With an address and a user in the line, those win; another pid knows nothing.
  ev = One(p,
           "Dec 10 07:13:31 LabSZ sshd[24227]: pam_unix(sshd:auth): authentication failure; "
           "logname= uid=0 euid=0 tty=ssh ruser= rhost=5.36.59.76  user=root",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "root");
  EXPECT_EQ(L(ev[0]).remote_addr, "5.36.59.76");
  ev = One(p,
           "Dec 10 07:13:31 LabSZ sshd[9]: pam_unix(sshd:auth): authentication failure; "
           "logname= uid=0 euid=0 tty=ssh ruser= rhost=host.example",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).remote_addr, "");
  One(p,
      "Dec 10 07:13:57 LabSZ sshd[24227]: PAM 5 more authentication failures; logname= uid=0 "
      "euid=0 tty=ssh ruser= rhost=5.36.59.76  user=root",
      LineKind::kNoEvent);
}

TEST_F(ParserTest, AcceptedLoginSessionAndSudoFormOneSession) {
  auto p = Syslog();
  One(p,
      "Dec 10 09:32:19 h sshd[24680]: Connection from 119.137.62.142 port 49116 on "
      "192.0.2.10 port 2222",
      LineKind::kNoEvent);
  auto acc = One(p,
                 "Dec 10 09:32:20 h sshd[24680]: Accepted password for fztu from "
                 "119.137.62.142 port 49116 ssh2",
                 LineKind::kEvents);
  ASSERT_EQ(acc.size(), 1u);
  EXPECT_EQ(L(acc[0]).outcome, Outcome::kSuccess);
  EXPECT_EQ(L(acc[0]).stage, LoginStage::kAuthenticate);
  EXPECT_EQ(L(acc[0]).local_addr, "192.0.2.10");
  EXPECT_EQ(L(acc[0]).local_port, 2222u);
  auto open = One(p,
                  "Dec 10 09:32:20 h sshd[24680]: pam_unix(sshd:session): session opened for "
                  "user fztu by (uid=0)",
                  LineKind::kEvents);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(L(open[0]).stage, LoginStage::kSessionOpen);
  EXPECT_EQ(L(open[0]).user, "fztu");
  EXPECT_EQ(L(open[0]).remote_addr, "119.137.62.142");
  const std::string session = open[0].session;
  EXPECT_EQ(session, "login:24680." + std::to_string(At("2026-12-10T09:32:20Z") / kNanosPerSecond));
  auto sudo = One(p,
                  "Dec 10 09:33:00 h sudo:     fztu : TTY=pts/0 ; PWD=/home/fztu ; USER=root ; "
                  "COMMAND=/usr/bin/cat /etc/shadow",
                  LineKind::kEvents);
  ASSERT_EQ(sudo.size(), 1u);
  const auto& x = std::get<ExecEvent>(sudo[0].body);
  EXPECT_EQ(x.filename, "/usr/bin/cat");
  EXPECT_EQ(x.argv, (std::vector<std::string>{"/usr/bin/cat", "/etc/shadow"}));
  EXPECT_EQ(x.parent_comm, "sudo");
  EXPECT_EQ(sudo[0].process.user, "root");
  EXPECT_EQ(sudo[0].process.uid, 0u);
  EXPECT_EQ(sudo[0].process.login_user, "fztu");
  EXPECT_EQ(sudo[0].process.comm, "cat");
  EXPECT_EQ(sudo[0].session, session);
  auto close = One(p,
                   "Dec 10 09:45:06 h sshd[24680]: pam_unix(sshd:session): session closed "
                   "for user fztu",
                   LineKind::kEvents);
  EXPECT_EQ(L(close[0]).stage, LoginStage::kSessionClose);
  EXPECT_EQ(close[0].session, session);
  // After the close, sudo has no session to attribute to.
  sudo =
      One(p, "Dec 10 09:46:00 h sudo: fztu : TTY=pts/1 ; PWD=/ ; USER=www-data ; COMMAND=/bin/ls",
          LineKind::kEvents);
  EXPECT_EQ(sudo[0].session, "");
  EXPECT_EQ(sudo[0].process.user, "www-data");
  EXPECT_EQ(sudo[0].process.uid, kUnsetId);
  // A key login starts at PAM's account stage.
  acc = One(p,
            "Dec 10 09:50:00 h sshd[7]: Accepted publickey for bob from 2001:DB8:0:0::1 port "
            "5 ssh2: ED25519 SHA256:xyz",
            LineKind::kEvents);
  EXPECT_EQ(L(acc[0]).stage, LoginStage::kAccount);
  EXPECT_EQ(L(acc[0]).remote_addr, "2001:db8::1");  // RFC 5952
}

TEST_F(ParserTest, OldLinuxPamTagsReadLikeModernOnes) {
  auto p = Syslog(2005);
  auto ev = One(p,
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; "
                "logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(L(ev[0]).service, "sshd");
  EXPECT_EQ(L(ev[0]).remote_addr, "218.188.2.4");
  EXPECT_EQ(L(ev[0]).outcome, Outcome::kFailure);
  EXPECT_EQ(ev[0].process.tgid, 19939u);
  ev = One(p,
           "Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by "
           "(uid=0)",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).service, "su");
  EXPECT_EQ(L(ev[0]).stage, LoginStage::kSessionOpen);
  EXPECT_EQ(L(ev[0]).user, "cyrus");
  One(p, "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
      LineKind::kNoEvent);
  One(p, "Jun 14 15:16:01 combo ftpd[1]: connection from 1.2.3.4", LineKind::kOtherProgram);
  One(p, "Jun 19 04:09:11 combo syslogd 1.4.1: restart.", LineKind::kOtherProgram);
}

TEST_F(ParserTest, SudoFailuresAndRefusals) {
  auto p = Syslog();
  auto ev = One(p,
                "Dec 10 10:00:00 h sudo:   bob : 3 incorrect password attempts ; TTY=pts/0 ; "
                "PWD=/ ; USER=root ; COMMAND=/bin/sh",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(L(ev[0]).service, "sudo");
  EXPECT_EQ(L(ev[0]).user, "bob");
  One(p,
      "Dec 10 10:00:00 h sudo:   eve : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; "
      "COMMAND=/bin/sh",
      LineKind::kNoEvent);
  ev = One(p,
           "Dec 10 10:00:00 h sudo: pam_unix(sudo:auth): authentication failure; logname=bob "
           "uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=  user=bob",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).service, "sudo");
  EXPECT_EQ(L(ev[0]).remote_addr, "");
}

TEST_F(ParserTest, MaxAttemptsExceededIsAFailureOfItsOwnSource) {
  auto p = Syslog();
  auto ev = One(p,
                "Dec 10 10:00:00 h sshd[5]: error: maximum authentication attempts exceeded "
                "for invalid user admin from 192.0.2.9 port 4 ssh2 [preauth]",
                LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "admin");
  EXPECT_EQ(L(ev[0]).reason, "maximum authentication attempts exceeded");
  EXPECT_EQ(L(ev[0]).source, LoginSource::kUnspecified);
  One(p, "Dec 10 10:00:00 h sshd[6]: Failed password for root from 192.0.2.8 port 3 ssh2",
      LineKind::kEvents);
  ev = One(p,
           "Dec 10 10:00:01 h sshd[6]: Disconnecting: Too many authentication failures for "
           "root [preauth]",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "root");
  EXPECT_EQ(L(ev[0]).remote_addr, "192.0.2.8");
  ev = One(p,
           "Dec 10 10:00:01 h sshd[8]: Disconnecting authenticating user root 192.0.2.7 port "
           "22: Too many authentication failures [preauth]",
           LineKind::kEvents);
  EXPECT_EQ(L(ev[0]).user, "root");
  EXPECT_EQ(L(ev[0]).remote_addr, "192.0.2.7");
}

TEST_F(ParserTest, YearRollsOverFromDecemberToJanuaryOnly) {
  auto p = Syslog(2025);
  auto a = One(p, "Dec 31 23:59:59 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  auto b = One(p, "Jan  1 00:00:01 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(a[0].time_ns, At("2025-12-31T23:59:59Z"));
  EXPECT_EQ(b[0].time_ns, At("2026-01-01T00:00:01Z"));
  // Slightly out of order across a month boundary is not a new year.
  auto q = Syslog(2025);
  One(q, "Feb  1 00:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
      LineKind::kEvents);
  auto c = One(q, "Jan 31 23:59:59 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(c[0].time_ns, At("2025-01-31T23:59:59Z"));
}

TEST_F(ParserTest, DefaultYearIsTheCurrentOneUnlessThatIsInTheFuture) {
  auto p = Syslog(0);  // now is June 2026
  auto a = One(p, "Mar  3 10:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(a[0].time_ns, At("2026-03-03T10:00:00Z"));
  auto q = Syslog(0);
  auto b = One(q, "Dec 10 10:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(b[0].time_ns, At("2025-12-10T10:00:00Z"));
  // Leap day in a year without one.
  auto r = Syslog(2025);
  One(r, "Feb 29 10:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
      LineKind::kMalformed);
}

TEST_F(ParserTest, UtcOffsetAndRfc3339Stamps) {
  AuthLogParser p({.format = LogFormat::kSshdSyslog,
                   .host = "h",
                   .year = 2026,
                   .now_ns = kNow,
                   .utc_offset_s = 3600});
  auto a = One(p, "Dec 10 10:00:00 h sshd[1]: Failed password for a from 192.0.2.1 port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(a[0].time_ns, At("2026-12-10T09:00:00Z"));
  auto b = One(p,
               "2026-12-10T10:00:00.250+01:00 h sshd[1]: Failed password for a from 192.0.2.1 "
               "port 1 ssh2",
               LineKind::kEvents);
  EXPECT_EQ(b[0].time_ns, At("2026-12-10T09:00:00.250Z"));
}

TEST_F(ParserTest, JournalJson) {
  AuthLogParser p({.format = LogFormat::kJournalJson, .host = "db1", .now_ns = kNow});
  auto a = One(p,
               R"({"MESSAGE":"Failed password for bob from 198.51.100.4 port 2222 ssh2",)"
               R"("__REALTIME_TIMESTAMP":"1765350000123456","SYSLOG_IDENTIFIER":"sshd",)"
               R"("_PID":"77","_HOSTNAME":"db1"})",
               LineKind::kEvents);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].time_ns, 1765350000123456000LL);
  EXPECT_EQ(a[0].process.tgid, 77u);
  EXPECT_EQ(L(a[0]).user, "bob");
  // A MESSAGE that is not UTF-8 comes as bytes; the name is repaired, not dropped.
  auto b = One(p,
               R"({"MESSAGE":[65,99,99,101,112,116,101,100,32,112,97,115,115,119,111,114,100,32,)"
               R"(102,111,114,32,98,255,32,102,114,111,109,32,49,57,50,46,48,46,50,46,49,32,112,)"
               R"(111,114,116,32,49,32,115,115,104,50],"__REALTIME_TIMESTAMP":"1765350001000000",)"
               R"("_COMM":"sshd"})",
               LineKind::kEvents);
  EXPECT_EQ(L(b[0]).user, "b?");
  One(p, R"({"MESSAGE":"hello","__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"cron"})",
      LineKind::kOtherProgram);
  One(p, R"({"MESSAGE":"x"})", LineKind::kMalformed);
  One(p, "not json", LineKind::kMalformed);
  One(p, R"({"MESSAGE":[1,2,300],"__REALTIME_TIMESTAMP":"1","_COMM":"sshd"})",
      LineKind::kMalformed);
  One(p, R"({"MESSAGE":"x","__REALTIME_TIMESTAMP":"-5","_COMM":"sshd"})", LineKind::kMalformed);
}

TEST_F(ParserTest, HostileLinesGetAClearReason) {
  auto p = Syslog();
  One(p, "", LineKind::kEmpty);
  One(p, "hello world", LineKind::kMalformed);
  One(p, "Dec 10 06:55:46", LineKind::kMalformed);
  One(p, "Dec 10 06:55:46 h sshd[4294967296]: x", LineKind::kMalformed);
  One(p, "Dec 10 06:55:46 h sshd[12: x", LineKind::kMalformed);
  One(p, "Dec 10 25:55:46 h sshd[1]: x", LineKind::kMalformed);
  One(p, "Dec 10 06:55:46 h sshd[1]: Accepted password for a from 192.0.2.1 port 70000 ssh2",
      LineKind::kUnrecognized);
  One(p, "Dec 10 06:55:46 h sshd[1]: Accepted password for a from not-an-ip port 1 ssh2",
      LineKind::kUnrecognized);
  One(p, "Dec 10 06:55:46 h sshd[1]: Something new in OpenSSH 12", LineKind::kUnrecognized);
  One(p, "Dec 10 06:55:46 h kernel: [1.0] eth0 up", LineKind::kOtherProgram);
  One(p, std::string(kMaxLineBytes + 1, 'x'), LineKind::kMalformed);
  // Invalid UTF-8 and NUL in a user name: repaired, valid, bounded.
  auto ev = One(p,
                std::string("Dec 10 06:55:46 h sshd[1]: Failed password for \xff\xc0\x80") +
                    std::string(1, '\0') + std::string(3000, 'u') + " from 192.0.2.1 port 1 ssh2",
                LineKind::kEvents);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(L(ev[0]).user.substr(0, 4), "????");
  EXPECT_LE(L(ev[0]).user.size(), 256u);
}

TEST_F(ParserTest, SameLinesSameEvents) {
  const char* lines[] = {
      "Dec 10 06:55:46 h sshd[1]: Invalid user x from 192.0.2.1",
      "Dec 10 06:55:47 h sshd[1]: Failed password for invalid user x from 192.0.2.1 port 4 ssh2",
      "Dec 10 06:55:48 h sshd[2]: Accepted password for y from 192.0.2.2 port 5 ssh2",
      "Dec 10 06:55:48 h sshd[2]: pam_unix(sshd:session): session opened for user y by (uid=0)",
  };
  std::vector<Event> a, b;
  std::string why;
  auto p = Syslog(), q = Syslog();
  for (const char* l : lines) {
    (void)p.Parse(l, &a, &why);
    (void)q.Parse(l, &b, &why);
  }
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].time_ns, b[i].time_ns);
    EXPECT_EQ(a[i].session, b[i].session);
    EXPECT_EQ(L(a[i]).user, L(b[i]).user);
  }
}

}  // namespace
}  // namespace tripline::import
