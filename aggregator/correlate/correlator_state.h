// The correlator's state, as plain data: what correlator.cc mutates, what chain_scorer.cc
// reads and what state_codec.cc writes and reads. Internal to tripline_correlate.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator/correlate/correlator.h"
#include "common/status.h"
#include "model/incident.h"

namespace tripline::correlate {

// A map that remembers use order, so the least recently used entry is evicted first.
// Iteration (ForEachOldestFirst) goes oldest to newest, so replaying Put in that order
// rebuilds the same order.
template <typename V>
class LruMap {
 public:
  V* Find(const std::string& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.first;
  }
  const V* Find(const std::string& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.first;
  }
  // Marks `key` most recently used. No-op when absent.
  void Touch(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return;
    order_.splice(order_.end(), order_, it->second.second);
  }
  // Inserts or replaces, and marks most recently used.
  V& Put(const std::string& key, V value) {
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second.first = std::move(value);
      Touch(key);
      return it->second.first;
    }
    order_.push_back(key);
    auto [ins, _] = map_.emplace(key, std::make_pair(std::move(value), std::prev(order_.end())));
    return ins->second.first;
  }
  bool Erase(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    order_.erase(it->second.second);
    map_.erase(it);
    return true;
  }
  // Least recently used key, or nullptr when empty.
  const std::string* Oldest() const { return order_.empty() ? nullptr : &order_.front(); }
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  void clear() {
    map_.clear();
    order_.clear();
  }
  template <typename F>
  void ForEachOldestFirst(F&& f) const {
    for (const std::string& k : order_) f(k, map_.at(k).first);
  }

 private:
  std::list<std::string> order_;
  std::unordered_map<std::string, std::pair<V, std::list<std::string>::iterator>> map_;
};

// A learned-baseline fact behind a score (see aggregator/baseline/baselines.h).
struct BaselineFact {
  std::string identity;  // "human:alice"
  std::string feature;   // "network", "hour", "edge", "exe", ...
  std::string value;
  std::string sentence;  // what a person reads
  bool operator==(const BaselineFact&) const = default;
};

// What the baselines said of a session (all zero when no baselines are attached).
struct SessionBaseline {
  double login = 0;  // calibrated score of its login (entry logins only)
  bool login_warm = false;
  double hop = 0;  // score of the hop that reached it
  bool hop_warm = false;
  double activity = 0;  // its novel processes, files and connections, corroborated
  std::vector<BaselineFact> facts;
  bool empty() const { return login == 0 && hop == 0 && activity == 0 && facts.empty(); }
};

// The baselines' view of a chain, gathered from its sessions by RecomputeEntries.
struct ChainBaseline {
  double login = 0;          // highest entry-login score
  bool warm = false;         // an entry login was judged by a warm baseline
  double hops = 0;           // sum of the hop scores
  uint32_t scored_hops = 0;  // hops judged by a warm baseline
  double activity = 0;       // highest activity score
  // The stages (entry login, hops, sessions' activity scored >= kBaselineChainStage) and
  // their corroborated anomaly (baseline::Corroborate).
  uint32_t stages = 0;
  double chain = 0;
  // A warm entry login came from a network and address the identity uses (no network or
  // address fact named).
  bool entry_usual = false;
  std::vector<BaselineFact> facts;  // most telling first
};

// One login session on one host: the node of the session graph.
struct SessionNode {
  std::string key;  // canonical key, "host|audit:17" or "host|pid:4242"
  std::string host;
  std::string user;
  std::string service;
  std::string remote_addr;
  uint32_t remote_port = 0;
  int64_t login_ns = 0;          // 0 while only activity has been seen (login not yet arrived)
  int64_t last_activity_ns = 0;  // clock time, for TTL
  std::string parent;            // session key on the hop's source host; "" for a root
  std::string chain;             // key of the chain it belongs to
  bool privileged = false;
  bool discovery_flagged = false;
  bool new_source = false;               // first login of this user from this (non-host) address
  std::vector<int64_t> discovery_times;  // event times of recent discovery commands
  std::vector<std::string> aliases;      // other keys naming this node (see correlator.cc)
  SessionBaseline baseline;
};

// A sensitive file touched in a chain.
struct FileFinding {
  std::string host;
  std::string user;
  std::string path;
  std::string technique;  // T1003.008, T1552.004, T1098.004
  bool succeeded = false;
  int64_t at_ns = 0;
  std::string process;  // comm
};

// A Sigma rule that matched in a chain.
struct RuleFinding {
  std::string host;
  std::string user;
  std::string rule_id;
  std::string title;
  std::string level;
  std::vector<std::string> techniques;
  int64_t at_ns = 0;
  std::string what;  // the event's summary
};

// What one source address did to accounts (for brute force, spraying, stuffing).
struct SourceUserAttempts {
  uint32_t failures = 0;  // max over login signals (PAM and utmp report the same attempt)
  uint32_t by_signal[6] = {0, 0, 0, 0, 0, 0};
  uint64_t last_index = 0;  // position in the source's attempt sequence
};

struct SourceTracker {
  int64_t touched_ns = 0;  // clock time, for expiry
  std::map<std::string, SourceUserAttempts> users;
  uint64_t attempts = 0;  // sequence counter
  uint32_t revisits = 0;  // an account tried again after others were tried in between
  int64_t first_ns = 0;   // event times
  int64_t last_ns = 0;
  std::vector<std::string> hosts;
  std::vector<EventRef> refs;  // a few failures to cite
};

// Failures for one (host, user, source).
struct FailureTracker {
  int64_t touched_ns = 0;                             // clock time, for expiry
  std::vector<std::pair<int64_t, uint8_t>> attempts;  // event time, LoginSource
  std::vector<EventRef> refs;
};

// A chain of sessions (a forest: an attacking source can enter more than one account) and
// the evidence collected along it. Keyed by the key of the session or source that began it.
struct Chain {
  std::string key;
  std::string incident_id;  // "" until raised
  uint32_t revision = 0;
  uint64_t fingerprint = 0;  // of the last reported incident, to report only real changes
  int64_t last_activity_ns = 0;
  std::vector<std::string> members;  // session keys
  std::vector<std::string> hosts;    // chain order
  std::vector<std::string> users;    // order of appearance
  std::vector<std::string> sources;  // external addresses that logged in or attacked
  std::vector<Hop> hops;
  std::vector<FileFinding> files;
  std::vector<RuleFinding> rules;       // Sigma rule hits, one per (rule, host)
  std::vector<std::string> discovery;   // "user@host" of sessions with a discovery burst
  std::vector<std::string> privileged;  // "user@host" of privileged sessions
  // Credential attack on the entry.
  uint32_t failures = 0;
  std::string failure_user;
  std::string failure_host;
  std::string failure_source;
  uint32_t sprayed_accounts = 0;
  bool brute_force = false;
  bool spraying = false;
  bool stuffing = false;
  bool success_after_failures = false;  // T1078 strong: logged in after a credential attack
  uint32_t failures_before_success = 0;
  std::string compromised_user;
  std::string compromised_host;
  int64_t compromise_ns = 0;
  bool new_source_login = false;  // T1078 weak: a user's first login from an address
  std::string new_source_detail;  // "alice from 198.18.0.66 on hosta"
  int64_t first_login_ns = 0;
  ChainBaseline baseline;  // derived from the members (RecomputeEntries)
  // In a cluster worker: the chain reaches past its partition (a session of another
  // partition's host, or a connection routed to one), so the joiner judges it, from the
  // fragments this correlator hands out (Correlator::TakeFragments), and this correlator
  // raises and reports nothing of it.
  bool exported = false;
  std::vector<EventRef> events;
  int64_t first_ns = 0;  // evidence times
  int64_t last_ns = 0;
};

struct PendingItem {
  enum Kind : uint8_t { kConnect = 0, kLogin = 1 };
  Kind kind = kConnect;
  std::string index_addr;   // connect: its local (source) address; login: its remote address
  uint32_t index_port = 0;  // the matching port on that address (0 when unknown)
  std::string host;         // where it was seen
  std::string session;      // session key (source session for a connect, login's node)
  std::string peer_addr;    // connect: destination address; login: local address if known
  uint32_t peer_port = 0;   // connect: destination port; login: local port if known
  int64_t time_ns = 0;      // event time
  int64_t arrived_ns = 0;   // clock time
  EventRef ref;
};

// The kind is repeated in the index so that a scan for one kind skips the other without
// looking the item up: a busy address's bucket holds up to kMaxPendingPerKey of them.
struct PendingIndexEntry {
  uint64_t id = 0;
  PendingItem::Kind kind = PendingItem::kConnect;
};

// What the latest posture snapshot of a host says of one account that an incident
// involving it should weigh (model/posture_checks.h).
struct AccountPosture {
  std::vector<std::string> root_powers;  // "is in group root", ...
  bool never_expires = false;            // a usable password whose ageing is off
  bool looks_human = false;              // an interactive shell and a uid of 1000 or more
  bool operator==(const AccountPosture&) const = default;
};

struct HostKnowledge {
  std::set<uint32_t> ssh_ports;            // where sshd was seen accepting
  std::set<std::string> privileged_users;  // from the latest posture snapshot
  // Accounts with root's power or a never-expiring password, from the latest snapshot.
  std::map<std::string, AccountPosture> posture;
  std::map<std::string, uint64_t> drop_counters;    // sensor id -> last cumulative drops
  std::vector<std::pair<int64_t, uint64_t>> drops;  // event time, newly reported drops
  // Hook families that are not live, from the host's latest health report: what its sensor
  // cannot see, or sees only in part.
  std::vector<HookFamilyStatus> blind;
};

struct CorrelatorState {
  LruMap<SessionNode> sessions;
  std::unordered_map<std::string, std::string> aliases;  // alias key -> canonical key
  std::unordered_map<std::string, Chain> chains;
  std::unordered_map<std::string, std::string> source_chain;  // address -> chain key
  std::set<std::string> raised;                               // chain keys with an incident
  LruMap<FailureTracker> failures;                            // "host|user|addr"
  LruMap<SourceTracker> sources;                              // addr
  LruMap<std::vector<std::string>> user_sources;              // user -> addresses seen logging in
  LruMap<std::string> addresses;                              // addr -> host
  LruMap<HostKnowledge> hosts;
  std::map<uint64_t, PendingItem> pending;  // by insertion id: oldest first
  // "addr|port" -> items, ascending by id. Ordered, so that a login without a source port
  // can scan every port of one address ("addr|" prefix) while the usual lookup is exact and
  // short.
  std::map<std::string, std::vector<PendingIndexEntry>, std::less<>> pending_by_addr;
  // index_addr -> how many pending items of each kind it indexes. Most connects and logins
  // have no other half waiting at their address at all; this small table says so without
  // walking pending_by_addr, a tree of up to max_pending string keys.
  std::unordered_map<std::string, std::array<uint32_t, 2>> pending_at_addr;
  uint64_t next_pending_id = 1;
  CorrelatorStats stats;
  // Not serialized: what Correlator::Feed leaves for TakeChanged. Raised chains that may
  // have changed since they were last reported (sorted: output order does not depend on
  // hashing), and revisions that were final when made (a chain that joined another's
  // incident, or was forgotten).
  std::set<std::string> unreported;
  std::vector<Incident> held;
  // Not serialized either: exported chains changed (or gone) since the last TakeFragments.
  std::set<std::string> exports;
};

// What a chain joiner last reported of an incident (chain_joiner.h).
struct ReportedRevision {
  uint32_t revision = 0;
  uint64_t fingerprint = 0;
  int64_t seen_ns = 0;  // clock time of the last join that held it
};

// Joins `parts` (decoded fragments of exported chains that share sessions, the earliest
// chain first) into one chain, judges it as one correlator that saw every partition would
// and returns its incidents that changed since `ledger` says they were last reported (and
// updates it: every incident the join holds or reported is seen now). Sessions known by several
// parts are joined: the part that saw the login knows the most of it. Correlator.cc.
std::vector<Incident> JoinFragments(const CorrelatorOptions& options, const Clock& clock,
                                    const std::vector<const CorrelatorState*>& parts,
                                    std::map<std::string, ReportedRevision>* ledger);

// The state codec (state_codec.cc, format "tripline.correlator.v1"). Decode checks every
// field and the sessions' and chains' cross-references; on error it returns Corruption
// naming the first bad field and leaves *out alone.
std::string EncodeCorrelatorState(const CorrelatorState& s);
// Whether JSON text nests no deeper than `max_depth` (strings skipped), checked without
// building it: a parser would recurse, or build, that deep.
bool JsonNestingWithin(std::string_view text, int max_depth);
Status DecodeCorrelatorState(std::string_view bytes, std::unique_ptr<CorrelatorState>* out);

}  // namespace tripline::correlate
