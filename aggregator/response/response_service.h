// ResponseService: the Response gRPC service (proto/tripline/v1/response.proto) over an
// ActionBook, and who may do what (docs/response.md).
//
//   List, Trail     operator or approver
//   Propose         operator or approver; the proposer is the certificate's common name
//                   (with mutual TLS; `by` must then be empty or the same), else `by`
//   Approve, Deny,  approver. `by` is required. With mutual TLS it must equal the
//   Revert          certificate's common name: a person approves as themself, never as
//                   someone else. When approvers are configured, `by` must be one of them.
//                   An approval or a requested revert is offered to the OrdersService,
//                   which sends the signed order to the host's sensor.
//
// In clear text (loopback, or --insecure) nobody is authenticated, so `by` is taken as
// given: the workflow and its trail still hold, the identities in it are claims.
//
// Maintain() expires overdue proposals and approvals and proposes actions for incidents at
// or above the configured severity; the aggregator calls it from its maintenance thread.
//
// Threading: handlers run concurrently on gRPC threads; the book is thread-safe. Store, book
// and access control are not owned and must outlive the server.
#pragma once

#include <atomic>

#include "aggregator/ingest/peer_identity.h"
#include "aggregator/response/action_book.h"
#include "aggregator/response/orders_service.h"
#include "aggregator/store/store.h"
#include "tripline/v1/response.grpc.pb.h"

namespace tripline::response {

class ResponseService final : public v1::Response::CallbackService {
 public:
  // `access` nullptr: clear text, nothing enforced. `orders` (may be nullptr) is told of
  // every approval and revert, to send the order to the host's sensor.
  ResponseService(ActionBook* book, Store* store, const AccessControl* access,
                  OrdersService* orders = nullptr)
      : book_(book), store_(store), access_(access), orders_(orders) {}

  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* context,
                                    const v1::ProposeRequest* request,
                                    v1::Action* response) override;
  grpc::ServerUnaryReactor* Approve(grpc::CallbackServerContext* context,
                                    const v1::DecideRequest* request,
                                    v1::Action* response) override;
  grpc::ServerUnaryReactor* Deny(grpc::CallbackServerContext* context,
                                 const v1::DecideRequest* request, v1::Action* response) override;
  grpc::ServerUnaryReactor* Revert(grpc::CallbackServerContext* context,
                                   const v1::DecideRequest* request, v1::Action* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListActionsRequest* request,
                                 v1::ListActionsResponse* response) override;
  grpc::ServerUnaryReactor* Trail(grpc::CallbackServerContext* context,
                                  const v1::TrailRequest* request,
                                  v1::TrailResponse* response) override;

  // Expires what is overdue and proposes actions for incidents updated since the last call.
  Status Maintain();

  // In process, for a caller that authenticated the person itself (the analyst console):
  // what Approve and Deny (`method` "Response.Approve" or "Response.Deny") do with `person`
  // as `by`, checked against the configured approvers like every other decider.
  Result<v1::Action> DecideAs(std::string_view method, const std::string& person,
                              const v1::DecideRequest& request);
  // What List and Trail answer.
  Result<std::vector<v1::Action>> ListActions(const v1::ListActionsRequest& request) const;
  Result<std::vector<v1::Action::AuditEntry>> TrailOf(const v1::TrailRequest& request) const;

 private:
  // `by` against the configured approvers.
  Status CheckApprover(std::string_view method, const std::string& by) const;
  // Approves, denies or reverts as `by` (already checked), and offers the order.
  Result<v1::Action> Apply(std::string_view method, const std::string& by,
                           const v1::DecideRequest& request);
  // The person deciding: checks role, --by against the certificate and the approvers list.
  Result<std::string> Decider(grpc::CallbackServerContext* context, std::string_view method,
                              const v1::DecideRequest& request) const;
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context, std::string_view method,
                                   const v1::DecideRequest* request, v1::Action* response);

  ActionBook* const book_;
  Store* const store_;
  const AccessControl* const access_;
  OrdersService* const orders_;
  std::atomic<int64_t> incidents_seen_ns_{0};  // updated_ns of the newest incident handled
};

}  // namespace tripline::response
