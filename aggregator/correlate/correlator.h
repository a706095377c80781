// Correlator: turns the fleet's event stream into attack-chain incidents.
//
// It keeps a login-session graph (one node per login, process activity attached through
// Event::session), stitches SSH hops between hosts into chains, maps each stage to
// MITRE ATT&CK, scores the chain with transparent rules (chain_scorer.h) and raises one
// incident per chain that grows, rather than repeats, as the chain grows.
//
// Pure logic: no I/O, no threads, no wall clock. Event times drive matching windows; the
// injected Clock (arrival time) drives expiry of state, so a sensor that delivers late still
// matches. Memory is bounded by the caps in CorrelatorOptions (oldest entries evicted first,
// counted in stats()).
//
// Threading: not thread-safe; the aggregator calls it from one thread (or under one mutex).
// Each durable event must be fed exactly once; persist SerializeState() together with the
// ingest position it reflects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/correlate/drift_view.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/event.h"
#include "model/incident.h"

namespace tripline::baseline {
class Baselines;
class TrustBook;
}  // namespace tripline::baseline

namespace tripline::correlate {

struct CorrelatorOptions {
  // A hop's connect on A and login on B may be this far apart either way when only the
  // address is known: sensors' clocks drift by a second or two and PAM reports after the
  // key exchange. 5 s covers both without pairing unrelated logins from a busy bastion.
  int64_t hop_tolerance_ns = 5 * kNanosPerSecond;
  // When the login also names the source port (a 4-tuple match, which cannot be a
  // coincidence) the login may come this long after the connect: a person typing a password
  // or answering a host-key prompt.
  int64_t hop_auth_delay_ns = 120 * kNanosPerSecond;
  // Ports treated as SSH on every host; ports where sshd was seen accepting are added per host.
  std::vector<uint16_t> ssh_ports = {22};
  // Secret key of the incident ids (HMAC-SHA256 of the chain's key and first time): the
  // aggregator keeps a random one per data directory (Store::IncidentIdKey), so ids stay
  // stable across restarts and cannot be predicted, or collided, from the events.
  std::string incident_id_key;
  // Sessions idle (by arrival time) longer than this are forgotten.
  int64_t session_ttl_ns = 24 * 3600 * kNanosPerSecond;
  size_t max_sessions = 100000;
  // Unmatched connects and logins wait this long (arrival time) for their other half:
  // long enough for a paused sensor to catch up from its spool.
  int64_t pending_ttl_ns = 10 * 60 * kNanosPerSecond;
  size_t max_pending = 100000;
  // Failed logins older than this (event time) before the next one start a new count.
  int64_t failure_window_ns = 10 * 60 * kNanosPerSecond;
  // T1110.001: failures for one account from one source on one host.
  uint32_t brute_force_failures = 3;
  // T1110.003: distinct accounts failing from one source, tried in rounds.
  uint32_t spray_min_accounts = 5;
  // T1110.004: distinct accounts failing from one source, each once or twice. Higher than
  // for spraying because a NAT'ed office produces a handful of one-off typos; leaked
  // credential lists run to thousands.
  uint32_t stuffing_min_accounts = 10;
  // T1083: this many discovery commands within discovery_window_ns in one session.
  uint32_t discovery_min_execs = 5;
  int64_t discovery_window_ns = 60 * kNanosPerSecond;
  // Accounts treated as privileged everywhere, beyond root/uid 0 and what posture reports.
  std::vector<std::string> privileged_users;
  // Evidence kept per incident (oldest notable events first, then the newest).
  size_t max_events_per_incident = 64;
  // Failure trackers, sources, learned addresses and hosts are capped at this many each.
  size_t max_trackers = 100000;
  // When set, called with each successful login the attached baselines scored (its
  // sensor, the event and the calibrated score in 0..1), on the correlator's thread. For
  // evaluations (tripline-eval's ROC AUC); it must not call into the correlator.
  std::function<void(std::string_view sensor_id, const Event& event, double score)> on_login_scored;
  // Cluster workers (docs/scale-out.md): whether `host`'s events are in this correlator's
  // partition. A chain with a session of another host, or one that made a connection
  // routed to another partition (FeedRoutedCopy), is exported: this correlator raises and
  // reports nothing of it and hands it out as fragments (TakeFragments) for the joiner.
  // Empty (the single node): every host is.
  std::function<bool(std::string_view host)> is_local_host;
};

// An exported chain as the joiner takes it (chain_joiner.h): the chain, its sessions, what
// is known of its hosts and where its logins came from, in the state codec's format.
struct ChainFragment {
  std::string chain;  // the chain's key in this correlator
  std::string state;  // "" when the chain is gone here: merged into another, or forgotten
};

// Counters for operators: how much state is held and how much was evicted.
struct CorrelatorStats {
  uint64_t events = 0;
  uint64_t sessions_evicted = 0;  // by cap (LRU) or TTL
  uint64_t pending_evicted = 0;   // unmatched connects/logins dropped by cap or TTL
  uint64_t trackers_evicted = 0;
  uint64_t hops = 0;
  uint64_t incidents_raised = 0;
  uint64_t incident_updates = 0;
};

struct CorrelatorState;

// A Sigma rule that matched an event (aggregator/rules/, docs/sigma.md): a stage of the
// event's session, scored by its level (chain_scorer.h).
struct RuleHit {
  std::string rule_id;
  std::string title;
  std::string level;                    // informational, low, medium, high, critical
  std::vector<std::string> techniques;  // ATT&CK ids from the rule's tags
};

class Correlator {
 public:
  Correlator(CorrelatorOptions options, const Clock& clock);
  ~Correlator();
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  // Feeds one durable event from sensor `sensor_id`. Returns the incidents this event raised
  // or changed (each with a higher revision than last reported), usually none.
  // Also returns what earlier Feed calls left untaken.
  std::vector<Incident> Handle(std::string_view sensor_id, const Event& e);
  // Feeds one event like Handle, deciding the same (incidents are raised, merged and
  // evicted at the same events), but leaves the incidents it changed for TakeChanged: an
  // incident that many events revise in a run is built, fingerprinted and reported once,
  // with one revision, instead of once per event.
  void Feed(std::string_view sensor_id, const Event& e);
  // Hands a rule hit on `e` (an event fed before) to the chain of e's session, like any
  // other stage; events without a session carry no chain and are left alone. Leaves the
  // incidents it changed for TakeChanged.
  void FeedRuleHit(std::string_view sensor_id, const Event& e, const RuleHit& hit);
  // Feeds an outbound connection its source's sensor reported that was routed to the
  // partition of the host it reaches (cluster workers: the copy the source's partition
  // gets). Its session sees it and the baselines learn from it as from any connect, and its
  // chain is exported; no hop is looked for here, where the other end never comes.
  void FeedRoutedCopy(std::string_view sensor_id, const Event& e);
  // The exported chains changed or gone since the last call, each once, in key order.
  // Take them with TakeChanged, before SerializeState or RestoreState.
  std::vector<ChainFragment> TakeFragments();
  // The incidents raised or changed since the last Handle, Tick or TakeChanged, usually each
  // once with its latest content. One appears more than once when its chain lost a session
  // (which can change the incident) or was forgotten in between: the later is newer.
  // Take them before SerializeState or RestoreState, which neither save nor keep them.
  std::vector<Incident> TakeChanged();
  // Evicts state that outlived its window (sessions idle past session_ttl_ns, unmatched
  // pending items past pending_ttl_ns, failure and source trackers past failure_window_ns +
  // pending_ttl_ns). Call it every few seconds. Returns the incidents that changed as a
  // result; eviction forgets state but never rewrites an incident's evidence, so this is
  // empty today (but for what earlier Feed calls left untaken) and exists so the aggregator
  // need not change if expiry ever reports.
  std::vector<Incident> Tick();

  // The whole state as JSON text (format "tripline.correlator.v1", see state_codec.cc).
  std::string SerializeState() const;
  // Replaces the state with a serialized one. On any error (corrupt, truncated, hostile
  // input) returns Corruption naming the first bad field and leaves the state unchanged.
  Status RestoreState(std::string_view bytes);

  // Scores logins, hops and session activity against learned baselines and lets them learn
  // from this stream (see aggregator/baseline/baselines.h): an entry login the baseline
  // finds anomalous is a T1078 stage, a chain of anomalous hops raises, and the scores
  // replace the interim rule weights where they apply (chain_scorer.h). Not owned; nullptr
  // (the default) correlates by the rules alone. The baselines' learning follows this
  // correlator's stream, so persist them with SerializeState (the same position).
  void AttachBaselines(baseline::Baselines* baselines) { baselines_ = baselines; }
  // Agents' trust levels (baseline/trust_book.h): a chain involving an agent on probation
  // is judged more severely (chain_scorer.h). Not owned; nullptr: every agent is trusted.
  void AttachTrust(const baseline::TrustBook* trust) { trust_ = trust; }
  // The privilege audit's drift (drift_view.h): a chain involving a non-human identity with
  // standing privileges it never used is judged more severely. Not owned; nullptr: none.
  void AttachDrift(const DriftView* drift) { drift_ = drift; }
  // Judges every raised chain again (after a trust decision) and returns the incidents that
  // changed, with what earlier Feed calls left untaken.
  std::vector<Incident> Reassess();

  // True for root / uid 0, configured privileged users, and users that the host's latest
  // posture snapshot shows with uid 0, sudo rules or membership of sudo/wheel/root/admin.
  bool IsPrivileged(std::string_view host, std::string_view user, uint32_t uid) const;

  size_t tracked_sessions() const;
  size_t pending_items() const;
  const CorrelatorStats& stats() const;

 private:
  CorrelatorOptions options_;
  const Clock& clock_;
  std::unique_ptr<CorrelatorState> state_;
  baseline::Baselines* baselines_ = nullptr;
  const baseline::TrustBook* trust_ = nullptr;
  const DriftView* drift_ = nullptr;
};

}  // namespace tripline::correlate
