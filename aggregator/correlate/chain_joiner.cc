// Chain joiner: see chain_joiner.h.
//
// Format "tripline.joiner.v1": one JSON object,
//   {"format": "tripline.joiner.v1",
//    "fragments": [{"origin": "...", "put_ns": N, "state": "<fragment text>"}, ...],
//    "ledger": [["inc-...", revision, fingerprint, seen_ns], ...]}
// Fragments are kept as the text the workers sent and decoded again on restore, with the
// correlator state's own checks.
#include "aggregator/correlate/chain_joiner.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace tripline::correlate {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "tripline.joiner.v1";

// The chain's earliest evidence, for ordering parts (a chain without evidence last).
int64_t FirstNs(const CorrelatorState& s) {
  const int64_t first = s.chains.begin()->second.first_ns;
  return first == 0 ? std::numeric_limits<int64_t>::max() : first;
}

Status Decode(std::string_view bytes, std::unique_ptr<CorrelatorState>* out) {
  std::unique_ptr<CorrelatorState> s;
  Status st = DecodeCorrelatorState(bytes, &s);
  if (!st.ok()) return st;
  if (s->chains.size() != 1) {
    return Status::Corruption("chain fragment: holds " + std::to_string(s->chains.size()) +
                              " chains, not one");
  }
  *out = std::move(s);
  return Status::Ok();
}

}  // namespace

ChainJoiner::ChainJoiner(CorrelatorOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  options_.is_local_host = nullptr;
}

ChainJoiner::~ChainJoiner() = default;

void ChainJoiner::Index(const std::string& origin, const CorrelatorState& s, bool add) {
  s.sessions.ForEachOldestFirst([&](const std::string& key, const SessionNode& n) {
    std::vector<const std::string*> names{&key};
    for (const std::string& a : n.aliases) names.push_back(&a);
    for (const std::string* name : names) {
      if (add) {
        by_session_[*name].insert(origin);
        continue;
      }
      auto it = by_session_.find(*name);
      if (it == by_session_.end()) continue;
      it->second.erase(origin);
      if (it->second.empty()) by_session_.erase(it);
    }
  });
}

Status ChainJoiner::Put(std::string_view origin_view, std::string_view fragment) {
  if (origin_view.empty()) return Status::InvalidArgument("chain fragment: empty origin");
  std::string origin(origin_view);
  if (fragment.empty()) {
    auto it = fragments_.find(origin);
    if (it == fragments_.end()) return Status::Ok();
    Index(origin, *it->second.state, false);
    fragments_.erase(it);
    dirty_.erase(origin);
    ++stats_.retractions;
    return Status::Ok();
  }
  std::unique_ptr<CorrelatorState> state;
  if (Status st = Decode(fragment, &state); !st.ok()) return st;
  auto it = fragments_.find(origin);
  if (it != fragments_.end()) Index(origin, *it->second.state, false);
  Stored& stored = fragments_[origin];
  stored.bytes.assign(fragment);
  stored.state = std::move(state);
  stored.put_ns = clock_.NowNs();
  Index(origin, *stored.state, true);
  dirty_.insert(origin);
  ++stats_.fragments_put;
  return Status::Ok();
}

// The origins whose fragments are joined with `origin`'s: those that share a session with
// it, and theirs, and so on.
std::vector<std::string> ChainJoiner::GroupOf(const std::string& origin) const {
  std::set<std::string> seen{origin};
  std::deque<std::string> next{origin};
  while (!next.empty()) {
    const std::string at = std::move(next.front());
    next.pop_front();
    const CorrelatorState& s = *fragments_.at(at).state;
    s.sessions.ForEachOldestFirst([&](const std::string& key, const SessionNode& n) {
      std::vector<const std::string*> names{&key};
      for (const std::string& a : n.aliases) names.push_back(&a);
      for (const std::string* name : names) {
        auto it = by_session_.find(*name);
        if (it == by_session_.end()) continue;
        for (const std::string& other : it->second) {
          if (seen.insert(other).second) next.push_back(other);
        }
      }
    });
  }
  return {seen.begin(), seen.end()};
}

std::vector<Incident> ChainJoiner::TakeChanged() {
  // Each group once, oldest chain first.
  std::vector<std::vector<std::string>> groups;
  std::set<std::string> done;
  for (const std::string& origin : dirty_) {
    if (done.count(origin) > 0 || fragments_.count(origin) == 0) continue;
    std::vector<std::string> group = GroupOf(origin);
    done.insert(group.begin(), group.end());
    std::sort(group.begin(), group.end(), [&](const std::string& a, const std::string& b) {
      const int64_t fa = FirstNs(*fragments_.at(a).state);
      const int64_t fb = FirstNs(*fragments_.at(b).state);
      return fa != fb ? fa < fb : a < b;
    });
    groups.push_back(std::move(group));
  }
  dirty_.clear();
  std::sort(groups.begin(), groups.end(), [&](const auto& a, const auto& b) {
    const int64_t fa = FirstNs(*fragments_.at(a.front()).state);
    const int64_t fb = FirstNs(*fragments_.at(b.front()).state);
    return fa != fb ? fa < fb : a.front() < b.front();
  });
  std::vector<Incident> out;
  for (const auto& group : groups) {
    std::vector<const CorrelatorState*> parts;
    parts.reserve(group.size());
    for (const std::string& origin : group) parts.push_back(fragments_.at(origin).state.get());
    std::vector<Incident> changed = JoinFragments(options_, clock_, parts, &ledger_);
    ++stats_.joins;
    stats_.parts_joined += parts.size();
    for (Incident& in : changed) out.push_back(std::move(in));
  }
  return out;
}

void ChainJoiner::Tick() {
  const int64_t now = clock_.NowNs();
  const int64_t ttl = options_.session_ttl_ns + options_.pending_ttl_ns;
  for (auto it = fragments_.begin(); it != fragments_.end();) {
    if (it->second.put_ns >= now - ttl) {
      ++it;
      continue;
    }
    Index(it->first, *it->second.state, false);
    dirty_.erase(it->first);
    it = fragments_.erase(it);
    ++stats_.fragments_expired;
  }
  for (auto it = ledger_.begin(); it != ledger_.end();) {
    it = it->second.seen_ns < now - ttl ? ledger_.erase(it) : std::next(it);
  }
}

std::string ChainJoiner::SerializeState() const {
  json j = json::object();
  j["format"] = kFormat;
  json& fragments = j["fragments"] = json::array();
  for (const auto& [origin, stored] : fragments_) {
    fragments.push_back({{"origin", origin}, {"put_ns", stored.put_ns}, {"state", stored.bytes}});
  }
  json& ledger = j["ledger"] = json::array();
  for (const auto& [id, r] : ledger_) {
    ledger.push_back(json::array({id, r.revision, r.fingerprint, r.seen_ns}));
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status ChainJoiner::RestoreState(std::string_view bytes) {
  const auto corrupt = [](const std::string& why) {
    return Status::Corruption("joiner state: " + why);
  };
  if (!JsonNestingWithin(bytes, 4)) return corrupt("nested too deeply");
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat) return corrupt("unknown format");
  if (!j.contains("fragments") || !j["fragments"].is_array()) {
    return corrupt("fragments is not an array");
  }
  if (!j.contains("ledger") || !j["ledger"].is_array()) return corrupt("ledger is not an array");
  std::map<std::string, Stored> fragments;
  const json& fs = j["fragments"];
  for (size_t i = 0; i < fs.size(); ++i) {
    const std::string where = "fragments[" + std::to_string(i) + "]";
    const json& f = fs[i];
    if (!f.is_object() || !f.contains("origin") || !f["origin"].is_string() ||
        !f.contains("put_ns") || !f["put_ns"].is_number_integer() || !f.contains("state") ||
        !f["state"].is_string()) {
      return corrupt(where + " is not {origin, put_ns, state}");
    }
    const std::string origin = f["origin"].get<std::string>();
    if (origin.empty() || fragments.count(origin) > 0) {
      return corrupt(where + " has an empty or repeated origin");
    }
    Stored stored;
    stored.bytes = f["state"].get<std::string>();
    stored.put_ns = f["put_ns"].get<int64_t>();
    if (Status st = Decode(stored.bytes, &stored.state); !st.ok()) {
      return corrupt(where + ": " + st.message());
    }
    fragments.emplace(origin, std::move(stored));
  }
  std::map<std::string, ReportedRevision> ledger;
  for (const json& e : j["ledger"]) {
    if (!e.is_array() || e.size() != 4 || !e[0].is_string() || !e[1].is_number_unsigned() ||
        e[1].get<uint64_t>() > std::numeric_limits<uint32_t>::max() || !e[2].is_number_unsigned() ||
        !e[3].is_number_integer()) {
      return corrupt("ledger is not an array of [id, revision, fingerprint, seen_ns]");
    }
    ledger[e[0].get<std::string>()] = {static_cast<uint32_t>(e[1].get<uint64_t>()),
                                       e[2].get<uint64_t>(), e[3].get<int64_t>()};
  }
  fragments_ = std::move(fragments);
  ledger_ = std::move(ledger);
  by_session_.clear();
  dirty_.clear();
  for (const auto& [origin, stored] : fragments_) Index(origin, *stored.state, true);
  return Status::Ok();
}

}  // namespace tripline::correlate
