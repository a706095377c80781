// Baselines: what is normal for every identity (human, service, agent, host), learned from
// the event stream, and how unusual each new event is against it.
//
// Features (each with a name a person can read, see docs/baselines.md):
//   logins     source address, source network (/24, /48), host logged in to, hour of week,
//              authentication service, failure rate
//   movement   hosts reached from each host (the first-ever edge A→B), hop velocity
//   activity   processes run (by executable), sensitive files opened, outbound
//              destinations and ports
//   per host   who logs in, from which networks, which processes run
// Models (models.h): smoothed categorical rarity (Good-Turing), hour of week, and a robust
// covariance of the rate features (Eigen, Mahalanobis) per identity and per peer group
// (the identity's kind, and identities of that kind with a similar set of hosts, grouped
// by a MinHash of their host-access sets).
//
// Learning is deferred and guarded (poisoning resistance):
//  - Score* never change anything; Observe* update the short-term rates at once (unless the
//    event scored `no_learn_above` or more: an attacker's logins and hops do not become
//    the victim's rates) and queue the observation, tagged with the session it belongs to.
//  - Commit learns queued observations once the stream's event time has moved
//    `learn_delay_ns` past them, unless the caller says the tag is in an incident, or the
//    event scored `no_learn_above` or more.
//  - Each identity learns at most `max_learn_per_day` observations' weight per day.
//    Activity values it has already seen kSettledCount times are learned at once and
//    outside that cap: they cannot teach anything new, and they are most of the stream.
//  - Novelty may alert only once an identity is warm (`warmup_logins` logins learned over
//    at least `warmup_span_ns`); before that its login scores are capped below alerting.
//
// Persistence: every record changed since the last TakeDirty is returned by it, to be
// written in the same write batch as the correlator's snapshot (so positions, correlator
// state and baselines always agree), and read back with Load at start.
//
// Threading: not thread-safe; the correlator thread owns it (the aggregator calls it under
// the correlation engine's mutex).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "aggregator/baseline/identity.h"
#include "aggregator/baseline/models.h"
#include "aggregator/baseline/pending_queue.h"
#include "aggregator/baseline/profile_table.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/event.h"

namespace tripline::baseline {

struct BaselineOptions {
  // Weights halve after this long: baselines follow legitimate change within weeks.
  int64_t half_life_ns = 30 * kNanosPerDay;
  // Warm-up per identity before novelty may alert.
  uint32_t warmup_logins = 20;
  int64_t warmup_span_ns = 7 * kNanosPerDay;
  // Observations are learned this long (event time) after they happened, so that a session
  // that turns out to be part of an incident teaches nothing.
  int64_t learn_delay_ns = 30 * 60 * kNanosPerSecond;
  // Events scoring at least this are never learned (until feedback folds them back).
  double no_learn_above = 0.5;
  // Observations' weight one identity may learn per day: the cap on how fast it moves.
  double max_learn_per_day = 200;
  // Login scores of identities still warming up are capped at this (never alerting).
  double cold_cap = 0.3;
  size_t max_identities = 2'000'000;
  size_t max_pending = 1'000'000;
  size_t max_incident_facts = 10'000;
};

// One baseline fact behind a score: the feature, the value, how unlikely it was, and the
// sentence a person reads.
struct Contribution {
  std::string identity;  // identity key, "human:alice"
  std::string feature;   // "network", "address", "hour", "host", "service", "rates", "edge",
                         // "exe", "file", "dest"
  std::string value;
  double p = 1;  // tail probability under the baseline
  std::string sentence;
};

struct Score {
  double value = 0;  // calibrated, 0..1
  bool warm = false;
  std::vector<Contribution> top;  // most surprising first, at most 3
  // The top contributions' sentences joined; "" when none.
  std::string Sentence() const;
};

// Turns tail probabilities into the score: S = -log10(min p) + 0.5 * sum of -log10(p) of
// the others (each at least 0.5), then score = 1 / (1 + exp(-2 (S - 2))): one feature
// at p = 0.01 scores 0.5, at p = 0.001 scores 0.88.
double Calibrate(const std::vector<double>& p);

// Combines calibrated scores of separate pieces of evidence (the novel programs of one
// session, the stages of one chain) the way Calibrate combines features: each score back
// to its surprisal S = 2 + ln(v / (1 - v)) / 2, the largest plus half of each other of at
// least 0.5, and calibrated again. Two pieces at 0.7 give 0.96; one alone gives itself.
double Corroborate(std::vector<double> scores);

struct LoginFacts {
  std::string user;
  const ProcessInfo* process = nullptr;
  std::string host;
  std::string service;
  std::string addr;  // remote address; "" when local
  bool success = true;
  bool from_our_host = false;  // the source is one of the fleet's hosts (a hop)
  int64_t time_ns = 0;
};

enum class Verdict : uint8_t { kBenign = 0, kExpected = 1 };

// What GetBaseline shows.
struct FeatureView {
  std::string name;  // "network:198.51.100.0/24", "hour:09", "exe:/usr/bin/ssh"
  double weight = 0;
  uint64_t count = 0;
};
struct Description {
  std::string identity;  // key
  std::string kind;
  uint64_t observations = 0;
  int64_t first_seen_ns = 0;
  int64_t last_seen_ns = 0;
  bool warm = false;
  std::string usual_hours;
  std::string peer_group;
  std::vector<FeatureView> features;
  double last_score = 0;
  std::vector<std::string> last_reasons;
  std::vector<std::string> suppressed;  // patterns analysts marked expected
};

struct BaselineStats {
  uint64_t identities = 0;     // profiles: identities, hosts and peer groups
  uint64_t with_baseline = 0;  // identities (not hosts or peer groups) with a profile
  uint64_t warming = 0;        // of which still in warm-up
  uint64_t scored = 0;         // events scored
  uint64_t pending = 0;
  uint64_t learned = 0;
  uint64_t withheld_incident = 0;   // not learned: in an incident
  uint64_t withheld_anomalous = 0;  // not learned: scored too high
  uint64_t withheld_budget = 0;     // not learned: the identity's daily cap was spent
  uint64_t identities_refused = 0;  // beyond max_identities
};

class Baselines {
 public:
  Baselines();
  explicit Baselines(BaselineOptions options, IdentityResolver resolver = {});
  ~Baselines();
  Baselines(const Baselines&) = delete;
  Baselines& operator=(const Baselines&) = delete;

  Identity Resolve(std::string_view user, const ProcessInfo* process) const {
    return resolver_.Resolve(user, process);
  }
  const IdentityResolver& resolver() const { return resolver_; }
  // Declares one more service account or agent (a confirmed suggestion). The account's
  // events from now on belong to the new identity, which starts its own baseline.
  void Declare(IdentityRule rule) { resolver_.Add(std::move(rule)); }
  // Declared identities replaced at once (SIGHUP reload); safe beside Observe and Score.
  void ReplaceIdentityRules(std::vector<IdentityRule> rules) {
    resolver_.Replace(std::move(rules));
  }

  // ---- scoring (no change to any state) ----
  Score ScoreLogin(const LoginFacts& login) const;
  // `depth` is the hop's place in its chain: 1 for a hop out of an entry session, 2 for a
  // hop onwards from a session that was itself reached by a hop, ...
  Score ScoreHop(const Identity& who, std::string_view from_host, std::string_view to_host,
                 int64_t time_ns, int depth = 1) const;
  Score ScoreExec(const Identity& who, std::string_view host, std::string_view exe,
                  int64_t time_ns) const;
  Score ScoreFile(const Identity& who, std::string_view host, std::string_view path,
                  int64_t time_ns) const;
  Score ScoreConnect(const Identity& who, std::string_view host, std::string_view addr,
                     uint32_t port, int64_t time_ns) const;
  // A session of `who` becoming root (sudo, su, ...): judged against how often the
  // identity's sessions do.
  Score ScorePrivilege(const Identity& who, std::string_view host, int64_t time_ns) const;

  // ---- observing (short-term rates now, learning queued; see the class comment) ----
  void ObserveLogin(const LoginFacts& login, const Score& score, std::string_view tag);
  void ObserveHop(const Identity& who, std::string_view from_host, std::string_view to_host,
                  int64_t time_ns, const Score& score, std::string_view tag, int depth = 1);
  void ObserveExec(const Identity& who, std::string_view host, std::string_view exe,
                   int64_t time_ns, const Score& score, std::string_view tag);
  void ObserveFile(const Identity& who, std::string_view host, std::string_view path,
                   int64_t time_ns, const Score& score, std::string_view tag);
  void ObserveConnect(const Identity& who, std::string_view host, std::string_view addr,
                      uint32_t port, int64_t time_ns, const Score& score, std::string_view tag);
  void ObservePrivilege(const Identity& who, std::string_view host, int64_t time_ns,
                        const Score& score, std::string_view tag);
  // Moves the watermark (the newest event time seen, kept with the records) to
  // `event_time_ns` if that is newer, then learns the queued observations at least
  // learn_delay_ns older than the watermark, except those whose tag `in_incident` reports
  // (they are dropped). Call it after every event.
  void Commit(int64_t event_time_ns, const std::function<bool(const std::string&)>& in_incident);

  // ---- feedback ----
  // The baseline facts behind an incident, kept for feedback (the latest
  // max_incident_facts incidents).
  void RecordIncident(const std::string& incident_id, const std::vector<Contribution>& facts);
  // Folds the incident's facts back into the baselines (benign and expected), and for
  // expected also suppresses the same pattern (identity, feature, value) from scoring.
  // NotFound for an incident without recorded facts. Returns what was done, for a person.
  Result<std::string> Feedback(const std::string& incident_id, Verdict verdict);

  // ---- queries ----
  // `identity` is "kind:name", or a bare name (tried as human, service, agent, host).
  Result<Description> Describe(std::string_view identity) const;
  // Warm enough for novelty to alert.
  bool IsWarm(const Identity& who) const;
  BaselineStats stats() const;
  // Approximate heap bytes of all identities' state.
  size_t MemoryBytes() const;

  // ---- persistence ----
  // Records changed since the last call: (key, value); an empty value deletes the key.
  std::vector<std::pair<std::string, std::string>> TakeDirty();
  // Restores one record written by TakeDirty. Corruption on a bad record (state unchanged).
  Status Load(std::string_view key, std::string_view value);

  struct Profile;
  // An observation queued for learning; its texts (tag, identity name, host, values) are
  // kept beside it by the queue.
  struct Pending {
    enum What : uint8_t {
      kLogin = 0,
      kFailure = 1,
      kHop = 2,
      kExec = 3,
      kFile = 4,
      kConnect = 5,
      kPrivilege = 6
    };
    What what = kLogin;
    IdentityKind kind = IdentityKind::kHuman;
    uint32_t port = 0;  // kConnect: the port; kHop: the depth; kLogin: 1 when from our host
    int64_t time_ns = 0;
    double score = 0;
    // The identity's profile when it had one as the event was observed (profiles never
    // move): the observation is learned without looking the identity up again.
    Profile* prof = nullptr;
    RateVector rates{};
  };

 private:
  Profile* Find(std::string_view key);
  const Profile* Find(std::string_view key) const;
  // Learns a value the identity has seen often (`seen`, found in its `feature`): at once,
  // outside the daily cap.
  void LearnSettled(Profile& prof, Categorical Profile::*feature, const CategoryEntry* seen,
                    int64_t time_ns);
  Profile* GetOrCreate(const Identity& who);
  Profile* GetOrCreatePeer(const std::string& key, IdentityKind kind);
  // The queued observation's texts (PendingQueue parts).
  enum Text : size_t { kTag = 0, kName, kHost, kA, kB, kTexts };
  using Queue = PendingQueue<Pending, kTexts>;
  void Learn(const Queue::Entry& e);
  bool Spend(Profile& prof, int64_t time_ns, double weight);
  std::string PeerKeyOf(const Profile& prof) const;
  bool Suppressed(const std::string& identity, std::string_view feature,
                  std::string_view value) const;
  void Enqueue(Pending p, std::string_view tag, std::string_view name, std::string_view host,
               std::string_view a, std::string_view b = {});
  void Finish(Score& s, std::vector<Contribution> c, bool warm) const;
  // A login's features before scoring: the value points into the caller's strings.
  struct LoginCandidate {
    const char* feature = "";
    std::string_view value;
    double p = 1;
    std::string sentence;
  };
  // network, address, host, hour or day, service, rates
  static constexpr size_t kLoginFeatures = 6;
  void FinishLogin(Score& s, const std::string& key, LoginCandidate* c, size_t n, bool warm) const;

  const BaselineOptions options_;
  IdentityResolver resolver_;
  ProfileTable<Profile> profiles_;
  Queue pending_;                // oldest event time first
  std::string tag_buf_;          // the tag handed to Commit's in_incident
  mutable uint64_t scored_ = 0;  // events scored (Score* are const)
  // Identities (not hosts or peer groups) with a profile, and how many of them are warm:
  // kept as they change, so that stats() costs nothing at a million identities.
  uint64_t counted_identities_ = 0;
  uint64_t counted_warm_ = 0;
  bool WarmProfile(const Profile& p) const;
  static bool Counted(const Profile& p);
  int64_t watermark_ns_ = 0;
  void MarkDirty(Profile* p);
  static const std::string& KindPeerKey(IdentityKind kind);
  std::vector<Profile*> dirty_;  // profiles with dirty set
  bool meta_dirty_ = false;
  std::set<std::string> suppressed_;  // "identity|feature|value"
  std::map<std::string, std::vector<Contribution>> incident_facts_;
  std::deque<std::string> incident_order_;
  BaselineStats stats_;
};

}  // namespace tripline::baseline
