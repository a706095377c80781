// The forms an incident, or an audit event (a response action's step, an agent's trust
// decision), takes on its way to a SIEM (docs/forwarding.md has examples and the field
// mapping).
//
// - CEF (ArcSight Common Event Format) inside an RFC 5424 syslog message, framed by octet
//   counting (RFC 6587 section 3.4.1) for syslog over TCP and TLS;
// - OCSF Detection Finding (class_uid 2004) with the ATT&CK mapping, the affected users
//   and hosts as resources, and the chain and the evidence;
// - ECS (Elastic Common Schema) with event.kind "alert" and the threat.* fields;
// - the envelopes of Splunk's HTTP Event Collector and of Elasticsearch's _bulk API.
//
// Every value in an incident may come from an attacker (user names, host names, paths and
// command lines in evidence summaries, the title built from them). None of them can forge
// a field or a record: CEF values are escaped as ArcSight documents (header: `\` and `|`;
// extension: `\`, `=`, CR and LF as `\r` and `\n`), every other control character and
// every invalid UTF-8 byte becomes U+FFFD, lists inside a CEF value are JSON arrays, and the
// JSON forms are written by a JSON serializer (control characters as \uXXXX, invalid UTF-8
// replaced), one record per line with no raw newline inside.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "model/incident.h"
#include "tripline/v1/response.pb.h"

namespace tripline::forward {

// Text made safe for CEF and syslog: invalid UTF-8 bytes and control characters other than
// CR and LF become U+FFFD. (CR and LF are escaped by the CEF escapes below.)
std::string ReplaceControlsAndInvalidUtf8(std::string_view text);

// ArcSight's escaping, applied after ReplaceControlsAndInvalidUtf8.
// Header fields: `\` -> `\\`, `|` -> `\|`, and (a choice of Tripline's, as CEF forbids
// line breaks in the header) CR -> `\r`, LF -> `\n`.
std::string EscapeCefHeader(std::string_view text);
// Extension values: `\` -> `\\`, `=` -> `\=`, CR -> `\r`, LF -> `\n`.
std::string EscapeCefExtension(std::string_view text);

// "CEF:0|Tripline|Tripline|1|incident|<title>|<0-10>|<extension>"; see docs/forwarding.md.
std::string FormatCef(const Incident& incident);

// An RFC 5424 message: "<PRI>1 TIMESTAMP HOSTNAME tripline - incident - CEF:0|...".
// `hostname` is the aggregator's; anything outside printable US-ASCII in it becomes `_`.
// The timestamp is the incident revision's time (updated_ns), so a retried revision is the
// same bytes.
std::string FormatSyslog(const Incident& incident, std::string_view hostname);

// RFC 6587 octet counting: "<length in decimal> <message>".
std::string FrameOctetCounting(std::string_view message);

// OCSF 1.1 Detection Finding.
nlohmann::ordered_json ToOcsf(const Incident& incident);
// ECS 8.11 alert document.
nlohmann::ordered_json ToEcs(const Incident& incident);

// One JSON value on one line, ending in '\n'. Never throws: invalid UTF-8 is replaced.
std::string JsonLine(const nlohmann::ordered_json& value);

// Splunk HTTP Event Collector event (services/collector/event): {"time", "host", "source",
// "sourcetype", "event": <OCSF>} on one line.
std::string HecEvent(const Incident& incident, std::string_view hostname);

// Elasticsearch _bulk: an "index" action line and the ECS document, each ending in '\n'.
// The document id is the incident id and its external version the revision, so a SIEM
// keeps the latest revision once and a late retry of an older one cannot overwrite it.
// `index` is named in the action unless empty (when the URL's path names the index).
std::string BulkIndexLines(const Incident& incident, std::string_view index);

// Audit events, in the same forms: CEF event class "audit" inside RFC 5424 with facility 13
// (log audit); OCSF Entity Management (class_uid 3004), the entity being the action or the
// agent's trust level; ECS with event.kind "event" and event.category "configuration".
// The CEF severity and syslog severity are 3 and notice (5) for every step.
std::string AuditTitle(const v1::AuditEvent& event);  // "approved: lock account hosta/alice"
std::string FormatCef(const v1::AuditEvent& event);
std::string FormatSyslog(const v1::AuditEvent& event, std::string_view hostname);
nlohmann::ordered_json ToOcsf(const v1::AuditEvent& event);
nlohmann::ordered_json ToEcs(const v1::AuditEvent& event);
// sourcetype "tripline:audit:ocsf".
std::string HecEvent(const v1::AuditEvent& event, std::string_view hostname);
// The document id is the event id; an event never changes, so a retry writes the same.
std::string BulkIndexLines(const v1::AuditEvent& event, std::string_view index);

// ATT&CK technique name and tactic for the ids the correlator uses; empty for others.
struct AttackTechnique {
  std::string_view name;
  std::string_view tactic_id;
  std::string_view tactic_name;
};
AttackTechnique LookupTechnique(std::string_view id);

}  // namespace tripline::forward
