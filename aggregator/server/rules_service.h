// The Rules service (proto/tripline/v1/rules.proto): lists the Sigma rules the aggregator
// runs, with their state and hits, and reloads them. Operators and approvers only.
#pragma once

#include <memory>

#include "aggregator/ingest/peer_identity.h"
#include "aggregator/rules/sigma.h"
#include "tripline/v1/rules.grpc.pb.h"

namespace tripline {

class RulesService final : public v1::Rules::Service {
 public:
  // `engine` may be nullptr (no --rules): the list is then empty. `access` is not owned.
  RulesService(std::shared_ptr<rules::RuleEngine> engine, const AccessControl* access)
      : engine_(std::move(engine)), access_(access) {}

  grpc::Status ListRules(grpc::ServerContext* context, const v1::ListRulesRequest* request,
                         v1::ListRulesResponse* response) override;
  grpc::Status ReloadRules(grpc::ServerContext* context, const v1::ReloadRulesRequest* request,
                           v1::ReloadRulesResponse* response) override;

 private:
  grpc::Status Authorize(grpc::ServerContext* context, std::string_view method) const;
  std::shared_ptr<rules::RuleEngine> engine_;
  const AccessControl* access_;
};

}  // namespace tripline
