// PostureAuditor: turns the sensors' posture snapshots into findings as they are stored, and
// answers Query.GetAudit from them; with a DriftBook, it also keeps the non-human accounts'
// provisioned privileges and the events that exercise them, and reports the drift.
//
// It sits in front of the analysis observer (the correlation engine): every stored batch
// passes through OnDurable, where the posture snapshots among its events are audited
// (FindingsFromPosture, then FindingLedger::Apply) before the whole batch goes on to the
// next observer. Snapshots are rare (one per host every posture_interval_s), so the audit
// runs on the ingest thread. A ledger write that fails is logged and that snapshot's
// changes are lost; the host's next snapshot applies them (findings are state, not events).
//
// Threading: thread-safe. The ledger and the next observer are not owned.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "aggregator/audit/finding_ledger.h"
#include "aggregator/audit/privilege_drift.h"
#include "aggregator/ingest/ingest_service.h"
#include "aggregator/query/query_service.h"
#include "common/clock.h"

namespace tripline::audit {

class PostureAuditor final : public IngestObserver, public AuditProvider {
 public:
  // `next` and `drift` may be nullptr (no drift report without the book).
  PostureAuditor(FindingLedger* ledger, AuditPolicy policy, IngestObserver* next,
                 DriftBook* drift = nullptr, const Clock& clock = SystemClock::Get())
      : ledger_(ledger), policy_(std::move(policy)), next_(next), drift_(drift), clock_(clock) {}

  void OnDurable(std::string_view sensor_id, std::vector<Event> events) override;
  ObserverProgress Progress() const override {
    return next_ != nullptr ? next_->Progress() : ObserverProgress{};
  }
  grpc::Status GetAudit(const v1::GetAuditRequest& request, v1::AuditReport* response) override;

  // Audits one snapshot (what OnDurable does for each posture event).
  Result<ApplyResult> Audit(std::string_view host, int64_t time_ns,
                            const PostureSnapshot& snapshot);

  // Replaces the declared kinds (account -> "service" or "agent") the next snapshots are
  // judged by: the identity declarations' SIGHUP reload (aggregator/server/config_reload.h).
  void SetDeclared(std::map<std::string, std::string, std::less<>> declared,
                   std::vector<ProcessRule> processes = {});

 private:
  FindingLedger* const ledger_;
  mutable std::mutex policy_mu_;
  AuditPolicy policy_;  // GUARDED_BY(policy_mu_)
  IngestObserver* const next_;
  DriftBook* const drift_;
  const Clock& clock_;
};

}  // namespace tripline::audit
