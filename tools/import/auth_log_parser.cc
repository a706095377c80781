#include "tools/import/auth_log_parser.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/clock.h"

namespace tripline::import {
namespace {

// Strings copied into events are cut here (the wire allows 4096; a user name or a
// command line from a log has no business being longer).
constexpr size_t kMaxField = 1024;
constexpr size_t kMaxArgs = 64;
// Each field of the wire is bounded; sensor comm is the kernel's 15 bytes.
constexpr size_t kCommBytes = 15;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}
bool Contains(std::string_view s, std::string_view p) { return s.find(p) != s.npos; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Valid UTF-8, at most `max` bytes: invalid bytes become '?', a cut never splits a character.
std::string Clean(std::string_view s, size_t max = kMaxField) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      n = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 4;
      cp = c & 0x07;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values beyond Unicode are invalid too.
    if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
               (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)) {
      ok = false;
    }
    if (c == 0) ok = false;  // NUL in a name is a forgery; keep it visible
    if (!ok) n = 1;
    if (out.size() + n > max) break;
    if (ok) {
      out.append(s.substr(i, n));
    } else {
      out.push_back('?');
    }
    i += n;
  }
  return out;
}

bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

// The address in RFC 5952 / dotted-quad form, or "" when `s` is not an IP address.
std::string NormalizeAddress(std::string_view s) {
  if (s.empty() || s.size() > 64) return "";
  std::string z(s);
  if (const size_t pct = z.find('%'); pct != std::string::npos) z.resize(pct);  // fe80::1%eth0
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, z.c_str(), buf) == 1) {
    return inet_ntop(AF_INET, buf, text, sizeof(text)) ? text : "";
  }
  if (inet_pton(AF_INET6, z.c_str(), buf) == 1) {
    return inet_ntop(AF_INET6, buf, text, sizeof(text)) ? text : "";
  }
  return "";
}

// "A port P" → address and port; false when A is no address or P no port.
bool ParseAddrPort(std::string_view s, std::string* addr, uint32_t* port) {
  s = Trim(s);
  const size_t sp = s.find(" port ");
  std::string a = NormalizeAddress(s.substr(0, sp));
  if (a.empty()) return false;
  *addr = std::move(a);
  *port = 0;
  if (sp == std::string_view::npos) return true;
  std::string_view rest = s.substr(sp + 6);
  rest = rest.substr(0, rest.find(' '));
  uint64_t p = 0;
  if (!ParseUint(rest, 65535, &p)) return false;
  *port = static_cast<uint32_t>(p);
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int YearOf(int64_t ns) {
  int64_t days = ns / kNanosPerSecond / 86400;
  if (ns < 0 && ns % (86400 * kNanosPerSecond) != 0) --days;
  // civil_from_days, year only.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<int>(static_cast<int64_t>(yoe) + era * 400 + (m <= 2));
}

bool DayInMonth(int year, int month, int day) {
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1]) return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return !(month == 2 && day == 29 && !leap);
}

int MonthNumber(std::string_view m) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (m == kMonths[i]) return static_cast<int>(i) + 1;
  }
  return 0;
}

bool TwoDigits(std::string_view s, size_t at, int* out) {
  if (at + 2 > s.size() || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9') {
    return false;
  }
  *out = (s[at] - '0') * 10 + (s[at + 1] - '0');
  return true;
}

// "Accepted", "Failed" ... up to " for ": the user name, which may be empty or hold spaces.
struct ForFrom {
  std::string method;
  std::string user;
  bool invalid_user = false;
  std::string addr;
  uint32_t port = 0;
};

// "METHOD for [invalid user ]USER from ADDR port PORT ..." (what follows "Accepted " or
// "Failed "). The address is found from the right, so a user name with " from " in it
// cannot move it.
bool ParseForFrom(std::string_view s, ForFrom* out) {
  const size_t for_at = s.find(" for ");
  const size_t from_at = s.rfind(" from ");
  if (for_at == std::string_view::npos || from_at == std::string_view::npos ||
      from_at < for_at + 4) {
    return false;
  }
  out->method = Clean(s.substr(0, for_at), 64);
  std::string_view user = s.substr(for_at + 5, from_at - (for_at + 5));
  if (StartsWith(user, "invalid user ") || user == "invalid user") {
    out->invalid_user = true;
    user.remove_prefix(std::min<size_t>(user.size(), 13));
  }
  out->user = Clean(user, 256);
  return ParseAddrPort(s.substr(from_at + 6), &out->addr, &out->port);
}

std::string Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Value of "key=value" in a PAM "a= b=c user=d" list; "" when absent.
std::string_view PamField(std::string_view s, std::string_view key) {
  size_t at = 0;
  while ((at = s.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || s[at - 1] == ' ' || s[at - 1] == ';') && at + key.size() < s.size() + 1 &&
        s.substr(at + key.size(), 1) == "=") {
      std::string_view v = s.substr(at + key.size() + 1);
      return v.substr(0, v.find(' '));
    }
    at += key.size();
  }
  return {};
}

// sshd messages that say nothing the sensor would report (connection bookkeeping, the
// preauth child's chatter, and PAM's end-of-conversation summaries of attempts already
// reported one by one).
constexpr std::string_view kSshdNoEvent[] = {
    "Connection closed by",
    "Connection reset by",
    "Received disconnect from",
    "Disconnected from",
    "Did not receive identification string",
    "input_userauth_request:",
    "PAM service(",
    "Server listening on",
    "Received signal",
    "Unable to negotiate",
    "Bad protocol version",
    "Protocol major versions differ",
    "Postponed ",
    "Starting session",
    "User child is on pid",
    "Close session",
    "Timeout, client not responding",
    "Timeout before authentication",
    "Transferred:",
    "subsystem request",
    "banner exchange",
    "drop connection",
    "Exiting on signal",
    "error: ",
    "fatal: ",
    "debug",
    "pam_systemd(",
    "pam_env(",
    "pam_limits(",
    "pam_keyinit(",
    "pam_loginuid(",
    "pam_motd(",
    "pam_mail(",
    "ssh_dispatch_run_fatal",
    "kex_exchange_identification",
    "Changed root directory",
    "Set /proc/self/oom_score_adj",
};

bool IsSshd(std::string_view program) {
  return program == "sshd" || program == "sshd-session" || program == "sshd-auth";
}

}  // namespace

bool ParseLogFormat(std::string_view name, LogFormat* out) {
  if (name == "sshd-syslog") {
    *out = LogFormat::kSshdSyslog;
    return true;
  }
  if (name == "journal-json") {
    *out = LogFormat::kJournalJson;
    return true;
  }
  return false;
}

std::string_view LogFormatName(LogFormat format) {
  return format == LogFormat::kSshdSyslog ? "sshd-syslog" : "journal-json";
}

std::string_view LineKindName(LineKind kind) {
  switch (kind) {
    case LineKind::kEvents: return "events";
    case LineKind::kNoEvent: return "no_event";
    case LineKind::kOtherProgram: return "other_program";
    case LineKind::kUnrecognized: return "unrecognized";
    case LineKind::kMalformed: return "malformed";
    case LineKind::kEmpty: return "empty";
  }
  return "unknown";
}

AuthLogParser::AuthLogParser(AuthLogOptions options) : options_(std::move(options)) {
  year_ = options_.year;
}

LineKind AuthLogParser::Parse(std::string_view line, std::vector<Event>* out, std::string* why) {
  why->clear();
  if (line.size() > kMaxLineBytes) {
    *why = "line longer than " + std::to_string(kMaxLineBytes) + " bytes";
    return LineKind::kMalformed;
  }
  if (Trim(line).empty()) return LineKind::kEmpty;
  return options_.format == LogFormat::kSshdSyslog ? ParseSyslog(line, out, why)
                                                   : ParseJournal(line, out, why);
}

bool AuthLogParser::TraditionalTime(int month, int day, int hour, int minute, int second,
                                    int64_t* out) {
  if (year_ == 0) {
    const int64_t now = options_.now_ns != 0 ? options_.now_ns : SystemClock::Get().NowNs();
    year_ = YearOf(now);
    if (DayInMonth(year_, month, day)) {
      const int64_t t =
          (DaysFromCivil(year_, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
           hour * 3600 + minute * 60 + second - options_.utc_offset_s) *
          kNanosPerSecond;
      if (t > now + 86400 * kNanosPerSecond) --year_;
    }
  } else if (last_month_ > 0 && month < last_month_ - 6) {
    ++year_;  // December → January
  }
  last_month_ = month;
  if (!DayInMonth(year_, month, day) || hour > 23 || minute > 59 || second > 60) return false;
  *out = (DaysFromCivil(year_, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
          hour * 3600 + minute * 60 + second - options_.utc_offset_s) *
         kNanosPerSecond;
  return *out > 0;
}

LineKind AuthLogParser::ParseSyslog(std::string_view text, std::vector<Event>* out,
                                    std::string* why) {
  Line line;
  std::string_view rest;
  // Traditional: "Dec 10 06:55:46 host prog[pid]: msg" (day space-padded: "Dec  1").
  int day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() >= 16 && MonthNumber(text.substr(0, 3)) != 0 && text[3] == ' ') {
    const int month = MonthNumber(text.substr(0, 3));
    std::string_view d = text.substr(4, 2);
    if (d[0] == ' ') d.remove_prefix(1);
    uint64_t dv = 0;
    if (!ParseUint(d, 31, &dv) || text[6] != ' ' || !TwoDigits(text, 7, &hour) || text[9] != ':' ||
        !TwoDigits(text, 10, &minute) || text[12] != ':' || !TwoDigits(text, 13, &second) ||
        text[15] != ' ') {
      *why = "bad syslog time stamp";
      return LineKind::kMalformed;
    }
    day = static_cast<int>(dv);
    if (!TraditionalTime(month, day, hour, minute, second, &line.time_ns)) {
      *why = "no such date: " + Clean(text.substr(0, 15));
      return LineKind::kMalformed;
    }
    rest = text.substr(16);
  } else if (text.size() >= 20 && text[4] == '-' && text[10] == 'T') {
    // RFC 3339: "2026-12-10T06:55:46.123456+01:00 host prog[pid]: msg".
    const size_t sp = text.find(' ');
    auto t = ParseTimeNs(text.substr(0, sp));
    if (!t.ok() || sp == std::string_view::npos || *t <= 0) {
      *why = "bad RFC 3339 time stamp";
      return LineKind::kMalformed;
    }
    line.time_ns = *t;
    rest = text.substr(sp + 1);
  } else {
    *why = "no syslog time stamp";
    return LineKind::kMalformed;
  }
  // Host name, then "program[pid]: " or "program: ".
  const size_t host_end = rest.find(' ');
  if (host_end == std::string_view::npos || host_end == 0) {
    *why = "no host and program after the time stamp";
    return LineKind::kMalformed;
  }
  rest = rest.substr(host_end + 1);
  const size_t colon = rest.find(": ");
  const size_t space = rest.find(' ');
  if (colon == std::string_view::npos || colon == 0 ||
      (space != std::string_view::npos && space < colon)) {
    // A stamp and a host, then no "program[pid]: " tag ("syslogd 1.4.1: restart."): a line
    // of the format, but of no program the import reads.
    return LineKind::kOtherProgram;
  }
  std::string_view tag = rest.substr(0, colon);
  line.message = rest.substr(colon + 2);
  if (const size_t br = tag.find('['); br != std::string_view::npos) {
    if (tag.back() != ']') {
      *why = "bad program[pid] tag";
      return LineKind::kMalformed;
    }
    uint64_t pid = 0;
    if (!ParseUint(tag.substr(br + 1, tag.size() - br - 2), 0xffffffffu, &pid)) {
      *why = "bad pid in program[pid] tag";
      return LineKind::kMalformed;
    }
    line.pid = static_cast<uint32_t>(pid);
    tag = tag.substr(0, br);
  }
  line.program = Clean(tag, 256);
  return Dispatch(line, out, why);
}

LineKind AuthLogParser::ParseJournal(std::string_view text, std::vector<Event>* out,
                                     std::string* why) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    *why = "not a JSON object";
    return LineKind::kMalformed;
  }
  const auto str = [&](const char* key) -> std::string {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Line line;
  std::string message;
  if (const auto m = j.find("MESSAGE"); m != j.end() && m->is_string()) {
    message = m->get<std::string>();
  } else if (m != j.end() && m->is_array()) {
    // journalctl writes a message that is not valid UTF-8 as an array of byte values.
    for (const auto& b : *m) {
      if (!b.is_number_unsigned() || b.get<uint64_t>() > 255 || message.size() >= kMaxLineBytes) {
        *why = "MESSAGE is an array but not of bytes";
        return LineKind::kMalformed;
      }
      message.push_back(static_cast<char>(b.get<uint64_t>()));
    }
  } else {
    *why = "no MESSAGE";
    return LineKind::kMalformed;
  }
  uint64_t usec = 0;
  if (!ParseUint(str("__REALTIME_TIMESTAMP"), uint64_t{INT64_MAX} / 1000, &usec) || usec == 0) {
    *why = "no usable __REALTIME_TIMESTAMP";
    return LineKind::kMalformed;
  }
  line.time_ns = static_cast<int64_t>(usec) * 1000;
  std::string program = str("SYSLOG_IDENTIFIER");
  if (program.empty()) program = str("_COMM");
  if (program.empty()) {
    *why = "no SYSLOG_IDENTIFIER or _COMM";
    return LineKind::kMalformed;
  }
  line.program = Clean(program, 256);
  std::string pid = str("_PID");
  if (pid.empty()) pid = str("SYSLOG_PID");
  uint64_t p = 0;
  if (!pid.empty() && !ParseUint(pid, 0xffffffffu, &p)) {
    *why = "bad _PID";
    return LineKind::kMalformed;
  }
  line.pid = static_cast<uint32_t>(p);
  line.message = message;
  return Dispatch(line, out, why);
}

LineKind AuthLogParser::Dispatch(const Line& line, std::vector<Event>* out, std::string* why) {
  std::string_view m = line.message;
  // rsyslog's "message repeated N times: [ M]" stands for N more copies of M.
  if (StartsWith(m, "message repeated ")) {
    std::string_view rest = m.substr(17);
    const size_t sp = rest.find(' ');
    uint64_t n = 0;
    if (sp == std::string_view::npos || !ParseUint(rest.substr(0, sp), kMaxRepeat, &n) ||
        !StartsWith(rest.substr(sp), " times: [") || !EndsWith(rest, "]")) {
      *why = "bad \"message repeated N times: [ ... ]\" (N at most " + std::to_string(kMaxRepeat) +
             ")";
      return LineKind::kMalformed;
    }
    std::string_view inner = rest.substr(sp + 9);
    inner.remove_suffix(1);
    inner = Trim(inner);
    const size_t before = out->size();
    LineKind kind = Message(line, inner, out, why);
    if (kind == LineKind::kEvents) {
      const std::vector<Event> once(out->begin() + static_cast<ptrdiff_t>(before), out->end());
      for (uint64_t i = 1; i < n; ++i) out->insert(out->end(), once.begin(), once.end());
    }
    return kind;
  }
  return Message(line, m, out, why);
}

LineKind AuthLogParser::Message(const Line& line, std::string_view message, std::vector<Event>* out,
                                std::string* why) {
  if (StartsWith(message, "pam_unix(")) return Pam(line, message, out, why);
  if (EndsWith(line.program, "(pam_unix)")) {
    // Linux-PAM before 0.99 tagged its lines "sshd(pam_unix)[pid]: authentication failure;
    // ..." instead of "sshd[pid]: pam_unix(sshd:auth): ...": the same messages, with the
    // service in the tag and the module type left to the text.
    Line pam = line;
    pam.program = line.program.substr(0, line.program.size() - 10);
    const char* type = StartsWith(message, "session ") ? "session" : "auth";
    const std::string modern =
        "pam_unix(" + pam.program + ":" + type + "): " + std::string(message);
    return Pam(pam, modern, out, why);
  }
  if (IsSshd(line.program)) return Sshd(line, message, out, why);
  if (line.program == "sudo") return Sudo(line, message, out, why);
  return LineKind::kOtherProgram;
}

Event AuthLogParser::Base(const Line& line) const {
  Event e;
  e.time_ns = line.time_ns;
  e.host = options_.host;
  e.host_id = options_.host;
  e.process.pid = line.pid;
  e.process.tgid = line.pid;
  e.process.comm = Clean(line.program, kCommBytes);
  return e;
}

Event AuthLogParser::LoginBase(const Line& line, const PidContext* context) const {
  Event e = Base(line);
  e.process.uid = 0;  // sshd, sudo, su and login authenticate as root
  if (IsSshd(line.program)) e.process.exe = "/usr/sbin/sshd";
  LoginEvent l;
  l.service = IsSshd(line.program) ? "sshd" : Clean(line.program, 64);
  l.auth_pid = line.pid;
  if (context != nullptr) {
    l.remote_addr = context->remote_addr;
    l.remote_port = context->remote_port;
    l.local_addr = context->local_addr;
    l.local_port = context->local_port;
  }
  e.body = l;
  return e;
}

AuthLogParser::PidContext& AuthLogParser::Context(uint32_t pid, int64_t time_ns) {
  auto it = pids_.find(pid);
  if (it == pids_.end()) {
    if (pids_.size() >= kMaxPids) {
      // Forget the context touched longest ago. Linear, but only once per kMaxPids new pids
      // after the cap is reached... and a log with that many concurrent sshds is rare.
      auto oldest = pids_.begin();
      for (auto i = pids_.begin(); i != pids_.end(); ++i) {
        if (i->second.touched_ns < oldest->second.touched_ns) oldest = i;
      }
      pids_.erase(oldest);
      ++pids_forgotten_;
    }
    it = pids_.emplace(pid, PidContext{}).first;
  }
  it->second.touched_ns = time_ns;
  return it->second;
}

const AuthLogParser::PidContext* AuthLogParser::FindContext(uint32_t pid) const {
  const auto it = pids_.find(pid);
  return it == pids_.end() ? nullptr : &it->second;
}

LineKind AuthLogParser::Sshd(const Line& line, std::string_view m, std::vector<Event>* out,
                             std::string* why) {
  if (StartsWith(m, "Accepted ")) {
    ForFrom f;
    if (!ParseForFrom(m.substr(9), &f)) {
      *why = "\"Accepted\" without \"for USER from ADDRESS port PORT\"";
      return LineKind::kUnrecognized;
    }
    PidContext& c = Context(line.pid, line.time_ns);
    c.remote_addr = f.addr;
    c.remote_port = f.port;
    c.user = f.user;
    c.session =
        "login:" + std::to_string(line.pid) + "." + std::to_string(line.time_ns / kNanosPerSecond);
    Event e = LoginBase(line, &c);
    LoginEvent& l = std::get<LoginEvent>(e.body);
    l.user = f.user;
    l.outcome = Outcome::kSuccess;
    l.source = LoginSource::kPam;
    // Keys and certificates skip pam_authenticate; pam_acct_mgmt is the first PAM call.
    l.stage = StartsWith(f.method, "password") || StartsWith(f.method, "keyboard-interactive")
                  ? LoginStage::kAuthenticate
                  : LoginStage::kAccount;
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  if (StartsWith(m, "Failed ")) {
    ForFrom f;
    if (!ParseForFrom(m.substr(7), &f)) {
      *why = "\"Failed\" without \"for USER from ADDRESS port PORT\"";
      return LineKind::kUnrecognized;
    }
    PidContext& c = Context(line.pid, line.time_ns);
    c.remote_addr = f.addr;
    c.remote_port = f.port;
    if (f.invalid_user) c.invalid_user = f.user;
    // sshd writes a btmp record for failed passwords (and keyboard-interactive, which is
    // how PAM asks for one); a refused key or the "none" probe is not a failed login.
    if (!StartsWith(f.method, "password") && !StartsWith(f.method, "keyboard-interactive")) {
      return LineKind::kNoEvent;
    }
    Event e = LoginBase(line, &c);
    LoginEvent& l = std::get<LoginEvent>(e.body);
    l.user = f.user;
    l.outcome = Outcome::kFailure;
    l.source = LoginSource::kUtmp;
    l.stage = LoginStage::kFailedRecord;
    l.reason = f.invalid_user ? "user unknown" : "failed " + f.method;
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  if (StartsWith(m, "Invalid user ")) {
    // "Invalid user U from A[ port P]"; U may be empty or hold spaces.
    std::string_view rest = m.substr(13);
    const size_t from = rest.rfind(" from ");
    std::string addr;
    uint32_t port = 0;
    if (from == std::string_view::npos || !ParseAddrPort(rest.substr(from + 6), &addr, &port)) {
      *why = "\"Invalid user\" without \"from ADDRESS\"";
      return LineKind::kUnrecognized;
    }
    PidContext& c = Context(line.pid, line.time_ns);
    c.remote_addr = addr;
    c.remote_port = port;
    c.invalid_user = Clean(rest.substr(0, from), 256);
    Event e = LoginBase(line, &c);
    LoginEvent& l = std::get<LoginEvent>(e.body);
    l.user = c.invalid_user;
    l.outcome = Outcome::kFailure;
    l.stage = LoginStage::kAuthenticate;
    l.reason = "invalid user";
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  {
    // "[error: ]maximum authentication attempts exceeded for [invalid user ]U from A port P
    // ssh2 [preauth]"
    const size_t at = m.find("maximum authentication attempts exceeded ");
    if (at != std::string_view::npos) {
      ForFrom f;
      if (!ParseForFrom(m.substr(at + 32), &f)) {
        *why = "\"maximum authentication attempts exceeded\" without an address";
        return LineKind::kUnrecognized;
      }
      PidContext& c = Context(line.pid, line.time_ns);
      c.remote_addr = f.addr;
      c.remote_port = f.port;
      Event e = LoginBase(line, &c);
      LoginEvent& l = std::get<LoginEvent>(e.body);
      l.user = f.user;
      l.outcome = Outcome::kFailure;
      l.stage = LoginStage::kAuthenticate;
      l.reason = "maximum authentication attempts exceeded";
      out->push_back(std::move(e));
      return LineKind::kEvents;
    }
  }
  if (StartsWith(m, "Disconnecting: Too many authentication failures") ||
      (StartsWith(m, "Disconnecting ") && Contains(m, ": Too many authentication failures"))) {
    const PidContext* c = FindContext(line.pid);
    Event e = LoginBase(line, c);
    LoginEvent& l = std::get<LoginEvent>(e.body);
    // "... failures for U [preauth]" (old) or "Disconnecting [invalid ]user U A port P: ..."
    if (const size_t f = m.find("failures for "); f != std::string_view::npos) {
      std::string_view u = m.substr(f + 13);
      if (EndsWith(u, " [preauth]")) u.remove_suffix(10);
      l.user = Clean(u, 256);
    } else if (c != nullptr) {
      l.user = c->invalid_user.empty() ? c->user : c->invalid_user;
    }
    if (l.remote_addr.empty()) {
      // "Disconnecting authenticating user root 1.2.3.4 port 22: Too many ..."
      std::string_view head = m.substr(0, m.find(": Too many"));
      const size_t port = head.rfind(" port ");
      if (port != std::string_view::npos) {
        const size_t sp = head.rfind(' ', port - 1);
        if (sp != std::string_view::npos) {
          ParseAddrPort(head.substr(sp + 1), &l.remote_addr, &l.remote_port);
          std::string_view who = head.substr(0, sp);
          const size_t u = who.rfind(' ');
          if (l.user.empty() && u != std::string_view::npos) l.user = Clean(who.substr(u + 1), 256);
        }
      }
    }
    l.outcome = Outcome::kFailure;
    l.stage = LoginStage::kAuthenticate;
    l.reason = "maximum authentication attempts exceeded";
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  if (StartsWith(m, "reverse mapping checking getaddrinfo for ") || StartsWith(m, "Address ")) {
    // "... for NAME [ADDR] failed - POSSIBLE BREAK-IN ATTEMPT!": the peer's address, which a
    // later pam_unix line may name only by host name.
    const size_t open = m.find('[');
    const size_t close = m.find(']', open == std::string_view::npos ? 0 : open);
    if (open != std::string_view::npos && close != std::string_view::npos) {
      std::string a = NormalizeAddress(m.substr(open + 1, close - open - 1));
      if (!a.empty()) Context(line.pid, line.time_ns).remote_addr = a;
    }
    return LineKind::kNoEvent;
  }
  if (StartsWith(m, "Connection from ")) {
    // "Connection from A port P on L port LP[ rdomain ...]"
    std::string_view rest = m.substr(16);
    const size_t on = rest.find(" on ");
    PidContext& c = Context(line.pid, line.time_ns);
    ParseAddrPort(rest.substr(0, on), &c.remote_addr, &c.remote_port);
    if (on != std::string_view::npos) {
      ParseAddrPort(rest.substr(on + 4), &c.local_addr, &c.local_port);
    }
    return LineKind::kNoEvent;
  }
  if (StartsWith(m, "PAM ") && Contains(m, " more authentication failure")) {
    return LineKind::kNoEvent;
  }
  for (std::string_view prefix : kSshdNoEvent) {
    if (StartsWith(m, prefix)) return LineKind::kNoEvent;
  }
  *why = "sshd message not understood";
  return LineKind::kUnrecognized;
}

LineKind AuthLogParser::Pam(const Line& line, std::string_view m, std::vector<Event>* out,
                            std::string* why) {
  // "pam_unix(SERVICE:TYPE): text"
  const size_t close = m.find("): ");
  const size_t colon = m.find(':');
  if (close == std::string_view::npos || colon == std::string_view::npos || colon > close) {
    *why = "bad pam_unix(SERVICE:TYPE) prefix";
    return LineKind::kUnrecognized;
  }
  const std::string service = Clean(m.substr(9, colon - 9), 64);
  const std::string_view type = m.substr(colon + 1, close - colon - 1);
  const std::string_view text = m.substr(close + 3);
  const bool ssh = IsSshd(line.program) || service == "sshd";
  const PidContext* context = ssh ? FindContext(line.pid) : nullptr;
  Event e = LoginBase(line, context);
  LoginEvent& l = std::get<LoginEvent>(e.body);
  l.service = service.empty() ? "unknown" : service;
  l.source = LoginSource::kPam;

  if (type == "auth" && StartsWith(text, "authentication failure;")) {
    // "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=R  user=U"
    l.user = Clean(PamField(text, "user"), 256);
    if (l.user.empty() && context != nullptr) l.user = context->invalid_user;
    const std::string_view rhost = PamField(text, "rhost");
    if (std::string a = NormalizeAddress(rhost); !a.empty()) {
      if (a != l.remote_addr) l.remote_port = 0;
      l.remote_addr = std::move(a);
    }
    l.outcome = Outcome::kFailure;
    l.stage = LoginStage::kAuthenticate;
    l.pam_code = 7;  // PAM_AUTH_ERR
    l.reason = "authentication failure";
    // sudo and su ask for the invoking user's password: that is the user to blame.
    if (l.user.empty()) l.user = Clean(PamField(text, "ruser"), 256);
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  if (type == "session" && (StartsWith(text, "session opened for user ") ||
                            StartsWith(text, "session closed for user "))) {
    const bool open = StartsWith(text, "session opened");
    // "U by (uid=0)", "U(uid=1000) by (uid=0)", "U by alice(uid=1000)", "U"
    std::string_view user = text.substr(24);
    user = user.substr(0, user.find(' '));
    if (const size_t paren = user.find("(uid="); paren != std::string_view::npos) {
      user = user.substr(0, paren);
    }
    l.user = Clean(user, 256);
    l.outcome = Outcome::kSuccess;
    l.stage = open ? LoginStage::kSessionOpen : LoginStage::kSessionClose;
    if (ssh && context != nullptr && !context->session.empty()) {
      e.session = context->session;
      if (open) {
        open_sessions_[l.user] = context->session;
      } else if (auto it = open_sessions_.find(l.user);
                 it != open_sessions_.end() && it->second == context->session) {
        open_sessions_.erase(it);
      }
    }
    out->push_back(std::move(e));
    return LineKind::kEvents;
  }
  // check pass; user unknown, account checks, password changes: nothing the sensor reports.
  if (type == "auth" || type == "account" || type == "session" || type == "chauthtok") {
    return LineKind::kNoEvent;
  }
  *why = "pam_unix message not understood";
  return LineKind::kUnrecognized;
}

LineKind AuthLogParser::Sudo(const Line& line, std::string_view m, std::vector<Event>* out,
                             std::string* why) {
  // "U : TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/cat /etc/shadow"
  // "U : 3 incorrect password attempts ; TTY=pts/0 ; PWD=... ; USER=root ; COMMAND=..."
  const size_t sep = m.find(" : ");
  if (sep == std::string_view::npos) {
    // "pam_unix(...)" is handled before; sudo's other messages are not about a command.
    if (StartsWith(m, "  ") || Contains(m, "a password is required")) return LineKind::kNoEvent;
    *why = "sudo message not understood";
    return LineKind::kUnrecognized;
  }
  const std::string user = Clean(Trim(m.substr(0, sep)), 256);
  std::string_view rest = m.substr(sep + 3);
  const size_t cmd_at = rest.find("COMMAND=");
  std::string_view runas;
  if (const size_t u = rest.find("USER="); u != std::string_view::npos) {
    runas = rest.substr(u + 5);
    runas = Trim(runas.substr(0, runas.find(" ;")));
  }
  if (const size_t inc = rest.find(" incorrect password attempt"); inc != std::string_view::npos) {
    uint64_t n = 0;
    std::string_view count = Trim(rest.substr(0, inc));
    count = count.substr(count.rfind(' ') == std::string_view::npos ? 0 : count.rfind(' ') + 1);
    if (!ParseUint(count, 1000, &n) || n == 0) {
      *why = "bad sudo incorrect password count";
      return LineKind::kUnrecognized;
    }
    for (uint64_t i = 0; i < n; ++i) {
      Event e = LoginBase(line, nullptr);
      LoginEvent& l = std::get<LoginEvent>(e.body);
      l.service = "sudo";
      l.user = user;
      l.outcome = Outcome::kFailure;
      l.stage = LoginStage::kAuthenticate;
      l.reason = "incorrect password";
      out->push_back(std::move(e));
    }
    return LineKind::kEvents;
  }
  if (cmd_at == std::string_view::npos || !StartsWith(Trim(rest), "TTY=")) {
    // "user NOT in sudoers", "command not allowed", ...: refused before anything ran.
    return LineKind::kNoEvent;
  }
  std::string_view command = Trim(rest.substr(cmd_at + 8));
  if (command.empty()) {
    *why = "sudo COMMAND= is empty";
    return LineKind::kUnrecognized;
  }
  Event e = Base(line);
  ExecEvent x;
  size_t start = 0;
  while (start < command.size() && x.argv.size() < kMaxArgs) {
    size_t end = command.find(' ', start);
    if (end == std::string_view::npos) end = command.size();
    if (end > start) x.argv.push_back(Clean(command.substr(start, end - start)));
    start = end + 1;
  }
  x.argv_truncated = start < command.size();
  x.filename = x.argv.empty() ? Clean(command) : x.argv.front();
  x.parent_comm = "sudo";
  const std::string target = runas.empty() ? "root" : Clean(runas, 256);
  e.process.user = target;
  e.process.uid = target == "root" ? 0 : kUnsetId;
  e.process.gid = target == "root" ? 0 : kUnsetId;
  e.process.login_user = user;
  e.process.comm = Clean(Basename(x.filename), kCommBytes);
  e.process.exe = x.filename;
  if (auto it = open_sessions_.find(user); it != open_sessions_.end()) e.session = it->second;
  e.body = std::move(x);
  out->push_back(std::move(e));
  return LineKind::kEvents;
}

}  // namespace tripline::import
