// AuthLogParser: OpenSSH, PAM and sudo log lines turned into the login and exec events the
// sensor produces for the same happenings, so that history from before Tripline was
// deployed (or from hosts without a sensor) goes through ingest, storage and correlation
// like live events.
//
//   AuthLogParser parser({.format = LogFormat::kSshdSyslog, .host = "web1", .year = 2026});
//   std::vector<Event> events;
//   std::string why;
//   for (each line) { LineKind k = parser.Parse(line, &events, &why); ... }
//
// Formats:
//   - sshd-syslog: what rsyslog and syslog-ng write to /var/log/auth.log or /var/log/secure,
//     "Dec 10 06:55:46 host sshd[24200]: message" (no year: see AuthLogOptions::year) or
//     with an RFC 3339 stamp, "2026-12-10T06:55:46.123456+01:00 host sshd[24200]: message".
//   - journal-json: one `journalctl -o json` object per line (MESSAGE, __REALTIME_TIMESTAMP,
//     SYSLOG_IDENTIFIER or _COMM, _PID or SYSLOG_PID; MESSAGE may be a byte array).
//
// What becomes an event (the sensor's view of the same thing, see docs/import.md):
//   - `Accepted METHOD for U from A port P`: a successful login (PAM, authenticate stage for
//     passwords, account stage for keys), auth_pid the sshd pid;
//   - `Failed password|keyboard-interactive for [invalid user] U from A port P`: a failed
//     login as the btmp record sshd writes for it (source utmp, stage failed_record);
//   - `pam_unix(S:auth): authentication failure; ... rhost=R [user=U]`: a failed PAM
//     authentication (source pam), user and address taken from earlier lines of the same
//     pid when the line lacks them or names a host instead of an address;
//   - `Invalid user U from A`, `maximum authentication attempts exceeded`, `Disconnecting:
//     Too many authentication failures`, `sudo: N incorrect password attempts`: failures with
//     source unspecified. They summarise attempts that the lines above already report, and
//     the correlator counts failures per source and takes the largest count, so a separate
//     source keeps one attempt from being counted twice;
//   - `pam_unix(S:session): session opened|closed for user U`: session open / close (PAM),
//     with session "login:<pid>.<seconds of the login>" as the sensor's fallback names it;
//   - `sudo: U : TTY=... ; PWD=... ; USER=R ; COMMAND=C`: the exec of C as R, attributed to
//     U's newest open SSH session on the host;
//   - `message repeated N times: [ M ]`: M, N times.
// The old Linux-PAM tag, "sshd(pam_unix)[pid]: authentication failure; ...", is read as the
// pam_unix lines above.
// Lines of other programs, and sshd's connection bookkeeping, produce nothing.
//
// Input is hostile: every line is bounded (kMaxLineBytes), every string copied into an
// event is valid UTF-8 and bounded, numbers are range-checked, and the per-pid memory is
// capped. Parse() never throws. Deterministic: the same lines with the same options give
// the same events in the same order, which is what makes a re-import a no-op.
//
// Threading: not thread-safe; one parser per file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"

namespace tripline::import {

enum class LogFormat : uint8_t { kSshdSyslog, kJournalJson };

// "sshd-syslog" / "journal-json"; false when unknown.
bool ParseLogFormat(std::string_view name, LogFormat* out);
std::string_view LogFormatName(LogFormat format);

// Lines longer than this are rejected as malformed (a real auth log line is < 1 KiB).
constexpr size_t kMaxLineBytes = 64 * 1024;
// `message repeated N times` is honoured up to this N; beyond it the line is malformed.
constexpr uint32_t kMaxRepeat = 10000;

struct AuthLogOptions {
  LogFormat format = LogFormat::kSshdSyslog;
  std::string host;  // the events' host (and host_id)
  // Year of the first traditional syslog stamp ("Dec 10 06:55:46" has none); later lines
  // move to the next year when the month goes back by more than six (December → January).
  // 0: the year of now_ns, or the year before when that would put the first line more than
  // a day after now_ns (a December log read in January).
  int year = 0;
  int64_t now_ns = 0;
  // Offset of traditional syslog stamps from UTC, in seconds (+3600 for UTC+01:00).
  // RFC 3339 stamps and journal timestamps carry their own.
  int64_t utc_offset_s = 0;
};

enum class LineKind : uint8_t {
  kEvents,        // produced one or more events
  kNoEvent,       // understood; nothing the sensor would report (connection bookkeeping)
  kOtherProgram,  // a well-formed line of a program the import does not read
  kUnrecognized,  // a line of sshd, sudo or PAM that the parser does not understand
  kMalformed,     // not a line of the format at all (no stamp, no program, bad JSON)
  kEmpty,         // blank line
};
std::string_view LineKindName(LineKind kind);

class AuthLogParser {
 public:
  explicit AuthLogParser(AuthLogOptions options);

  // Parses one line (without its newline) and appends its events to *out, seq 0. For
  // kUnrecognized and kMalformed, *why says what was wrong.
  LineKind Parse(std::string_view line, std::vector<Event>* out, std::string* why);

  // Pids whose context was forgotten because the cap was reached (see kMaxPids).
  uint64_t pids_forgotten() const { return pids_forgotten_; }

  // Most sshd pids whose context (address, user, session) is remembered at once.
  static constexpr size_t kMaxPids = 65536;

 private:
  struct Line {
    int64_t time_ns = 0;
    std::string program;
    uint32_t pid = 0;
    std::string_view message;
  };
  // What earlier lines of one sshd pid said.
  struct PidContext {
    std::string remote_addr;
    uint32_t remote_port = 0;
    std::string local_addr;
    uint32_t local_port = 0;
    std::string invalid_user;
    std::string user;
    std::string session;
    int64_t touched_ns = 0;
  };

  LineKind ParseSyslog(std::string_view text, std::vector<Event>* out, std::string* why);
  LineKind ParseJournal(std::string_view text, std::vector<Event>* out, std::string* why);
  LineKind Dispatch(const Line& line, std::vector<Event>* out, std::string* why);
  LineKind Message(const Line& line, std::string_view message, std::vector<Event>* out,
                   std::string* why);
  LineKind Sshd(const Line& line, std::string_view message, std::vector<Event>* out,
                std::string* why);
  LineKind Sudo(const Line& line, std::string_view message, std::vector<Event>* out,
                std::string* why);
  LineKind Pam(const Line& line, std::string_view message, std::vector<Event>* out,
               std::string* why);
  bool TraditionalTime(int month, int day, int hour, int minute, int second, int64_t* out);

  Event Base(const Line& line) const;
  Event LoginBase(const Line& line, const PidContext* context) const;
  PidContext& Context(uint32_t pid, int64_t time_ns);
  const PidContext* FindContext(uint32_t pid) const;

  const AuthLogOptions options_;
  int year_ = 0;
  int last_month_ = -1;
  std::map<uint32_t, PidContext> pids_;
  uint64_t pids_forgotten_ = 0;
  // The newest open SSH session per user, for attributing sudo commands.
  std::map<std::string, std::string> open_sessions_;
};

}  // namespace tripline::import
