#include "aggregator/response/response_service.h"

#include <algorithm>

#include "aggregator/query/query_service.h"
#include "aggregator/response/rpc_helpers.h"
#include "common/log.h"

namespace tripline::response {
namespace {

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

}  // namespace

Result<std::string> ResponseService::Decider(grpc::CallbackServerContext* context,
                                             std::string_view method,
                                             const v1::DecideRequest& request) const {
  std::string by = request.by();
  if (by.empty() && method == "Response.Revert" && access_ != nullptr && access_->enforced()) {
    // A revert only takes something back: the certificate names who asks.
    TL_ASSIGN_OR_RETURN(PeerIdentity who, access_->Authorize(*context, method, {Role::kApprover}));
    by = who.common_name;
  }
  if (by.empty() || by.size() > 128 || !Printable(by)) {
    return Status::InvalidArgument(std::string(method) +
                                   " needs --by NAME: the person who decides (1 to 128 "
                                   "printable bytes)");
  }
  if (access_ != nullptr) {
    TL_ASSIGN_OR_RETURN(PeerIdentity who, access_->Authorize(*context, method, {Role::kApprover}));
    if (access_->enforced() && who.common_name != by) {
      TL_LOG(WARNING) << "denied " << method << " to " << who.name << ": --by " << by
                      << " is not the certificate's name '" << who.common_name << "'";
      return Status::PermissionDenied(std::string(method) + ": --by " + by +
                                      " does not match the client certificate, which names '" +
                                      who.common_name + "'");
    }
  }
  TL_RETURN_IF_ERROR(CheckApprover(method, by));
  return by;
}

Status ResponseService::CheckApprover(std::string_view method, const std::string& by) const {
  const std::vector<std::string> approvers = book_->approvers();
  if (!approvers.empty() && std::find(approvers.begin(), approvers.end(), by) == approvers.end()) {
    TL_LOG(WARNING) << "denied " << method << " by " << by << ": not an approver";
    return Status::PermissionDenied(std::string(method) + ": " + by +
                                    " is not one of the configured approvers");
  }
  return Status::Ok();
}

Result<v1::Action> ResponseService::DecideAs(std::string_view method, const std::string& person,
                                             const v1::DecideRequest& request) {
  if (method != "Response.Approve" && method != "Response.Deny") {
    return Status::InvalidArgument("only an approval or a denial is decided in process");
  }
  if (person.empty() || person.size() > 128 || !Printable(person)) {
    return Status::InvalidArgument(std::string(method) + ": no person to decide");
  }
  TL_RETURN_IF_ERROR(CheckApprover(method, person));
  return Apply(method, person, request);
}

Result<v1::Action> ResponseService::Apply(std::string_view method, const std::string& by,
                                          const v1::DecideRequest& request) {
  if (request.id().empty() || request.id().size() > 64 || request.comment().size() > 4096 ||
      !Printable(request.comment())) {
    return Status::InvalidArgument("an action id (at most 64 bytes) and a printable comment");
  }
  Result<v1::Action> a = Status::Internal("unreached");
  if (method == "Response.Approve") {
    a = book_->Approve(request.id(), by, request.comment());
  } else if (method == "Response.Deny") {
    a = book_->Deny(request.id(), by, request.comment());
  } else {
    a = book_->Revert(request.id(), by);
  }
  if (!a.ok()) return a.status();
  TL_LOG(INFO) << method << " " << a->id() << " (" << KindText(a->kind()) << " " << a->target()
               << ") by " << by << ": now " << StateText(a->state());
  if (orders_ != nullptr && method != "Response.Deny") orders_->Offer(*a);
  return a;
}

Result<std::vector<v1::Action>> ResponseService::ListActions(
    const v1::ListActionsRequest& request) const {
  if (request.incident_id().size() > 256) return Status::InvalidArgument("incident id too long");
  return book_->List(request.state(), request.incident_id());
}

Result<std::vector<v1::Action::AuditEntry>> ResponseService::TrailOf(
    const v1::TrailRequest& request) const {
  if (request.action_id().size() > 64) return Status::InvalidArgument("action id too long");
  const size_t limit = request.limit() == 0 ? 1000 : std::min<uint32_t>(request.limit(), 100000);
  return book_->Trail(request.action_id(), limit);
}

grpc::ServerUnaryReactor* ResponseService::Propose(grpc::CallbackServerContext* context,
                                                   const v1::ProposeRequest* request,
                                                   v1::Action* response) {
  std::string by = request->by();
  if (access_ != nullptr) {
    auto who = access_->Authorize(*context, "Response.Propose", {Role::kOperator, Role::kApprover});
    if (!who.ok()) return Reply(context, ToGrpcStatus(who.status()));
    if (access_->enforced()) {
      if (!by.empty() && by != who->common_name) {
        return Reply(context, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                           "Response.Propose: --by " + by +
                                               " does not match the client certificate, which "
                                               "names '" +
                                               who->common_name + "'"));
      }
      by = who->common_name;
    }
  }
  if (by.empty() || by.size() > 128 || !Printable(by) || by == kTriplineProposer) {
    return Reply(context, Invalid("a proposal needs --by NAME: the person proposing"));
  }
  if (request->target().size() > 300 || request->incident_id().size() > 256 ||
      request->reason().size() > 4096 || !Printable(request->reason())) {
    return Reply(context, Invalid("target, incident or reason too long or not printable"));
  }
  Proposal p;
  p.kind = request->kind();
  p.target = request->target();
  p.incident_id = request->incident_id();
  p.reason = request->reason();
  p.by = by;
  p.by_person = true;
  p.duration_ns = int64_t{request->duration_s()} * kNanosPerSecond;
  auto a = book_->Propose(p);
  if (!a.ok()) return Reply(context, ToGrpcStatus(a.status()));
  *response = std::move(*a);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ResponseService::Decide(grpc::CallbackServerContext* context,
                                                  std::string_view method,
                                                  const v1::DecideRequest* request,
                                                  v1::Action* response) {
  auto by = Decider(context, method, *request);
  if (!by.ok()) return Reply(context, ToGrpcStatus(by.status()));
  auto a = Apply(method, *by, *request);
  if (!a.ok()) return Reply(context, ToGrpcStatus(a.status()));
  *response = std::move(*a);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ResponseService::Approve(grpc::CallbackServerContext* context,
                                                   const v1::DecideRequest* request,
                                                   v1::Action* response) {
  return Decide(context, "Response.Approve", request, response);
}

grpc::ServerUnaryReactor* ResponseService::Deny(grpc::CallbackServerContext* context,
                                                const v1::DecideRequest* request,
                                                v1::Action* response) {
  return Decide(context, "Response.Deny", request, response);
}

grpc::ServerUnaryReactor* ResponseService::Revert(grpc::CallbackServerContext* context,
                                                  const v1::DecideRequest* request,
                                                  v1::Action* response) {
  return Decide(context, "Response.Revert", request, response);
}

grpc::ServerUnaryReactor* ResponseService::List(grpc::CallbackServerContext* context,
                                                const v1::ListActionsRequest* request,
                                                v1::ListActionsResponse* response) {
  if (access_ != nullptr) {
    auto who = access_->Authorize(*context, "Response.List", {Role::kOperator, Role::kApprover});
    if (!who.ok()) return Reply(context, ToGrpcStatus(who.status()));
  }
  auto actions = ListActions(*request);
  if (!actions.ok()) return Reply(context, ToGrpcStatus(actions.status()));
  for (v1::Action& a : *actions) *response->add_actions() = std::move(a);
  return Reply(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ResponseService::Trail(grpc::CallbackServerContext* context,
                                                 const v1::TrailRequest* request,
                                                 v1::TrailResponse* response) {
  if (access_ != nullptr) {
    auto who = access_->Authorize(*context, "Response.Trail", {Role::kOperator, Role::kApprover});
    if (!who.ok()) return Reply(context, ToGrpcStatus(who.status()));
  }
  auto trail = TrailOf(*request);
  if (!trail.ok()) return Reply(context, ToGrpcStatus(trail.status()));
  for (auto& e : *trail) *response->add_entries() = std::move(e);
  return Reply(context, grpc::Status::OK);
}

Status ResponseService::Maintain() {
  TL_RETURN_IF_ERROR(book_->ExpireOverdue().status());
  if (store_ == nullptr || book_->policy().propose_min_severity == 0) return Status::Ok();
  const int64_t seen = incidents_seen_ns_.load();
  int64_t newest = seen;
  Status failed;
  TL_RETURN_IF_ERROR(store_->ScanIncidents([&](std::string_view bytes) {
    v1::Incident incident;
    if (!incident.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return true;
    if (incident.updated_ns() < seen) return true;  // equal: proposed again, a no-op
    newest = std::max(newest, incident.updated_ns());
    auto n = book_->ProposeForIncident(incident);
    if (!n.ok()) {
      failed = n.status();
      return false;
    }
    if (*n > 0) {
      TL_LOG(INFO) << "incident " << incident.id() << " proposes " << *n
                   << " response actions, waiting for approval";
    }
    return true;
  }));
  TL_RETURN_IF_ERROR(failed);
  incidents_seen_ns_.store(newest);
  return Status::Ok();
}

}  // namespace tripline::response
