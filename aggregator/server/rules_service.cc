#include "aggregator/server/rules_service.h"

#include "common/log.h"

namespace tripline {

grpc::Status RulesService::Authorize(grpc::ServerContext* context, std::string_view method) const {
  if (access_ == nullptr) return grpc::Status::OK;
  auto id = access_->Authorize(*context, method, {Role::kOperator, Role::kApprover});
  if (id.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, id.status().message());
}

grpc::Status RulesService::ListRules(grpc::ServerContext* context, const v1::ListRulesRequest*,
                                     v1::ListRulesResponse* response) {
  if (auto denied = Authorize(context, "Rules.ListRules"); !denied.ok()) return denied;
  if (engine_ == nullptr) return grpc::Status::OK;
  response->set_dir(engine_->dir());
  response->set_events_evaluated(engine_->events_evaluated());
  for (const rules::RuleInfo& r : engine_->Rules()) {
    v1::RuleStatus* s = response->add_rules();
    s->set_id(r.id);
    s->set_title(r.title);
    s->set_level(r.level);
    s->set_file(r.file);
    s->set_line(static_cast<uint32_t>(r.line));
    s->set_state(std::string(rules::RuleStateName(r.state)));
    s->set_reason(r.reason);
    for (const std::string& t : r.techniques) s->add_techniques(t);
    s->set_logsource(r.logsource);
    s->set_correlation(r.correlation);
    s->set_hits(r.hits);
  }
  return grpc::Status::OK;
}

grpc::Status RulesService::ReloadRules(grpc::ServerContext* context, const v1::ReloadRulesRequest*,
                                       v1::ReloadRulesResponse* response) {
  if (auto denied = Authorize(context, "Rules.ReloadRules"); !denied.ok()) return denied;
  if (engine_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the aggregator runs no rules");
  }
  Status s = engine_->Reload();
  if (!s.ok()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, s.message());
  size_t loaded = 0, unsupported = 0, broken = 0;
  for (const rules::RuleInfo& r : engine_->Rules()) {
    if (r.state == rules::RuleState::kLoaded) ++loaded;
    if (r.state == rules::RuleState::kUnsupported) ++unsupported;
    if (r.state == rules::RuleState::kBroken) ++broken;
  }
  response->set_loaded(static_cast<uint32_t>(loaded));
  response->set_unsupported(static_cast<uint32_t>(unsupported));
  response->set_broken(static_cast<uint32_t>(broken));
  TL_LOG(INFO) << "rules reloaded from " << engine_->dir() << ": " << loaded << " loaded, "
               << unsupported << " unsupported, " << broken << " broken";
  return grpc::Status::OK;
}

}  // namespace tripline
