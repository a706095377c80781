// Sigma rules evaluated natively on Tripline's events (docs/sigma.md).
//
// A RuleSet is compiled once from YAML text (a directory of .yml/.yaml files, read
// recursively) and never changes: every rule is `loaded`, `unsupported` (it needs a field
// or a log source Tripline does not capture, named in the reason: such a rule never runs,
// not even in part) or `broken` (bad YAML or bad Sigma, reported with file:line). One bad
// rule never stops the others.
//
// Evaluation: rules are indexed by the event kind their log source maps to and by the
// literals they require; one Hyperscan database per field finds, in one pass over each
// field of the event, every rule whose required literals occur, and only those rules (and
// the few that require no literal) are evaluated in full. `re` runs on RE2 (linear time).
//
// Correlation rules (Sigma v2: event_count, value_count, temporal, temporal_ordered with
// group-by and timespan) keep their state in the RuleEngine, keyed by the group-by values
// and not by host: they count across the fleet. Matches are ordered by event time, so
// events that arrive out of order still complete a window.
//
// Threading: RuleEngine::Evaluate is called from one thread at a time (the correlator
// thread); Reload, Swap and Rules may be called from any thread at any time: the set is
// swapped atomically between two events.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/event.h"

namespace tripline::rules {

enum class RuleState : uint8_t { kLoaded = 0, kUnsupported = 1, kBroken = 2 };
std::string_view RuleStateName(RuleState s);  // "loaded", "unsupported", "broken"

// What a person (and triplinectl rules) learns about one rule.
struct RuleInfo {
  std::string id;  // the rule's id, else "FILE#N" for the N-th document of FILE
  std::string title;
  std::string level;  // informational, low, medium, high, critical
  std::string file;   // path of the file, relative to the rule directory
  int line = 0;       // 1-based line of the rule's document (of the error for broken rules)
  RuleState state = RuleState::kLoaded;
  std::string reason;                   // why unsupported or broken; "" when loaded
  std::vector<std::string> techniques;  // ATT&CK ids from the tags: "T1059.004"
  std::string logsource;                // "linux/process_creation", "auditd", ...
  bool correlation = false;             // a Sigma v2 correlation rule
  uint64_t hits = 0;                    // matches since the engine started
};

// One rule that matched one event.
struct Detection {
  std::string rule_id;
  std::string title;
  std::string level;
  std::vector<std::string> techniques;
  bool correlation = false;
  // The event that matched (for a correlation rule, the event that completed it).
  std::string host;
  std::string session;
  int64_t time_ns = 0;
  uint64_t seq = 0;
};

class RuleSet;

// One YAML file's text and the name it is reported under.
struct RuleSource {
  std::string file;
  std::string text;
};

// Compiles the rules of every source; never fails (bad rules are `broken` in the set).
std::shared_ptr<const RuleSet> CompileRules(const std::vector<RuleSource>& sources);
// Reads every *.yml / *.yaml file under `dir` (recursively, in name order) and compiles
// them. NotFound / IoError when the directory cannot be read at all.
Result<std::shared_ptr<const RuleSet>> LoadRuleDirectory(const std::string& dir);

// The rules of a set, in file order (hits are 0).
std::vector<RuleInfo> DescribeRules(const RuleSet& set);
// Counts of a set: loaded, unsupported, broken.
struct RuleCounts {
  size_t loaded = 0, unsupported = 0, broken = 0;
};
RuleCounts CountRules(const RuleSet& set);

class RuleEngine {
 public:
  // `dir` is what Reload reads; "" for an engine fed only through Swap.
  explicit RuleEngine(std::string dir = "");
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  // Re-reads the directory and swaps the new set in atomically (SIGHUP). When the
  // directory cannot be read at all the running set stays and the error is returned;
  // broken rules do not fail a reload. Hit counts of rules kept (same id) carry over;
  // correlation windows start over.
  Status Reload();
  void Swap(std::shared_ptr<const RuleSet> set);

  // The detections of one event, usually none. Not reentrant (one thread at a time).
  std::vector<Detection> Evaluate(const Event& event);

  // Every rule of the current set with its hits.
  std::vector<RuleInfo> Rules() const;
  uint64_t events_evaluated() const;
  const std::string& dir() const { return dir_; }

 private:
  struct State;
  const std::string dir_;
  mutable std::mutex mu_;
  std::shared_ptr<const RuleSet> current_;  // GUARDED_BY(mu_); replaced by Evaluate only
  std::shared_ptr<const RuleSet> next_;     // GUARDED_BY(mu_): swapped in before the next event
  std::atomic<bool> has_next_{false};
  std::map<std::string, uint64_t> hits_;  // GUARDED_BY(mu_): by rule id
  std::atomic<uint64_t> events_relaxed_{0};
  std::unique_ptr<State> state_;  // the evaluating thread's
};

}  // namespace tripline::rules
