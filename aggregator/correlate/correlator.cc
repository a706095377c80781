#include "aggregator/correlate/correlator.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "aggregator/baseline/baselines.h"
#include "aggregator/baseline/trust_book.h"
#include "aggregator/correlate/attack_stages.h"
#include "aggregator/correlate/chain_scorer.h"
#include "aggregator/correlate/correlator_state.h"
#include "model/posture_checks.h"

namespace tripline::correlate {
namespace {

// Drops reported this long before a chain's first evidence or after its last still count
// against it: sensors report health periodically (every 10-60 s), so drops that hit the chain
// are reported a little after they happened.
constexpr int64_t kDropLookbehindNs = 60 * kNanosPerSecond;
constexpr int64_t kDropLookaheadNs = 5 * 60 * kNanosPerSecond;
// Per-tracker caps: enough to tell the patterns apart, small enough that a flood from one
// address costs a few kilobytes.
constexpr size_t kMaxAttemptsPerTracker = 256;
constexpr size_t kMaxUsersPerSource = 256;
constexpr size_t kMaxRefsPerTracker = 6;
constexpr size_t kMaxSourcesPerUser = 64;
constexpr size_t kMaxDropEpisodes = 64;
// Accounts of one host whose posture is kept (root's power or a never-expiring password).
constexpr size_t kMaxPostureAccounts = 256;
// Walking up parents to refuse cycles; chains are never this deep.
constexpr int kMaxChainDepth = 64;
// Pending halves are indexed by (address, port); every arrival scans its bucket. Real
// connections have distinct ephemeral ports, so buckets hold one or two items, but logins
// whose port is unknown share the address-only bucket, and on a bastion host that would
// grow with every login and make each event cost more than the last. Beyond this many,
// the oldest item of the bucket gives way (counted as evicted).
constexpr size_t kMaxPendingPerKey = 256;
// Year 2116: every time the correlator does arithmetic on stays far from int64 overflow.
constexpr int64_t kMaxSaneTimeNs = int64_t{1} << 62;
// Baseline facts kept per session and per chain.
constexpr size_t kMaxBaselineFacts = 6;

// "inc-" and the first 128 bits of HMAC-SHA256(key, what), in hex. The text hashed (chain
// key, first evidence time) comes from sensors; keyed, a sensor cannot choose events whose
// incident id collides with another incident's and overwrite its evidence in the store.
std::string IncidentId(const std::string& key, const std::string& what) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(what.data()), what.size(), mac,
           &len) == nullptr ||
      len < 16) {
    std::abort();  // only on allocation failure inside OpenSSL
  }
  std::string id = "inc-";
  char hex[3];
  for (unsigned int i = 0; i < 16; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", mac[i]);
    id += hex;
  }
  return id;
}

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kLogin: return "login";
    case EventKind::kFileOpen: return "file_open";
    case EventKind::kExec: return "exec";
    case EventKind::kNet: return "net";
    case EventKind::kPosture: return "posture";
    case EventKind::kHealth: return "health";
  }
  return "unknown";
}

std::string HostPort(const std::string& addr, uint32_t port) {
  if (port == 0) return addr;
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

// One line for the incident's evidence list, written for the reader of the incident.
std::string Summary(const Event& e) {
  const std::string& who = e.process.user.empty() ? e.process.comm : e.process.user;
  if (const auto* l = e.As<LoginEvent>()) {
    bool failed = l->outcome == Outcome::kFailure || l->stage == LoginStage::kFailedRecord;
    return std::string(failed ? "failed login " : "login ") + l->user + " via " +
           (l->service.empty() ? "unknown service" : l->service) +
           (l->remote_addr.empty() ? "" : " from " + HostPort(l->remote_addr, l->remote_port));
  }
  if (const auto* f = e.As<FileOpenEvent>()) {
    std::string s = std::string(OpensForWrite(*f) ? "write-open " : "open ") + f->path + " by " +
                    e.process.comm + " (" + who + ", uid " + std::to_string(e.process.uid) + ")";
    if (f->result < 0) s += " denied";
    return s;
  }
  if (const auto* x = e.As<ExecEvent>()) {
    std::string s = "exec " + x->filename;
    for (size_t i = 1; i < x->argv.size() && i < 4; ++i) s += " " + x->argv[i];
    return s + " (" + who + ")";
  }
  if (const auto* n = e.As<NetConnectEvent>()) {
    return std::string(n->direction == NetDirection::kAccepted ? "accept " : "connect ") +
           HostPort(n->local_addr, n->local_port) + " -> " +
           HostPort(n->remote_addr, n->remote_port) + " by " + e.process.comm;
  }
  if (const auto* h = e.As<SensorHealth>()) {
    return "sensor health: " + std::to_string(h->ringbuf_drops) + " ring-buffer drops, " +
           std::to_string(h->spool_drops) + " spool drops";
  }
  return "posture snapshot";
}

// A hash of everything a reader of the incident sees, except revision and updated_ns: a
// new revision is reported only when this changes.
class Fingerprinter {
 public:
  void Add(std::string_view s) {
    for (unsigned char c : s) Mix(c);
    Mix(0xff);  // separator, so ("ab","c") and ("a","bc") differ
  }
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) Mix(static_cast<unsigned char>(v >> (8 * i)));
  }
  void Add(const std::vector<std::string>& v) {
    Add(uint64_t{v.size()});
    for (const std::string& s : v) Add(s);
  }
  uint64_t value() const { return h_; }

 private:
  void Mix(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ull;
  }
  uint64_t h_ = 1469598103934665603ull;
};

uint64_t Fingerprint(const Incident& in) {
  Fingerprinter f;
  f.Add(in.id);
  f.Add(uint64_t{static_cast<uint8_t>(in.severity)});
  f.Add(in.title);
  f.Add(in.identities);
  f.Add(in.hosts);
  f.Add(in.techniques);
  f.Add(static_cast<uint64_t>(in.first_seen_ns));
  f.Add(static_cast<uint64_t>(in.last_seen_ns));
  f.Add(uint64_t{in.chain.size()});
  for (const Hop& h : in.chain) {
    f.Add(h.from);
    f.Add(h.to);
    f.Add(h.user);
    f.Add(h.from_user);
    f.Add(static_cast<uint64_t>(h.at_ns));
    f.Add(uint64_t{h.port});
  }
  f.Add(uint64_t{in.events.size()});
  for (const EventRef& e : in.events) {
    f.Add(e.sensor_id);
    f.Add(e.seq);
    f.Add(static_cast<uint64_t>(e.time_ns));
  }
  f.Add(in.explanation);
  f.Add(static_cast<uint64_t>(in.confidence * 1e6));
  f.Add(static_cast<uint64_t>(in.score * 1e3));
  return f.value();
}

template <typename T>
bool AddUnique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) != v.end()) return false;
  v.push_back(x);
  return true;
}

}  // namespace

// The logic over CorrelatorState. One Engine lives for one Handle/Tick call; everything that
// outlives the call is in the state.
class Engine {
 public:
  Engine(const CorrelatorOptions& o, const Clock& clock, CorrelatorState& s, baseline::Baselines* b,
         const baseline::TrustBook* t, const DriftView* d)
      : o_(o), s_(s), now_(clock.NowNs()), b_(b), t_(t), d_(d) {}

  // Every raised chain is judged again (a trust decision changed how one may read).
  void TouchRaised() {
    for (const std::string& key : s_.raised) touched_.insert(key);
  }

  // Whether the session named `tag` belongs to a chain with an incident: the baselines
  // learn nothing from it.
  bool InIncident(const std::string& tag) {
    const SessionNode* n = FindSession(tag);
    if (n == nullptr) return false;
    auto it = s_.chains.find(n->chain);
    return it != s_.chains.end() && !it->second.incident_id.empty();
  }

  void Handle(std::string_view sensor, const Event& e) {
    ++s_.stats.events;
    // Times far outside any real clock would overflow window arithmetic; such an event is
    // corrupt, and skipping it is safer than guessing.
    if (e.time_ns < 0 || e.time_ns > kMaxSaneTimeNs) return;
    std::string sensor_id(sensor);
    std::visit(
        [&](const auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, LoginEvent>) OnLogin(sensor_id, e, body);
          if constexpr (std::is_same_v<T, FileOpenEvent>) OnFileOpen(sensor_id, e, body);
          if constexpr (std::is_same_v<T, ExecEvent>) OnExec(sensor_id, e, body);
          if constexpr (std::is_same_v<T, NetConnectEvent>) OnNet(sensor_id, e, body);
          if constexpr (std::is_same_v<T, PostureSnapshot>) OnPosture(e, body);
          if constexpr (std::is_same_v<T, SensorHealth>) OnHealth(sensor_id, e, body);
        },
        e.body);
  }

  void Tick() {
    while (const std::string* oldest = s_.sessions.Oldest()) {
      if (s_.sessions.Find(*oldest)->last_activity_ns >= now_ - o_.session_ttl_ns) break;
      EvictSession(*oldest);
    }
    while (!s_.pending.empty() &&
           s_.pending.begin()->second.arrived_ns < now_ - o_.pending_ttl_ns) {
      RemovePending(s_.pending.begin()->first);
      ++s_.stats.pending_evicted;
    }
    // Failures stay interesting for their window plus the time a late login may still take
    // to arrive.
    int64_t tracker_ttl = o_.failure_window_ns + o_.pending_ttl_ns;
    while (const std::string* oldest = s_.failures.Oldest()) {
      if (s_.failures.Find(*oldest)->touched_ns >= now_ - tracker_ttl) break;
      s_.failures.Erase(std::string(*oldest));
      ++s_.stats.trackers_evicted;
    }
    while (const std::string* oldest = s_.sources.Oldest()) {
      if (s_.sources.Find(*oldest)->touched_ns >= now_ - tracker_ttl) break;
      EvictSource(*oldest);
    }
  }

  // Raises the chains this call touched that now call for an incident, and marks every
  // raised chain it touched for the next Report. Raising is decided per event even when
  // reporting is not: it names the incident (from the chain's first evidence) and decides
  // which incident survives a merge.
  void Settle() {
    for (const std::string& key : touched_) {
      auto it = s_.chains.find(key);
      if (it == s_.chains.end()) continue;
      Chain& c = it->second;
      if (Exported(c)) {
        s_.exports.insert(key);
        continue;
      }
      if (c.incident_id.empty()) {
        // Standing privileges never decide the raise; agents on probation only with an
        // anomaly of the baselines, so the accounts are looked up only then.
        const Standing standing = ProbationAnomaly(c.baseline) ? StandingOf(c) : Standing{};
        if (!AssessChain(c, GapsFor(c), standing).raise) continue;
        // A quiet chain that begins with a login from one of the fleet's own hosts whose
        // connect has not arrived yet is the later part of a chain not yet joined: held until the
        // hop is matched (the chains merge and the whole is raised once) or its login
        // leaves the pending list (RemovePending touches it again).
        if (AwaitsItsHop(c)) continue;
        c.incident_id = IncidentId(o_.incident_id_key, c.key + "|" + std::to_string(c.first_ns));
        s_.raised.insert(c.key);
        ++s_.stats.incidents_raised;
      }
      s_.unreported.insert(key);
    }
    touched_.clear();
  }

  // Whether the chain reaches past this correlator's partition (CorrelatorOptions::
  // is_local_host); once it does, it stays exported.
  bool Exported(Chain& c) {
    if (c.exported || !o_.is_local_host) return c.exported;
    for (const std::string& m : c.members) {
      const SessionNode* n = s_.sessions.Find(m);
      if (n != nullptr && !o_.is_local_host(n->host)) {
        c.exported = true;
        break;
      }
    }
    return c.exported;
  }

  // The fragment the joiner takes of an exported chain: the chain, its sessions, what is
  // known of its hosts and of the addresses its logins came from.
  std::string Fragment(const Chain& c) const {
    CorrelatorState f;
    f.chains.emplace(c.key, c);
    for (const std::string& m : c.members) {
      const SessionNode* n = s_.sessions.Find(m);
      if (n == nullptr) continue;
      for (const std::string& a : n->aliases) f.aliases[a] = m;
      if (const std::string* host = s_.addresses.Find(n->remote_addr)) {
        f.addresses.Put(n->remote_addr, *host);
      }
      f.sessions.Put(m, *n);
    }
    for (const std::string& h : c.hosts) {
      if (const HostKnowledge* k = s_.hosts.Find(h)) f.hosts.Put(h, *k);
    }
    if (!c.incident_id.empty()) f.raised.insert(c.key);
    return EncodeCorrelatorState(f);
  }

  std::vector<ChainFragment> TakeFragments() {
    std::vector<ChainFragment> out;
    for (const std::string& key : s_.exports) {
      auto it = s_.chains.find(key);
      if (it == s_.chains.end() || !it->second.exported) {
        out.push_back({key, ""});
      } else {
        out.push_back({key, Fragment(it->second)});
      }
    }
    s_.exports.clear();
    return out;
  }

  // A connect routed to another partition (Correlator::FeedRoutedCopy): its session and the
  // baselines see it, and its chain is exported.
  void OnRoutedCopy(const Event& e) {
    const auto* c = e.As<NetConnectEvent>();
    if (c == nullptr || c->direction != NetDirection::kOutbound) return;
    ++s_.stats.events;
    if (e.time_ns < 0 || e.time_ns > kMaxSaneTimeNs) return;
    SessionNode* n = ActivityNode(e);
    if (n == nullptr) return;
    ObserveConnect(*n, e, *c);
    // Not evidence here: the connect is cited where the hop is stitched, as the single node
    // cites it. The chain's first fragment goes out now, so the joiner knows this end of
    // the hop (its login, what it did before) whatever happens on it later.
    Chain& chain = ChainOf(*n);
    if (!chain.exported) {
      chain.exported = true;
      touched_.insert(chain.key);
    }
  }

  // ---- joining (cluster: chain_joiner.h) ------------------------------------------------

  // Folds `parts` (decoded fragments of exported chains that share sessions, the earliest
  // chain first) into this empty state as one chain, as one correlator that saw every
  // partition would hold it, and marks it for Settle. The chain keeps the first part's key;
  // incidents the parts carry keep their ids, and `ledger` (what was last reported of each)
  // makes their revisions go on from there.
  void Join(const std::vector<const CorrelatorState*>& parts,
            const std::map<std::string, ReportedRevision>& ledger) {
    // Sessions: one node per session, whatever names the parts know it by. The part that
    // saw its login knows the most of it; the others add what they saw.
    std::map<std::string, std::string> canon;  // key or alias -> key in s_.sessions
    const auto find = [&](const SessionNode& n) -> SessionNode* {
      if (auto it = canon.find(n.key); it != canon.end()) return s_.sessions.Find(it->second);
      for (const std::string& a : n.aliases) {
        if (auto it = canon.find(a); it != canon.end()) return s_.sessions.Find(it->second);
      }
      return nullptr;
    };
    for (const CorrelatorState* part : parts) {
      part->sessions.ForEachOldestFirst([&](const std::string&, const SessionNode& n) {
        SessionNode* have = find(n);
        if (have == nullptr) {
          s_.sessions.Put(n.key, n);
          have = s_.sessions.Find(n.key);
        } else if (have->login_ns == 0 && n.login_ns != 0 && have->key != n.key) {
          // The login's own name becomes the node's.
          SessionNode merged = n;
          JoinNode(merged, *have);
          AddUnique(merged.aliases, have->key);
          std::string old_key = have->key;
          s_.sessions.Erase(old_key);
          for (auto& [name, key] : canon) {
            if (key == old_key) key = merged.key;
          }
          s_.sessions.Put(merged.key, std::move(merged));
          have = s_.sessions.Find(n.key);
        } else {
          JoinNode(*have, n);
        }
        canon[n.key] = have->key;
        for (const std::string& a : have->aliases) canon[a] = have->key;
        canon[have->key] = have->key;
      });
      part->hosts.ForEachOldestFirst([&](const std::string& host, const HostKnowledge& k) {
        if (HostKnowledge* have = s_.hosts.Find(host)) {
          JoinHost(*have, k);
        } else {
          s_.hosts.Put(host, k);
        }
      });
      part->addresses.ForEachOldestFirst([&](const std::string& addr, const std::string& host) {
        if (s_.addresses.Find(addr) == nullptr) s_.addresses.Put(addr, host);
      });
    }
    const auto canonical = [&](const std::string& key) {
      auto it = canon.find(key);
      return it == canon.end() ? key : it->second;
    };
    s_.sessions.ForEachOldestFirst([&](const std::string& key, const SessionNode& n) {
      for (const std::string& a : n.aliases) {
        if (a != key) s_.aliases[a] = key;
      }
    });
    // Chains: the first part's under its own key, the others under keys no session has,
    // then merged into it as hops merge chains.
    std::vector<std::string> keys;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i]->chains.size() != 1) continue;
      Chain c = parts[i]->chains.begin()->second;
      c.exported = false;
      if (!keys.empty()) c.key = "\x01join:" + std::to_string(i);
      if (!c.incident_id.empty()) {
        if (auto it = ledger.find(c.incident_id);
            it != ledger.end() && it->second.revision >= c.revision) {
          c.revision = it->second.revision;
          c.fingerprint = it->second.fingerprint;
        }
        s_.raised.insert(c.key);
      }
      std::vector<std::string> members;
      for (const std::string& m : c.members) {
        std::string k = canonical(m);
        SessionNode* n = s_.sessions.Find(k);
        if (n == nullptr) continue;
        // The first part's sessions name its chain; the others' are renamed by the merges
        // below.
        if (keys.empty()) n->chain = c.key;
        AddUnique(members, k);
      }
      c.members = std::move(members);
      keys.push_back(c.key);
      std::string key = c.key;
      s_.chains.emplace(key, std::move(c));
    }
    if (keys.empty()) return;
    // Sessions' parents by their joined names; a parent no part holds is no parent here.
    s_.sessions.ForEachOldestFirst([&](const std::string&, const SessionNode& n) {
      SessionNode* node = s_.sessions.Find(n.key);
      if (node->parent.empty()) return;
      node->parent = canonical(node->parent);
      if (s_.sessions.Find(node->parent) == nullptr) node->parent.clear();
    });
    for (size_t i = 1; i < keys.size(); ++i) MergeChains(keys[0], keys[i]);
    Chain& joined = s_.chains.at(keys[0]);
    RecomputeEntries(joined);
    touched_.insert(keys[0]);
  }

  // Two parts' views of one session.
  static void JoinNode(SessionNode& into, const SessionNode& from) {
    if (into.login_ns == 0 && from.login_ns != 0) {
      into.user = from.user;
      into.service = from.service;
      into.remote_addr = from.remote_addr;
      into.remote_port = from.remote_port;
      into.login_ns = from.login_ns;
      into.new_source = from.new_source;
      into.baseline.login = from.baseline.login;
      into.baseline.login_warm = from.baseline.login_warm;
    }
    if (into.user.empty()) into.user = from.user;
    if (into.parent.empty()) into.parent = from.parent;
    into.last_activity_ns = std::max(into.last_activity_ns, from.last_activity_ns);
    into.privileged = into.privileged || from.privileged;
    into.discovery_flagged = into.discovery_flagged || from.discovery_flagged;
    for (int64_t t : from.discovery_times) AddUnique(into.discovery_times, t);
    if (from.baseline.hop > into.baseline.hop) {
      into.baseline.hop = from.baseline.hop;
      into.baseline.hop_warm = from.baseline.hop_warm;
    }
    into.baseline.activity = std::max(into.baseline.activity, from.baseline.activity);
    for (const BaselineFact& f : from.baseline.facts) {
      if (into.baseline.facts.size() < kMaxBaselineFacts) AddUnique(into.baseline.facts, f);
    }
    for (const std::string& a : from.aliases) {
      if (a != into.key) AddUnique(into.aliases, a);
    }
  }

  // Two parts' knowledge of one host: the union, the later report of a counter winning.
  static void JoinHost(HostKnowledge& into, const HostKnowledge& from) {
    into.ssh_ports.insert(from.ssh_ports.begin(), from.ssh_ports.end());
    into.privileged_users.insert(from.privileged_users.begin(), from.privileged_users.end());
    for (const auto& [account, p] : from.posture) into.posture.emplace(account, p);
    for (const auto& [sensor, n] : from.drop_counters) {
      into.drop_counters[sensor] = std::max(into.drop_counters[sensor], n);
    }
    for (const auto& d : from.drops) AddUnique(into.drops, d);
    if (into.blind.empty()) into.blind = from.blind;
  }

  bool AwaitsItsHop(const Chain& c) const {
    // Only chains of quiet movement (hops, discovery, the baselines' judgement) wait: a
    // rule's stage (a credential attack, a secret read) is raised at once.
    if (!c.files.empty() || c.brute_force || c.spraying || c.stuffing || c.success_after_failures) {
      return false;
    }
    for (const std::string& m : c.members) {
      const SessionNode* n = s_.sessions.Find(m);
      if (n == nullptr || !n->parent.empty() || n->remote_addr.empty()) continue;
      if (s_.addresses.Find(n->remote_addr) == nullptr) continue;
      bool waiting = false;
      ForEachPending(PendingItem::kLogin, n->remote_addr, n->remote_port, [&](uint64_t id) {
        waiting = waiting || s_.pending.at(id).session == n->key;
      });
      if (waiting) return true;
    }
    return false;
  }

  // Builds the incident of every chain marked since the last Report and returns, after the
  // revisions held from before, those that changed since last reported.
  std::vector<Incident> Report() {
    for (const std::string& key : s_.unreported) {
      auto it = s_.chains.find(key);
      if (it == s_.chains.end()) continue;
      ReportNow(it->second, "");
    }
    s_.unreported.clear();
    std::vector<Incident> out = std::move(s_.held);
    s_.held.clear();
    return out;
  }

 private:
  // ---- sessions -------------------------------------------------------------------------

  SessionNode* FindSession(const std::string& key) {
    if (SessionNode* n = s_.sessions.Find(key)) return n;
    auto it = s_.aliases.find(key);
    return it == s_.aliases.end() ? nullptr : s_.sessions.Find(it->second);
  }

  Chain& ChainOf(const SessionNode& n) { return s_.chains.at(n.chain); }

  SessionNode* CreateSession(const std::string& key, const std::string& host) {
    SessionNode n;
    n.key = key;
    n.host = host;
    n.last_activity_ns = now_;
    n.chain = key;
    Chain& c = NewChain(key);
    c.members.push_back(key);
    AddUnique(c.hosts, host);
    s_.sessions.Put(key, std::move(n));
    // Oldest first: the new session is the most recently used, so it survives (cap >= 1).
    while (s_.sessions.size() > std::max<size_t>(1, o_.max_sessions)) {
      EvictSession(*s_.sessions.Oldest());
    }
    return s_.sessions.Find(key);
  }

  Chain& NewChain(const std::string& key) {
    Chain& c = s_.chains[key];
    if (c.key.empty()) {
      c.key = key;
      c.last_activity_ns = now_;
    }
    return c;
  }

  // Activity (file opens, execs, connects) can arrive before its login; the node is made
  // then, and the login fills it in.
  SessionNode* ActivityNode(const Event& e) {
    if (e.session.empty() || e.host.empty()) return nullptr;
    std::string key = e.host + "|" + e.session;
    SessionNode* n = FindSession(key);
    if (n == nullptr) n = CreateSession(key, e.host);
    TouchSession(*n);
    if (n->user.empty())
      n->user = e.process.login_user.empty() ? e.process.user : e.process.login_user;
    return n;
  }

  void TouchSession(SessionNode& n) {
    n.last_activity_ns = now_;
    s_.sessions.Touch(n.key);
    ChainOf(n).last_activity_ns = now_;
  }

  void AddAlias(SessionNode& n, const std::string& alias) {
    if (alias.empty() || alias == n.key) return;
    s_.aliases[alias] = n.key;
    AddUnique(n.aliases, alias);
  }

  // Folds the activity-only node `from_key` into the login node `into_key`: they are one
  // session seen under two names. Its chain merges into the login's, its children and
  // aliases point to the login node, and its key becomes an alias of it (pending connects
  // still name it).
  // By value: `from_key` is usually the absorbed node's own key, which Erase destroys.
  void AbsorbSession(const std::string into_key, const std::string from_key) {
    if (into_key == from_key) return;
    SessionNode* from = s_.sessions.Find(from_key);
    SessionNode* into = s_.sessions.Find(into_key);
    if (from == nullptr || into == nullptr) return;
    const SessionNode moved = *from;
    if (moved.chain != into->chain) MergeChains(into->chain, moved.chain);
    into = s_.sessions.Find(into_key);
    into->privileged = into->privileged || moved.privileged;
    into->discovery_flagged = into->discovery_flagged || moved.discovery_flagged;
    into->discovery_times.insert(into->discovery_times.end(), moved.discovery_times.begin(),
                                 moved.discovery_times.end());
    if (into->user.empty()) into->user = moved.user;
    if (moved.baseline.activity > into->baseline.activity) {
      into->baseline.activity = moved.baseline.activity;
      for (const BaselineFact& f : moved.baseline.facts) {
        if (into->baseline.facts.size() < kMaxBaselineFacts) AddUnique(into->baseline.facts, f);
      }
    }
    Chain& c = ChainOf(*into);
    c.members.erase(std::remove(c.members.begin(), c.members.end(), from_key), c.members.end());
    for (const std::string& m : c.members) {
      if (SessionNode* child = s_.sessions.Find(m); child && child->parent == from_key) {
        child->parent = into_key;
      }
    }
    s_.sessions.Erase(from_key);
    for (const std::string& a : moved.aliases) AddAlias(*into, a);
    AddAlias(*into, from_key);
    TouchSession(*into);
    touched_.insert(into->chain);
  }

  void EvictSession(const std::string& key_ref) {
    std::string key = key_ref;  // key_ref may live in the LRU list we are about to change
    SessionNode* n = s_.sessions.Find(key);
    if (n == nullptr) return;
    for (const std::string& a : n->aliases) {
      auto it = s_.aliases.find(a);
      if (it != s_.aliases.end() && it->second == key) s_.aliases.erase(it);
    }
    auto cit = s_.chains.find(n->chain);
    if (cit != s_.chains.end()) {
      Chain& c = cit->second;
      // Changes fed but not yet reported are reported as they were, with this member:
      // an incident's content can depend on whether its chain still has sessions.
      if (s_.unreported.erase(c.key) > 0) ReportNow(c, "");
      c.members.erase(std::remove(c.members.begin(), c.members.end(), key), c.members.end());
      MaybeEraseChain(c.key);
    }
    s_.sessions.Erase(key);
    ++s_.stats.sessions_evicted;
  }

  // A chain goes when nothing can add to it any more: no session and no attacking source.
  void MaybeEraseChain(const std::string& key) {
    auto it = s_.chains.find(key);
    if (it == s_.chains.end() || !it->second.members.empty()) return;
    for (const std::string& src : it->second.sources) {
      auto sc = s_.source_chain.find(src);
      if (sc != s_.source_chain.end() && sc->second == key) return;
    }
    // Changes fed but not yet reported would go with the chain.
    if (s_.unreported.erase(key) > 0) ReportNow(it->second, "");
    if (it->second.exported) s_.exports.insert(key);
    s_.raised.erase(key);
    touched_.erase(key);
    s_.chains.erase(it);
  }

  void EvictSource(const std::string& addr_ref) {
    std::string addr = addr_ref;
    s_.sources.Erase(addr);
    auto sc = s_.source_chain.find(addr);
    if (sc != s_.source_chain.end()) {
      std::string chain = sc->second;
      s_.source_chain.erase(sc);
      MaybeEraseChain(chain);
    }
    ++s_.stats.trackers_evicted;
  }

  template <typename V>
  void CapTrackers(LruMap<V>& m) {
    while (m.size() > std::max<size_t>(1, o_.max_trackers)) {
      m.Erase(std::string(*m.Oldest()));
      ++s_.stats.trackers_evicted;
    }
  }

  // ---- evidence -------------------------------------------------------------------------

  EventRef Ref(const std::string& sensor, const Event& e) const {
    return EventRef{sensor,    e.seq, e.host, e.time_ns, std::string(EventKindName(e.kind())),
                    Summary(e)};
  }

  // Keeps the first half of the cap (how it began) and the newest of the rest.
  void AddEvent(Chain& c, const EventRef& ref) {
    // Numbers before strings: most events differ in them, and the strings share prefixes.
    for (const EventRef& r : c.events) {
      if (r.seq == ref.seq && r.time_ns == ref.time_ns && r.sensor_id == ref.sensor_id) return;
      // One attempt reported by two signals (PAM and the btmp record) reads the same and
      // lands within a second; the analyst needs it once.
      if (std::abs(r.time_ns - ref.time_ns) < kNanosPerSecond && r.sensor_id == ref.sensor_id &&
          r.kind == ref.kind && r.summary == ref.summary) {
        return;
      }
    }
    size_t cap = std::max<size_t>(2, o_.max_events_per_incident);
    if (c.events.size() >= cap) c.events.erase(c.events.begin() + static_cast<long>(cap / 2));
    c.events.push_back(ref);
  }

  void AddEvidence(Chain& c, const EventRef& ref) {
    AddEvent(c, ref);
    if (c.first_ns == 0 || ref.time_ns < c.first_ns) c.first_ns = ref.time_ns;
    c.last_ns = std::max(c.last_ns, ref.time_ns);
    touched_.insert(c.key);
  }

  void MarkPrivileged(SessionNode& n, bool acting_as_root) {
    Chain& c = ChainOf(n);
    std::string who = (n.user.empty() ? std::string("unknown") : n.user) +
                      (acting_as_root && n.user != "root" ? " (as root)" : "") + " on " + n.host;
    if (!n.privileged || acting_as_root) {
      if (AddUnique(c.privileged, who)) touched_.insert(c.key);
    }
    n.privileged = true;
  }

  // ---- logins ---------------------------------------------------------------------------

  void OnLogin(const std::string& sensor, const Event& e, const LoginEvent& l) {
    if (l.outcome == Outcome::kFailure || l.stage == LoginStage::kFailedRecord) {
      OnLoginFailure(sensor, e, l);
      return;
    }
    if (l.outcome != Outcome::kSuccess) return;
    LearnAddress(l.local_addr, e.host);
    if (l.local_port != 0 && !l.local_addr.empty() && l.service.find("ssh") != std::string::npos) {
      AddSshPort(e.host, l.local_port);
    }
    // One login shows up as several events (authenticate, account, session open; PAM and
    // utmp). Each names it differently: by session, by auth pid, by peer address and port.
    std::string by_session = e.session.empty() ? "" : e.host + "|" + e.session;
    std::string by_pid = l.auth_pid == 0 ? "" : e.host + "|pid:" + std::to_string(l.auth_pid);
    std::string by_peer = l.remote_addr.empty() || l.remote_port == 0
                              ? ""
                              : e.host + "|peer:" + HostPort(l.remote_addr, l.remote_port);
    // A node with the login already on it wins over one made from the session's activity:
    // the session's processes (its audit session id) are often seen before the
    // session-open event names that id, while earlier stages of the same login made a node
    // by auth pid, which may already be a hop's child.
    SessionNode* n = nullptr;
    SessionNode* activity = nullptr;
    for (const std::string* k : {&by_session, &by_pid, &by_peer}) {
      if (k->empty()) continue;
      SessionNode* m = FindSession(*k);
      if (m == nullptr) continue;
      if (m->login_ns != 0) {
        if (n == nullptr) n = m;
      } else if (activity == nullptr) {
        activity = m;
      }
    }
    // Pids and ports are reused: only the same user from the same address is the same login.
    if (n != nullptr &&
        ((!n->user.empty() && !l.user.empty() && n->user != l.user) ||
         (!n->remote_addr.empty() && !l.remote_addr.empty() && n->remote_addr != l.remote_addr))) {
      n = nullptr;
    }
    if (n == nullptr) {
      n = activity;
    } else if (activity != nullptr && activity != n) {
      const std::string into = n->key;
      AbsorbSession(into, activity->key);
      n = FindSession(into);
    }
    if (l.stage == LoginStage::kSessionClose) {
      if (n != nullptr) TouchSession(*n);
      return;
    }
    if (n == nullptr) {
      std::string key = !by_session.empty() ? by_session
                        : !by_pid.empty()   ? by_pid
                        : !by_peer.empty()  ? by_peer
                                            : e.host + "|login:" + std::to_string(e.seq);
      if (FindSession(key) != nullptr) key += "#" + std::to_string(e.time_ns);
      n = CreateSession(key, e.host);
    }
    for (const std::string* k : {&by_session, &by_pid, &by_peer}) AddAlias(*n, *k);
    TouchSession(*n);
    if (n->remote_port == 0) n->remote_port = l.remote_port;
    if (n->login_ns != 0) return;  // a later stage of a login already known
    OnNewLogin(sensor, e, l, *n);
  }

  void OnNewLogin(const std::string& sensor, const Event& e, const LoginEvent& l, SessionNode& n) {
    n.user = l.user.empty() ? n.user : l.user;
    n.service = l.service;
    n.remote_addr = l.remote_addr;
    n.login_ns = e.time_ns;
    EventRef ref = Ref(sensor, e);
    {
      Chain& c = ChainOf(n);
      if (c.first_login_ns == 0 || e.time_ns < c.first_login_ns) c.first_login_ns = e.time_ns;
      AddUnique(c.users, n.user);
      AddEvidence(c, ref);
    }
    if (IsPrivileged(n.host, n.user, kUnsetId)) MarkPrivileged(n, false);
    const std::string& addr = l.remote_addr;
    if (IsUninformativeAddress(addr)) return;

    // Did this address just attack this account, or spray this host?
    uint32_t failed = FailuresBefore(n.host + "|" + n.user + "|" + addr, e.time_ns);
    const SourceTracker* src = s_.sources.Find(addr);
    bool sprayed =
        src != nullptr && src->users.count(n.user) > 0 && (IsSpraying(*src) || IsStuffing(*src));
    bool attacked = failed >= o_.brute_force_failures || sprayed;
    auto sc = s_.source_chain.find(addr);
    if (sc != s_.source_chain.end() && (attacked || failed > 0)) {
      // The attacking source's chain and this login are one story.
      std::string source_chain = sc->second;
      MergeChains(source_chain, n.chain);
    }
    Chain& c = ChainOf(n);
    if (attacked && !c.success_after_failures) {
      c.success_after_failures = true;
      c.failures_before_success = failed;
      c.compromised_user = n.user;
      c.compromised_host = n.host;
      c.compromise_ns = e.time_ns;
      if (c.failure_source.empty()) c.failure_source = addr;
      AddUnique(c.hosts, n.host);
      if (const FailureTracker* ft = s_.failures.Find(n.host + "|" + n.user + "|" + addr)) {
        for (const EventRef& r : ft->refs) AddEvidence(c, r);
      }
    }
    bool from_host = s_.addresses.Find(addr) != nullptr;
    std::vector<std::string>* seen = s_.user_sources.Find(n.user);
    if (seen == nullptr) {
      seen = &s_.user_sources.Put(n.user, {});
      CapTrackers(s_.user_sources);
      seen = s_.user_sources.Find(n.user);
    }
    s_.user_sources.Touch(n.user);
    if (!from_host && std::find(seen->begin(), seen->end(), addr) == seen->end()) {
      n.new_source = true;
    }
    if (AddUnique(*seen, addr) && seen->size() > kMaxSourcesPerUser) seen->erase(seen->begin());
    if (b_ != nullptr) BaselineLogin(sensor, e, l, n, from_host);
    RecomputeEntries(c);
    touched_.insert(c.key);

    if (!MatchPendingConnect(n, l, e)) {
      PendingItem p;
      p.kind = PendingItem::kLogin;
      p.index_addr = addr;
      p.index_port = l.remote_port;
      p.host = n.host;
      p.session = n.key;
      p.peer_addr = l.local_addr;
      p.peer_port = l.local_port;
      p.time_ns = e.time_ns;
      p.ref = ref;
      AddPending(std::move(p));
    }
  }

  // Sources and the weak "first login from here" stage belong to the chain's roots: once a
  // login is known to be a hop, its address is a host of ours, not an entry point.
  void RecomputeEntries(Chain& c) {
    c.sources.clear();
    if (!c.failure_source.empty()) c.sources.push_back(c.failure_source);
    c.new_source_login = false;
    c.new_source_detail.clear();
    for (const std::string& m : c.members) {
      const SessionNode* n = s_.sessions.Find(m);
      if (n == nullptr || !n->parent.empty() || IsUninformativeAddress(n->remote_addr)) continue;
      if (s_.addresses.Find(n->remote_addr) != nullptr) continue;
      AddUnique(c.sources, n->remote_addr);
      if (n->new_source && !c.new_source_login) {
        c.new_source_login = true;
        c.new_source_detail = n->user + " from " + n->remote_addr + " on " + n->host;
      }
    }
    GatherBaseline(c);
  }

  // ---- baselines ------------------------------------------------------------------------

  static void AddFacts(SessionBaseline& b, const baseline::Score& score) {
    for (const baseline::Contribution& x : score.top) {
      if (b.facts.size() >= kMaxBaselineFacts) break;
      AddUnique(b.facts, BaselineFact{x.identity, x.feature, x.value, x.sentence});
    }
  }

  void BaselineLogin(const std::string& sensor, const Event& e, const LoginEvent& l, SessionNode& n,
                     bool from_host) {
    baseline::LoginFacts f;
    f.user = n.user;
    f.host = n.host;
    f.service = l.service;
    f.addr = l.remote_addr;
    f.from_our_host = from_host;
    f.time_ns = e.time_ns;
    const baseline::Score score = b_->ScoreLogin(f);
    if (o_.on_login_scored) o_.on_login_scored(sensor, e, score.value);
    n.baseline.login = score.value;
    n.baseline.login_warm = score.warm;
    AddFacts(n.baseline, score);
    b_->ObserveLogin(f, score, n.key);
  }

  // Activity the baselines find anomalous marks its session (and reports a raised chain
  // again); ordinary activity costs nothing here.
  // Distinct novel things in one session add up (baseline::Corroborate): one program never
  // run before is a new tool, several are someone finding their way around.
  void NoteActivity(SessionNode& n, const baseline::Score& score) {
    if (score.value < kBaselineActivityConsidered || score.top.empty()) return;
    const baseline::Contribution& top = score.top.front();
    const bool known =
        std::any_of(n.baseline.facts.begin(), n.baseline.facts.end(), [&](const BaselineFact& f) {
          return f.identity == top.identity && f.feature == top.feature && f.value == top.value;
        });
    if (known) return;
    const double before = n.baseline.activity;
    if (n.baseline.facts.size() < kMaxBaselineFacts) {
      n.baseline.activity = baseline::Corroborate({before, score.value});
    } else {
      n.baseline.activity = std::max(before, score.value);
    }
    if (n.baseline.activity <= before) return;
    AddFacts(n.baseline, score);
    Chain& c = ChainOf(n);
    GatherBaseline(c);
    touched_.insert(c.key);
  }

  void GatherBaseline(Chain& c) {
    ChainBaseline b;
    // Facts of the entry logins first (every one they name: they are how the chain began),
    // then the most telling fact of each other notable session, most anomalous first, then
    // of each session reached by a hop.
    std::vector<std::pair<double, const BaselineFact*>> entry;
    std::vector<std::pair<double, const SessionBaseline*>> later;
    // The chain's stages (warm entry logins, warm hops, sessions' activity) scored at
    // least kBaselineChainStage: corroborated, they make the chain's anomaly.
    std::vector<double> stages;
    const auto stage = [&](double v) {
      if (v >= kBaselineChainStage) stages.push_back(v);
    };
    for (const std::string& m : c.members) {
      const SessionNode* n = s_.sessions.Find(m);
      if (n == nullptr || n->baseline.empty()) continue;
      const SessionBaseline& sb = n->baseline;
      const bool is_entry = n->parent.empty() && !IsUninformativeAddress(n->remote_addr) &&
                            s_.addresses.Find(n->remote_addr) == nullptr;
      if (is_entry) {
        b.login = std::max(b.login, sb.login);
        b.warm = b.warm || sb.login_warm;
        if (sb.login_warm) {
          stage(sb.login);
          const bool usual = std::none_of(sb.facts.begin(), sb.facts.end(), [](const auto& f) {
            return f.feature == "network" || f.feature == "address";
          });
          b.entry_usual = b.entry_usual || usual;
        }
      }
      if (!n->parent.empty()) {
        b.hops += sb.hop;
        b.scored_hops += sb.hop_warm ? 1 : 0;
        if (sb.hop_warm) stage(sb.hop);
      }
      b.activity = std::max(b.activity, sb.activity);
      stage(sb.activity);
      const double weight = std::max({is_entry ? sb.login : 0.0, sb.hop, sb.activity});
      if (sb.facts.empty()) continue;
      // A session reached by a hop names its most telling fact even when it is not notable
      // alone (the first of several new hosts, before the hops came fast): after the
      // notable ones, as room remains.
      if (weight < kBaselineNotable && n->parent.empty()) continue;
      if (is_entry && sb.login >= kBaselineNotable) {
        for (const BaselineFact& f : sb.facts) entry.emplace_back(sb.login, &f);
      } else {
        later.emplace_back(weight, &sb);
      }
    }
    const auto by_weight = [](const auto& x, const auto& y) { return x.first > y.first; };
    std::stable_sort(entry.begin(), entry.end(), by_weight);
    std::stable_sort(later.begin(), later.end(), by_weight);
    // One fact per (identity, feature, value): a hop at 03:13 after a login at 03:12 says
    // nothing new about the hour. Each later session adds its most telling new fact.
    const auto known = [&](const BaselineFact& f) {
      return std::any_of(b.facts.begin(), b.facts.end(), [&](const BaselineFact& g) {
        return g.identity == f.identity && g.feature == f.feature && g.value == f.value;
      });
    };
    for (const auto& [w, f] : entry) {
      if (b.facts.size() < kMaxBaselineFacts && !known(*f)) b.facts.push_back(*f);
    }
    for (const auto& [w, sb] : later) {
      for (const BaselineFact& f : sb->facts) {
        if (b.facts.size() >= kMaxBaselineFacts || known(f)) continue;
        b.facts.push_back(f);
        break;
      }
    }
    b.stages = static_cast<uint32_t>(stages.size());
    b.chain = baseline::Corroborate(std::move(stages));
    c.baseline = std::move(b);
  }

  uint32_t FailuresBefore(const std::string& tracker_key, int64_t t) const {
    const FailureTracker* ft = s_.failures.Find(tracker_key);
    if (ft == nullptr) return 0;
    // PAM and utmp may both report one attempt: count per signal and take the larger.
    uint32_t by_signal[6] = {0, 0, 0, 0, 0, 0};
    for (const auto& [at, signal] : ft->attempts) {
      if (at <= t + o_.hop_tolerance_ns && at >= t - o_.failure_window_ns) ++by_signal[signal % 6];
    }
    return *std::max_element(std::begin(by_signal), std::end(by_signal));
  }

  // Spraying: a few passwords tried across many accounts, so the source comes back to the
  // same accounts round after round. At least half of the accounts revisited after others
  // were tried in between tells rounds apart from a list walked once.
  bool IsSpraying(const SourceTracker& st) const {
    return st.users.size() >= o_.spray_min_accounts && uint64_t{st.revisits} * 2 >= st.users.size();
  }
  // Stuffing: leaked user:password pairs, so each account is tried once (twice with a retry)
  // and the list is walked once, without rounds.
  bool IsStuffing(const SourceTracker& st) const {
    if (st.users.size() < o_.stuffing_min_accounts || IsSpraying(st)) return false;
    for (const auto& [user, a] : st.users) {
      if (a.failures > 2) return false;
    }
    return true;
  }

  void OnLoginFailure(const std::string& sensor, const Event& e, const LoginEvent& l) {
    LearnAddress(l.local_addr, e.host);
    const std::string& addr = l.remote_addr;
    if (IsUninformativeAddress(addr) || l.user.empty()) return;
    if (b_ != nullptr) {
      baseline::LoginFacts f;
      f.user = l.user;
      f.host = e.host;
      f.service = l.service;
      f.addr = addr;
      f.success = false;
      f.time_ns = e.time_ns;
      b_->ObserveLogin(f, baseline::Score{}, "");
    }
    EventRef ref = Ref(sensor, e);
    uint8_t signal = static_cast<uint8_t>(l.source) % 6;

    std::string fkey = e.host + "|" + l.user + "|" + addr;
    FailureTracker* ft = s_.failures.Find(fkey);
    if (ft == nullptr) {
      s_.failures.Put(fkey, {});
      CapTrackers(s_.failures);
      ft = s_.failures.Find(fkey);
    }
    s_.failures.Touch(fkey);
    ft->touched_ns = now_;
    auto& at = ft->attempts;
    at.erase(
        std::remove_if(at.begin(), at.end(),
                       [&](const auto& a) { return a.first < e.time_ns - o_.failure_window_ns; }),
        at.end());
    at.emplace_back(e.time_ns, signal);
    if (at.size() > kMaxAttemptsPerTracker) at.erase(at.begin());
    if (ft->refs.size() >= kMaxRefsPerTracker)
      ft->refs.erase(ft->refs.begin() + kMaxRefsPerTracker / 2);
    ft->refs.push_back(ref);
    uint32_t failed = FailuresBefore(fkey, e.time_ns);

    SourceTracker* st = s_.sources.Find(addr);
    if (st == nullptr) {
      s_.sources.Put(addr, {});
      while (s_.sources.size() > std::max<size_t>(1, o_.max_trackers)) {
        EvictSource(*s_.sources.Oldest());
      }
      st = s_.sources.Find(addr);
    }
    s_.sources.Touch(addr);
    st->touched_ns = now_;
    if (st->last_ns != 0 && e.time_ns - st->last_ns > o_.failure_window_ns) *st = SourceTracker{};
    st->touched_ns = now_;
    if (st->first_ns == 0) st->first_ns = e.time_ns;
    st->last_ns = std::max(st->last_ns, e.time_ns);
    AddUnique(st->hosts, e.host);
    if (st->hosts.size() > 16) st->hosts.erase(st->hosts.begin());
    if (st->users.size() < kMaxUsersPerSource || st->users.count(l.user) > 0) {
      SourceUserAttempts& ua = st->users[l.user];
      ++st->attempts;
      // "Others in between": a duplicate report of the same attempt comes right after it.
      if (ua.last_index != 0 && st->attempts - ua.last_index > 2) ++st->revisits;
      ua.last_index = st->attempts;
      ++ua.by_signal[signal];
      ua.failures = std::max(ua.failures, ua.by_signal[signal]);
    }
    if (st->refs.size() >= kMaxRefsPerTracker)
      st->refs.erase(st->refs.begin() + kMaxRefsPerTracker / 2);
    st->refs.push_back(ref);

    bool brute = failed >= o_.brute_force_failures;
    bool spraying = IsSpraying(*st);
    bool stuffing = IsStuffing(*st);
    if (!brute && !spraying && !stuffing) return;
    Chain& c = SourceChain(addr);
    c.last_activity_ns = now_;
    if (brute && failed >= c.failures) {
      c.brute_force = true;
      c.failures = failed;
      c.failure_user = l.user;
      c.failure_host = e.host;
    }
    c.spraying = c.spraying || spraying;
    c.stuffing = (c.stuffing || stuffing) && !c.spraying;
    if (spraying || stuffing) {
      c.sprayed_accounts =
          std::max<uint32_t>(c.sprayed_accounts, static_cast<uint32_t>(st->users.size()));
      if (c.failure_host.empty()) c.failure_host = e.host;
    }
    c.failure_source = addr;
    AddUnique(c.sources, addr);
    AddUnique(c.hosts, e.host);
    AddUnique(c.users, l.user);
    // The first failures of a pattern tell how it began; later ones only move last_seen.
    const std::vector<EventRef>& refs = brute ? ft->refs : st->refs;
    for (const EventRef& r : refs) AddEvidence(c, r);
  }

  Chain& SourceChain(const std::string& addr) {
    auto it = s_.source_chain.find(addr);
    if (it != s_.source_chain.end()) {
      auto cit = s_.chains.find(it->second);
      if (cit != s_.chains.end()) return cit->second;
    }
    std::string key = "src:" + addr;
    s_.source_chain[addr] = key;
    return NewChain(key);
  }

  // ---- hops -----------------------------------------------------------------------------

  void LearnAddress(const std::string& addr, const std::string& host) {
    if (IsUninformativeAddress(addr) || host.empty()) return;
    std::string* known = s_.addresses.Find(addr);
    if (known != nullptr && *known == host) {
      s_.addresses.Touch(addr);
      return;
    }
    s_.addresses.Put(addr, host);
    CapTrackers(s_.addresses);
  }

  HostKnowledge& Host(const std::string& host) {
    if (HostKnowledge* k = s_.hosts.Find(host)) {
      s_.hosts.Touch(host);
      return *k;
    }
    s_.hosts.Put(host, {});
    CapTrackers(s_.hosts);
    return *s_.hosts.Find(host);
  }

  void AddSshPort(const std::string& host, uint32_t port) {
    if (port != 0 && Host(host).ssh_ports.size() < 64) Host(host).ssh_ports.insert(port);
  }

  bool IsSshPort(const std::string& host, uint32_t port) const {
    for (uint16_t p : o_.ssh_ports) {
      if (p == port) return true;
    }
    const HostKnowledge* k = s_.hosts.Find(host);
    return k != nullptr && k->ssh_ports.count(port) > 0;
  }

  // Whether a connect on host A and a login on host B are the two ends of one SSH hop.
  // Returns a rank (higher is better) or -1.
  int HopMatch(const std::string& host_a, uint32_t src_port, const std::string& dst_addr,
               uint32_t dst_port, int64_t t_connect, const std::string& host_b,
               uint32_t login_remote_port, const std::string& login_local_addr,
               uint32_t login_local_port, int64_t t_login) const {
    if (host_a == host_b) return -1;
    if (src_port != 0 && login_remote_port != 0 && src_port != login_remote_port) return -1;
    bool four_tuple = src_port != 0 && login_remote_port != 0;
    int64_t dt = t_login - t_connect;
    int64_t late = four_tuple ? o_.hop_auth_delay_ns + o_.hop_tolerance_ns : o_.hop_tolerance_ns;
    if (dt < -o_.hop_tolerance_ns || dt > late) return -1;
    if (!login_local_addr.empty() && !dst_addr.empty() && login_local_addr != dst_addr) return -1;
    if (login_local_port != 0 && dst_port != 0 && login_local_port != dst_port) return -1;
    if (const std::string* owner = s_.addresses.Find(dst_addr); owner && *owner != host_b) {
      return -1;
    }
    bool ssh =
        IsSshPort(host_b, dst_port) || (login_local_port != 0 && login_local_port == dst_port);
    if (!ssh) return -1;
    // Prefer the exact 4-tuple, then the closest in time (ranks fit in an int: |dt| in ms).
    int64_t closeness = 1'000'000 - std::min<int64_t>(999'999, std::abs(dt) / kNanosPerMilli);
    return static_cast<int>((four_tuple ? 2'000'000 : 0) + closeness);
  }

  // Calls f(id) for the pending items of `kind` indexed under addr:port, or under every port
  // of addr when port is 0, plus those indexed without a port.
  template <typename F>
  void ForEachPending(PendingItem::Kind kind, const std::string& addr, uint32_t port, F&& f) const {
    // The buckets scanned are exactly those of `addr`: nothing to do when it has no item of
    // this kind.
    auto count = s_.pending_at_addr.find(addr);
    if (count == s_.pending_at_addr.end() || count->second[kind] == 0) return;
    auto scan_bucket = [&](const std::vector<PendingIndexEntry>& bucket) {
      for (const PendingIndexEntry& entry : bucket) {
        if (entry.kind == kind) f(entry.id);
      }
    };
    auto scan = [&](const std::string& key) {
      auto it = s_.pending_by_addr.find(key);
      if (it != s_.pending_by_addr.end()) scan_bucket(it->second);
    };
    if (port != 0) {
      scan(PendingKey(addr, port));
      scan(PendingKey(addr, 0));
      return;
    }
    // Every port of addr: the keys "addr|<port>". A key that starts so but has another '|'
    // after the prefix belongs to an address that extends addr ("addr|x|<port>"): skipped.
    std::string prefix = addr + "|";
    for (auto it = s_.pending_by_addr.lower_bound(prefix);
         it != s_.pending_by_addr.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (it->first.find('|', prefix.size()) != std::string::npos) continue;
      scan_bucket(it->second);
    }
  }

  static std::string PendingKey(const std::string& addr, uint32_t port) {
    return addr + "|" + std::to_string(port);
  }

  bool MatchPendingConnect(SessionNode& login_node, const LoginEvent& l, const Event& e) {
    uint64_t best = 0;
    int best_rank = -1;
    ForEachPending(PendingItem::kConnect, l.remote_addr, l.remote_port, [&](uint64_t id) {
      const PendingItem& p = s_.pending.at(id);
      int rank = HopMatch(p.host, p.index_port, p.peer_addr, p.peer_port, p.time_ns, e.host,
                          l.remote_port, l.local_addr, l.local_port, e.time_ns);
      if (rank > best_rank) {
        best_rank = rank;
        best = id;
      }
    });
    if (best_rank < 0) return false;
    PendingItem p = s_.pending.at(best);
    RemovePending(best);
    StitchHop(p.session, login_node.key, p.peer_port, p.ref);
    return true;
  }

  bool MatchPendingLogin(const std::string& source_session, const Event& e,
                         const NetConnectEvent& c, const EventRef& connect_ref) {
    uint64_t best = 0;
    int best_rank = -1;
    ForEachPending(PendingItem::kLogin, c.local_addr, c.local_port, [&](uint64_t id) {
      const PendingItem& p = s_.pending.at(id);
      int rank = HopMatch(e.host, c.local_port, c.remote_addr, c.remote_port, e.time_ns, p.host,
                          p.index_port, p.peer_addr, p.peer_port, p.time_ns);
      if (rank > best_rank) {
        best_rank = rank;
        best = id;
      }
    });
    if (best_rank < 0) return false;
    std::string login_session = s_.pending.at(best).session;
    RemovePending(best);
    StitchHop(source_session, login_session, c.remote_port, connect_ref);
    return true;
  }

  void AddPending(PendingItem p) {
    p.arrived_ns = now_;
    uint64_t id = s_.next_pending_id++;
    std::vector<PendingIndexEntry>& bucket =
        s_.pending_by_addr[PendingKey(p.index_addr, p.index_port)];
    bucket.push_back({id, p.kind});
    ++s_.pending_at_addr[p.index_addr][p.kind];
    const uint64_t oldest_in_bucket = bucket.size() > kMaxPendingPerKey ? bucket.front().id : 0;
    s_.pending.emplace(id, std::move(p));
    if (oldest_in_bucket != 0) {
      RemovePending(oldest_in_bucket);
      ++s_.stats.pending_evicted;
    }
    while (s_.pending.size() > std::max<size_t>(1, o_.max_pending)) {
      RemovePending(s_.pending.begin()->first);
      ++s_.stats.pending_evicted;
    }
  }

  void RemovePending(uint64_t id) {
    auto it = s_.pending.find(id);
    if (it == s_.pending.end()) return;
    if (it->second.kind == PendingItem::kLogin) {
      // A chain held for this login's hop (AwaitsItsHop) is decided again.
      if (const SessionNode* n = s_.sessions.Find(it->second.session); n && !n->chain.empty()) {
        touched_.insert(n->chain);
      }
    }
    if (auto count = s_.pending_at_addr.find(it->second.index_addr);
        count != s_.pending_at_addr.end()) {
      --count->second[it->second.kind];
      if (count->second[PendingItem::kConnect] == 0 && count->second[PendingItem::kLogin] == 0) {
        s_.pending_at_addr.erase(count);
      }
    }
    auto idx = s_.pending_by_addr.find(PendingKey(it->second.index_addr, it->second.index_port));
    if (idx != s_.pending_by_addr.end()) {
      auto& bucket = idx->second;
      bucket.erase(std::remove_if(bucket.begin(), bucket.end(),
                                  [&](const PendingIndexEntry& entry) { return entry.id == id; }),
                   bucket.end());
      if (bucket.empty()) s_.pending_by_addr.erase(idx);
    }
    s_.pending.erase(it);
  }

  bool IsAncestor(const SessionNode& maybe_ancestor, const SessionNode& node) {
    const SessionNode* cur = &node;
    for (int depth = 0; cur != nullptr && depth < kMaxChainDepth; ++depth) {
      if (cur->key == maybe_ancestor.key) return true;
      if (cur->parent.empty()) return false;
      cur = s_.sessions.Find(cur->parent);
    }
    return cur != nullptr;  // too deep: refuse, as if it were a cycle
  }

  // Hops between the session and its chain's entry session (0 for an entry session).
  int DepthOf(const SessionNode& node) const {
    int depth = 0;
    const SessionNode* cur = &node;
    while (cur != nullptr && !cur->parent.empty() && depth < kMaxChainDepth) {
      cur = s_.sessions.Find(cur->parent);
      ++depth;
    }
    return depth;
  }

  void StitchHop(const std::string& parent_key, const std::string& child_key, uint32_t port,
                 const EventRef& connect_ref) {
    SessionNode* parent = FindSession(parent_key);
    SessionNode* child = FindSession(child_key);
    if (parent == nullptr || child == nullptr || !child->parent.empty()) return;
    if (IsAncestor(*child, *parent)) return;
    child->parent = parent->key;
    Hop hop{parent->host, child->host, child->user, parent->user, child->login_ns, port};
    if (b_ != nullptr && !child->user.empty()) {
      const baseline::Identity who = b_->Resolve(child->user, nullptr);
      const int64_t at = child->login_ns != 0 ? child->login_ns : connect_ref.time_ns;
      const int depth = DepthOf(*parent) + 1;
      const baseline::Score score = b_->ScoreHop(who, parent->host, child->host, at, depth);
      child->baseline.hop = score.value;
      child->baseline.hop_warm = score.warm;
      AddFacts(child->baseline, score);
      b_->ObserveHop(who, parent->host, child->host, at, score, child->key, depth);
    }
    std::string child_chain = child->chain;
    MergeChains(parent->chain, child_chain);
    Chain& c = ChainOf(*parent);
    AddUnique(c.hosts, parent->host);
    AddUnique(c.hosts, child->host);
    AddUnique(c.hops, hop);
    AddEvidence(c, connect_ref);
    RecomputeEntries(c);
    ++s_.stats.hops;
  }

  // Moves everything of chain `from` into chain `into`. One incident survives: `into`'s if
  // it had one, else `from`'s (so an incident raised on part of a chain keeps its id as the
  // chain grows around it). When both had one, `from`'s gets a last revision pointing to
  // `into`'s, so nobody follows a dead incident.
  // The keys are copies: callers pass a session's `chain`, which the merge rewrites.
  void MergeChains(const std::string into_key, const std::string from_key) {
    if (into_key == from_key) return;
    auto fit = s_.chains.find(from_key);
    auto iit = s_.chains.find(into_key);
    if (fit == s_.chains.end() || iit == s_.chains.end()) return;
    Chain& into = iit->second;
    Chain& from = fit->second;
    for (const std::string& m : from.members) {
      if (SessionNode* n = s_.sessions.Find(m)) n->chain = into_key;
      AddUnique(into.members, m);
    }
    for (const auto& h : from.hosts) AddUnique(into.hosts, h);
    for (const auto& u : from.users) AddUnique(into.users, u);
    for (const auto& s : from.sources) AddUnique(into.sources, s);
    for (const auto& d : from.discovery) AddUnique(into.discovery, d);
    for (const auto& p : from.privileged) AddUnique(into.privileged, p);
    for (const auto& h : from.hops) AddUnique(into.hops, h);
    for (const FileFinding& f : from.files) AddFinding(into, f);
    for (const RuleFinding& r : from.rules) AddRuleFinding(into, r);
    for (const EventRef& r : from.events) AddEvent(into, r);
    if (from.failures > into.failures ||
        (into.failure_source.empty() && !from.failure_source.empty())) {
      into.failures = from.failures;
      into.failure_user = from.failure_user;
      into.failure_host = from.failure_host;
      into.failure_source = from.failure_source;
    }
    into.exported = into.exported || from.exported;
    if (from.exported) s_.exports.insert(from_key);  // its fragment is retracted
    into.brute_force = into.brute_force || from.brute_force;
    into.spraying = into.spraying || from.spraying;
    into.stuffing = (into.stuffing || from.stuffing) && !into.spraying;
    into.sprayed_accounts = std::max(into.sprayed_accounts, from.sprayed_accounts);
    if (from.success_after_failures &&
        (!into.success_after_failures || from.compromise_ns < into.compromise_ns)) {
      into.success_after_failures = true;
      into.failures_before_success = from.failures_before_success;
      into.compromised_user = from.compromised_user;
      into.compromised_host = from.compromised_host;
      into.compromise_ns = from.compromise_ns;
    }
    auto min_set = [](int64_t a, int64_t b) { return a == 0 ? b : (b == 0 ? a : std::min(a, b)); };
    into.first_login_ns = min_set(into.first_login_ns, from.first_login_ns);
    into.first_ns = min_set(into.first_ns, from.first_ns);
    into.last_ns = std::max(into.last_ns, from.last_ns);
    into.last_activity_ns = std::max(into.last_activity_ns, from.last_activity_ns);
    if (!from.failure_source.empty()) {  // only chains of attacking sources are named there
      for (auto& [addr, chain] : s_.source_chain) {
        if (chain == from_key) chain = into_key;
      }
    }
    if (!from.incident_id.empty()) {
      if (into.incident_id.empty()) {
        into.incident_id = from.incident_id;
        into.revision = from.revision;
        into.fingerprint = from.fingerprint;
        s_.raised.insert(into_key);
      } else {
        ReportNow(from, "This chain joined incident " + into.incident_id +
                            " as part of a longer chain; follow that incident from now on.");
      }
    }
    s_.raised.erase(from_key);
    // Whatever of `from` was not yet reported is now in `into` or in the revision above.
    s_.unreported.erase(from_key);
    touched_.erase(from_key);
    s_.chains.erase(fit);
    RecomputeEntries(into);
    touched_.insert(into_key);
  }

  // ---- activity -------------------------------------------------------------------------

  void AddFinding(Chain& c, const FileFinding& f) {
    for (FileFinding& have : c.files) {
      if (have.host == f.host && have.path == f.path && have.technique == f.technique) {
        if (f.succeeded && !have.succeeded) have = f;
        return;
      }
    }
    if (c.files.size() < 32) c.files.push_back(f);
  }

  void OnFileOpen(const std::string& sensor, const Event& e, const FileOpenEvent& f) {
    SessionNode* n = ActivityNode(e);
    if (n == nullptr) return;
    std::string_view technique = ClassifyFileOpen(f, e.process);
    if (technique.empty()) return;
    if (b_ != nullptr && !n->user.empty()) {
      const baseline::Identity who = b_->Resolve(n->user, &e.process);
      const baseline::Score score = b_->ScoreFile(who, e.host, f.path, e.time_ns);
      b_->ObserveFile(who, e.host, f.path, e.time_ns, score, n->key);
      NoteActivity(*n, score);
    }
    Chain& c = ChainOf(*n);
    FileFinding finding{n->host,       n->user.empty() ? e.process.user : n->user,
                        f.path,        std::string(technique),
                        f.result >= 0, e.time_ns,
                        e.process.comm};
    AddFinding(c, finding);
    AddEvidence(c, Ref(sensor, e));
  }

  void AddRuleFinding(Chain& c, const RuleFinding& f) {
    for (const RuleFinding& have : c.rules) {
      if (have.rule_id == f.rule_id && have.host == f.host) return;
    }
    if (c.rules.size() < 32) c.rules.push_back(f);
  }

 public:
  // A Sigma rule hit: a stage of the event's session (see Correlator::FeedRuleHit).
  void OnRuleHit(const std::string& sensor, const Event& e, const RuleHit& hit) {
    if (e.time_ns < 0 || e.time_ns > kMaxSaneTimeNs) return;
    SessionNode* n = ActivityNode(e);
    if (n == nullptr) return;
    Chain& c = ChainOf(*n);
    AddRuleFinding(c, RuleFinding{n->host, n->user.empty() ? e.process.user : n->user, hit.rule_id,
                                  hit.title, hit.level, hit.techniques, e.time_ns, Summary(e)});
    AddEvidence(c, Ref(sensor, e));
  }

 private:
  void OnExec(const std::string& sensor, const Event& e, const ExecEvent& x) {
    SessionNode* n = ActivityNode(e);
    if (n == nullptr) return;
    // A root process in a user's session is not by itself an escalation: sshd runs the PAM
    // session modules and the motd scripts as root inside the new audit session. Running a
    // program whose purpose is to become root is.
    if (n->user != "root" && IsEscalationProgram(x.filename)) {
      if (b_ != nullptr && !n->privileged) {
        // The session's first escalation, against how often the identity's sessions do.
        const baseline::Identity who = b_->Resolve(n->user, nullptr);
        const baseline::Score score = b_->ScorePrivilege(who, e.host, e.time_ns);
        b_->ObservePrivilege(who, e.host, e.time_ns, score, n->key);
        NoteActivity(*n, score);
      }
      MarkPrivileged(*n, true);
    }
    if (b_ != nullptr && !n->user.empty()) {
      const baseline::Identity who = b_->Resolve(n->user, &e.process);
      const baseline::Score score = b_->ScoreExec(who, e.host, x.filename, e.time_ns);
      b_->ObserveExec(who, e.host, x.filename, e.time_ns, score, n->key);
      NoteActivity(*n, score);
    }
    if (!IsDiscoveryCommand(x.filename) || n->discovery_flagged) return;
    auto& times = n->discovery_times;
    times.push_back(e.time_ns);
    times.erase(std::remove_if(times.begin(), times.end(),
                               [&](int64_t t) { return t < e.time_ns - o_.discovery_window_ns; }),
                times.end());
    if (times.size() > o_.discovery_min_execs) times.erase(times.begin());
    if (times.size() < o_.discovery_min_execs) return;
    n->discovery_flagged = true;
    times.clear();
    Chain& c = ChainOf(*n);
    AddUnique(c.discovery, n->user + " on " + n->host);
    AddEvidence(c, Ref(sensor, e));
  }

  void OnNet(const std::string& sensor, const Event& e, const NetConnectEvent& c) {
    LearnAddress(c.local_addr, e.host);
    if (c.direction == NetDirection::kAccepted) {
      if (IsSshDaemon(e.process)) AddSshPort(e.host, c.local_port);
      return;
    }
    if (c.direction != NetDirection::kOutbound) return;
    SessionNode* n = ActivityNode(e);
    if (n == nullptr || IsUninformativeAddress(c.remote_addr) || c.local_addr.empty()) return;
    if (const std::string* owner = s_.addresses.Find(c.remote_addr); owner && *owner == e.host) {
      return;  // to itself
    }
    ObserveConnect(*n, e, c);
    EventRef ref = Ref(sensor, e);
    if (MatchPendingLogin(n->key, e, c, ref)) return;
    // Every outbound connect from a session waits, not only those to known SSH ports: the
    // destination's sshd accept (telling its port) may arrive later than this connect.
    PendingItem p;
    p.kind = PendingItem::kConnect;
    p.index_addr = c.local_addr;
    p.index_port = c.local_port;
    p.host = e.host;
    p.session = n->key;
    p.peer_addr = c.remote_addr;
    p.peer_port = c.remote_port;
    p.time_ns = e.time_ns;
    p.ref = std::move(ref);
    AddPending(std::move(p));
  }

  void ObserveConnect(SessionNode& n, const Event& e, const NetConnectEvent& c) {
    if (b_ == nullptr || n.user.empty()) return;
    const baseline::Identity who = b_->Resolve(n.user, &e.process);
    const baseline::Score score =
        b_->ScoreConnect(who, e.host, c.remote_addr, c.remote_port, e.time_ns);
    b_->ObserveConnect(who, e.host, c.remote_addr, c.remote_port, e.time_ns, score, n.key);
    NoteActivity(n, score);
  }

  void OnPosture(const Event& e, const PostureSnapshot& p) {
    if (e.host.empty()) return;
    std::set<std::string> privileged(p.root_group_members.begin(), p.root_group_members.end());
    static const std::set<std::string> kAdminGroups = {"root", "sudo", "wheel", "admin"};
    for (const Account& a : p.accounts) {
      bool admin = a.uid == 0 || !a.sudo_rules.empty() || a.sudo_nopasswd;
      for (const std::string& g : a.groups) admin = admin || kAdminGroups.count(g) > 0;
      if (admin) privileged.insert(a.name);
    }
    std::map<std::string, AccountPosture> posture;
    for (const Account& a : p.accounts) {
      AccountPosture ap{RootPowers(a), PasswordNeverExpires(a), LooksHuman(a)};
      if (!ap.root_powers.empty() || ap.never_expires) posture[a.name] = std::move(ap);
      if (posture.size() >= kMaxPostureAccounts) break;
    }
    HostKnowledge& k = Host(e.host);
    k.privileged_users = std::move(privileged);
    if (posture != k.posture) {
      k.posture = std::move(posture);
      TouchChainsOn(e.host);
    }
  }

  void OnHealth(const std::string& sensor, const Event& e, const SensorHealth& h) {
    if (e.host.empty()) return;
    HostKnowledge& k = Host(e.host);
    std::vector<HookFamilyStatus> blind;
    for (const HookFamilyStatus& f : h.families) {
      if (f.state != "live") blind.push_back(f);
    }
    const bool blind_changed =
        blind.size() != k.blind.size() ||
        !std::equal(blind.begin(), blind.end(), k.blind.begin(), [](const auto& a, const auto& b) {
          return a.name == b.name && a.state == b.state && a.hooks == b.hooks;
        });
    k.blind = std::move(blind);
    if (blind_changed) TouchChainsOn(e.host);
    // Counters are cumulative since the sensor started; a smaller value means it restarted.
    uint64_t total = h.ringbuf_drops + h.spool_drops;
    // A host normally has one sensor; a reinstalled one gets a new id. Keep the latest few.
    if (k.drop_counters.count(sensor) == 0 && k.drop_counters.size() >= 8) {
      k.drop_counters.erase(k.drop_counters.begin());
    }
    uint64_t& last = k.drop_counters[sensor];
    uint64_t fresh = total >= last ? total - last : total;
    last = total;
    if (fresh == 0) return;
    k.drops.emplace_back(e.time_ns, fresh);
    if (k.drops.size() > kMaxDropEpisodes) k.drops.erase(k.drops.begin());
    TouchChainsOn(e.host);
  }

  // Raised chains through `host` are reported again: what is known of its data changed.
  void TouchChainsOn(const std::string& host) {
    for (const std::string& key : s_.raised) {
      auto it = s_.chains.find(key);
      if (it == s_.chains.end()) continue;
      const auto& hosts = it->second.hosts;
      if (std::find(hosts.begin(), hosts.end(), host) != hosts.end()) touched_.insert(key);
    }
  }

  // ---- incidents ------------------------------------------------------------------------

  std::vector<HostDataGap> GapsFor(const Chain& c) const {
    std::vector<HostDataGap> gaps;
    for (const std::string& host : c.hosts) {
      const HostKnowledge* k = s_.hosts.Find(host);
      if (k == nullptr) continue;
      uint64_t drops = 0;
      for (const auto& [at, n] : k->drops) {
        if (at >= c.first_ns - kDropLookbehindNs && at <= c.last_ns + kDropLookaheadNs) drops += n;
      }
      if (drops > 0 || !k->blind.empty()) gaps.push_back({host, drops, k->blind});
    }
    return gaps;
  }

  // The accounts of the chain, as (host, user): its sessions' accounts and the account a
  // credential attack was aimed at.
  std::vector<std::pair<std::string, std::string>> InvolvedAccounts(const Chain& c) const {
    std::vector<std::pair<std::string, std::string>> involved;
    const auto add = [&](const std::string& host, const std::string& user) {
      if (host.empty() || user.empty()) return;
      std::pair<std::string, std::string> hu{host, user};
      if (std::find(involved.begin(), involved.end(), hu) == involved.end()) {
        involved.push_back(std::move(hu));
      }
    };
    add(c.failure_host, c.failure_user);
    for (const std::string& key : c.members) {
      if (const SessionNode* n = s_.sessions.Find(key)) add(n->host, n->user);
    }
    return involved;
  }

  // What the chain's identities stand as: those whose standing privileges make it more
  // severe (a service account or agent with root's power or a password that never expires,
  // or any account with uid 0 besides root; docs/audit.md), and its agents on probation.
  Standing StandingOf(const Chain& c) const {
    Standing out;
    // Agents whose own activity in the chain's sessions the baselines found unusual: one
    // declared by its executable (or cgroup, or pod) is known by these facts, not by the
    // account its sessions run as.
    if (b_ != nullptr && t_ != nullptr) {
      for (const std::string& key : c.members) {
        const SessionNode* n = s_.sessions.Find(key);
        if (n == nullptr) continue;
        for (const BaselineFact& f : n->baseline.facts) {
          constexpr std::string_view kAgentPrefix = "agent:";
          if (f.identity.rfind(kAgentPrefix, 0) != 0) continue;
          baseline::Identity agent{baseline::IdentityKind::kAgent,
                                   f.identity.substr(kAgentPrefix.size()), false};
          agent.probation = b_->resolver().DeclaredOnProbation(agent.name);
          if (t_->OnProbation(agent) && std::find(out.on_probation.begin(), out.on_probation.end(),
                                                  agent.name) == out.on_probation.end()) {
            out.on_probation.push_back(agent.name);
          }
        }
      }
    }
    for (const auto& [host, user] : InvolvedAccounts(c)) {
      baseline::Identity declared;
      if (b_ != nullptr) declared = b_->Resolve(user, nullptr);
      if (t_ != nullptr && t_->OnProbation(declared) &&
          std::find(out.on_probation.begin(), out.on_probation.end(), declared.name) ==
              out.on_probation.end()) {
        out.on_probation.push_back(declared.name);
      }
      // Privileges it holds and never used (privilege drift): tracked for non-human
      // identities only.
      UnusedPrivileges unused;
      if (d_ != nullptr && c.first_ns > 0) unused = d_->Unused(host, user, c.first_ns);
      const HostKnowledge* k = s_.hosts.Find(host);
      const AccountPosture* ap = nullptr;
      if (k != nullptr) {
        if (auto it = k->posture.find(user); it != k->posture.end()) ap = &it->second;
      }
      if (ap == nullptr && unused.privileges.empty()) continue;
      std::string kind = ap != nullptr && ap->looks_human ? "human" : "service";
      if (!unused.kind.empty()) kind = unused.kind;
      if (declared.kind == baseline::IdentityKind::kService ||
          declared.kind == baseline::IdentityKind::kAgent) {
        kind = std::string(baseline::KindName(declared.kind));
      }
      IdentityRisk risk{host, user, kind, {}, false, {}, 0};
      if (ap != nullptr) {
        risk.root_powers = ap->root_powers;
        risk.never_expires = ap->never_expires;
      }
      const bool uid_zero = std::find(risk.root_powers.begin(), risk.root_powers.end(),
                                      "has uid 0") != risk.root_powers.end();
      if (kind == "human" && !uid_zero) continue;
      risk.unused = std::move(unused.privileges);
      risk.watched_ns = unused.watched_ns;
      out.risks.push_back(std::move(risk));
    }
    return out;
  }

  // Adds the chain's incident to s_.held if it changed since last reported.
  void ReportNow(Chain& c, const std::string& note) {
    if (c.exported) {
      s_.exports.insert(c.key);
      return;
    }
    const std::vector<HostDataGap> gaps = GapsFor(c);
    const Standing standing = StandingOf(c);
    const Assessment a = AssessChain(c, gaps, standing);
    Incident in = BuildIncident(c, a, gaps, standing);
    if (!note.empty()) in.explanation.push_back(note);
    in.id = c.incident_id;
    if (b_ != nullptr && !c.baseline.facts.empty() && !in.id.empty()) {
      std::vector<baseline::Contribution> facts;
      for (const BaselineFact& f : c.baseline.facts) {
        facts.push_back({f.identity, f.feature, f.value, 0, f.sentence});
      }
      b_->RecordIncident(in.id, facts);
    }
    uint64_t fp = Fingerprint(in);
    if (fp == c.fingerprint) return;
    c.fingerprint = fp;
    in.revision = ++c.revision;
    in.updated_ns = now_;
    if (in.revision > 1) ++s_.stats.incident_updates;
    s_.held.push_back(std::move(in));
  }

 public:
  bool IsPrivileged(const std::string& host, const std::string& user, uint32_t uid) const {
    if (uid == 0 || user == "root") return true;
    for (const std::string& u : o_.privileged_users) {
      if (u == user) return true;
    }
    const HostKnowledge* k = s_.hosts.Find(host);
    return k != nullptr && k->privileged_users.count(user) > 0;
  }

 private:
  const CorrelatorOptions& o_;
  CorrelatorState& s_;
  const int64_t now_;
  baseline::Baselines* const b_;
  const baseline::TrustBook* const t_;
  const DriftView* const d_;
  std::set<std::string> touched_;  // sorted: output order does not depend on hashing
};

Correlator::Correlator(CorrelatorOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), state_(std::make_unique<CorrelatorState>()) {}

Correlator::~Correlator() = default;

std::vector<Incident> Correlator::Handle(std::string_view sensor_id, const Event& e) {
  Feed(sensor_id, e);
  return TakeChanged();
}

void Correlator::Feed(std::string_view sensor_id, const Event& e) {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  engine.Handle(sensor_id, e);
  engine.Settle();
  if (baselines_ != nullptr && e.time_ns >= 0 && e.time_ns <= kMaxSaneTimeNs) {
    // An older event (imported history) does not move the watermark, but what it queued
    // may already be old enough to learn.
    baselines_->Commit(e.time_ns,
                       [&engine](const std::string& tag) { return engine.InIncident(tag); });
  }
}

void Correlator::FeedRuleHit(std::string_view sensor_id, const Event& e, const RuleHit& hit) {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  engine.OnRuleHit(std::string(sensor_id), e, hit);
  engine.Settle();
}

std::vector<Incident> JoinFragments(const CorrelatorOptions& options, const Clock& clock,
                                    const std::vector<const CorrelatorState*>& parts,
                                    std::map<std::string, ReportedRevision>* ledger) {
  CorrelatorState joined;
  Engine engine(options, clock, joined, nullptr, nullptr, nullptr);
  engine.Join(parts, *ledger);
  engine.Settle();
  // A chain the joiner raised itself has an id no fragment carries: what was reported of
  // it is in the ledger alone.
  for (auto& [key, c] : joined.chains) {
    auto it = ledger->find(c.incident_id);
    if (c.incident_id.empty() || it == ledger->end() || it->second.revision < c.revision) continue;
    c.revision = it->second.revision;
    c.fingerprint = it->second.fingerprint;
  }
  std::vector<Incident> out = engine.Report();
  const int64_t now = clock.NowNs();
  for (const Incident& in : out) (*ledger)[in.id] = {in.revision, Fingerprint(in), now};
  for (const auto& [key, c] : joined.chains) {
    if (!c.incident_id.empty()) (*ledger)[c.incident_id] = {c.revision, c.fingerprint, now};
  }
  return out;
}

void Correlator::FeedRoutedCopy(std::string_view sensor_id, const Event& e) {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  (void)sensor_id;  // the connect is cited where it was routed, not here
  engine.OnRoutedCopy(e);
  engine.Settle();
  if (baselines_ != nullptr && e.time_ns >= 0 && e.time_ns <= kMaxSaneTimeNs) {
    baselines_->Commit(e.time_ns,
                       [&engine](const std::string& tag) { return engine.InIncident(tag); });
  }
}

std::vector<ChainFragment> Correlator::TakeFragments() {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  return engine.TakeFragments();
}

std::vector<Incident> Correlator::TakeChanged() {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  return engine.Report();
}

std::vector<Incident> Correlator::Reassess() {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  engine.TouchRaised();
  engine.Settle();
  return engine.Report();
}

std::vector<Incident> Correlator::Tick() {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  engine.Tick();
  engine.Settle();
  return engine.Report();
}

bool Correlator::IsPrivileged(std::string_view host, std::string_view user, uint32_t uid) const {
  Engine engine(options_, clock_, *state_, baselines_, trust_, drift_);
  return engine.IsPrivileged(std::string(host), std::string(user), uid);
}

size_t Correlator::tracked_sessions() const { return state_->sessions.size(); }
size_t Correlator::pending_items() const { return state_->pending.size(); }
const CorrelatorStats& Correlator::stats() const { return state_->stats; }

}  // namespace tripline::correlate
