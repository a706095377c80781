#include "aggregator/query/query_service.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>

#include "model/event_proto.h"

namespace tripline {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, grpc::Status status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& s) {
  using C = Status::Code;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case C::kOk: return grpc::Status::OK;
    case C::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case C::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case C::kAlreadyExists: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case C::kCorruption: code = grpc::StatusCode::DATA_LOSS; break;
    case C::kIoError:
    case C::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case C::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case C::kPermissionDenied: code = grpc::StatusCode::PERMISSION_DENIED; break;
    case C::kUnsupported: code = grpc::StatusCode::UNIMPLEMENTED; break;
    case C::kAborted: code = grpc::StatusCode::ABORTED; break;
    case C::kDeadlineExceeded: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case C::kInternal: code = grpc::StatusCode::INTERNAL; break;
    case C::kUnauthenticated: code = grpc::StatusCode::UNAUTHENTICATED; break;
  }
  return grpc::Status(code, s.message());
}

Status PutIncident(Store& store, const v1::Incident& incident) {
  std::string bytes;
  if (!incident.SerializeToString(&bytes)) return Status::Internal("cannot serialize incident");
  return store.PutIncident(incident.id(), bytes);
}

QueryService::QueryService(Store* store, const IngestService* ingest,
                           const IngestObserver* observer, const AccessControl* access,
                           BaselineProvider* baselines, AuditProvider* audit)
    : store_(store),
      ingest_(ingest),
      observer_(observer),
      access_(access),
      baselines_(baselines),
      audit_(audit) {}

// Queries show every host's events: operators and approvers only, never a sensor.
grpc::Status QueryService::Authorize(grpc::CallbackServerContext* context,
                                     std::string_view method) const {
  if (access_ == nullptr) return grpc::Status::OK;
  auto id = access_->Authorize(*context, method, {Role::kOperator, Role::kApprover});
  return id.ok() ? grpc::Status::OK : ToGrpcStatus(id.status());
}

grpc::ServerUnaryReactor* QueryService::GetBaseline(grpc::CallbackServerContext* context,
                                                    const v1::GetBaselineRequest* request,
                                                    v1::Baseline* response) {
  if (auto denied = Authorize(context, "Query.GetBaseline"); !denied.ok())
    return Reply(context, denied);
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  if (request->identity().empty() || request->identity().size() > 512) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "identity must be 1 to 512 bytes"));
  }
  return Reply(context, baselines_->GetBaseline(*request, response));
}

grpc::ServerUnaryReactor* QueryService::Feedback(grpc::CallbackServerContext* context,
                                                 const v1::FeedbackRequest* request,
                                                 v1::FeedbackResponse* response) {
  if (auto denied = Authorize(context, "Query.Feedback"); !denied.ok())
    return Reply(context, denied);
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  if (request->incident_id().empty() || request->incident_id().size() > 256) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "incident_id must be 1 to 256 bytes"));
  }
  if (request->verdict() != v1::FEEDBACK_VERDICT_BENIGN &&
      request->verdict() != v1::FEEDBACK_VERDICT_EXPECTED) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "verdict must be benign or expected"));
  }
  return Reply(context, baselines_->Feedback(*request, response));
}

grpc::ServerUnaryReactor* QueryService::ListIdentitySuggestions(
    grpc::CallbackServerContext* context, const v1::ListIdentitySuggestionsRequest* request,
    v1::ListIdentitySuggestionsResponse* response) {
  if (auto denied = Authorize(context, "Query.ListIdentitySuggestions"); !denied.ok())
    return Reply(context, denied);
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  return Reply(context, baselines_->ListIdentitySuggestions(*request, response));
}

grpc::ServerUnaryReactor* QueryService::DecideIdentitySuggestion(
    grpc::CallbackServerContext* context, const v1::DecideIdentitySuggestionRequest* request,
    v1::IdentitySuggestion* response) {
  // Confirming changes how an account is judged: operators decide (as for feedback).
  std::string by = request->by();
  if (access_ != nullptr) {
    auto id = access_->Authorize(*context, "Query.DecideIdentitySuggestion", {Role::kOperator});
    if (!id.ok()) return Reply(context, ToGrpcStatus(id.status()));
    if (!id->unrestricted) by += " (certificate " + id->name + ")";
  }
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  if (request->user().empty() || request->user().size() > 256) {
    return Reply(context,
                 grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "user must be 1 to 256 bytes"));
  }
  if (request->by().empty() || request->by().size() > 256) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "by must name the person deciding (1 to 256 bytes)"));
  }
  if (request->decision() != "confirm" && request->decision() != "dismiss") {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "decision must be confirm or dismiss"));
  }
  if (!request->kind().empty() && request->kind() != "service" && request->kind() != "agent") {
    return Reply(context,
                 grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "kind must be service or agent"));
  }
  v1::DecideIdentitySuggestionRequest authorized = *request;
  authorized.set_by(by);
  return Reply(context, baselines_->DecideIdentitySuggestion(authorized, response));
}

grpc::ServerUnaryReactor* QueryService::ListAgentTrust(grpc::CallbackServerContext* context,
                                                       const v1::ListAgentTrustRequest* request,
                                                       v1::ListAgentTrustResponse* response) {
  if (auto denied = Authorize(context, "Query.ListAgentTrust"); !denied.ok()) {
    return Reply(context, denied);
  }
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  return Reply(context, baselines_->ListAgentTrust(*request, response));
}

grpc::ServerUnaryReactor* QueryService::SetAgentTrust(grpc::CallbackServerContext* context,
                                                      const v1::SetAgentTrustRequest* request,
                                                      v1::AgentTrust* response) {
  // Promoting an agent lowers how its anomalies are judged: a person who may approve
  // responses decides, never an operator's script.
  std::string by = request->by();
  if (access_ != nullptr) {
    auto id = access_->Authorize(*context, "Query.SetAgentTrust", {Role::kApprover});
    if (!id.ok()) return Reply(context, ToGrpcStatus(id.status()));
    if (!id->unrestricted) by += " (certificate " + id->name + ")";
  }
  if (baselines_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no baselines"));
  }
  if (request->agent().empty() || request->agent().size() > 256) {
    return Reply(context,
                 grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "agent must be 1 to 256 bytes"));
  }
  if (request->by().empty() || request->by().size() > 256) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "by must name the person deciding (1 to 256 bytes)"));
  }
  if (request->reason().size() > 1024) {
    return Reply(context,
                 grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "reason is over 1024 bytes"));
  }
  if (request->level() != "trusted" && request->level() != "probation") {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "level must be trusted or probation"));
  }
  v1::SetAgentTrustRequest authorized = *request;
  authorized.set_by(by);
  return Reply(context, baselines_->SetAgentTrust(authorized, response));
}

grpc::ServerUnaryReactor* QueryService::GetAudit(grpc::CallbackServerContext* context,
                                                 const v1::GetAuditRequest* request,
                                                 v1::AuditReport* response) {
  if (auto denied = Authorize(context, "Query.GetAudit"); !denied.ok()) {
    return Reply(context, denied);
  }
  if (audit_ == nullptr) {
    return Reply(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no posture audit"));
  }
  if (request->host().size() > 256 || request->identity().size() > 256) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "host and identity must be at most 256 bytes"));
  }
  return Reply(context, audit_->GetAudit(*request, response));
}

grpc::ServerUnaryReactor* QueryService::ListEvents(grpc::CallbackServerContext* context,
                                                   const v1::ListEventsRequest* request,
                                                   v1::ListEventsResponse* response) {
  if (grpc::Status denied = Authorize(context, "Query.ListEvents"); !denied.ok()) {
    return Reply(context, std::move(denied));
  }
  return Reply(context, DoListEvents(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetStats(grpc::CallbackServerContext* context,
                                                 const v1::GetStatsRequest* /*request*/,
                                                 v1::Stats* response) {
  if (grpc::Status denied = Authorize(context, "Query.GetStats"); !denied.ok()) {
    return Reply(context, std::move(denied));
  }
  return Reply(context, DoGetStats(response));
}

grpc::ServerUnaryReactor* QueryService::ListIncidents(grpc::CallbackServerContext* context,
                                                      const v1::ListIncidentsRequest* request,
                                                      v1::ListIncidentsResponse* response) {
  if (grpc::Status denied = Authorize(context, "Query.ListIncidents"); !denied.ok()) {
    return Reply(context, std::move(denied));
  }
  return Reply(context, DoListIncidents(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetIncident(grpc::CallbackServerContext* context,
                                                    const v1::GetIncidentRequest* request,
                                                    v1::Incident* response) {
  if (grpc::Status denied = Authorize(context, "Query.GetIncident"); !denied.ok()) {
    return Reply(context, std::move(denied));
  }
  return Reply(context, DoGetIncident(*request, response));
}

grpc::Status QueryService::DoListEvents(const v1::ListEventsRequest& request,
                                        v1::ListEventsResponse* response) {
  EventQuery q;
  q.host = request.host();
  q.user = request.user();
  if (!request.kind().empty()) {
    EventKind kind;
    if (!ParseKindName(request.kind(), &kind)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "unknown event kind '" + request.kind() +
                              "' (want login, file_open, exec, net, posture or health)");
    }
    q.kind = kind;
  }
  if (request.since_ns() < 0 || request.until_ns() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "negative time bound");
  }
  q.since_ns = request.since_ns();
  q.until_ns = request.until_ns();
  q.limit = request.limit() == 0 ? kDefaultEventPage : request.limit();
  if (q.limit > Store::kMaxPageSize) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "limit above " + std::to_string(Store::kMaxPageSize));
  }
  q.page_token = request.page_token();
  auto page = store_->QueryEvents(q);
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const StoredEvent& e : page->events) {
    auto* out = response->add_events();
    out->set_sensor_id(e.sensor_id);
    ToProto(e.event, out->mutable_event());
  }
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status QueryService::DoGetStats(v1::Stats* response) {
  auto stats = store_->Stats();
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  auto records = store_->ListSensors();
  if (!records.ok()) return ToGrpcStatus(records.status());
  response->set_events_stored(stats->events_stored);
  response->set_identities(stats->identities);
  response->set_incidents(stats->incidents);
  response->set_duplicates_dropped(stats->duplicates_dropped);
  response->set_sensors_refused(stats->sensors_refused);
  response->set_identities_untracked(stats->identities_untracked);
  response->set_incidents_evicted(stats->incidents_evicted);

  std::map<std::string, v1::SensorStats> sensors;
  for (const SensorRecord& r : *records) {
    v1::SensorStats& s = sensors[r.sensor_id];
    s.set_sensor_id(r.sensor_id);
    s.set_host(r.host);
    s.set_durable_seq(r.durable_seq);
    s.set_events(r.events);
    s.set_ringbuf_drops(r.ringbuf_drops);
    s.set_spool_drops(r.spool_drops);
    s.set_decode_errors(r.decode_errors);
    s.set_last_seen_ns(r.last_write_ns);
    for (const HookFamilyStatus& f : r.families) {
      v1::HookFamilyStatus* p = s.add_families();
      p->set_name(f.name);
      p->set_state(f.state);
      p->set_hooks(f.hooks);
      p->set_reason(f.reason);
      p->set_remedy(f.remedy);
    }
  }
  if (observer_ != nullptr) {
    const ObserverProgress p = observer_->Progress();
    response->set_correlation_events_fed(p.events_fed);
    response->set_correlation_backlog(p.backlog);
    response->set_correlation_behind(p.behind);
    response->set_correlation_fell_behind(p.times_fell_behind);
    response->set_baseline_identities(p.baseline_identities);
    response->set_baseline_warming(p.baseline_warming);
    response->set_baseline_events_scored(p.baseline_events_scored);
    response->set_baseline_not_learned(p.baseline_not_learned);
  }
  if (ingest_ != nullptr) {
    const IngestCounters c = ingest_->counters();
    response->set_batches_rejected(c.rejected_requests);
    response->set_streams_denied(c.denied_streams);
    response->set_events_time_clamped(c.events_time_clamped);
    response->set_presence_evicted(c.presence_evicted);
    response->set_events_per_second(ingest_->EventsPerSecond());
    response->set_sensors_connected(ingest_->SensorsConnected());
    for (const SensorPresence& p : ingest_->Sensors()) {
      v1::SensorStats& s = sensors[p.sensor_id];
      s.set_sensor_id(p.sensor_id);
      if (s.host().empty()) s.set_host(p.host);
      s.set_connected(p.streams > 0);
      s.set_last_seen_ns(std::max(s.last_seen_ns(), p.last_seen_ns));
    }
  }
  for (auto& [id, s] : sensors) *response->add_sensors() = std::move(s);
  if (extend_stats_) extend_stats_(response);
  return grpc::Status::OK;
}

grpc::Status QueryService::DoListIncidents(const v1::ListIncidentsRequest& request,
                                           v1::ListIncidentsResponse* response) {
  // Most recent activity first (what an analyst looks at), then by id. The store keeps
  // incidents by id, so a page is the `limit` first incidents after the cursor in that
  // order, kept in a bounded heap while the incidents stream past: memory is one page,
  // whatever the number of incidents.
  const auto first = [](int64_t a_seen, const std::string& a_id, int64_t b_seen,
                        const std::string& b_id) {
    return a_seen != b_seen ? a_seen > b_seen : a_id < b_id;
  };
  std::optional<std::pair<int64_t, std::string>> after;
  if (!request.page_token().empty()) {
    const std::string& t = request.page_token();
    const size_t slash = t.find('/');
    char* end = nullptr;
    const long long seen = std::strtoll(t.c_str(), &end, 10);
    if (slash == std::string::npos || end != t.c_str() + slash || slash + 1 >= t.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad incident page token");
    }
    after.emplace(seen, t.substr(slash + 1));
  }
  const size_t limit = request.limit() == 0 || request.limit() > kDefaultIncidentLimit
                           ? kDefaultIncidentLimit
                           : request.limit();
  const auto before = [&](const v1::Incident& a, const v1::Incident& b) {
    return first(a.last_seen_ns(), a.id(), b.last_seen_ns(), b.id());
  };
  std::vector<v1::Incident> heap;  // the best limit + 1 so far; the worst on top
  heap.reserve(limit + 1);
  bool corrupt = false;
  const Status scanned = store_->ScanIncidents([&](std::string_view bytes) {
    v1::Incident incident;
    if (!incident.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      corrupt = true;
      return false;
    }
    if (incident.severity() < request.min_severity()) return true;
    if (request.since_ns() > 0 && incident.last_seen_ns() < request.since_ns()) return true;
    if (after && !first(after->first, after->second, incident.last_seen_ns(), incident.id())) {
      return true;
    }
    if (heap.size() == limit + 1) {
      if (!before(incident, heap.front())) return true;
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.pop_back();
    }
    heap.push_back(std::move(incident));
    std::push_heap(heap.begin(), heap.end(), before);
    return true;
  });
  if (!scanned.ok()) return ToGrpcStatus(scanned);
  if (corrupt) return grpc::Status(grpc::StatusCode::DATA_LOSS, "a stored incident does not parse");
  std::sort_heap(heap.begin(), heap.end(), before);
  const bool more = heap.size() > limit;
  if (more) heap.pop_back();
  for (v1::Incident& incident : heap) *response->add_incidents() = std::move(incident);
  if (more && !heap.empty()) {
    const v1::Incident& last = response->incidents(response->incidents_size() - 1);
    response->set_next_page_token(std::to_string(last.last_seen_ns()) + "/" + last.id());
  }
  return grpc::Status::OK;
}

grpc::Status QueryService::DoGetIncident(const v1::GetIncidentRequest& request,
                                         v1::Incident* response) {
  if (request.id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "incident id is empty");
  }
  auto bytes = store_->GetIncident(request.id());
  if (!bytes.ok()) return ToGrpcStatus(bytes.status());
  if (!bytes->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no incident '" + request.id() + "'");
  }
  if (!response->ParseFromString(**bytes)) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "stored incident does not parse");
  }
  return grpc::Status::OK;
}

}  // namespace tripline
