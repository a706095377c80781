#include "aggregator/server/audit_sources.h"

#include <map>
#include <optional>

#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/response/action_book.h"

namespace tripline {

Result<std::vector<v1::AuditEvent>> ResponseTrailSource::After(uint64_t after_seq, size_t max) {
  TL_ASSIGN_OR_RETURN(std::vector<v1::Action::AuditEntry> entries,
                      book_->TrailAfter(after_seq, max));
  std::map<std::string, std::optional<v1::Action>> actions;
  std::vector<v1::AuditEvent> out;
  out.reserve(entries.size());
  for (const v1::Action::AuditEntry& e : entries) {
    auto [it, inserted] = actions.try_emplace(e.action_id());
    if (inserted) {
      TL_ASSIGN_OR_RETURN(it->second, book_->Get(e.action_id()));
    }
    v1::AuditEvent& a = out.emplace_back();
    a.set_id("response-" + std::to_string(e.seq()));
    a.set_source(v1::AuditEvent::SOURCE_RESPONSE);
    a.set_seq(e.seq());
    a.set_at_ns(e.at_ns());
    a.set_by(e.by());
    a.set_what(e.what());
    a.set_step(e.step());
    a.set_action_id(e.action_id());
    if (const std::optional<v1::Action>& action = it->second) {
      a.set_action_kind(action->kind());
      a.set_target(action->target());
      a.set_host(action->host());
      a.set_subject(action->subject());
      a.set_incident_id(action->incident_id());
    }
  }
  return out;
}

Result<uint64_t> ResponseTrailSource::Last() { return book_->LastTrailSeq(); }

Result<std::vector<v1::AuditEvent>> TrustDecisionSource::After(uint64_t after_seq, size_t max) {
  std::vector<v1::AuditEvent> out;
  for (const baseline::AgentDecision& d : engine_->TrustDecisionsAfter(after_seq, max)) {
    const bool trusted = d.decision.level == baseline::TrustLevel::kTrusted;
    v1::AuditEvent& a = out.emplace_back();
    a.set_id("trust-" + std::to_string(d.decision.seq));
    a.set_source(v1::AuditEvent::SOURCE_TRUST);
    a.set_seq(d.decision.seq);
    a.set_at_ns(d.decision.at_ns);
    a.set_by(d.decision.by);
    a.set_step(trusted ? "promoted" : "put-on-probation");
    a.set_what(std::string(trusted ? "promoted to trusted" : "put on probation") +
               (d.decision.reason.empty() ? "" : ": " + d.decision.reason));
    a.set_agent(d.agent);
    a.set_level(std::string(baseline::TrustLevelName(d.decision.level)));
    a.set_reason(d.decision.reason);
  }
  return out;
}

Result<uint64_t> TrustDecisionSource::Last() { return engine_->LastTrustDecisionSeq(); }

}  // namespace tripline
