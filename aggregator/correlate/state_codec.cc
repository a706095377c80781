// Persistence of the correlator's state.
//
// Format "tripline.correlator.v1": one JSON object (UTF-8 text).
//   {"format": "tripline.correlator.v1", "next_pending_id": N, "stats": {...},
//    "sessions": [...],       // oldest used first, so replaying restores the LRU order
//    "chains": [...], "source_chain": [[addr, chain], ...], "raised": [chain, ...],
//    "failures": [...], "sources": [...], "user_sources": [...], "addresses": [[addr, host]],
//    "hosts": [...], "pending": [...]}          // pending by insertion id, oldest first
// Indexes (aliases, pending by address) are derived and rebuilt on restore.
//
// Written straight into one string by JsonWriter (json_writer.h), compact, with every
// object's members in byte order of their names and chains and source_chain sorted by key:
// equal states serialize to equal bytes, the same bytes nlohmann::json's compact dump()
// gives for the document. Sensors report raw bytes (paths, argv, names), so strings may
// hold invalid UTF-8: it is replaced by U+FFFD, as dump() with error_handler_t::replace
// does, never an error. Read back with nlohmann::json.
//
// JSON rather than a compact binary: the state is written at checkpoints, not per event,
// the aggregator can show it to an operator as is, and it stays readable across versions
// (a new field gets a default). Restore is written for hostile input: nesting depth is
// checked before parsing, every field's type and range is checked, and cross-references
// (session <-> chain) must agree, else Corruption and the current state is kept.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "aggregator/correlate/correlator.h"
#include "aggregator/correlate/correlator_state.h"
#include "aggregator/correlate/json_writer.h"

namespace tripline::correlate {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "tripline.correlator.v1";
// The state nests five levels deep; anything much deeper is not ours.
constexpr int kMaxDepth = 16;
constexpr int64_t kMaxTimeNs = int64_t{1} << 62;

// Type-checked reading that keeps the first error and makes later reads no-ops.
class Reader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void Fail(const std::string& where, const char* what) {
    if (error_.empty()) error_ = where + " " + what;
  }
  const json* Get(const json& o, const char* key, const std::string& where) {
    if (!ok()) return nullptr;
    if (!o.is_object()) {
      Fail(where, "is not an object");
      return nullptr;
    }
    auto it = o.find(key);
    if (it == o.end()) {
      Fail(where + "." + key, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void Str(const json& o, const char* key, const std::string& where, std::string* out) {
    const json* v = Get(o, key, where);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(where + "." + key, "is not a string");
    *out = v->get_ref<const std::string&>();
  }
  void U64(const json& o, const char* key, const std::string& where, uint64_t* out) {
    const json* v = Get(o, key, where);
    if (v == nullptr) return;
    if (!v->is_number_unsigned()) return Fail(where + "." + key, "is not an unsigned integer");
    *out = v->get<uint64_t>();
  }
  void U32(const json& o, const char* key, const std::string& where, uint32_t* out) {
    uint64_t v = 0;
    U64(o, key, where, &v);
    if (v > 0xffffffffu) return Fail(where + "." + key, "does not fit 32 bits");
    *out = static_cast<uint32_t>(v);
  }
  // A time in nanoseconds: a non-negative integer below 2^62.
  void Time(const json& o, const char* key, const std::string& where, int64_t* out) {
    uint64_t v = 0;
    U64(o, key, where, &v);
    if (v > static_cast<uint64_t>(kMaxTimeNs)) return Fail(where + "." + key, "is out of range");
    *out = static_cast<int64_t>(v);
  }
  // A baseline score in millionths (see Millionths).
  void Score(const json& o, const char* key, const std::string& where, double* out) {
    uint64_t v = 0;
    U64(o, key, where, &v);
    if (v > uint64_t{1'000'000'000'000}) return Fail(where + "." + key, "is out of range");
    *out = static_cast<double>(v) / 1e6;
  }
  // [[identity, feature, value, sentence], ...]
  void Facts(const json& o, const char* key, const std::string& where,
             std::vector<BaselineFact>* out) {
    out->clear();
    for (const json& f : Array(o, key, where)) {
      if (!f.is_array() || f.size() != 4 || !f[0].is_string() || !f[1].is_string() ||
          !f[2].is_string() || !f[3].is_string()) {
        return Fail(where + "." + key, "is not an array of [identity, feature, value, sentence]");
      }
      out->push_back({f[0].get<std::string>(), f[1].get<std::string>(), f[2].get<std::string>(),
                      f[3].get<std::string>()});
    }
  }
  void Bool(const json& o, const char* key, const std::string& where, bool* out) {
    const json* v = Get(o, key, where);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(where + "." + key, "is not a boolean");
    *out = v->get<bool>();
  }
  const json& Array(const json& o, const char* key, const std::string& where) {
    static const json kEmpty = json::array();
    const json* v = Get(o, key, where);
    if (v == nullptr) return kEmpty;
    if (!v->is_array()) {
      Fail(where + "." + key, "is not an array");
      return kEmpty;
    }
    return *v;
  }
  void Strings(const json& o, const char* key, const std::string& where,
               std::vector<std::string>* out) {
    out->clear();
    for (const json& s : Array(o, key, where)) {
      if (!s.is_string()) return Fail(where + "." + key, "is not an array of strings");
      out->push_back(s.get_ref<const std::string&>());
    }
  }
  // [[a, b], ...] of two strings.
  void StringPairs(const json& o, const char* key, const std::string& where,
                   std::vector<std::pair<std::string, std::string>>* out) {
    for (const json& p : Array(o, key, where)) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
        return Fail(where + "." + key, "is not an array of string pairs");
      }
      out->emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    }
  }
  // [[time, count], ...] of two unsigned integers, the first a time.
  void TimeCounts(const json& o, const char* key, const std::string& where,
                  std::vector<std::pair<int64_t, uint64_t>>* out) {
    for (const json& p : Array(o, key, where)) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number_unsigned() ||
          !p[1].is_number_unsigned() || p[0].get<uint64_t>() > static_cast<uint64_t>(kMaxTimeNs)) {
        return Fail(where + "." + key, "is not an array of [time, count]");
      }
      out->emplace_back(static_cast<int64_t>(p[0].get<uint64_t>()), p[1].get<uint64_t>());
    }
  }
  void Ref(const json& o, const std::string& where, EventRef* r) {
    U64(o, "seq", where, &r->seq);
    Str(o, "sensor_id", where, &r->sensor_id);
    Str(o, "host", where, &r->host);
    Time(o, "time_ns", where, &r->time_ns);
    Str(o, "kind", where, &r->kind);
    Str(o, "summary", where, &r->summary);
  }
  void Refs(const json& o, const char* key, const std::string& where, std::vector<EventRef>* out) {
    const json& a = Array(o, key, where);
    for (size_t i = 0; i < a.size() && ok(); ++i) {
      EventRef r;
      Ref(a[i], where + "." + key + "[" + std::to_string(i) + "]", &r);
      out->push_back(std::move(r));
    }
  }

 private:
  std::string error_;
};

// Writers. Members go in byte order of their names (see the top of the file).

template <typename Strings>
void WriteStrings(JsonWriter& w, const Strings& strings) {
  w.BeginArray();
  for (const std::string& s : strings) w.String(s);
  w.EndArray();
}

void WriteRef(JsonWriter& w, const EventRef& r) {
  w.BeginObject();
  w.Key("host").String(r.host);
  w.Key("kind").String(r.kind);
  w.Key("sensor_id").String(r.sensor_id);
  w.Key("seq").Uint(r.seq);
  w.Key("summary").String(r.summary);
  w.Key("time_ns").Int(r.time_ns);
  w.EndObject();
}

void WriteRefs(JsonWriter& w, const std::vector<EventRef>& refs) {
  w.BeginArray();
  for (const EventRef& r : refs) WriteRef(w, r);
  w.EndArray();
}

// Baseline scores are kept in millionths: the writer has no floating point, and a score
// needs no more.
uint64_t Millionths(double score) {
  return static_cast<uint64_t>(std::llround(std::clamp(score, 0.0, 1e6) * 1e6));
}

void WriteFacts(JsonWriter& w, const std::vector<BaselineFact>& facts) {
  w.BeginArray();
  for (const BaselineFact& f : facts) {
    w.BeginArray();
    w.String(f.identity);
    w.String(f.feature);
    w.String(f.value);
    w.String(f.sentence);
    w.EndArray();
  }
  w.EndArray();
}

// Written only when the baselines said something of the session, so that states without
// baselines read and write as before.
void WriteSessionBaseline(JsonWriter& w, const SessionBaseline& b) {
  w.BeginObject();
  w.Key("activity").Uint(Millionths(b.activity));
  w.Key("facts");
  WriteFacts(w, b.facts);
  w.Key("hop").Uint(Millionths(b.hop));
  w.Key("hop_warm").Bool(b.hop_warm);
  w.Key("login").Uint(Millionths(b.login));
  w.Key("login_warm").Bool(b.login_warm);
  w.EndObject();
}

void WriteChainBaseline(JsonWriter& w, const ChainBaseline& b) {
  w.BeginObject();
  w.Key("activity").Uint(Millionths(b.activity));
  if (b.stages > 0) w.Key("chain").Uint(Millionths(b.chain));
  w.Key("facts");
  WriteFacts(w, b.facts);
  w.Key("hops").Uint(Millionths(b.hops));
  w.Key("login").Uint(Millionths(b.login));
  w.Key("scored_hops").Uint(b.scored_hops);
  if (b.stages > 0) w.Key("stages").Uint(b.stages);
  if (b.entry_usual) w.Key("usual").Bool(true);
  w.Key("warm").Bool(b.warm);
  w.EndObject();
}

void WriteSession(JsonWriter& w, const SessionNode& n) {
  w.BeginObject();
  w.Key("aliases");
  WriteStrings(w, n.aliases);
  if (!n.baseline.empty()) {
    w.Key("baseline");
    WriteSessionBaseline(w, n.baseline);
  }
  w.Key("chain").String(n.chain);
  w.Key("discovery_flagged").Bool(n.discovery_flagged);
  w.Key("discovery_times").BeginArray();
  for (int64_t t : n.discovery_times) w.Int(t);
  w.EndArray();
  w.Key("host").String(n.host);
  w.Key("key").String(n.key);
  w.Key("last_activity_ns").Int(n.last_activity_ns);
  w.Key("login_ns").Int(n.login_ns);
  w.Key("new_source").Bool(n.new_source);
  w.Key("parent").String(n.parent);
  w.Key("privileged").Bool(n.privileged);
  w.Key("remote_addr").String(n.remote_addr);
  w.Key("remote_port").Uint(n.remote_port);
  w.Key("service").String(n.service);
  w.Key("user").String(n.user);
  w.EndObject();
}

void ReadSession(Reader& r, const json& j, const std::string& w, SessionNode* n) {
  r.Str(j, "key", w, &n->key);
  r.Str(j, "host", w, &n->host);
  r.Str(j, "user", w, &n->user);
  r.Str(j, "service", w, &n->service);
  r.Str(j, "remote_addr", w, &n->remote_addr);
  r.U32(j, "remote_port", w, &n->remote_port);
  r.Time(j, "login_ns", w, &n->login_ns);
  r.Time(j, "last_activity_ns", w, &n->last_activity_ns);
  r.Str(j, "parent", w, &n->parent);
  r.Str(j, "chain", w, &n->chain);
  r.Bool(j, "privileged", w, &n->privileged);
  r.Bool(j, "discovery_flagged", w, &n->discovery_flagged);
  r.Bool(j, "new_source", w, &n->new_source);
  if (j.is_object() && j.contains("baseline")) {
    const json& b = j["baseline"];
    const std::string bw = w + ".baseline";
    r.Score(b, "login", bw, &n->baseline.login);
    r.Bool(b, "login_warm", bw, &n->baseline.login_warm);
    r.Score(b, "hop", bw, &n->baseline.hop);
    r.Bool(b, "hop_warm", bw, &n->baseline.hop_warm);
    r.Score(b, "activity", bw, &n->baseline.activity);
    r.Facts(b, "facts", bw, &n->baseline.facts);
  }
  for (const json& t : r.Array(j, "discovery_times", w)) {
    if (!t.is_number_unsigned() || t.get<uint64_t>() > static_cast<uint64_t>(kMaxTimeNs)) {
      return r.Fail(w + ".discovery_times", "is not an array of times");
    }
    n->discovery_times.push_back(static_cast<int64_t>(t.get<uint64_t>()));
  }
  r.Strings(j, "aliases", w, &n->aliases);
}

void WriteHop(JsonWriter& w, const Hop& h) {
  w.BeginObject();
  w.Key("at_ns").Int(h.at_ns);
  w.Key("from").String(h.from);
  w.Key("from_user").String(h.from_user);
  w.Key("port").Uint(h.port);
  w.Key("to").String(h.to);
  w.Key("user").String(h.user);
  w.EndObject();
}

void WriteFile(JsonWriter& w, const FileFinding& f) {
  w.BeginObject();
  w.Key("at_ns").Int(f.at_ns);
  w.Key("host").String(f.host);
  w.Key("path").String(f.path);
  w.Key("process").String(f.process);
  w.Key("succeeded").Bool(f.succeeded);
  w.Key("technique").String(f.technique);
  w.Key("user").String(f.user);
  w.EndObject();
}

void WriteRuleFinding(JsonWriter& w, const RuleFinding& f) {
  w.BeginObject();
  w.Key("at_ns").Int(f.at_ns);
  w.Key("host").String(f.host);
  w.Key("level").String(f.level);
  w.Key("rule_id").String(f.rule_id);
  w.Key("techniques");
  WriteStrings(w, f.techniques);
  w.Key("title").String(f.title);
  w.Key("user").String(f.user);
  w.Key("what").String(f.what);
  w.EndObject();
}

void WriteChain(JsonWriter& w, const Chain& c) {
  w.BeginObject();
  if (c.baseline.login > 0 || c.baseline.hops > 0 || c.baseline.activity > 0 ||
      !c.baseline.facts.empty()) {
    w.Key("baseline");
    WriteChainBaseline(w, c.baseline);
  }
  w.Key("brute_force").Bool(c.brute_force);
  w.Key("compromise_ns").Int(c.compromise_ns);
  w.Key("compromised_host").String(c.compromised_host);
  w.Key("compromised_user").String(c.compromised_user);
  w.Key("discovery");
  WriteStrings(w, c.discovery);
  w.Key("events");
  WriteRefs(w, c.events);
  if (c.exported) w.Key("exported").Bool(true);
  w.Key("failure_host").String(c.failure_host);
  w.Key("failure_source").String(c.failure_source);
  w.Key("failure_user").String(c.failure_user);
  w.Key("failures").Uint(c.failures);
  w.Key("failures_before_success").Uint(c.failures_before_success);
  w.Key("files").BeginArray();
  for (const FileFinding& f : c.files) WriteFile(w, f);
  w.EndArray();
  w.Key("fingerprint").Uint(c.fingerprint);
  w.Key("first_login_ns").Int(c.first_login_ns);
  w.Key("first_ns").Int(c.first_ns);
  w.Key("hops").BeginArray();
  for (const Hop& h : c.hops) WriteHop(w, h);
  w.EndArray();
  w.Key("hosts");
  WriteStrings(w, c.hosts);
  w.Key("incident_id").String(c.incident_id);
  w.Key("key").String(c.key);
  w.Key("last_activity_ns").Int(c.last_activity_ns);
  w.Key("last_ns").Int(c.last_ns);
  w.Key("members");
  WriteStrings(w, c.members);
  w.Key("new_source_detail").String(c.new_source_detail);
  w.Key("new_source_login").Bool(c.new_source_login);
  w.Key("privileged");
  WriteStrings(w, c.privileged);
  w.Key("revision").Uint(c.revision);
  if (!c.rules.empty()) {
    w.Key("rules").BeginArray();
    for (const RuleFinding& f : c.rules) WriteRuleFinding(w, f);
    w.EndArray();
  }
  w.Key("sources");
  WriteStrings(w, c.sources);
  w.Key("sprayed_accounts").Uint(c.sprayed_accounts);
  w.Key("spraying").Bool(c.spraying);
  w.Key("stuffing").Bool(c.stuffing);
  w.Key("success_after_failures").Bool(c.success_after_failures);
  w.Key("users");
  WriteStrings(w, c.users);
  w.EndObject();
}

void ReadChain(Reader& r, const json& j, const std::string& w, Chain* c) {
  r.Str(j, "key", w, &c->key);
  r.Str(j, "incident_id", w, &c->incident_id);
  r.U32(j, "revision", w, &c->revision);
  r.U64(j, "fingerprint", w, &c->fingerprint);
  r.Time(j, "last_activity_ns", w, &c->last_activity_ns);
  r.Strings(j, "members", w, &c->members);
  r.Strings(j, "hosts", w, &c->hosts);
  r.Strings(j, "users", w, &c->users);
  r.Strings(j, "sources", w, &c->sources);
  const json& hops = r.Array(j, "hops", w);
  for (size_t i = 0; i < hops.size() && r.ok(); ++i) {
    std::string hw = w + ".hops[" + std::to_string(i) + "]";
    Hop h;
    r.Str(hops[i], "from", hw, &h.from);
    r.Str(hops[i], "to", hw, &h.to);
    r.Str(hops[i], "user", hw, &h.user);
    r.Str(hops[i], "from_user", hw, &h.from_user);
    r.Time(hops[i], "at_ns", hw, &h.at_ns);
    r.U32(hops[i], "port", hw, &h.port);
    c->hops.push_back(std::move(h));
  }
  const json& files = r.Array(j, "files", w);
  for (size_t i = 0; i < files.size() && r.ok(); ++i) {
    std::string fw = w + ".files[" + std::to_string(i) + "]";
    FileFinding f;
    r.Str(files[i], "host", fw, &f.host);
    r.Str(files[i], "user", fw, &f.user);
    r.Str(files[i], "path", fw, &f.path);
    r.Str(files[i], "technique", fw, &f.technique);
    r.Bool(files[i], "succeeded", fw, &f.succeeded);
    r.Time(files[i], "at_ns", fw, &f.at_ns);
    r.Str(files[i], "process", fw, &f.process);
    c->files.push_back(std::move(f));
  }
  if (j.is_object() && j.contains("rules")) {  // absent in snapshots from before Sigma rules
    const json& rules = r.Array(j, "rules", w);
    for (size_t i = 0; i < rules.size() && r.ok(); ++i) {
      std::string rw = w + ".rules[" + std::to_string(i) + "]";
      RuleFinding f;
      r.Str(rules[i], "host", rw, &f.host);
      r.Str(rules[i], "user", rw, &f.user);
      r.Str(rules[i], "rule_id", rw, &f.rule_id);
      r.Str(rules[i], "title", rw, &f.title);
      r.Str(rules[i], "level", rw, &f.level);
      r.Strings(rules[i], "techniques", rw, &f.techniques);
      r.Time(rules[i], "at_ns", rw, &f.at_ns);
      r.Str(rules[i], "what", rw, &f.what);
      c->rules.push_back(std::move(f));
    }
  }
  r.Strings(j, "discovery", w, &c->discovery);
  r.Strings(j, "privileged", w, &c->privileged);
  r.U32(j, "failures", w, &c->failures);
  r.Str(j, "failure_user", w, &c->failure_user);
  r.Str(j, "failure_host", w, &c->failure_host);
  r.Str(j, "failure_source", w, &c->failure_source);
  r.U32(j, "sprayed_accounts", w, &c->sprayed_accounts);
  r.Bool(j, "brute_force", w, &c->brute_force);
  r.Bool(j, "spraying", w, &c->spraying);
  r.Bool(j, "stuffing", w, &c->stuffing);
  r.Bool(j, "success_after_failures", w, &c->success_after_failures);
  r.U32(j, "failures_before_success", w, &c->failures_before_success);
  r.Str(j, "compromised_user", w, &c->compromised_user);
  r.Str(j, "compromised_host", w, &c->compromised_host);
  r.Time(j, "compromise_ns", w, &c->compromise_ns);
  r.Bool(j, "new_source_login", w, &c->new_source_login);
  r.Str(j, "new_source_detail", w, &c->new_source_detail);
  r.Time(j, "first_login_ns", w, &c->first_login_ns);
  // Written only for a chain a cluster worker exports.
  if (j.is_object() && j.contains("exported")) r.Bool(j, "exported", w, &c->exported);
  if (j.is_object() && j.contains("baseline")) {
    const json& b = j["baseline"];
    const std::string bw = w + ".baseline";
    r.Score(b, "login", bw, &c->baseline.login);
    r.Bool(b, "warm", bw, &c->baseline.warm);
    r.Score(b, "hops", bw, &c->baseline.hops);
    r.U32(b, "scored_hops", bw, &c->baseline.scored_hops);
    r.Score(b, "activity", bw, &c->baseline.activity);
    r.Facts(b, "facts", bw, &c->baseline.facts);
    if (b.contains("chain")) r.Score(b, "chain", bw, &c->baseline.chain);
    if (b.contains("stages")) r.U32(b, "stages", bw, &c->baseline.stages);
    if (b.contains("usual")) r.Bool(b, "usual", bw, &c->baseline.entry_usual);
  }
  r.Refs(j, "events", w, &c->events);
  r.Time(j, "first_ns", w, &c->first_ns);
  r.Time(j, "last_ns", w, &c->last_ns);
}

void WritePending(JsonWriter& w, uint64_t id, const PendingItem& p) {
  w.BeginObject();
  w.Key("arrived_ns").Int(p.arrived_ns);
  w.Key("host").String(p.host);
  w.Key("id").Uint(id);
  w.Key("index_addr").String(p.index_addr);
  w.Key("index_port").Uint(p.index_port);
  w.Key("kind").Uint(static_cast<uint32_t>(p.kind));
  w.Key("peer_addr").String(p.peer_addr);
  w.Key("peer_port").Uint(p.peer_port);
  w.Key("ref");
  WriteRef(w, p.ref);
  w.Key("session").String(p.session);
  w.Key("time_ns").Int(p.time_ns);
  w.EndObject();
}

void WriteStats(JsonWriter& w, const CorrelatorStats& s) {
  w.BeginObject();
  w.Key("events").Uint(s.events);
  w.Key("hops").Uint(s.hops);
  w.Key("incident_updates").Uint(s.incident_updates);
  w.Key("incidents_raised").Uint(s.incidents_raised);
  w.Key("pending_evicted").Uint(s.pending_evicted);
  w.Key("sessions_evicted").Uint(s.sessions_evicted);
  w.Key("trackers_evicted").Uint(s.trackers_evicted);
  w.EndObject();
}

void WriteFailure(JsonWriter& w, const std::string& key, const FailureTracker& f) {
  w.BeginObject();
  w.Key("attempts").BeginArray();
  for (const auto& [t, signal] : f.attempts) {
    w.BeginArray();
    w.Int(t);
    w.Uint(signal);
    w.EndArray();
  }
  w.EndArray();
  w.Key("key").String(key);
  w.Key("refs");
  WriteRefs(w, f.refs);
  w.Key("touched_ns").Int(f.touched_ns);
  w.EndObject();
}

void WriteSource(JsonWriter& w, const std::string& addr, const SourceTracker& t) {
  w.BeginObject();
  w.Key("addr").String(addr);
  w.Key("attempts").Uint(t.attempts);
  w.Key("first_ns").Int(t.first_ns);
  w.Key("hosts");
  WriteStrings(w, t.hosts);
  w.Key("last_ns").Int(t.last_ns);
  w.Key("refs");
  WriteRefs(w, t.refs);
  w.Key("revisits").Uint(t.revisits);
  w.Key("touched_ns").Int(t.touched_ns);
  w.Key("users").BeginArray();
  for (const auto& [user, a] : t.users) {
    w.BeginObject();
    w.Key("by_signal").BeginArray();
    for (uint32_t n : a.by_signal) w.Uint(n);
    w.EndArray();
    w.Key("failures").Uint(a.failures);
    w.Key("last_index").Uint(a.last_index);
    w.Key("user").String(user);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteHost(JsonWriter& w, const std::string& host, const HostKnowledge& k) {
  w.BeginObject();  // members in nlohmann's (sorted) order
  w.Key("blind").BeginArray();
  for (const HookFamilyStatus& f : k.blind) {
    w.BeginArray();
    w.String(f.name);
    w.String(f.state);
    w.String(f.hooks);
    w.String(f.reason);
    w.String(f.remedy);
    w.EndArray();
  }
  w.EndArray();
  w.Key("drop_counters").BeginArray();
  for (const auto& [sensor, n] : k.drop_counters) {
    w.BeginArray();
    w.String(sensor);
    w.Uint(n);
    w.EndArray();
  }
  w.EndArray();
  w.Key("drops").BeginArray();
  for (const auto& [t, n] : k.drops) {
    w.BeginArray();
    w.Int(t);
    w.Uint(n);
    w.EndArray();
  }
  w.EndArray();
  w.Key("host").String(host);
  // [[account, never_expires, looks_human, [root powers...]], ...]
  w.Key("posture").BeginArray();
  for (const auto& [account, p] : k.posture) {
    w.BeginArray();
    w.String(account);
    w.Bool(p.never_expires);
    w.Bool(p.looks_human);
    WriteStrings(w, p.root_powers);
    w.EndArray();
  }
  w.EndArray();
  w.Key("privileged_users");
  WriteStrings(w, k.privileged_users);
  w.Key("ssh_ports").BeginArray();
  for (uint32_t port : k.ssh_ports) w.Uint(port);
  w.EndArray();
  w.EndObject();
}

void WriteStringPair(JsonWriter& w, const std::string& a, const std::string& b) {
  w.BeginArray();
  w.String(a);
  w.String(b);
  w.EndArray();
}

}  // namespace

bool JsonNestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string EncodeCorrelatorState(const CorrelatorState& s) {
  // Chains in key order, so that equal states serialize to equal bytes.
  std::vector<const Chain*> chains;
  chains.reserve(s.chains.size());
  size_t chain_events = 0;
  for (const auto& [k, c] : s.chains) {
    chains.push_back(&c);
    chain_events += c.events.size();
  }
  std::sort(chains.begin(), chains.end(),
            [](const Chain* a, const Chain* b) { return a->key < b->key; });
  std::vector<const std::pair<const std::string, std::string>*> source_chain;
  source_chain.reserve(s.source_chain.size());
  for (const auto& entry : s.source_chain) source_chain.push_back(&entry);
  std::sort(source_chain.begin(), source_chain.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });

  // Room for the whole text up front, from typical sizes per entry (a session ~400 bytes,
  // a chain ~700 plus ~200 per event it cites, a pending item ~400, a source ~2.7 k with
  // its users and refs), a little generous: too little costs one copy to grow, too much
  // only address space, as untouched pages are never backed by memory.
  std::string out;
  out.reserve(4096 + 450 * s.sessions.size() + 800 * s.chains.size() + 220 * chain_events +
              450 * s.pending.size() + 350 * (s.failures.size() + s.user_sources.size()) +
              3000 * s.sources.size() + 64 * (s.addresses.size() + s.source_chain.size()) +
              200 * s.hosts.size() + 32 * s.raised.size());
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("addresses").BeginArray();
  s.addresses.ForEachOldestFirst(
      [&](const std::string& addr, const std::string& host) { WriteStringPair(w, addr, host); });
  w.EndArray();
  w.Key("chains").BeginArray();
  for (const Chain* c : chains) WriteChain(w, *c);
  w.EndArray();
  w.Key("failures").BeginArray();
  s.failures.ForEachOldestFirst(
      [&](const std::string& key, const FailureTracker& f) { WriteFailure(w, key, f); });
  w.EndArray();
  w.Key("format").String(kFormat);
  w.Key("hosts").BeginArray();
  s.hosts.ForEachOldestFirst(
      [&](const std::string& host, const HostKnowledge& k) { WriteHost(w, host, k); });
  w.EndArray();
  w.Key("next_pending_id").Uint(s.next_pending_id);
  w.Key("pending").BeginArray();
  for (const auto& [id, p] : s.pending) WritePending(w, id, p);
  w.EndArray();
  w.Key("raised");
  WriteStrings(w, s.raised);
  w.Key("sessions").BeginArray();
  s.sessions.ForEachOldestFirst(
      [&](const std::string&, const SessionNode& n) { WriteSession(w, n); });
  w.EndArray();
  w.Key("source_chain").BeginArray();
  for (const auto* entry : source_chain) WriteStringPair(w, entry->first, entry->second);
  w.EndArray();
  w.Key("sources").BeginArray();
  s.sources.ForEachOldestFirst(
      [&](const std::string& addr, const SourceTracker& t) { WriteSource(w, addr, t); });
  w.EndArray();
  w.Key("stats");
  WriteStats(w, s.stats);
  w.Key("user_sources").BeginArray();
  s.user_sources.ForEachOldestFirst(
      [&](const std::string& user, const std::vector<std::string>& addrs) {
        w.BeginObject();
        w.Key("addrs");
        WriteStrings(w, addrs);
        w.Key("user").String(user);
        w.EndObject();
      });
  w.EndArray();
  w.EndObject();
  return out;
}

Status DecodeCorrelatorState(std::string_view bytes, std::unique_ptr<CorrelatorState>* out) {
  auto corrupt = [](const std::string& why) {
    return Status::Corruption("correlator state: " + why);
  };
  if (!JsonNestingWithin(bytes, kMaxDepth)) return corrupt("nested too deeply");
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return corrupt("not valid JSON");
  Reader r;
  std::string format;
  r.Str(j, "format", "state", &format);
  if (r.ok() && format != kFormat) return corrupt("unknown format \"" + format + "\"");

  auto next = std::make_unique<CorrelatorState>();
  CorrelatorState& s = *next;
  r.U64(j, "next_pending_id", "state", &s.next_pending_id);
  if (const json* st = r.Get(j, "stats", "state")) {
    r.U64(*st, "events", "stats", &s.stats.events);
    r.U64(*st, "sessions_evicted", "stats", &s.stats.sessions_evicted);
    r.U64(*st, "pending_evicted", "stats", &s.stats.pending_evicted);
    r.U64(*st, "trackers_evicted", "stats", &s.stats.trackers_evicted);
    r.U64(*st, "hops", "stats", &s.stats.hops);
    r.U64(*st, "incidents_raised", "stats", &s.stats.incidents_raised);
    r.U64(*st, "incident_updates", "stats", &s.stats.incident_updates);
  }

  const json& sessions = r.Array(j, "sessions", "state");
  for (size_t i = 0; i < sessions.size() && r.ok(); ++i) {
    SessionNode n;
    ReadSession(r, sessions[i], "sessions[" + std::to_string(i) + "]", &n);
    if (!r.ok()) break;
    if (n.key.empty() || s.sessions.Find(n.key) != nullptr) {
      return corrupt("sessions[" + std::to_string(i) + "] has an empty or repeated key");
    }
    for (const std::string& a : n.aliases) s.aliases[a] = n.key;
    std::string key = n.key;
    s.sessions.Put(key, std::move(n));
  }
  const json& chains = r.Array(j, "chains", "state");
  for (size_t i = 0; i < chains.size() && r.ok(); ++i) {
    Chain c;
    ReadChain(r, chains[i], "chains[" + std::to_string(i) + "]", &c);
    if (!r.ok()) break;
    if (c.key.empty() || s.chains.count(c.key) > 0) {
      return corrupt("chains[" + std::to_string(i) + "] has an empty or repeated key");
    }
    std::string key = c.key;
    s.chains.emplace(key, std::move(c));
  }
  std::vector<std::pair<std::string, std::string>> source_chain;
  r.StringPairs(j, "source_chain", "state", &source_chain);
  for (auto& [addr, chain] : source_chain) s.source_chain[addr] = chain;
  std::vector<std::string> raised;
  r.Strings(j, "raised", "state", &raised);
  s.raised.insert(raised.begin(), raised.end());

  const json& failures = r.Array(j, "failures", "state");
  for (size_t i = 0; i < failures.size() && r.ok(); ++i) {
    std::string w = "failures[" + std::to_string(i) + "]";
    std::string key;
    FailureTracker f;
    r.Str(failures[i], "key", w, &key);
    r.Time(failures[i], "touched_ns", w, &f.touched_ns);
    std::vector<std::pair<int64_t, uint64_t>> attempts;
    r.TimeCounts(failures[i], "attempts", w, &attempts);
    for (const auto& [t, signal] : attempts) {
      f.attempts.emplace_back(t, static_cast<uint8_t>(signal % 6));
    }
    r.Refs(failures[i], "refs", w, &f.refs);
    if (r.ok()) s.failures.Put(key, std::move(f));
  }

  const json& sources = r.Array(j, "sources", "state");
  for (size_t i = 0; i < sources.size() && r.ok(); ++i) {
    std::string w = "sources[" + std::to_string(i) + "]";
    std::string addr;
    SourceTracker t;
    r.Str(sources[i], "addr", w, &addr);
    r.Time(sources[i], "touched_ns", w, &t.touched_ns);
    r.U64(sources[i], "attempts", w, &t.attempts);
    r.U32(sources[i], "revisits", w, &t.revisits);
    r.Time(sources[i], "first_ns", w, &t.first_ns);
    r.Time(sources[i], "last_ns", w, &t.last_ns);
    r.Strings(sources[i], "hosts", w, &t.hosts);
    r.Refs(sources[i], "refs", w, &t.refs);
    const json& users = r.Array(sources[i], "users", w);
    for (size_t u = 0; u < users.size() && r.ok(); ++u) {
      std::string uw = w + ".users[" + std::to_string(u) + "]";
      std::string user;
      SourceUserAttempts a;
      r.Str(users[u], "user", uw, &user);
      r.U32(users[u], "failures", uw, &a.failures);
      r.U64(users[u], "last_index", uw, &a.last_index);
      const json& by_signal = r.Array(users[u], "by_signal", uw);
      if (r.ok() && by_signal.size() != 6) return corrupt(uw + ".by_signal must have 6 counts");
      for (size_t k = 0; k < by_signal.size() && r.ok(); ++k) {
        if (!by_signal[k].is_number_unsigned() || by_signal[k].get<uint64_t>() > 0xffffffffu) {
          r.Fail(uw + ".by_signal", "is not an array of counts");
          break;
        }
        a.by_signal[k] = static_cast<uint32_t>(by_signal[k].get<uint64_t>());
      }
      t.users[user] = a;
    }
    if (r.ok()) s.sources.Put(addr, std::move(t));
  }

  const json& user_sources = r.Array(j, "user_sources", "state");
  for (size_t i = 0; i < user_sources.size() && r.ok(); ++i) {
    std::string w = "user_sources[" + std::to_string(i) + "]";
    std::string user;
    std::vector<std::string> addrs;
    r.Str(user_sources[i], "user", w, &user);
    r.Strings(user_sources[i], "addrs", w, &addrs);
    if (r.ok()) s.user_sources.Put(user, std::move(addrs));
  }
  std::vector<std::pair<std::string, std::string>> addresses;
  r.StringPairs(j, "addresses", "state", &addresses);
  for (auto& [addr, host] : addresses) s.addresses.Put(addr, host);

  const json& hosts = r.Array(j, "hosts", "state");
  for (size_t i = 0; i < hosts.size() && r.ok(); ++i) {
    std::string w = "hosts[" + std::to_string(i) + "]";
    std::string host;
    HostKnowledge k;
    r.Str(hosts[i], "host", w, &host);
    for (const json& p : r.Array(hosts[i], "ssh_ports", w)) {
      if (!p.is_number_unsigned() || p.get<uint64_t>() > 65535) {
        r.Fail(w + ".ssh_ports", "is not an array of ports");
        break;
      }
      k.ssh_ports.insert(static_cast<uint32_t>(p.get<uint64_t>()));
    }
    // Snapshots before posture weighed on incidents have no "posture".
    if (hosts[i].is_object() && hosts[i].contains("posture")) {
      for (const json& p : r.Array(hosts[i], "posture", w)) {
        bool shaped = p.is_array() && p.size() == 4 && p[0].is_string() && p[1].is_boolean() &&
                      p[2].is_boolean() && p[3].is_array();
        for (size_t x = 0; shaped && x < p[3].size(); ++x) shaped = p[3][x].is_string();
        if (!shaped) {
          r.Fail(w + ".posture",
                 "is not an array of [account, never_expires, looks_human, [powers]]");
          break;
        }
        AccountPosture ap;
        ap.never_expires = p[1].get<bool>();
        ap.looks_human = p[2].get<bool>();
        for (const json& power : p[3]) ap.root_powers.push_back(power.get<std::string>());
        k.posture[p[0].get<std::string>()] = std::move(ap);
      }
    }
    std::vector<std::string> privileged;
    r.Strings(hosts[i], "privileged_users", w, &privileged);
    k.privileged_users.insert(privileged.begin(), privileged.end());
    for (const json& p : r.Array(hosts[i], "drop_counters", w)) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number_unsigned()) {
        r.Fail(w + ".drop_counters", "is not an array of [sensor, count]");
        break;
      }
      k.drop_counters[p[0].get<std::string>()] = p[1].get<uint64_t>();
    }
    r.TimeCounts(hosts[i], "drops", w, &k.drops);
    // Snapshots before the hook families were reported have no "blind".
    if (hosts[i].is_object() && hosts[i].contains("blind")) {
      for (const json& f : r.Array(hosts[i], "blind", w)) {
        bool shaped = f.is_array() && f.size() == 5;
        for (size_t x = 0; shaped && x < 5; ++x) shaped = f[x].is_string();
        if (!shaped || !IsHookFamilyState(f[1].get_ref<const std::string&>())) {
          r.Fail(w + ".blind", "is not an array of [name, state, hooks, reason, remedy]");
          break;
        }
        k.blind.push_back({f[0].get<std::string>(), f[1].get<std::string>(),
                           f[2].get<std::string>(), f[3].get<std::string>(),
                           f[4].get<std::string>()});
      }
    }
    if (r.ok()) s.hosts.Put(host, std::move(k));
  }

  const json& pending = r.Array(j, "pending", "state");
  for (size_t i = 0; i < pending.size() && r.ok(); ++i) {
    std::string w = "pending[" + std::to_string(i) + "]";
    uint64_t id = 0;
    uint32_t kind = 0;
    PendingItem p;
    r.U64(pending[i], "id", w, &id);
    r.U32(pending[i], "kind", w, &kind);
    r.Str(pending[i], "index_addr", w, &p.index_addr);
    r.U32(pending[i], "index_port", w, &p.index_port);
    r.Str(pending[i], "host", w, &p.host);
    r.Str(pending[i], "session", w, &p.session);
    r.Str(pending[i], "peer_addr", w, &p.peer_addr);
    r.U32(pending[i], "peer_port", w, &p.peer_port);
    r.Time(pending[i], "time_ns", w, &p.time_ns);
    r.Time(pending[i], "arrived_ns", w, &p.arrived_ns);
    if (const json* ref = r.Get(pending[i], "ref", w)) r.Ref(*ref, w + ".ref", &p.ref);
    if (!r.ok()) break;
    if (kind > PendingItem::kLogin) return corrupt(w + ".kind is unknown");
    if (id == 0 || id >= s.next_pending_id || s.pending.count(id) > 0) {
      return corrupt(w + ".id is repeated or not below next_pending_id");
    }
    p.kind = static_cast<PendingItem::Kind>(kind);
    s.pending_by_addr[p.index_addr + "|" + std::to_string(p.index_port)].push_back({id, p.kind});
    ++s.pending_at_addr[p.index_addr][p.kind];
    s.pending.emplace(id, std::move(p));
  }
  if (!r.ok()) return corrupt(r.error());

  // Cross-references the logic relies on: every session's chain exists and lists it, and
  // every chain member is a session of that chain.
  std::string bad;
  s.sessions.ForEachOldestFirst([&](const std::string& key, const SessionNode& n) {
    if (!bad.empty()) return;
    auto it = s.chains.find(n.chain);
    if (it == s.chains.end() || std::find(it->second.members.begin(), it->second.members.end(),
                                          key) == it->second.members.end()) {
      bad = "session " + key + " names a chain that does not list it";
    }
  });
  for (const auto& [key, c] : s.chains) {
    if (!bad.empty()) break;
    for (const std::string& m : c.members) {
      const SessionNode* n = s.sessions.Find(m);
      if (n == nullptr || n->chain != key) {
        bad = "chain " + key + " lists " + m + ", which is not its session";
        break;
      }
    }
  }
  if (!bad.empty()) return corrupt(bad);
  for (const auto& [alias, key] : s.aliases) {
    if (s.sessions.Find(key) == nullptr) return corrupt("alias " + alias + " names no session");
  }
  *out = std::move(next);
  return Status::Ok();
}

std::string Correlator::SerializeState() const { return EncodeCorrelatorState(*state_); }

Status Correlator::RestoreState(std::string_view bytes) {
  std::unique_ptr<CorrelatorState> next;
  Status st = DecodeCorrelatorState(bytes, &next);
  if (st.ok()) state_ = std::move(next);
  return st;
}

}  // namespace tripline::correlate
