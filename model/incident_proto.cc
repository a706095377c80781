#include "model/incident_proto.h"

#include "model/event_proto.h"

namespace tripline {
namespace {

Status CheckLength(const std::string& s, std::string_view field) {
  if (s.size() > kMaxWireString) {
    return Status::InvalidArgument("incident " + std::string(field) + " is too long");
  }
  return Status::Ok();
}

Status CopyList(const google::protobuf::RepeatedPtrField<std::string>& in, std::string_view field,
                std::vector<std::string>* out) {
  if (static_cast<size_t>(in.size()) > kMaxWireListItems) {
    return Status::InvalidArgument("incident " + std::string(field) + " has too many entries");
  }
  for (const auto& s : in) {
    TL_RETURN_IF_ERROR(CheckLength(s, field));
    out->push_back(s);
  }
  return Status::Ok();
}

}  // namespace

void ToProto(const Incident& in, v1::Incident* out) {
  out->Clear();
  out->set_id(in.id);
  out->set_severity(static_cast<v1::Severity>(in.severity));
  out->set_title(in.title);
  for (const auto& s : in.identities) out->add_identities(s);
  for (const auto& s : in.hosts) out->add_hosts(s);
  for (const auto& s : in.techniques) out->add_techniques(s);
  out->set_first_seen_ns(in.first_seen_ns);
  out->set_last_seen_ns(in.last_seen_ns);
  for (const auto& h : in.chain) {
    auto* hop = out->add_chain();
    hop->set_from(h.from);
    hop->set_to(h.to);
    hop->set_user(h.user);
    hop->set_from_user(h.from_user);
    hop->set_at_ns(h.at_ns);
    hop->set_port(h.port);
  }
  for (const auto& r : in.events) {
    auto* ref = out->add_events();
    ref->set_sensor_id(r.sensor_id);
    ref->set_seq(r.seq);
    ref->set_host(r.host);
    ref->set_time_ns(r.time_ns);
    ref->set_kind(r.kind);
    ref->set_summary(r.summary);
  }
  for (const auto& s : in.explanation) out->add_explanation(s);
  for (const Stage& s : in.stages) {
    auto* st = out->add_stages();
    st->set_host(s.host);
    st->set_technique(s.technique);
    st->set_what(s.what);
    st->set_at_ns(s.at_ns);
  }
  out->set_confidence(in.confidence);
  out->set_score(in.score);
  out->set_revision(in.revision);
  out->set_updated_ns(in.updated_ns);
}

Result<Incident> FromProto(const v1::Incident& in) {
  Incident out;
  if (in.id().empty()) return Status::InvalidArgument("incident has no id");
  TL_RETURN_IF_ERROR(CheckLength(in.id(), "id"));
  TL_RETURN_IF_ERROR(CheckLength(in.title(), "title"));
  if (in.severity() < v1::SEVERITY_INFO || in.severity() > v1::SEVERITY_CRITICAL) {
    return Status::InvalidArgument("incident severity " + std::to_string(in.severity()) +
                                   " is not one of info..critical");
  }
  out.severity = static_cast<Severity>(in.severity());
  if (!(in.confidence() >= 0.0 && in.confidence() <= 1.0)) {
    return Status::InvalidArgument("incident confidence must be within 0..1");
  }
  out.id = in.id();
  out.title = in.title();
  TL_RETURN_IF_ERROR(CopyList(in.identities(), "identities", &out.identities));
  TL_RETURN_IF_ERROR(CopyList(in.hosts(), "hosts", &out.hosts));
  TL_RETURN_IF_ERROR(CopyList(in.techniques(), "techniques", &out.techniques));
  TL_RETURN_IF_ERROR(CopyList(in.explanation(), "explanation", &out.explanation));
  out.first_seen_ns = in.first_seen_ns();
  out.last_seen_ns = in.last_seen_ns();
  if (static_cast<size_t>(in.chain_size()) > kMaxWireListItems ||
      static_cast<size_t>(in.events_size()) > kMaxWireListItems) {
    return Status::InvalidArgument("incident chain or events too long");
  }
  for (const auto& h : in.chain()) {
    for (const auto* s : {&h.from(), &h.to(), &h.user(), &h.from_user()}) {
      TL_RETURN_IF_ERROR(CheckLength(*s, "chain"));
    }
    out.chain.push_back({h.from(), h.to(), h.user(), h.from_user(), h.at_ns(), h.port()});
  }
  for (const auto& r : in.events()) {
    for (const auto* s : {&r.sensor_id(), &r.host(), &r.kind(), &r.summary()}) {
      TL_RETURN_IF_ERROR(CheckLength(*s, "events"));
    }
    out.events.push_back({r.sensor_id(), r.seq(), r.host(), r.time_ns(), r.kind(), r.summary()});
  }
  if (static_cast<size_t>(in.stages_size()) > kMaxWireListItems) {
    return Status::InvalidArgument("incident stages too long");
  }
  for (const auto& s : in.stages()) {
    for (const auto* t : {&s.host(), &s.technique(), &s.what()}) {
      TL_RETURN_IF_ERROR(CheckLength(*t, "stages"));
    }
    out.stages.push_back({s.host(), s.technique(), s.what(), s.at_ns()});
  }
  out.confidence = in.confidence();
  out.score = in.score();
  out.revision = in.revision();
  out.updated_ns = in.updated_ns();
  return out;
}

}  // namespace tripline
