// Chain scoring: the transparent rules that turn a chain's evidence into a score, a
// severity, a confidence and the incident a person reads.
//
// Points (additive; the rule names appear in the incident's explanation where they apply):
//
//   stage                                                     points
//   T1110.001 brute force (>= brute_force_failures, one account)  15 (20 at >= 5 failures)
//   T1110.003 password spraying / T1110.004 credential stuffing   20
//   T1078 login after a credential attack from that source        25
//   T1078 first login of an account from an address (weak)         5
//   T1003.008 /etc/shadow or gshadow read (denied: 20)            30
//   T1552.004 private or host key read                            25
//   T1098.004 authorized_keys opened for writing                  30
//   T1083 discovery burst                                         10
//   Sigma rule hit (aggregator/rules/), per rule by its level: low 5, medium 15,
//   high 25, critical 35 (informational 0); at most 45 in all; its ATT&CK tags join
//   the techniques; medium and above are raising stages
//   T1021.004 SSH hop                                             10 each, at most 30
//   fast movement (mean gap between logins along the chain <= 2 min)  +10
//   a privileged account in the chain                             +10
//   compromised account (brute force / spray / stuffing + login) that then moved  +15
//
// Learned baselines (when attached, see aggregator/baseline/) replace the interim weights
// where they apply. With S a calibrated baseline score in 0..1:
//   T1078 entry login the warm baseline finds anomalous (S >= 0.75)  20 + 30 S, raising
//   T1078 entry login somewhat unusual (0.5 <= S < 0.75)            20 S
//   (a warm baseline's verdict replaces the weak first-source stage: 5 points only
//   when the identity is still warming up)
//   SSH hop judged by a warm baseline                 5 + 20 S each (unjudged hops 10 each),
//                                                     at most 40 in all
//   a chain of anomalous hops (sum of S >= 1.5)        raising
//   session activity (process, sensitive file, destination) with S >= 0.75   +10
//   a chain of corroborated anomalies: at least two stages (entry login, hop, a session's
//     activity) each S >= 0.25, combined (baseline::Corroborate) >= 0.95    +10, raising
//   3-4 failures, then a login the warm baseline scores < 0.3 (a usual network at a usual
//     hour): a mistyped password, 5 points instead of 25 and not raising
//
// Severity: < 20 info, < 40 low, < 60 medium, < 80 high, otherwise critical.
// Standing privileges (posture, model/posture_checks.h): a chain that involves a service
// account or agent with root's power (uid 0, a root-equivalent group, sudo ALL) or a
// password that never expires, or any account other than root with uid 0, is one
// severity level higher than its score says, and its explanation says why. The score, and
// whether the chain is raised, do not change: standing privilege makes an attack worse, it
// is not one.
// Trust (aggregator/baseline/trust_book.h): a chain that involves an agent on probation is
// one more level higher, and for it every anomaly the warm baselines name (an entry login
// scored >= 0.5, session activity or hops >= 0.75) is a raising stage: what would be a
// few points for a trusted agent is an incident for one on probation.
// Raised as an incident when the chain holds a "raising" stage (credential attack, login
// after it, shadow, keys, authorized_keys) and scores >= 20, or scores >= 50 on movement
// alone. Discovery, first-time sources, hops and privilege add weight but never raise on
// their own: admins do all of them every day.
// Confidence: 1, times 0.75 for each host of the chain whose sensor reported dropped events
// during the chain (0.5 when it dropped 1000 or more), never below 0.1. Drops lower
// confidence, not severity: missing data can hide a worse chain as easily as a benign one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aggregator/correlate/correlator_state.h"
#include "model/incident.h"

namespace tripline::correlate {

inline constexpr double kRaiseScore = 20;
// Failures for one account from one source from which a brute force that gets nowhere is
// raised on its own (20 points, low): one connection that hit sshd's MaxAuthTries (6) is
// flagged, a person's three or four tries of an old password are not.
inline constexpr uint32_t kBruteForceRaiseFailures = 5;
// Baseline scores at least this are named in explanations and mark activity.
inline constexpr double kBaselineNotable = 0.75;
inline constexpr double kBaselineLoginRaise = 0.75;
inline constexpr double kBaselineUnusualLogin = 0.5;
inline constexpr double kBaselineQuietHops = 1.5;
// Session activity (programs, files, destinations, escalations) scored at least this is
// combined into the session's activity score (baseline::Corroborate).
inline constexpr double kBaselineActivityConsidered = 0.35;
// A chain with at least kBaselineChainStages stages scored >= kBaselineChainStage (entry
// login, hops, sessions' activity; 0.25 is one feature at p ~ 0.035) whose corroborated
// anomaly reaches kBaselineChainRaise raises.
inline constexpr double kBaselineChainRaise = 0.95;
inline constexpr double kBaselineChainStage = 0.25;
inline constexpr uint32_t kBaselineChainStages = 2;
// Three or four failures and then a login the warm baseline finds ordinary (from a network
// and address the identity uses, and scored below this, so at an hour not unusual for it)
// are a person mistyping, not a raising stage.
inline constexpr double kBaselineTypoLogin = 0.3;
inline constexpr double kRaiseScoreMovementOnly = 50;
inline constexpr int64_t kFastHopGapNs = 120 * kNanosPerSecond;

// Dropped events one host's sensor reported while the chain was active.
struct HostDataGap {
  std::string host;
  uint64_t drops = 0;
  std::vector<HookFamilyStatus> blind;  // hook families not live there
};

// An identity of the chain whose standing privileges make it more severe (see above).
struct IdentityRisk {
  std::string host;
  std::string user;
  std::string kind;                      // "service", "agent" or "human"
  std::vector<std::string> root_powers;  // "is in group root", ...
  bool never_expires = false;            // a usable password whose ageing is off
  // Privileges it holds on the host and never exercised while watched (drift_view.h):
  // "sudo", "group:docker", "login", ...
  std::vector<std::string> unused;
  int64_t watched_ns = 0;
};

// How the chain's identities stand (correlator.cc, StandingOf).
struct Standing {
  std::vector<IdentityRisk> risks;        // standing privileges
  std::vector<std::string> on_probation;  // agents on probation, by identity name
};

struct Assessment {
  double score = 0;
  Severity severity = Severity::kInfo;
  std::vector<std::string> techniques;  // sorted
  bool raise = false;
  double confidence = 1.0;
  bool fast_movement = false;
  bool typo = false;          // failures then an ordinary login: a person mistyping
  bool corroborated = false;  // the baselines' corroborated anomalies raise the chain
  int64_t movement_ns = 0;    // from the first login of the chain to its last hop
  // The severity the score gives; `severity` is one level higher for each of: an identity
  // with standing privileges (posture_raised), an agent on probation (probation_raised).
  Severity scored_severity = Severity::kInfo;
  bool posture_raised = false;
  bool probation_raised = false;
  bool probation_anomaly = false;  // a baseline anomaly of an agent on probation raises
};

Assessment AssessChain(const Chain& chain, const std::vector<HostDataGap>& gaps,
                       const Standing& standing = {});

// Whether the chain's warm baselines name an anomaly that raises for an agent on probation
// (see above): only then can the agents of a chain change whether it is raised.
bool ProbationAnomaly(const ChainBaseline& b);

Severity SeverityForScore(double score);

// The attack's stages on their hosts, by time (Incident::stages): the credential attack, the
// valid account used, each secret read or key planted, each Sigma rule's hit, each hop and
// each discovery burst. At most kMaxStages.
inline constexpr size_t kMaxStages = 64;
std::vector<Stage> Stages(const Chain& c, const Assessment& a);

// The incident for `chain` as it stands (id, revision and updated_ns are left to the caller).
Incident BuildIncident(const Chain& chain, const Assessment& assessment,
                       const std::vector<HostDataGap>& gaps, const Standing& standing = {});

// "03:41:07 UTC": the time of day, which is what a person reading one incident needs.
std::string TimeOfDay(int64_t ns);

}  // namespace tripline::correlate
