// The aggregator's audit sources for the SIEM outputs (aggregator/forward/audit_feed.h):
// the response trail (response/action_book.h) and the agents' trust decisions (the
// correlation engine's trust book).
#pragma once

#include "aggregator/forward/audit_feed.h"

namespace tripline {

class CorrelationEngine;
namespace response {
class ActionBook;
}  // namespace response

// Each trail entry with the action it belongs to (kind, target, host, subject, incident).
class ResponseTrailSource final : public forward::AuditSource {
 public:
  explicit ResponseTrailSource(response::ActionBook* book) : book_(book) {}
  std::string_view name() const override { return "response"; }
  Result<std::vector<v1::AuditEvent>> After(uint64_t after_seq, size_t max) override;
  Result<uint64_t> Last() override;

 private:
  response::ActionBook* const book_;
};

class TrustDecisionSource final : public forward::AuditSource {
 public:
  explicit TrustDecisionSource(const CorrelationEngine* engine) : engine_(engine) {}
  std::string_view name() const override { return "trust"; }
  Result<std::vector<v1::AuditEvent>> After(uint64_t after_seq, size_t max) override;
  Result<uint64_t> Last() override;

 private:
  const CorrelationEngine* const engine_;
};

}  // namespace tripline
