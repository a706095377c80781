// Incidents for the forwarding tests: the seed story's, and one whose every value an
// attacker chose to forge fields and records; and audit events of both sources, one of them
// as hostile.
#pragma once

#include "common/clock.h"
#include "model/incident.h"
#include "tripline/v1/response.pb.h"

namespace tripline::forward::testing {

// 2026-11-25T03:41:00Z, the story's start.
constexpr int64_t kT0 = 1'795'578'060LL * kNanosPerSecond;

inline Incident StoryIncident() {
  Incident i;
  i.id = "inc-0123456789abcdef0123456789abcdef";
  i.severity = Severity::kCritical;
  i.title =
      "Account alice compromised, brute-forced, moving laterally hosta \xE2\x86\x92 hostb "
      "\xE2\x86\x92 hostc";
  i.identities = {"user:alice", "host:hosta", "source:203.0.113.9"};
  i.hosts = {"hosta", "hostb", "hostc"};
  i.techniques = {"T1021.004", "T1110.001"};
  i.first_seen_ns = kT0;
  i.last_seen_ns = kT0 + 12 * kNanosPerSecond;
  i.chain = {{"hosta", "hostb", "alice", "alice", kT0 + 10 * kNanosPerSecond, 22},
             {"hostb", "hostc", "alice", "alice", kT0 + 12 * kNanosPerSecond, 22}};
  i.events = {
      {"sensor-hosta", 1, "hosta", kT0, "login", "failed ssh login for alice from 203.0.113.9"},
      {"sensor-hosta", 2, "hosta", kT0 + 5 * kNanosPerSecond, "file_open", "cat read /etc/shadow"}};
  i.explanation = {"alice failed, then logged in.", "Then moved on."};
  i.confidence = 0.95;
  i.score = 97;
  i.revision = 3;
  i.updated_ns = kT0 + 15 * kNanosPerSecond;
  return i;
}

// Every value tries to end a field or a record: CEF separators and escapes, line breaks,
// a syslog header, JSON quotes and braces, terminal escapes, NUL and (unless
// `valid_utf8`, as every incident the aggregator stores is: ingest writes an invalid byte
// as the text `\xNN`) invalid UTF-8.
inline Incident HostileIncident(bool valid_utf8 = false) {
  Incident i = StoryIncident();
  i.id = "inc-hostile";
  i.title = "evil|10|x\\ \nCEF:0|forged";
  i.identities = {"user:mallory act=allowed dst=1.2.3.4 \r\n<13>1 - \"},{\"type\":\"user\"",
                  "host:h|b=c", "source:203.0.113.9"};
  i.hosts = {"h\\|b=c", "host\nb", "hostc"};
  i.chain = {{"h\\|b=c", "host\nb", "root=x", "alice", kT0, 22}};
  i.events = {
      {"sensor-a", 1, "hosta", kT0, "exec",
       std::string("cat \x1b[2J\"\\\n{\"class_uid\":1} ") + (valid_utf8 ? "\\xff" : "\xff")},
      {"sensor-a", 2, "hosta", kT0, "exec", std::string("nul\0byte", 8)}};
  i.explanation = {"msg=forged rt=0", "line\nbreak"};
  return i;
}

// bob approved locking alice on hostb, from the story's incident.
inline v1::AuditEvent ApprovalEvent() {
  v1::AuditEvent e;
  e.set_id("response-12");
  e.set_source(v1::AuditEvent::SOURCE_RESPONSE);
  e.set_seq(12);
  e.set_at_ns(kT0 + 60 * kNanosPerSecond);
  e.set_by("bob");
  e.set_what("approved: confirmed with the owner; valid until 2026-11-25T03:57:00.000Z");
  e.set_step("approved");
  e.set_action_id("a0123456789abcdef");
  e.set_action_kind(v1::Action::KIND_LOCK_ACCOUNT);
  e.set_target("hostb/alice");
  e.set_host("hostb");
  e.set_subject("alice");
  e.set_incident_id("inc-0123456789abcdef0123456789abcdef");
  return e;
}

// carol promoted agent aiops.
inline v1::AuditEvent PromotionEvent() {
  v1::AuditEvent e;
  e.set_id("trust-3");
  e.set_source(v1::AuditEvent::SOURCE_TRUST);
  e.set_seq(3);
  e.set_at_ns(kT0 + 120 * kNanosPerSecond);
  e.set_by("carol");
  e.set_what("promoted to trusted: reviewed its runbooks");
  e.set_step("promoted");
  e.set_agent("aiops");
  e.set_level("trusted");
  e.set_reason("reviewed its runbooks");
  return e;
}

// A trust decision whose agent name, person and reason (all chosen by whoever holds the
// ctl certificate or names the agent) try to end fields and records.
inline v1::AuditEvent HostileAuditEvent() {
  v1::AuditEvent e = PromotionEvent();
  e.set_id("trust-4");
  e.set_seq(4);
  e.set_agent("ai|ops act=allowed \\ <script>alert(1)</script>");
  e.set_by("mallory suser=root");
  e.set_reason("ok\n<13>1 - forged\r\nCEF:0|x|y|1|audit|forged|10|");
  e.set_what("promoted to trusted: " + e.reason());
  return e;
}

}  // namespace tripline::forward::testing
