#include "aggregator/baseline/trust_book.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace tripline::baseline {
namespace {

using nlohmann::json;

Status CheckText(std::string_view what, std::string_view text, size_t max, bool may_be_empty) {
  if (!may_be_empty && text.empty())
    return Status::InvalidArgument(std::string(what) + " is empty");
  if (text.size() > max) {
    return Status::InvalidArgument(std::string(what) + " is longer than " + std::to_string(max) +
                                   " bytes");
  }
  return Status::Ok();
}

}  // namespace

std::string_view TrustLevelName(TrustLevel level) {
  return level == TrustLevel::kProbation ? "probation" : "trusted";
}

bool ParseTrustLevel(std::string_view name, TrustLevel* out) {
  if (name == "trusted") {
    *out = TrustLevel::kTrusted;
    return true;
  }
  if (name == "probation") {
    *out = TrustLevel::kProbation;
    return true;
  }
  return false;
}

TrustLevel TrustBook::LevelOf(const Identity& agent) const {
  if (auto it = decided_.find(agent.name); it != decided_.end() && !it->second.empty()) {
    return it->second.back().level;
  }
  return agent.probation ? TrustLevel::kProbation : TrustLevel::kTrusted;
}

Result<TrustRecord> TrustBook::Decide(const Identity& agent, TrustLevel level, std::string_view by,
                                      std::string_view reason, int64_t now_ns) {
  if (agent.kind != IdentityKind::kAgent) {
    return Status::InvalidArgument("no agent is declared under the name " + agent.name);
  }
  TL_RETURN_IF_ERROR(CheckText("the agent's name", agent.name, kMaxNameBytes, false));
  TL_RETURN_IF_ERROR(CheckText("by (the person deciding)", by, kMaxNameBytes, false));
  TL_RETURN_IF_ERROR(CheckText("the reason", reason, kMaxReasonBytes, true));
  if (LevelOf(agent) == level) {
    return Status::AlreadyExists(agent.name + " is " +
                                 (level == TrustLevel::kProbation ? "on probation" : "trusted") +
                                 " already");
  }
  auto it = decided_.find(agent.name);
  if (it == decided_.end()) {
    if (decided_.size() >= kMaxAgents) {
      return Status::ResourceExhausted("trust decisions kept for " + std::to_string(kMaxAgents) +
                                       " agents already");
    }
    it = decided_.emplace(agent.name, std::vector<TrustDecision>{}).first;
  }
  it->second.push_back({level, std::string(by), std::string(reason), now_ns, next_seq_++});
  if (it->second.size() > kMaxHistory) it->second.erase(it->second.begin());
  dirty_.push_back(agent.name);
  return Get(agent);
}

Result<TrustRecord> TrustBook::Get(const Identity& agent) const {
  TrustRecord r;
  r.agent = agent.name;
  r.declared_probation = agent.probation;
  r.level = LevelOf(agent);
  if (auto it = decided_.find(agent.name); it != decided_.end()) r.history = it->second;
  if (r.history.empty() && !r.declared_probation) {
    return Status::NotFound(agent.name + " has no trust decision and is not declared on probation");
  }
  return r;
}

std::vector<TrustRecord> TrustBook::List(const std::vector<std::string>& declared_probation) const {
  std::map<std::string, TrustRecord> out;
  for (const std::string& name : declared_probation) {
    TrustRecord& r = out[name];
    r.agent = name;
    r.declared_probation = true;
  }
  for (const auto& [name, history] : decided_) {
    TrustRecord& r = out[name];
    r.agent = name;
    r.history = history;
  }
  std::vector<TrustRecord> list;
  list.reserve(out.size());
  for (auto& [name, r] : out) {
    if (!r.history.empty()) {
      r.level = r.history.back().level;
    } else {
      r.level = r.declared_probation ? TrustLevel::kProbation : TrustLevel::kTrusted;
    }
    list.push_back(std::move(r));
  }
  return list;
}

std::vector<std::pair<std::string, std::string>> TrustBook::TakeDirty() {
  std::vector<std::string> names = std::move(dirty_);
  dirty_.clear();
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& name : names) {
    auto it = decided_.find(name);
    if (it == decided_.end()) continue;
    json history = json::array();
    for (const TrustDecision& d : it->second) {
      history.push_back(
          json::array({std::string(TrustLevelName(d.level)), d.by, d.reason, d.at_ns, d.seq}));
    }
    const json record = {{"agent", name}, {"history", std::move(history)}};
    out.emplace_back(std::string(kKeyPrefix) + name,
                     record.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return out;
}

Status TrustBook::Load(std::string_view key, std::string_view value) {
  const std::string where = "trust record " + std::string(key);
  if (key.substr(0, kKeyPrefix.size()) != kKeyPrefix) {
    return Status::Corruption(where + " does not start with " + std::string(kKeyPrefix));
  }
  const std::string name(key.substr(kKeyPrefix.size()));
  if (name.empty() || name.size() > kMaxNameBytes) {
    return Status::Corruption(where + " names no agent or too long a one");
  }
  const json j = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("agent") || !j["agent"].is_string() ||
      j["agent"].get_ref<const std::string&>() != name || !j.contains("history") ||
      !j["history"].is_array() || j["history"].empty() || j["history"].size() > kMaxHistory) {
    return Status::Corruption(where + " is not {agent, history: [1 to " +
                              std::to_string(kMaxHistory) + " decisions]}");
  }
  std::vector<TrustDecision> history;
  for (const json& d : j["history"]) {
    TrustDecision decision;
    // [level, by, reason, at_ns, seq]; records written before decisions were numbered
    // have no seq.
    if (!d.is_array() || (d.size() != 4 && d.size() != 5) || !d[0].is_string() ||
        !ParseTrustLevel(d[0].get_ref<const std::string&>(), &decision.level) ||
        !d[1].is_string() || d[1].get_ref<const std::string&>().empty() ||
        d[1].get_ref<const std::string&>().size() > kMaxNameBytes || !d[2].is_string() ||
        d[2].get_ref<const std::string&>().size() > kMaxReasonBytes || !d[3].is_number_integer() ||
        d[3].get<int64_t>() < 0 || (d.size() == 5 && !d[4].is_number_unsigned())) {
      return Status::Corruption(where +
                                " holds a decision that is not [level, by, reason, at_ns, seq]");
    }
    if (d.size() == 5) {
      decision.seq = d[4].get<uint64_t>();
      if (decision.seq == UINT64_MAX) return Status::Corruption(where + ": seq out of range");
      next_seq_ = std::max(next_seq_, decision.seq + 1);
    }
    decision.by = d[1].get<std::string>();
    decision.reason = d[2].get<std::string>();
    decision.at_ns = d[3].get<int64_t>();
    history.push_back(std::move(decision));
  }
  if (decided_.find(name) == decided_.end() && decided_.size() >= kMaxAgents) {
    return Status::Corruption(where + ": more than " + std::to_string(kMaxAgents) + " agents");
  }
  decided_[name] = std::move(history);
  return Status::Ok();
}

std::vector<AgentDecision> TrustBook::DecisionsAfter(uint64_t after_seq, size_t max) const {
  std::vector<AgentDecision> out;
  for (const auto& [name, history] : decided_) {
    for (const TrustDecision& d : history) {
      if (d.seq > after_seq) out.push_back({name, d});
    }
  }
  std::sort(out.begin(), out.end(), [](const AgentDecision& a, const AgentDecision& b) {
    return a.decision.seq < b.decision.seq;
  });
  if (out.size() > max) out.resize(max);
  return out;
}

}  // namespace tripline::baseline
