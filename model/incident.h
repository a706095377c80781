// Incident: one attack chain raised by the correlator, in domain form.
//
// An incident is keyed by `id` and grows as its chain grows: every change the correlator
// reports carries the same id and a higher `revision`. The fields map one to one onto
// tripline.v1.Incident (proto/tripline/v1/query.proto); the service layer converts.
// IncidentToJson gives the JSON form of the interface contract (design.md).
//
// Plain values, no behaviour beyond conversion: safe to copy across threads.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline {

// Numbering follows tripline.v1.Severity so conversion is a cast.
enum class Severity : uint8_t { kInfo = 1, kLow = 2, kMedium = 3, kHigh = 4, kCritical = 5 };

// "info", "low", "medium", "high", "critical".
std::string_view SeverityName(Severity s);
// Inverse of SeverityName; false when unknown.
bool ParseSeverityName(std::string_view name, Severity* out);

// One hop of a lateral-movement chain: a login on `to` that came from a session on `from`.
struct Hop {
  std::string from;       // source host
  std::string to;         // destination host
  std::string user;       // account logged in on the destination
  std::string from_user;  // account of the session on the source
  int64_t at_ns = 0;      // time of the login on the destination
  uint32_t port = 0;      // destination (SSH) port

  friend bool operator==(const Hop&, const Hop&) = default;
};

// One stage of the attack where it happened: a credential attack, a valid account used, a
// secret read, a hop, a rule's hit; what the console marks on the chain's hosts.
struct Stage {
  std::string host;
  std::string technique;  // ATT&CK id
  std::string what;       // a few words a person reads: "read /etc/shadow (cat)"
  int64_t at_ns = 0;      // 0 when the stage has no single time (a discovery burst)

  friend bool operator==(const Stage&, const Stage&) = default;
};

// A pointer to a stored event (the events column family is keyed by sensor and seq).
struct EventRef {
  std::string sensor_id;
  uint64_t seq = 0;
  std::string host;
  int64_t time_ns = 0;
  std::string kind;     // login, file_open, exec, net, posture, health
  std::string summary;  // one line a person can read

  friend bool operator==(const EventRef&, const EventRef&) = default;
};

struct Incident {
  std::string id;  // "inc-" + 16 hex digits; stable for the life of the chain
  Severity severity = Severity::kInfo;
  std::string title;
  std::vector<std::string> identities;   // "user:alice", "host:hosta", "source:198.18.0.66"
  std::vector<std::string> hosts;        // in chain order
  std::vector<std::string> techniques;   // ATT&CK ids, sorted
  int64_t first_seen_ns = 0;             // earliest evidence
  int64_t last_seen_ns = 0;              // latest evidence (not every event of the chain)
  std::vector<Hop> chain;                // by time
  std::vector<EventRef> events;          // the evidence, by time
  std::vector<std::string> explanation;  // sentences a person can act on
  double confidence = 1.0;               // 0..1: lowered where sensors dropped data
  double score = 0;                      // the rule-based score behind severity
  uint32_t revision = 0;                 // 1 when raised, +1 on every change
  int64_t updated_ns = 0;                // clock time of the latest revision
  std::vector<Stage> stages;             // by time; derived from what the fields above hold

  friend bool operator==(const Incident&, const Incident&) = default;
};

// JSON with the interface-contract names (`first_seen`, `last_seen` and each hop's `at` as
// RFC 3339 text) plus the exact nanosecond fields (`first_seen_ns`, ...) used to read back.
nlohmann::json IncidentToJson(const Incident& incident);
nlohmann::json HopToJson(const Hop& hop);
nlohmann::json EventRefToJson(const EventRef& ref);
// Inverses of the above. Type-checked, never throw: a missing or mistyped field is an
// InvalidArgument naming the field.
Result<Incident> IncidentFromJson(const nlohmann::json& j);
Result<Hop> HopFromJson(const nlohmann::json& j);
Result<EventRef> EventRefFromJson(const nlohmann::json& j);

}  // namespace tripline
