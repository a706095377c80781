// Trust levels of AI agents: an agent on probation has every anomaly escalated one level
// (aggregator/correlate/chain_scorer.h); leaving probation, or being put on it, is an
// explicit act of a named person, kept with who, when and why (docs/audit.md).
//
// An agent starts where its declaration puts it (tripline.v1.IdentityRule.trust:
// "probation", else trusted). A person's decision overrides the declaration from then on,
// until the next decision; every decision is kept, newest last (at most kMaxHistory per
// agent), numbered by one sequence over every agent. Records live in the baselines column family
// under kKeyPrefix, written with the correlator's snapshot like the kind suggestions
// (kind_suggester.h).
//
// Not thread-safe: the correlation engine calls it under its lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator/baseline/identity.h"
#include "common/status.h"

namespace tripline::baseline {

enum class TrustLevel : uint8_t { kTrusted = 0, kProbation = 1 };

// "trusted", "probation".
std::string_view TrustLevelName(TrustLevel level);
// The names above; false for anything else.
bool ParseTrustLevel(std::string_view name, TrustLevel* out);

struct TrustDecision {
  TrustLevel level = TrustLevel::kTrusted;  // what the person set
  std::string by;                           // who
  std::string reason;                       // why, in their words
  int64_t at_ns = 0;                        // when
  // The book's sequence number of the decision, over every agent: increasing, never reused
  // (the SIEM outputs' feed follows it). 0 for a decision recorded before it was numbered.
  uint64_t seq = 0;
};

// A decision with the agent it was about (DecisionsAfter).
struct AgentDecision {
  std::string agent;
  TrustDecision decision;
};

struct TrustRecord {
  std::string agent;  // the agent identity's name
  TrustLevel level = TrustLevel::kTrusted;
  bool declared_probation = false;     // the configuration puts it on probation
  std::vector<TrustDecision> history;  // a person's decisions, oldest first
};

class TrustBook {
 public:
  static constexpr std::string_view kKeyPrefix = "trust/";
  static constexpr size_t kMaxHistory = 32;
  static constexpr size_t kMaxAgents = 65536;
  static constexpr size_t kMaxNameBytes = 256;
  static constexpr size_t kMaxReasonBytes = 1024;

  // The level of `agent` now: the latest decision, else the declaration.
  TrustLevel LevelOf(const Identity& agent) const;
  bool OnProbation(const Identity& agent) const {
    return agent.kind == IdentityKind::kAgent && LevelOf(agent) == TrustLevel::kProbation;
  }

  // Records a person's decision on `agent` (an agent identity of `resolver`'s rules or a
  // name that was decided on before). InvalidArgument for an empty or oversized name,
  // `by` or reason, or a name no agent rule declares; ResourceExhausted beyond kMaxAgents.
  // A decision that changes nothing (the level it already has) is refused too
  // (FailedPrecondition): the trail holds acts, not repetitions.
  Result<TrustRecord> Decide(const Identity& agent, TrustLevel level, std::string_view by,
                             std::string_view reason, int64_t now_ns);

  // `agent`'s record; NotFound for an agent with no decision and no probation declared.
  Result<TrustRecord> Get(const Identity& agent) const;
  // Every agent decided on, and every agent of `declared` (the rules' agents on probation,
  // by name) not decided on yet; by name.
  std::vector<TrustRecord> List(const std::vector<std::string>& declared_probation) const;

  // Persistence: records changed since the last call (key, value); Load restores one.
  std::vector<std::pair<std::string, std::string>> TakeDirty();
  Status Load(std::string_view key, std::string_view value);

  size_t decided() const { return decided_.size(); }

  // Up to `max` kept decisions numbered above `after_seq`, in seq order.
  std::vector<AgentDecision> DecisionsAfter(uint64_t after_seq, size_t max) const;
  // The highest seq given so far, 0 before the first.
  uint64_t last_seq() const { return next_seq_ - 1; }

 private:
  std::map<std::string, std::vector<TrustDecision>, std::less<>> decided_;
  std::vector<std::string> dirty_;
  uint64_t next_seq_ = 1;  // above every loaded decision's
};

}  // namespace tripline::baseline
