#include "aggregator/audit/posture_auditor.h"

#include "common/log.h"

namespace tripline::audit {

Result<ApplyResult> PostureAuditor::Audit(std::string_view host, int64_t time_ns,
                                          const PostureSnapshot& snapshot) {
  std::vector<Finding> findings;
  AuditPolicy policy;
  {
    std::lock_guard<std::mutex> lock(policy_mu_);
    findings = FindingsFromPosture(host, snapshot, policy_);
    policy = policy_;
  }
  if (drift_ != nullptr) {
    if (Status s = drift_->SetProvisioned(host, time_ns, snapshot, policy); !s.ok()) {
      TL_LOG(ERROR) << "privilege drift of " << host << ": " << s.ToString();
    }
  }
  return ledger_->Apply(host, time_ns, std::move(findings));
}

void PostureAuditor::SetDeclared(std::map<std::string, std::string, std::less<>> declared,
                                 std::vector<ProcessRule> processes) {
  std::lock_guard<std::mutex> lock(policy_mu_);
  policy_.declared = std::move(declared);
  policy_.processes = std::move(processes);
}

void PostureAuditor::OnDurable(std::string_view sensor_id, std::vector<Event> events) {
  for (const Event& e : events) {
    const PostureSnapshot* snapshot = e.As<PostureSnapshot>();
    if (snapshot == nullptr) continue;
    auto r = Audit(e.host, e.time_ns, *snapshot);
    if (!r.ok()) {
      TL_LOG(ERROR) << "posture audit of " << e.host << " (sensor " << sensor_id
                    << "): " << r.status().ToString();
    } else if (r->opened > 0 || r->resolved > 0) {
      TL_LOG(INFO) << "posture audit of " << e.host << ": " << r->opened << " findings opened, "
                   << r->resolved << " resolved, " << r->still_open << " still open";
    }
  }
  if (drift_ != nullptr) {
    if (Status s = drift_->Observe(events); !s.ok()) {
      TL_LOG(ERROR) << "privilege drift (sensor " << sensor_id << "): " << s.ToString();
    }
  }
  if (next_ != nullptr) next_->OnDurable(sensor_id, std::move(events));
}

grpc::Status PostureAuditor::GetAudit(const v1::GetAuditRequest& request,
                                      v1::AuditReport* response) {
  FindingFilter filter;
  filter.host = request.host();
  filter.identity = request.identity();
  filter.include_resolved = request.include_resolved();
  auto found = ledger_->List(filter);
  if (!found.ok()) return ToGrpcStatus(found.status());
  for (const StoredFinding& f : *found) {
    v1::AuditFinding* p = response->add_findings();
    p->set_host(f.finding.host);
    p->set_identity(f.finding.identity);
    p->set_kind(f.finding.kind);
    p->set_finding(f.finding.check);
    p->set_subject(f.finding.subject);
    p->set_severity(static_cast<v1::Severity>(f.finding.severity));
    p->set_detail(f.finding.detail);
    p->set_fix(f.finding.fix);
    p->set_first_seen_ns(f.first_seen_ns);
    p->set_last_seen_ns(f.last_seen_ns);
    p->set_resolved_ns(f.resolved_ns);
  }
  if (request.drift()) {
    if (drift_ == nullptr) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this aggregator keeps no drift");
    }
    int64_t min_period_ns = 0;
    {
      std::lock_guard<std::mutex> lock(policy_mu_);
      min_period_ns = policy_.drift_min_period_ns;
    }
    for (const DriftItem& d :
         drift_->Report(request.host(), request.identity(), clock_.NowNs(), min_period_ns)) {
      v1::DriftItem* p = response->add_drift();
      p->set_host(d.host);
      p->set_identity(d.identity);
      p->set_kind(d.kind);
      p->set_privilege(d.privilege);
      p->set_state(d.state);
      p->set_last_used_ns(d.last_used_ns);
      p->set_since_ns(d.since_ns);
      p->set_evidence(d.evidence);
      p->set_fix(d.fix);
    }
  }
  response->set_generated_ns(clock_.NowNs());
  return grpc::Status::OK;
}

}  // namespace tripline::audit
