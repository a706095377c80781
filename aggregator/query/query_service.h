// QueryService: what triplinectl and ops tools ask the aggregator.
//
// Implemented here: ListEvents, GetStats, ListIncidents, GetIncident. GetBaseline and
// Feedback are answered by the BaselineProvider given (the correlation engine, which owns
// the baselines), GetAudit by the AuditProvider (aggregator/audit/); without one they
// answer UNIMPLEMENTED. Every handler
// first authorizes the caller (operator or approver certificate, AccessControl); an
// implementation added later must do the same.
//
// Threading: handlers run concurrently on gRPC callback threads; the store and the ingest
// service are thread-safe. Neither is owned; both must outlive the server.
#pragma once

#include <functional>

#include "aggregator/ingest/ingest_service.h"
#include "aggregator/ingest/peer_identity.h"
#include "aggregator/store/store.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {

// Default and largest page of ListEvents.
constexpr uint32_t kDefaultEventPage = 100;
constexpr uint32_t kDefaultIncidentLimit = 1000;

// Store status -> gRPC status, for every handler.
grpc::Status ToGrpcStatus(const Status& s);

// What owns the learned baselines answers for them. Thread-safe.
class BaselineProvider {
 public:
  virtual ~BaselineProvider() = default;
  virtual grpc::Status GetBaseline(const v1::GetBaselineRequest& request,
                                   v1::Baseline* response) = 0;
  virtual grpc::Status Feedback(const v1::FeedbackRequest& request,
                                v1::FeedbackResponse* response) = 0;
  virtual grpc::Status ListIdentitySuggestions(const v1::ListIdentitySuggestionsRequest& request,
                                               v1::ListIdentitySuggestionsResponse* response) = 0;
  // `request.by()` is the person deciding, as the caller was authorized to act.
  virtual grpc::Status DecideIdentitySuggestion(const v1::DecideIdentitySuggestionRequest& request,
                                                v1::IdentitySuggestion* response) = 0;
  virtual grpc::Status ListAgentTrust(const v1::ListAgentTrustRequest& request,
                                      v1::ListAgentTrustResponse* response) = 0;
  // `request.by()` is the person deciding, as the caller was authorized to act.
  virtual grpc::Status SetAgentTrust(const v1::SetAgentTrustRequest& request,
                                     v1::AgentTrust* response) = 0;
};

// What owns the posture findings answers for them (aggregator/audit/). Thread-safe.
class AuditProvider {
 public:
  virtual ~AuditProvider() = default;
  virtual grpc::Status GetAudit(const v1::GetAuditRequest& request, v1::AuditReport* response) = 0;
};

class QueryService final : public v1::Query::CallbackService {
 public:
  // `ingest`, `observer` and `baselines` may be nullptr (their stats are then left out,
  // their calls answer UNIMPLEMENTED); not owned. `access` decides who may call (operator
  // or approver certificates); nullptr lets every caller in (clear text).
  QueryService(Store* store, const IngestService* ingest, const IngestObserver* observer = nullptr,
               const AccessControl* access = nullptr, BaselineProvider* baselines = nullptr,
               AuditProvider* audit = nullptr);

  // Called at the end of every GetStats answer with the Stats being built, to add the
  // figures of stages this service does not know (the SIEM outputs). Set before the server
  // starts serving; called on gRPC threads, so it must be thread-safe.
  void SetStatsExtension(std::function<void(v1::Stats*)> extend) {
    extend_stats_ = std::move(extend);
  }

  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* context,
                                       const v1::ListEventsRequest* request,
                                       v1::ListEventsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::Stats* response) override;
  grpc::ServerUnaryReactor* ListIncidents(grpc::CallbackServerContext* context,
                                          const v1::ListIncidentsRequest* request,
                                          v1::ListIncidentsResponse* response) override;
  grpc::ServerUnaryReactor* GetIncident(grpc::CallbackServerContext* context,
                                        const v1::GetIncidentRequest* request,
                                        v1::Incident* response) override;
  grpc::ServerUnaryReactor* GetBaseline(grpc::CallbackServerContext* context,
                                        const v1::GetBaselineRequest* request,
                                        v1::Baseline* response) override;
  grpc::ServerUnaryReactor* Feedback(grpc::CallbackServerContext* context,
                                     const v1::FeedbackRequest* request,
                                     v1::FeedbackResponse* response) override;
  grpc::ServerUnaryReactor* ListIdentitySuggestions(
      grpc::CallbackServerContext* context, const v1::ListIdentitySuggestionsRequest* request,
      v1::ListIdentitySuggestionsResponse* response) override;
  grpc::ServerUnaryReactor* DecideIdentitySuggestion(
      grpc::CallbackServerContext* context, const v1::DecideIdentitySuggestionRequest* request,
      v1::IdentitySuggestion* response) override;
  grpc::ServerUnaryReactor* ListAgentTrust(grpc::CallbackServerContext* context,
                                           const v1::ListAgentTrustRequest* request,
                                           v1::ListAgentTrustResponse* response) override;
  grpc::ServerUnaryReactor* SetAgentTrust(grpc::CallbackServerContext* context,
                                          const v1::SetAgentTrustRequest* request,
                                          v1::AgentTrust* response) override;

  // What GetStats answers, without a call (the metrics exporter, aggregator/metrics/).
  grpc::Status CollectStats(v1::Stats* response) { return DoGetStats(response); }
  grpc::ServerUnaryReactor* GetAudit(grpc::CallbackServerContext* context,
                                     const v1::GetAuditRequest* request,
                                     v1::AuditReport* response) override;

  // The handlers' work without a call, for in-process callers that authorized the person
  // themselves (the analyst console, aggregator/console/).
  grpc::Status DoListEvents(const v1::ListEventsRequest& request, v1::ListEventsResponse* response);
  grpc::Status DoGetStats(v1::Stats* response);
  grpc::Status DoListIncidents(const v1::ListIncidentsRequest& request,
                               v1::ListIncidentsResponse* response);
  grpc::Status DoGetIncident(const v1::GetIncidentRequest& request, v1::Incident* response);

 private:
  grpc::Status Authorize(grpc::CallbackServerContext* context, std::string_view method) const;

  Store* const store_;
  const IngestService* const ingest_;
  const IngestObserver* const observer_;
  const AccessControl* const access_;
  BaselineProvider* const baselines_;
  std::function<void(v1::Stats*)> extend_stats_;
  AuditProvider* const audit_;
};

// Writes `incident` (serialized tripline.v1.Incident) into the store under its id; how the
// correlator's incidents reach the incidents column family.
Status PutIncident(Store& store, const v1::Incident& incident);

}  // namespace tripline
