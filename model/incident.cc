#include "model/incident.h"

#include <nlohmann/json.hpp>

#include "common/clock.h"

namespace tripline {
namespace {

using nlohmann::json;

// Type-checked field access: the first problem is kept, later reads become no-ops, so a
// conversion reads every field and then asks once whether all went well.
class FieldReader {
 public:
  explicit FieldReader(std::string_view what) : what_(what) {}

  const json* Field(const json& o, const char* key) {
    if (!error_.empty()) return nullptr;
    if (!o.is_object()) {
      error_ = what_ + " is not an object";
      return nullptr;
    }
    auto it = o.find(key);
    if (it == o.end()) {
      error_ = what_ + "." + key + " is missing";
      return nullptr;
    }
    return &*it;
  }
  void Fail(const char* key, const char* want) {
    if (error_.empty()) error_ = what_ + "." + key + " is not " + want;
  }
  void Str(const json& o, const char* key, std::string* out) {
    const json* v = Field(o, key);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(key, "a string");
    *out = v->get_ref<const std::string&>();
  }
  void Int(const json& o, const char* key, int64_t* out) {
    const json* v = Field(o, key);
    if (v == nullptr) return;
    if (!v->is_number_integer()) return Fail(key, "an integer");
    *out = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
  }
  void U64(const json& o, const char* key, uint64_t* out) {
    const json* v = Field(o, key);
    if (v == nullptr) return;
    if (!v->is_number_unsigned()) return Fail(key, "an unsigned integer");
    *out = v->get<uint64_t>();
  }
  void U32(const json& o, const char* key, uint32_t* out) {
    uint64_t v = 0;
    U64(o, key, &v);
    if (v > 0xffffffffu) return Fail(key, "a 32-bit unsigned integer");
    *out = static_cast<uint32_t>(v);
  }
  void Dbl(const json& o, const char* key, double* out) {
    const json* v = Field(o, key);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(key, "a number");
    *out = v->get<double>();
  }
  void Strings(const json& o, const char* key, std::vector<std::string>* out) {
    const json* v = Field(o, key);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(key, "an array");
    out->clear();
    for (const json& s : *v) {
      if (!s.is_string()) return Fail(key, "an array of strings");
      out->push_back(s.get_ref<const std::string&>());
    }
  }
  const json* Array(const json& o, const char* key) {
    const json* v = Field(o, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Fail(key, "an array");
      return nullptr;
    }
    return v;
  }
  void Adopt(const Status& s) {
    if (error_.empty() && !s.ok()) error_ = what_ + ": " + s.message();
  }
  Status status() const { return error_.empty() ? Status::Ok() : Status::InvalidArgument(error_); }

 private:
  std::string what_;
  std::string error_;
};

}  // namespace

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kLow: return "low";
    case Severity::kMedium: return "medium";
    case Severity::kHigh: return "high";
    case Severity::kCritical: return "critical";
  }
  return "info";
}

bool ParseSeverityName(std::string_view name, Severity* out) {
  for (Severity s :
       {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical}) {
    if (SeverityName(s) == name) {
      *out = s;
      return true;
    }
  }
  return false;
}

json HopToJson(const Hop& hop) {
  return json{{"from", hop.from},
              {"to", hop.to},
              {"user", hop.user},
              {"from_user", hop.from_user},
              {"at", FormatTimeNs(hop.at_ns)},
              {"at_ns", hop.at_ns},
              {"port", hop.port}};
}

json EventRefToJson(const EventRef& ref) {
  return json{{"sensor_id", ref.sensor_id}, {"seq", ref.seq},
              {"host", ref.host},           {"time", FormatTimeNs(ref.time_ns)},
              {"time_ns", ref.time_ns},     {"kind", ref.kind},
              {"summary", ref.summary}};
}

json IncidentToJson(const Incident& in) {
  json stages = json::array();
  for (const Stage& s : in.stages) {
    stages.push_back(
        json{{"host", s.host}, {"technique", s.technique}, {"what", s.what}, {"at_ns", s.at_ns}});
  }
  json chain = json::array();
  for (const Hop& h : in.chain) chain.push_back(HopToJson(h));
  json events = json::array();
  for (const EventRef& e : in.events) events.push_back(EventRefToJson(e));
  return json{{"id", in.id},
              {"severity", std::string(SeverityName(in.severity))},
              {"title", in.title},
              {"identities", in.identities},
              {"hosts", in.hosts},
              {"techniques", in.techniques},
              {"first_seen", FormatTimeNs(in.first_seen_ns)},
              {"last_seen", FormatTimeNs(in.last_seen_ns)},
              {"first_seen_ns", in.first_seen_ns},
              {"last_seen_ns", in.last_seen_ns},
              {"chain", std::move(chain)},
              {"events", std::move(events)},
              {"explanation", in.explanation},
              {"confidence", in.confidence},
              {"score", in.score},
              {"revision", in.revision},
              {"updated", FormatTimeNs(in.updated_ns)},
              {"updated_ns", in.updated_ns},
              {"stages", std::move(stages)}};
}

Result<Hop> HopFromJson(const json& j) {
  FieldReader r("hop");
  Hop h;
  r.Str(j, "from", &h.from);
  r.Str(j, "to", &h.to);
  r.Str(j, "user", &h.user);
  r.Str(j, "from_user", &h.from_user);
  r.Int(j, "at_ns", &h.at_ns);
  r.U32(j, "port", &h.port);
  if (!r.status().ok()) return r.status();
  return h;
}

Result<EventRef> EventRefFromJson(const json& j) {
  FieldReader r("event");
  EventRef e;
  r.Str(j, "sensor_id", &e.sensor_id);
  r.U64(j, "seq", &e.seq);
  r.Str(j, "host", &e.host);
  r.Int(j, "time_ns", &e.time_ns);
  r.Str(j, "kind", &e.kind);
  r.Str(j, "summary", &e.summary);
  if (!r.status().ok()) return r.status();
  return e;
}

Result<Incident> IncidentFromJson(const json& j) {
  FieldReader r("incident");
  Incident in;
  std::string severity;
  r.Str(j, "id", &in.id);
  r.Str(j, "severity", &severity);
  r.Str(j, "title", &in.title);
  r.Strings(j, "identities", &in.identities);
  r.Strings(j, "hosts", &in.hosts);
  r.Strings(j, "techniques", &in.techniques);
  r.Int(j, "first_seen_ns", &in.first_seen_ns);
  r.Int(j, "last_seen_ns", &in.last_seen_ns);
  r.Strings(j, "explanation", &in.explanation);
  r.Dbl(j, "confidence", &in.confidence);
  r.Dbl(j, "score", &in.score);
  r.U32(j, "revision", &in.revision);
  r.Int(j, "updated_ns", &in.updated_ns);
  if (const json* chain = r.Array(j, "chain")) {
    for (const json& h : *chain) {
      Result<Hop> hop = HopFromJson(h);
      r.Adopt(hop.status());
      if (hop.ok()) in.chain.push_back(std::move(hop).value());
    }
  }
  if (const json* events = r.Array(j, "events")) {
    for (const json& e : *events) {
      Result<EventRef> ref = EventRefFromJson(e);
      r.Adopt(ref.status());
      if (ref.ok()) in.events.push_back(std::move(ref).value());
    }
  }
  // Stages came later than the other fields: an incident written before them has none.
  if (j.is_object() && j.contains("stages") && r.status().ok()) {
    if (const json* stages = r.Array(j, "stages")) {
      for (const json& s : *stages) {
        FieldReader sr("stage");
        Stage st;
        sr.Str(s, "host", &st.host);
        sr.Str(s, "technique", &st.technique);
        sr.Str(s, "what", &st.what);
        sr.Int(s, "at_ns", &st.at_ns);
        r.Adopt(sr.status());
        if (sr.status().ok()) in.stages.push_back(std::move(st));
      }
    }
  }
  if (r.status().ok() && !ParseSeverityName(severity, &in.severity)) {
    return Status::InvalidArgument("incident.severity is not a known severity");
  }
  if (!r.status().ok()) return r.status();
  return in;
}

}  // namespace tripline
