#include "aggregator/forward/incident_formats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/clock.h"

namespace tripline::forward {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kProduct = "Tripline";
constexpr std::string_view kProductVersion = "1";
constexpr std::string_view kOcsfVersion = "1.1.0";
constexpr std::string_view kEcsVersion = "8.11.0";
// RFC 5424 facility 4 (security/authorization messages).
constexpr int kSyslogFacility = 4;
// Evidence items carried in a CEF record: rsyslog's and most collectors' default largest
// message is 8 KiB; the JSON forms carry all of them.
constexpr size_t kCefMaxEvidence = 16;

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629), 0 when there is none.
size_t Utf8SequenceAt(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

int64_t Millis(int64_t ns) { return ns / kNanosPerMilli; }

// RFC 3339 with microseconds, UTC, as RFC 5424 allows (TIME-SECFRAC up to 6 digits).
std::string Rfc3339Micros(int64_t ns) {
  int64_t secs = ns / kNanosPerSecond;
  int64_t rem = ns % kNanosPerSecond;
  if (rem < 0) {
    rem += kNanosPerSecond;
    secs -= 1;
  }
  const time_t t = static_cast<time_t>(secs);
  tm parts{};
  gmtime_r(&t, &parts);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<int>(rem / kNanosPerMicro));
  return buf;
}

int CefSeverity(Severity s) {
  switch (s) {
    case Severity::kInfo: return 1;
    case Severity::kLow: return 3;
    case Severity::kMedium: return 5;
    case Severity::kHigh: return 8;
    case Severity::kCritical: return 10;
  }
  return 0;
}

// RFC 5424 severities: critical 2 (crit), high 3 (err), medium 4 (warning), low 5 (notice),
// info 6 (informational).
int SyslogSeverity(Severity s) {
  switch (s) {
    case Severity::kCritical: return 2;
    case Severity::kHigh: return 3;
    case Severity::kMedium: return 4;
    case Severity::kLow: return 5;
    case Severity::kInfo: return 6;
  }
  return 6;
}

// The names after `prefix` ("user:", "host:", "source:") among the identities.
std::vector<std::string> IdentitiesOf(const Incident& incident, std::string_view prefix) {
  std::vector<std::string> out;
  for (const std::string& id : incident.identities) {
    if (id.size() > prefix.size() && id.compare(0, prefix.size(), prefix) == 0) {
      out.push_back(id.substr(prefix.size()));
    }
  }
  return out;
}

std::string Joined(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// Compact JSON of a list: its items cannot run into each other whatever they contain.
std::string JsonList(const nlohmann::ordered_json& list) {
  return list.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json HopJson(const Hop& h) {
  return {{"from", h.from},           {"to", h.to},     {"user", h.user},
          {"from_user", h.from_user}, {"port", h.port}, {"at", FormatTimeNs(h.at_ns)}};
}

nlohmann::ordered_json EvidenceJson(const EventRef& e) {
  return {{"sensor_id", e.sensor_id},        {"seq", e.seq},   {"host", e.host},
          {"time", FormatTimeNs(e.time_ns)}, {"kind", e.kind}, {"summary", e.summary}};
}

std::string SyslogHostname(std::string_view hostname) {
  std::string out;
  for (char c : hostname.substr(0, 255)) {
    out.push_back(c >= 33 && c <= 126 ? c : '_');
  }
  return out.empty() ? "-" : out;
}

// An incident with a hop is lateral movement; one without is an attack on credentials
// (brute force, spraying, a credential file read) that has not moved yet.
std::string_view Category(const Incident& incident) {
  return incident.chain.empty() ? "credential-access" : "lateral-movement";
}

int64_t RevisionTimeNs(const Incident& incident) {
  return incident.updated_ns != 0 ? incident.updated_ns : incident.last_seen_ns;
}

}  // namespace

std::string ReplaceControlsAndInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceAt(text, i);
    if (n == 0) {
      out.append(kReplacement);
      ++i;
      continue;
    }
    const auto c = static_cast<uint8_t>(text[i]);
    const bool c0 = n == 1 && (c < 0x20 || c == 0x7F) && c != '\r' && c != '\n';
    // C1 controls U+0080..U+009F are C2 80..C2 9F.
    const bool c1 = n == 2 && c == 0xC2 && static_cast<uint8_t>(text[i + 1]) < 0xA0;
    if (c0 || c1) {
      out.append(kReplacement);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

namespace {
std::string EscapeCef(std::string_view raw, char separator) {
  const std::string text = ReplaceControlsAndInvalidUtf8(raw);
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '\\' || c == separator) {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}
}  // namespace

std::string EscapeCefHeader(std::string_view text) { return EscapeCef(text, '|'); }
std::string EscapeCefExtension(std::string_view text) { return EscapeCef(text, '='); }

namespace {

// A CEF record: the header, then the extension's fields in the order added.
class CefWriter {
 public:
  CefWriter(std::string_view event_class, std::string_view name, int severity) {
    out_ = "CEF:0|";
    out_ += EscapeCefHeader(kProduct);
    out_ += '|';
    out_ += EscapeCefHeader(kProduct);
    out_ += '|';
    out_ += EscapeCefHeader(kProductVersion);
    out_ += '|';
    out_ += event_class;
    out_ += '|';
    out_ += EscapeCefHeader(name);
    out_ += '|';
    out_ += std::to_string(severity);
    out_ += '|';
  }
  void Add(std::string_view key, std::string_view value) {
    if (!first_) out_ += ' ';
    first_ = false;
    out_ += key;
    out_ += '=';
    out_ += EscapeCefExtension(value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  bool first_ = true;
};

// "<PRI>1 TIMESTAMP HOSTNAME tripline - MSGID - " followed by `cef`.
std::string SyslogMessage(int pri, int64_t time_ns, std::string_view hostname,
                          std::string_view msgid, std::string_view cef) {
  std::string out = "<";
  out += std::to_string(pri);
  out += ">1 ";
  out += Rfc3339Micros(time_ns);
  out += ' ';
  out += SyslogHostname(hostname);
  out += " tripline - ";
  out += msgid;
  out += " - ";
  out += cef;
  return out;
}

// A Splunk HEC event object on one line; `time` in epoch seconds with milliseconds.
std::string HecLine(int64_t time_ns, std::string_view hostname, std::string_view sourcetype,
                    nlohmann::ordered_json event) {
  const int64_t ms = Millis(time_ns);
  char time[32];
  std::snprintf(time, sizeof(time), "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  nlohmann::ordered_json e = {{"time", nlohmann::ordered_json::parse(time)},
                              {"host", std::string(hostname)},
                              {"source", "tripline"},
                              {"sourcetype", std::string(sourcetype)},
                              {"event", std::move(event)}};
  return JsonLine(e);
}

}  // namespace

std::string FormatCef(const Incident& incident) {
  CefWriter cef("incident", incident.title, CefSeverity(incident.severity));
  const auto add = [&](std::string_view key, std::string_view value) { cef.Add(key, value); };
  const std::vector<std::string> users = IdentitiesOf(incident, "user:");
  const std::vector<std::string> sources = IdentitiesOf(incident, "source:");
  add("externalId", incident.id);
  add("cn1", std::to_string(incident.revision));
  add("cn1Label", "revision");
  add("rt", std::to_string(Millis(RevisionTimeNs(incident))));
  add("start", std::to_string(Millis(incident.first_seen_ns)));
  add("end", std::to_string(Millis(incident.last_seen_ns)));
  add("cat", Category(incident));
  if (!users.empty()) add("suser", users.front());
  if (!incident.chain.empty()) add("duser", incident.chain.back().user);
  if (!incident.hosts.empty()) {
    add("shost", incident.hosts.front());
    add("dhost", incident.hosts.back());
  }
  char confidence[32];
  std::snprintf(confidence, sizeof(confidence), "%.2f", incident.confidence);
  add("cfp1", confidence);
  add("cfp1Label", "confidence");
  add("cnt", std::to_string(incident.events.size()));
  add("cs1", JsonList(incident.hosts));
  add("cs1Label", "hosts");
  add("cs2", JsonList(incident.techniques));
  add("cs2Label", "techniques");
  add("cs3", JsonList(incident.identities));
  add("cs3Label", "identities");
  nlohmann::ordered_json hops = nlohmann::ordered_json::array();
  for (const Hop& h : incident.chain) hops.push_back(HopJson(h));
  add("cs4", JsonList(hops));
  add("cs4Label", "chain");
  add("cs5", JsonList(sources));
  add("cs5Label", "sources");
  nlohmann::ordered_json evidence = nlohmann::ordered_json::array();
  for (size_t i = 0; i < incident.events.size() && i < kCefMaxEvidence; ++i) {
    const EventRef& e = incident.events[i];
    evidence.push_back(e.host + " " + FormatTimeNs(e.time_ns) + " " + e.kind + ": " + e.summary);
  }
  add("cs6", JsonList(evidence));
  add("cs6Label", "evidence");
  add("msg", Joined(incident.explanation, " "));
  return cef.Take();
}

std::string FormatSyslog(const Incident& incident, std::string_view hostname) {
  return SyslogMessage(kSyslogFacility * 8 + SyslogSeverity(incident.severity),
                       RevisionTimeNs(incident), hostname, "incident", FormatCef(incident));
}

std::string FrameOctetCounting(std::string_view message) {
  std::string out = std::to_string(message.size());
  out += ' ';
  out += message;
  return out;
}

AttackTechnique LookupTechnique(std::string_view id) {
  static constexpr std::string_view kCredentialAccess[2] = {"TA0006", "Credential Access"};
  struct Row {
    std::string_view id, name, tactic_id, tactic_name;
  };
  static constexpr Row kRows[] = {
      {"T1110.001", "Brute Force: Password Guessing", kCredentialAccess[0], kCredentialAccess[1]},
      {"T1110.003", "Brute Force: Password Spraying", kCredentialAccess[0], kCredentialAccess[1]},
      {"T1110.004", "Brute Force: Credential Stuffing", kCredentialAccess[0], kCredentialAccess[1]},
      {"T1078", "Valid Accounts", "TA0001", "Initial Access"},
      {"T1003.008", "OS Credential Dumping: /etc/passwd and /etc/shadow", kCredentialAccess[0],
       kCredentialAccess[1]},
      {"T1552.004", "Unsecured Credentials: Private Keys", kCredentialAccess[0],
       kCredentialAccess[1]},
      {"T1098.004", "Account Manipulation: SSH Authorized Keys", "TA0003", "Persistence"},
      {"T1021.004", "Remote Services: SSH", "TA0008", "Lateral Movement"},
      {"T1083", "File and Directory Discovery", "TA0007", "Discovery"},
  };
  for (const Row& r : kRows) {
    if (r.id == id) return {r.name, r.tactic_id, r.tactic_name};
  }
  return {};
}

nlohmann::ordered_json ToOcsf(const Incident& incident) {
  using json = nlohmann::ordered_json;
  const int activity = incident.revision <= 1 ? 1 : 2;  // Create, Update
  json attacks = json::array();
  for (const std::string& t : incident.techniques) {
    const AttackTechnique a = LookupTechnique(t);
    json attack = {{"technique", {{"uid", t}}}, {"version", "14.1"}};
    if (!a.name.empty()) {
      attack["technique"]["name"] = a.name;
      attack["tactic"] = {{"uid", a.tactic_id}, {"name", a.tactic_name}};
    }
    attacks.push_back(std::move(attack));
  }
  json related = json::array();
  for (const EventRef& e : incident.events) {
    related.push_back({{"uid", e.sensor_id + ":" + std::to_string(e.seq)},
                       {"type", e.kind},
                       {"desc", e.summary},
                       {"first_seen_time", Millis(e.time_ns)},
                       {"product_uid", e.host}});
  }
  json resources = json::array();
  for (const std::string& h : incident.hosts) {
    resources.push_back({{"type", "host"}, {"name", h}});
  }
  for (const std::string& u : IdentitiesOf(incident, "user:")) {
    resources.push_back({{"type", "user"}, {"name", u}});
  }
  json evidences = json::array();
  for (const Hop& h : incident.chain) {
    evidences.push_back({{"src_endpoint", {{"hostname", h.from}}},
                         {"dst_endpoint", {{"hostname", h.to}, {"port", h.port}}},
                         {"user", {{"name", h.user}}},
                         {"data", HopJson(h)}});
  }
  for (const std::string& s : IdentitiesOf(incident, "source:")) {
    evidences.push_back({{"src_endpoint", {{"ip", s}}}});
  }
  const std::string_view severity = SeverityName(incident.severity);
  std::string severity_label(severity);
  if (!severity_label.empty()) severity_label[0] = static_cast<char>(severity_label[0] - 32);
  if (severity_label == "Info") severity_label = "Informational";
  return json{
      {"class_uid", 2004},
      {"class_name", "Detection Finding"},
      {"category_uid", 2},
      {"category_name", "Findings"},
      {"activity_id", activity},
      {"activity_name", activity == 1 ? "Create" : "Update"},
      {"type_uid", 200400 + activity},
      {"type_name", activity == 1 ? "Detection Finding: Create" : "Detection Finding: Update"},
      {"time", Millis(RevisionTimeNs(incident))},
      {"severity_id", static_cast<int>(incident.severity)},
      {"severity", severity_label},
      {"status_id", 1},
      {"status", "New"},
      {"message", incident.title},
      {"confidence_score", static_cast<int>(std::lround(incident.confidence * 100))},
      {"risk_score", static_cast<int>(std::lround(incident.score))},
      {"metadata",
       {{"version", kOcsfVersion},
        {"product", {{"name", kProduct}, {"vendor_name", kProduct}, {"version", kProductVersion}}},
        {"uid", incident.id + ":" + std::to_string(incident.revision)},
        {"correlation_uid", incident.id}}},
      {"finding_info",
       {{"uid", incident.id},
        {"title", incident.title},
        {"desc", Joined(incident.explanation, " ")},
        {"types", {Category(incident)}},
        {"created_time", Millis(incident.first_seen_ns)},
        {"first_seen_time", Millis(incident.first_seen_ns)},
        {"last_seen_time", Millis(incident.last_seen_ns)},
        {"modified_time", Millis(RevisionTimeNs(incident))},
        {"analytic", {{"name", "Tripline chain correlator"}, {"type_id", 99}, {"type", "Other"}}},
        {"attacks", std::move(attacks)},
        {"related_events", std::move(related)}}},
      {"resources", std::move(resources)},
      {"evidences", std::move(evidences)},
      {"unmapped",
       {{"revision", incident.revision},
        {"hosts", incident.hosts},
        {"identities", incident.identities},
        {"explanation", incident.explanation}}},
  };
}

nlohmann::ordered_json ToEcs(const Incident& incident) {
  using json = nlohmann::ordered_json;
  json technique_ids = json::array(), technique_names = json::array();
  json tactic_ids = json::array(), tactic_names = json::array();
  for (const std::string& t : incident.techniques) {
    const AttackTechnique a = LookupTechnique(t);
    technique_ids.push_back(t);
    technique_names.push_back(a.name);
    if (!a.tactic_id.empty() &&
        std::find(tactic_ids.begin(), tactic_ids.end(), a.tactic_id) == tactic_ids.end()) {
      tactic_ids.push_back(a.tactic_id);
      tactic_names.push_back(a.tactic_name);
    }
  }
  json chain = json::array();
  for (const Hop& h : incident.chain) chain.push_back(HopJson(h));
  json evidence = json::array();
  for (const EventRef& e : incident.events) evidence.push_back(EvidenceJson(e));
  const std::vector<std::string> users = IdentitiesOf(incident, "user:");
  const std::vector<std::string> sources = IdentitiesOf(incident, "source:");
  json doc = {
      {"@timestamp", FormatTimeNs(RevisionTimeNs(incident))},
      {"ecs", {{"version", kEcsVersion}}},
      {"message", incident.title},
      {"event",
       {{"kind", "alert"},
        {"category", {"intrusion_detection"}},
        {"type", {"info"}},
        {"id", incident.id},
        {"sequence", incident.revision},
        {"severity", static_cast<int>(incident.severity)},
        {"risk_score", incident.score},
        {"start", FormatTimeNs(incident.first_seen_ns)},
        {"end", FormatTimeNs(incident.last_seen_ns)},
        {"reason", Joined(incident.explanation, " ")},
        {"module", "tripline"},
        {"dataset", "tripline.incident"},
        {"provider", "tripline"}}},
      {"observer", {{"vendor", kProduct}, {"product", kProduct}, {"type", "ids"}}},
      {"rule", {{"name", incident.title}}},
      {"threat",
       {{"framework", "MITRE ATT&CK"},
        {"technique", {{"id", std::move(technique_ids)}, {"name", std::move(technique_names)}}},
        {"tactic", {{"id", std::move(tactic_ids)}, {"name", std::move(tactic_names)}}}}},
      {"related", {{"user", users}, {"hosts", incident.hosts}, {"ip", sources}}},
  };
  if (!users.empty()) doc["user"] = {{"name", users.front()}};
  if (!incident.hosts.empty()) {
    doc["source"] = {{"address", incident.hosts.front()}};
    doc["destination"] = {{"address", incident.hosts.back()}};
  }
  doc["tripline"] = {{"incident",
                      {{"id", incident.id},
                       {"revision", incident.revision},
                       {"severity", SeverityName(incident.severity)},
                       {"confidence", incident.confidence},
                       {"hosts", incident.hosts},
                       {"identities", incident.identities},
                       {"techniques", incident.techniques},
                       {"chain", std::move(chain)},
                       {"evidence", std::move(evidence)},
                       {"explanation", incident.explanation}}}};
  return doc;
}

std::string JsonLine(const nlohmann::ordered_json& value) {
  std::string out = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

std::string HecEvent(const Incident& incident, std::string_view hostname) {
  return HecLine(RevisionTimeNs(incident), hostname, "tripline:incident:ocsf", ToOcsf(incident));
}

std::string BulkIndexLines(const Incident& incident, std::string_view index) {
  nlohmann::ordered_json action = {
      {"_id", incident.id}, {"version", incident.revision}, {"version_type", "external"}};
  if (!index.empty()) action["_index"] = std::string(index);
  return JsonLine({{"index", std::move(action)}}) + JsonLine(ToEcs(incident));
}

namespace {

// RFC 5424 facility 13 (log audit), severity notice.
constexpr int kAuditFacility = 13;
constexpr int kAuditSyslogSeverity = 5;
constexpr int kAuditCefSeverity = 3;

bool IsTrust(const v1::AuditEvent& e) { return e.source() == v1::AuditEvent::SOURCE_TRUST; }

std::string_view ActionKindName(v1::Action::Kind kind) {
  switch (kind) {
    case v1::Action::KIND_LOCK_ACCOUNT: return "lock account";
    case v1::Action::KIND_ISOLATE_HOST: return "isolate host";
    case v1::Action::KIND_KILL_SESSION: return "end sessions";
    case v1::Action::KIND_BLOCK_ADDRESS: return "block address";
    default: return "action";
  }
}

std::string_view Step(const v1::AuditEvent& e) {
  return e.step().empty() ? std::string_view("other") : std::string_view(e.step());
}

std::string_view AuditCategory(const v1::AuditEvent& e) {
  return IsTrust(e) ? "agent-trust" : "response";
}

// What the step acted on, for people: "lock account hosta/alice", "agent aiops".
std::string AuditSubject(const v1::AuditEvent& e) {
  if (IsTrust(e)) return "agent " + e.agent();
  return std::string(ActionKindName(e.action_kind())) + " " + e.target();
}

}  // namespace

std::string AuditTitle(const v1::AuditEvent& event) {
  if (IsTrust(event)) {
    return (event.level() == "trusted" ? "promoted to trusted: " : "put on probation: ") +
           AuditSubject(event);
  }
  return std::string(Step(event)) + ": " + AuditSubject(event);
}

std::string FormatCef(const v1::AuditEvent& event) {
  CefWriter cef("audit", AuditTitle(event), kAuditCefSeverity);
  const auto add = [&](std::string_view key, std::string_view value) { cef.Add(key, value); };
  add("externalId", event.id());
  add("rt", std::to_string(Millis(event.at_ns())));
  add("cat", AuditCategory(event));
  add("act", Step(event));
  add("suser", event.by());
  add("cn1", std::to_string(event.seq()));
  add("cn1Label", "sequence");
  if (IsTrust(event)) {
    add("duser", event.agent());
    add("cs1", event.level());
    add("cs1Label", "trustLevel");
    add("msg", event.reason());
  } else {
    add("cs1", event.action_id());
    add("cs1Label", "action");
    add("cs2", ActionKindName(event.action_kind()));
    add("cs2Label", "actionKind");
    add("cs3", event.target());
    add("cs3Label", "target");
    add("cs4", event.incident_id());
    add("cs4Label", "incident");
    add("dhost", event.host());
    if (event.action_kind() == v1::Action::KIND_BLOCK_ADDRESS) {
      add("cs5", event.subject());
      add("cs5Label", "address");
    } else if (!event.subject().empty()) {
      add("duser", event.subject());
    }
    add("msg", event.what());
  }
  return cef.Take();
}

std::string FormatSyslog(const v1::AuditEvent& event, std::string_view hostname) {
  return SyslogMessage(kAuditFacility * 8 + kAuditSyslogSeverity, event.at_ns(), hostname, "audit",
                       FormatCef(event));
}

nlohmann::ordered_json ToOcsf(const v1::AuditEvent& event) {
  using json = nlohmann::ordered_json;
  // Create for a proposal, Update for every later step and for trust decisions.
  const int activity = event.step() == "proposed" ? 1 : 3;
  json entity;
  json data;
  if (IsTrust(event)) {
    entity = {{"uid", event.agent()}, {"name", event.agent()}, {"type", "agent trust level"}};
    data = {{"agent", event.agent()}, {"level", event.level()}, {"reason", event.reason()}};
  } else {
    entity = {
        {"uid", event.action_id()}, {"name", AuditSubject(event)}, {"type", "response action"}};
    data = {{"action_id", event.action_id()}, {"kind", ActionKindName(event.action_kind())},
            {"target", event.target()},       {"host", event.host()},
            {"subject", event.subject()},     {"incident_id", event.incident_id()}};
  }
  entity["data"] = std::move(data);
  return json{
      {"class_uid", 3004},
      {"class_name", "Entity Management"},
      {"category_uid", 3},
      {"category_name", "Identity & Access Management"},
      {"activity_id", activity},
      {"activity_name", activity == 1 ? "Create" : "Update"},
      {"type_uid", 300400 + activity},
      {"type_name", activity == 1 ? "Entity Management: Create" : "Entity Management: Update"},
      {"time", Millis(event.at_ns())},
      {"severity_id", 1},
      {"severity", "Informational"},
      {"status_id", 1},
      {"status", "Success"},
      {"message", AuditTitle(event)},
      {"comment", IsTrust(event) ? event.reason() : event.what()},
      {"actor", {{"user", {{"name", event.by()}}}}},
      {"entity", std::move(entity)},
      {"metadata",
       {{"version", kOcsfVersion},
        {"product", {{"name", kProduct}, {"vendor_name", kProduct}, {"version", kProductVersion}}},
        {"uid", event.id()},
        {"sequence", event.seq()},
        {"correlation_uid", IsTrust(event) ? event.agent() : event.incident_id()}}},
      {"unmapped", {{"source", AuditCategory(event)}, {"step", Step(event)}}},
  };
}

nlohmann::ordered_json ToEcs(const v1::AuditEvent& event) {
  using json = nlohmann::ordered_json;
  json audit = {{"id", event.id()},   {"source", AuditCategory(event)},
                {"seq", event.seq()}, {"step", Step(event)},
                {"by", event.by()},   {"what", event.what()}};
  if (IsTrust(event)) {
    audit["agent"] = event.agent();
    audit["level"] = event.level();
    audit["reason"] = event.reason();
  } else {
    audit["action"] = {{"id", event.action_id()},    {"kind", ActionKindName(event.action_kind())},
                       {"target", event.target()},   {"host", event.host()},
                       {"subject", event.subject()}, {"incident_id", event.incident_id()}};
  }
  json doc = {
      {"@timestamp", FormatTimeNs(event.at_ns())},
      {"ecs", {{"version", kEcsVersion}}},
      {"message", AuditTitle(event)},
      {"event",
       {{"kind", "event"},
        {"category", {"configuration"}},
        {"type", {event.step() == "proposed" ? "creation" : "change"}},
        {"action", std::string(AuditCategory(event)) + "-" + std::string(Step(event))},
        {"id", event.id()},
        {"sequence", event.seq()},
        {"module", "tripline"},
        {"dataset", "tripline.audit"},
        {"provider", "tripline"}}},
      {"observer", {{"vendor", kProduct}, {"product", kProduct}, {"type", "ids"}}},
      {"user",
       {{"name", event.by()},
        {"target", {{"name", IsTrust(event) ? event.agent() : event.subject()}}}}},
  };
  if (!IsTrust(event)) {
    doc["host"] = {{"name", event.host()}};
    if (event.action_kind() == v1::Action::KIND_BLOCK_ADDRESS) {
      doc["user"].erase("target");
      doc["source"] = {{"address", event.subject()}};
    }
  }
  doc["tripline"] = {{"audit", std::move(audit)}};
  return doc;
}

std::string HecEvent(const v1::AuditEvent& event, std::string_view hostname) {
  return HecLine(event.at_ns(), hostname, "tripline:audit:ocsf", ToOcsf(event));
}

std::string BulkIndexLines(const v1::AuditEvent& event, std::string_view index) {
  nlohmann::ordered_json action = {{"_id", event.id()}};
  if (!index.empty()) action["_index"] = std::string(index);
  return JsonLine({{"index", std::move(action)}}) + JsonLine(ToEcs(event));
}

}  // namespace tripline::forward
