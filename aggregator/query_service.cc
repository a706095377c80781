#include "aggregator/query_service.h"

#include <algorithm>
#include <map>

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
  }
  return grpc::Status(code, s.message());
}

Status PutIncident(Store& store, const v1::Incident& incident) {
  std::string bytes;
  if (!incident.SerializeToString(&bytes)) return Status::Internal("cannot serialize incident");
  return store.PutIncident(incident.id(), bytes);
}

QueryService::QueryService(Store* store, const IngestService* ingest,
                           const IngestObserver* observer)
    : store_(store), ingest_(ingest), observer_(observer) {}

grpc::ServerUnaryReactor* QueryService::ListEvents(grpc::CallbackServerContext* context,
                                                   const v1::ListEventsRequest* request,
                                                   v1::ListEventsResponse* response) {
  return Reply(context, DoListEvents(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetStats(grpc::CallbackServerContext* context,
                                                 const v1::GetStatsRequest* /*request*/,
                                                 v1::Stats* response) {
  return Reply(context, DoGetStats(response));
}

grpc::ServerUnaryReactor* QueryService::ListIncidents(grpc::CallbackServerContext* context,
                                                      const v1::ListIncidentsRequest* request,
                                                      v1::ListIncidentsResponse* response) {
  return Reply(context, DoListIncidents(*request, response));
}

grpc::ServerUnaryReactor* QueryService::GetIncident(grpc::CallbackServerContext* context,
                                                    const v1::GetIncidentRequest* request,
                                                    v1::Incident* response) {
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
  }
  if (ingest_ != nullptr) {
    const IngestCounters c = ingest_->counters();
    response->set_batches_rejected(c.rejected_requests);
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
  return grpc::Status::OK;
}

grpc::Status QueryService::DoListIncidents(const v1::ListIncidentsRequest& request,
                                           v1::ListIncidentsResponse* response) {
  auto all = store_->ListIncidents();
  if (!all.ok()) return ToGrpcStatus(all.status());
  std::vector<v1::Incident> incidents;
  for (const std::string& bytes : *all) {
    v1::Incident incident;
    if (!incident.ParseFromString(bytes)) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, "a stored incident does not parse");
    }
    if (incident.severity() < request.min_severity()) continue;
    if (request.since_ns() > 0 && incident.last_seen_ns() < request.since_ns()) continue;
    incidents.push_back(std::move(incident));
  }
  // Most recent activity first: that is what an analyst looks at.
  std::sort(incidents.begin(), incidents.end(), [](const auto& a, const auto& b) {
    if (a.last_seen_ns() != b.last_seen_ns()) return a.last_seen_ns() > b.last_seen_ns();
    return a.id() < b.id();
  });
  const size_t limit = request.limit() == 0 ? kDefaultIncidentLimit : request.limit();
  for (size_t i = 0; i < incidents.size() && i < limit; ++i) {
    *response->add_incidents() = std::move(incidents[i]);
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
