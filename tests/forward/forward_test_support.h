// Incidents for the forwarding tests: the seed story's, and one whose every value an
// attacker chose to forge fields and records.
#pragma once

#include "common/clock.h"
#include "model/incident.h"

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

}  // namespace tripline::forward::testing
