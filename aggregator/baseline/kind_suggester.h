// KindSuggester: which accounts behave like service accounts or AI agents although nobody
// declared them so.
//
// Declared identities (IdentityRule) are the source of truth for an identity's kind. An
// undeclared account is judged as a person, against people, which is wrong for a backup
// job's account or an agent's: their normal (no terminal, fixed schedules, commands at
// machine speed) looks nothing like a person's. The suggester watches every account that
// resolves to a human and proposes a kind when the account's behaviour says so:
//
//   service  never interactive (no login with a terminal, no login shell) and at least one
//            program run on a fixed schedule: runs of the same executable at least
//            `min_runs` times with intervals whose coefficient of variation is at most
//            `max_interval_cv`;
//   agent    never interactive, commands issued at machine speed (at least
//            `min_machine_fraction` of the gaps between an account's commands that are
//            under `burst_gap_ns` are under `machine_gap_ns`, over at least `min_gaps`
//            gaps) and varied (at least `min_distinct_exes` programs) rather than
//            scheduled.
//
// Both need `min_span_ns` of observed activity and `min_events` events. One interactive
// login or login shell rules an account out for good (until it is forgotten).
//
// A suggestion is shown, not applied: Confirm turns it into a declared identity rule (the
// caller adds it to the resolver), Dismiss hides it; both record who decided and when.
// Decisions and the per-account evidence are persisted (TakeDirty/Load, the same
// contract as Baselines) so that they survive restarts and nothing is counted twice.
//
// State is bounded: at most `max_accounts` accounts are followed; beyond that new accounts
// are counted as untracked. Per account a fixed amount: counters and at most
// kTrackedExes schedules.
//
// Threading: not thread-safe; the correlation engine calls it under its mutex.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator/baseline/identity.h"
#include "aggregator/baseline/models.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/event.h"

namespace tripline::baseline {

struct KindSuggesterOptions {
  size_t max_accounts = 200'000;
  int64_t min_span_ns = 2 * kNanosPerDay;
  uint32_t min_events = 30;
  // Schedules.
  uint32_t min_runs = 6;
  double max_interval_cv = 0.1;
  // Two execs of the same program closer than this are one run.
  int64_t run_gap_ns = 60 * kNanosPerSecond;
  // Machine speed.
  int64_t burst_gap_ns = 10 * kNanosPerSecond;
  int64_t machine_gap_ns = 1 * kNanosPerSecond;
  uint32_t min_gaps = 20;
  double min_machine_fraction = 0.8;
  uint32_t min_distinct_exes = 8;
};

enum class SuggestionState : uint8_t { kSuggested = 0, kConfirmed = 1, kDismissed = 2 };
std::string_view SuggestionStateName(SuggestionState state);

struct KindSuggestion {
  std::string user;
  IdentityKind kind = IdentityKind::kService;
  SuggestionState state = SuggestionState::kSuggested;
  std::vector<std::string> evidence;  // sentences a person can check
  int64_t first_seen_ns = 0;
  int64_t last_seen_ns = 0;
  std::string decided_by;  // for confirmed and dismissed
  int64_t decided_ns = 0;
};

struct KindSuggesterStats {
  uint64_t accounts = 0;
  uint64_t accounts_untracked = 0;  // beyond max_accounts
  uint64_t suggested = 0;
  uint64_t confirmed = 0;
  uint64_t dismissed = 0;
};

class KindSuggester {
 public:
  static constexpr size_t kTrackedExes = 8;
  // Records of this component in the baselines column family start with this.
  static constexpr std::string_view kKeyPrefix = "kind-suggestion/";

  KindSuggester() = default;
  explicit KindSuggester(KindSuggesterOptions options) : options_(options) {}

  // Follows `event` when its account resolves to a human. Logins, execs; others ignored.
  void Observe(const Event& event, const IdentityResolver& resolver);

  // Accounts whose behaviour suggests a kind, and every decided one; by user name.
  std::vector<KindSuggestion> Suggestions() const;
  // The suggestion for `user` as it stands now (state kSuggested only when the evidence
  // supports one). NotFound when there is none.
  Result<KindSuggestion> Get(std::string_view user) const;

  // Confirms `user` as `kind` (service or agent); `kind` may differ from the suggested one
  // (a person knows better). Requires a pending suggestion or a dismissed one; returns the
  // rule to declare. `by` names the person.
  Result<IdentityRule> Confirm(std::string_view user, IdentityKind kind, std::string_view by,
                               int64_t now_ns);
  // Hides the suggestion for `user` (it is not shown as pending again).
  Status Dismiss(std::string_view user, std::string_view by, int64_t now_ns);

  // Rules of every confirmed account, to add to the resolver at start.
  std::vector<IdentityRule> ConfirmedRules() const;

  KindSuggesterStats stats() const;

  // Persistence, as Baselines: changed records since the last call; Load restores one.
  std::vector<std::pair<std::string, std::string>> TakeDirty();
  Status Load(std::string_view key, std::string_view value);

 private:
  struct Schedule {
    std::string exe;
    uint64_t runs = 0;
    int64_t last_run_ns = 0;
    int64_t last_exec_ns = 0;
    // Welford over the intervals between runs, in seconds.
    uint64_t n = 0;
    double mean = 0;
    double m2 = 0;
  };
  struct Account {
    int64_t first_ns = 0;
    int64_t last_ns = 0;
    uint64_t events = 0;
    uint64_t logins = 0;
    uint64_t interactive = 0;  // logins with a terminal and login shells
    std::string interactive_example;
    uint64_t execs = 0;
    int64_t last_exec_ns = 0;
    uint64_t gaps = 0;                // consecutive execs under burst_gap_ns apart
    uint64_t machine_gaps = 0;        // ... of which under machine_gap_ns
    std::set<std::string> exes;       // distinct programs, at most min_distinct_exes kept
    std::vector<Schedule> schedules;  // at most kTrackedExes, the most run
    SuggestionState state = SuggestionState::kSuggested;
    IdentityKind decided_kind = IdentityKind::kService;
    std::string decided_by;
    int64_t decided_ns = 0;
  };

  Account* Track(const std::string& user, int64_t time_ns);
  void ObserveExec(Account& a, std::string_view exe, int64_t time_ns);
  // The kind the evidence supports, with the evidence; false when none.
  bool Judge(const std::string& user, const Account& a, KindSuggestion* out) const;
  static std::string Encode(const Account& a);

  KindSuggesterOptions options_;
  std::map<std::string, Account, std::less<>> accounts_;
  std::set<std::string> dirty_;
  uint64_t untracked_ = 0;
};

}  // namespace tripline::baseline
