#include "model/event_json.h"

#include <cmath>

#include "common/clock.h"
#include "model/event_proto.h"

namespace tripline {
namespace {

using nlohmann::json;

json ProcessToJson(const ProcessInfo& p) {
  json out{{"pid", p.pid},
           {"tgid", p.tgid},
           {"ppid", p.ppid},
           {"uid", p.uid},
           {"gid", p.gid},
           {"login_uid", p.login_uid},
           {"audit_session", p.audit_session},
           {"cgroup_id", p.cgroup_id},
           {"uts_inum", p.uts_inum},
           {"comm", p.comm},
           {"exe", p.exe},
           {"user", p.user},
           {"login_user", p.login_user},
           {"container_id", p.container_id}};
  // Kubernetes fields only for processes in a pod: the lines of every other event stay as
  // they were.
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"k8s_pod_uid", &p.k8s_pod_uid},
        {"k8s_namespace", &p.k8s_namespace},
        {"k8s_pod", &p.k8s_pod},
        {"k8s_node", &p.k8s_node},
        {"k8s_service_account", &p.k8s_service_account}}) {
    if (!value->empty()) out[key] = *value;
  }
  return out;
}

struct BodyToJson {
  json* out;
  void operator()(const LoginEvent& l) const {
    (*out)["login"] = json{{"service", l.service},
                           {"user", l.user},
                           {"remote_addr", l.remote_addr},
                           {"remote_port", l.remote_port},
                           {"local_addr", l.local_addr},
                           {"local_port", l.local_port},
                           {"outcome", OutcomeName(l.outcome)},
                           {"reason", l.reason},
                           {"pam_code", l.pam_code},
                           {"source", LoginSourceName(l.source)},
                           {"stage", LoginStageName(l.stage)},
                           {"auth_pid", l.auth_pid},
                           {"tty", l.tty}};
  }
  void operator()(const FileOpenEvent& f) const {
    (*out)["file_open"] = json{{"path", f.path},
                               {"flags", f.flags},
                               {"access", FileAccessName(f.access)},
                               {"result", f.result},
                               {"rule", f.rule}};
  }
  void operator()(const ExecEvent& x) const {
    (*out)["exec"] = json{{"filename", x.filename},
                          {"argv", x.argv},
                          {"argv_truncated", x.argv_truncated},
                          {"parent_comm", x.parent_comm}};
  }
  void operator()(const NetConnectEvent& n) const {
    (*out)["net"] = json{{"direction", NetDirectionName(n.direction)},
                         {"local_addr", n.local_addr},
                         {"local_port", n.local_port},
                         {"remote_addr", n.remote_addr},
                         {"remote_port", n.remote_port},
                         {"family", n.family},
                         {"protocol", n.protocol}};
  }
  void operator()(const PostureSnapshot& p) const {
    json accounts = json::array();
    for (const auto& a : p.accounts) {
      accounts.push_back(json{{"name", a.name},
                              {"uid", a.uid},
                              {"gid", a.gid},
                              {"groups", a.groups},
                              {"shell", a.shell},
                              {"home", a.home},
                              {"interactive_shell", a.interactive_shell},
                              {"password_set", a.password_set},
                              {"password_locked", a.password_locked},
                              {"max_password_age_days", a.max_password_age_days},
                              {"last_password_change_days", a.last_password_change_days},
                              {"sudo_rules", a.sudo_rules},
                              {"sudo_nopasswd", a.sudo_nopasswd},
                              {"authorized_keys", a.authorized_keys},
                              {"authorized_keys_unrestricted", a.authorized_keys_unrestricted}});
      if (!a.readable_files.empty()) accounts.back()["readable_files"] = a.readable_files;
    }
    (*out)["posture"] = json{{"accounts", std::move(accounts)},
                             {"root_group_members", p.root_group_members},
                             {"errors", p.errors}};
    if (!p.processes.empty()) {
      json processes = json::array();
      for (const auto& x : p.processes) {
        processes.push_back(json{{"exe", x.exe},
                                 {"uid", x.uid},
                                 {"user", x.user},
                                 {"cap_effective", x.cap_effective},
                                 {"runtime_sockets", x.runtime_sockets},
                                 {"processes", x.processes},
                                 {"pids", x.pids},
                                 {"container_id", x.container_id},
                                 {"k8s_service_account", x.k8s_service_account}});
      }
      (*out)["posture"]["processes"] = std::move(processes);
    }
  }
  void operator()(const SensorHealth& h) const {
    json kinds = json::array();
    for (const auto& k : h.kinds) {
      kinds.push_back(
          json{{"kind", k.kind}, {"events", k.events}, {"events_per_second", k.events_per_second}});
    }
    (*out)["health"] = json{{"ringbuf_drops", h.ringbuf_drops},
                            {"helper_errors", h.helper_errors},
                            {"decode_errors", h.decode_errors},
                            {"spool_drops", h.spool_drops},
                            {"delivery_protocol_violations", h.delivery_protocol_violations},
                            {"kinds", std::move(kinds)},
                            {"disabled_programs", h.disabled_programs},
                            {"rss_bytes", h.rss_bytes},
                            {"uptime_seconds", h.uptime_seconds},
                            {"ringbuf_drops_by_kind", h.ringbuf_drops_by_kind}};
    json families = json::array();
    for (const auto& f : h.families) {
      families.push_back(json{{"name", f.name},
                              {"state", f.state},
                              {"hooks", f.hooks},
                              {"reason", f.reason},
                              {"remedy", f.remedy}});
    }
    (*out)["health"]["families"] = std::move(families);
    if (!h.warnings.empty()) (*out)["health"]["warnings"] = h.warnings;
    if (!h.addresses.empty()) (*out)["health"]["addresses"] = h.addresses;
  }
};

// Typed field readers: a missing field keeps the default; a present one must have the
// right type and fit.
class Reader {
 public:
  Reader(const json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  Status Str(const char* key, std::string* out) const {
    const json* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_string()) return Bad(key, "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > kMaxWireString) return Bad(key, "is too long");
    *out = s;
    return Status::Ok();
  }
  template <typename T>
  Status Num(const char* key, T* out) const {
    const json* v = Find(key);
    if (!v) return Status::Ok();
    if constexpr (std::is_floating_point_v<T>) {
      if (!v->is_number()) return Bad(key, "must be a number");
      *out = v->get<T>();
      if (!std::isfinite(*out)) return Bad(key, "must be finite");
    } else if constexpr (std::is_signed_v<T>) {
      if (!v->is_number_integer()) return Bad(key, "must be an integer");
      const int64_t x = v->get<int64_t>();
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return Bad(key, "is out of range");
      }
      if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) {
        return Bad(key, "is out of range");
      }
      *out = static_cast<T>(x);
    } else {
      if (!v->is_number_unsigned()) return Bad(key, "must be a non-negative integer");
      const uint64_t x = v->get<uint64_t>();
      if (x > std::numeric_limits<T>::max()) return Bad(key, "is out of range");
      *out = static_cast<T>(x);
    }
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    const json* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_boolean()) return Bad(key, "must be true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Strings(const char* key, size_t max, std::vector<std::string>* out) const {
    const json* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_array()) return Bad(key, "must be an array");
    if (v->size() > max) return Bad(key, "has too many entries");
    for (const auto& s : *v) {
      if (!s.is_string()) return Bad(key, "must hold strings");
      if (s.get_ref<const std::string&>().size() > kMaxWireString) return Bad(key, "is too long");
      out->push_back(s.get<std::string>());
    }
    return Status::Ok();
  }
  // Enum by name: the name must be one that `name_of` gives for some value 0..max.
  template <typename Enum, typename NameOf>
  Status Word(const char* key, int max, NameOf name_of, Enum* out) const {
    std::string word;
    TL_RETURN_IF_ERROR(Str(key, &word));
    if (word.empty()) return Status::Ok();
    for (int i = 0; i <= max; ++i) {
      if (name_of(static_cast<Enum>(i)) == word) {
        *out = static_cast<Enum>(i);
        return Status::Ok();
      }
    }
    return Bad(key, "has unknown value '" + word + "'");
  }
  const json* Find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  Status Bad(const char* key, const std::string& why) const {
    return Status::InvalidArgument(prefix_ + key + " " + why);
  }

 private:
  const json& obj_;
  std::string prefix_;
};

Status ProcessFromJson(const json& j, ProcessInfo* p) {
  if (!j.is_object()) return Status::InvalidArgument("process must be an object");
  Reader r(j, "process.");
  TL_RETURN_IF_ERROR(r.Num("pid", &p->pid));
  TL_RETURN_IF_ERROR(r.Num("tgid", &p->tgid));
  TL_RETURN_IF_ERROR(r.Num("ppid", &p->ppid));
  TL_RETURN_IF_ERROR(r.Num("uid", &p->uid));
  TL_RETURN_IF_ERROR(r.Num("gid", &p->gid));
  TL_RETURN_IF_ERROR(r.Num("login_uid", &p->login_uid));
  TL_RETURN_IF_ERROR(r.Num("audit_session", &p->audit_session));
  TL_RETURN_IF_ERROR(r.Num("cgroup_id", &p->cgroup_id));
  TL_RETURN_IF_ERROR(r.Num("uts_inum", &p->uts_inum));
  TL_RETURN_IF_ERROR(r.Str("comm", &p->comm));
  TL_RETURN_IF_ERROR(r.Str("exe", &p->exe));
  TL_RETURN_IF_ERROR(r.Str("user", &p->user));
  TL_RETURN_IF_ERROR(r.Str("login_user", &p->login_user));
  TL_RETURN_IF_ERROR(r.Str("container_id", &p->container_id));
  TL_RETURN_IF_ERROR(r.Str("k8s_pod_uid", &p->k8s_pod_uid));
  TL_RETURN_IF_ERROR(r.Str("k8s_namespace", &p->k8s_namespace));
  TL_RETURN_IF_ERROR(r.Str("k8s_pod", &p->k8s_pod));
  TL_RETURN_IF_ERROR(r.Str("k8s_node", &p->k8s_node));
  TL_RETURN_IF_ERROR(r.Str("k8s_service_account", &p->k8s_service_account));
  return Status::Ok();
}

Result<EventBody> BodyFromJson(EventKind kind, const json& b) {
  if (!b.is_object()) {
    return Status::InvalidArgument(std::string(KindName(kind)) + " must be an object");
  }
  Reader r(b, std::string(KindName(kind)) + ".");
  switch (kind) {
    case EventKind::kLogin: {
      LoginEvent l;
      TL_RETURN_IF_ERROR(r.Str("service", &l.service));
      TL_RETURN_IF_ERROR(r.Str("user", &l.user));
      TL_RETURN_IF_ERROR(r.Str("remote_addr", &l.remote_addr));
      TL_RETURN_IF_ERROR(r.Num("remote_port", &l.remote_port));
      TL_RETURN_IF_ERROR(r.Str("local_addr", &l.local_addr));
      TL_RETURN_IF_ERROR(r.Num("local_port", &l.local_port));
      TL_RETURN_IF_ERROR(r.Word("outcome", 2, OutcomeName, &l.outcome));
      TL_RETURN_IF_ERROR(r.Str("reason", &l.reason));
      TL_RETURN_IF_ERROR(r.Num("pam_code", &l.pam_code));
      TL_RETURN_IF_ERROR(r.Word("source", 3, LoginSourceName, &l.source));
      TL_RETURN_IF_ERROR(r.Word("stage", 5, LoginStageName, &l.stage));
      TL_RETURN_IF_ERROR(r.Num("auth_pid", &l.auth_pid));
      TL_RETURN_IF_ERROR(r.Str("tty", &l.tty));
      if (l.remote_port > 65535 || l.local_port > 65535) {
        return Status::InvalidArgument("login port out of range");
      }
      return EventBody(std::move(l));
    }
    case EventKind::kFileOpen: {
      FileOpenEvent f;
      TL_RETURN_IF_ERROR(r.Str("path", &f.path));
      TL_RETURN_IF_ERROR(r.Num("flags", &f.flags));
      TL_RETURN_IF_ERROR(r.Word("access", 3, FileAccessName, &f.access));
      TL_RETURN_IF_ERROR(r.Num("result", &f.result));
      TL_RETURN_IF_ERROR(r.Str("rule", &f.rule));
      if (f.path.empty()) return Status::InvalidArgument("file_open.path is empty");
      return EventBody(std::move(f));
    }
    case EventKind::kExec: {
      ExecEvent x;
      TL_RETURN_IF_ERROR(r.Str("filename", &x.filename));
      TL_RETURN_IF_ERROR(r.Strings("argv", kMaxWireArgs, &x.argv));
      TL_RETURN_IF_ERROR(r.Bool("argv_truncated", &x.argv_truncated));
      TL_RETURN_IF_ERROR(r.Str("parent_comm", &x.parent_comm));
      return EventBody(std::move(x));
    }
    case EventKind::kNet: {
      NetConnectEvent n;
      TL_RETURN_IF_ERROR(r.Word("direction", 2, NetDirectionName, &n.direction));
      TL_RETURN_IF_ERROR(r.Str("local_addr", &n.local_addr));
      TL_RETURN_IF_ERROR(r.Num("local_port", &n.local_port));
      TL_RETURN_IF_ERROR(r.Str("remote_addr", &n.remote_addr));
      TL_RETURN_IF_ERROR(r.Num("remote_port", &n.remote_port));
      TL_RETURN_IF_ERROR(r.Num("family", &n.family));
      TL_RETURN_IF_ERROR(r.Num("protocol", &n.protocol));
      if (n.remote_port > 65535 || n.local_port > 65535) {
        return Status::InvalidArgument("net port out of range");
      }
      return EventBody(std::move(n));
    }
    case EventKind::kPosture: {
      PostureSnapshot p;
      if (const json* accounts = r.Find("accounts")) {
        if (!accounts->is_array() || accounts->size() > kMaxWireAccounts) {
          return Status::InvalidArgument("posture.accounts must be an array of accounts");
        }
        for (const auto& aj : *accounts) {
          if (!aj.is_object()) return Status::InvalidArgument("posture.accounts[] not an object");
          Reader ar(aj, "posture.accounts[].");
          Account a;
          TL_RETURN_IF_ERROR(ar.Str("name", &a.name));
          TL_RETURN_IF_ERROR(ar.Num("uid", &a.uid));
          TL_RETURN_IF_ERROR(ar.Num("gid", &a.gid));
          TL_RETURN_IF_ERROR(ar.Strings("groups", kMaxWireListItems, &a.groups));
          TL_RETURN_IF_ERROR(ar.Str("shell", &a.shell));
          TL_RETURN_IF_ERROR(ar.Str("home", &a.home));
          TL_RETURN_IF_ERROR(ar.Bool("interactive_shell", &a.interactive_shell));
          TL_RETURN_IF_ERROR(ar.Bool("password_set", &a.password_set));
          TL_RETURN_IF_ERROR(ar.Bool("password_locked", &a.password_locked));
          TL_RETURN_IF_ERROR(ar.Num("max_password_age_days", &a.max_password_age_days));
          TL_RETURN_IF_ERROR(ar.Num("last_password_change_days", &a.last_password_change_days));
          TL_RETURN_IF_ERROR(ar.Strings("sudo_rules", kMaxWireListItems, &a.sudo_rules));
          TL_RETURN_IF_ERROR(ar.Bool("sudo_nopasswd", &a.sudo_nopasswd));
          TL_RETURN_IF_ERROR(ar.Num("authorized_keys", &a.authorized_keys));
          TL_RETURN_IF_ERROR(
              ar.Num("authorized_keys_unrestricted", &a.authorized_keys_unrestricted));
          TL_RETURN_IF_ERROR(ar.Strings("readable_files", kMaxWireListItems, &a.readable_files));
          p.accounts.push_back(std::move(a));
        }
      }
      TL_RETURN_IF_ERROR(r.Strings("root_group_members", kMaxWireListItems, &p.root_group_members));
      TL_RETURN_IF_ERROR(r.Strings("errors", kMaxWireListItems, &p.errors));
      if (const json* processes = r.Find("processes")) {
        if (!processes->is_array() || processes->size() > kMaxWireListItems) {
          return Status::InvalidArgument("posture.processes must be an array of process groups");
        }
        for (const auto& pj : *processes) {
          if (!pj.is_object()) return Status::InvalidArgument("posture.processes[] not an object");
          Reader pr(pj, "posture.processes[].");
          ProcessPrivilege x;
          TL_RETURN_IF_ERROR(pr.Str("exe", &x.exe));
          TL_RETURN_IF_ERROR(pr.Num("uid", &x.uid));
          TL_RETURN_IF_ERROR(pr.Str("user", &x.user));
          TL_RETURN_IF_ERROR(pr.Num("cap_effective", &x.cap_effective));
          TL_RETURN_IF_ERROR(pr.Strings("runtime_sockets", kMaxWireListItems, &x.runtime_sockets));
          TL_RETURN_IF_ERROR(pr.Num("processes", &x.processes));
          TL_RETURN_IF_ERROR(pr.Str("container_id", &x.container_id));
          TL_RETURN_IF_ERROR(pr.Str("k8s_service_account", &x.k8s_service_account));
          if (const json* pids = pr.Find("pids")) {
            if (!pids->is_array() || pids->size() > 4) {
              return Status::InvalidArgument("posture.processes[].pids must be up to 4 pids");
            }
            for (const auto& pid : *pids) {
              if (!pid.is_number_unsigned() || pid.get<uint64_t>() > UINT32_MAX) {
                return Status::InvalidArgument("posture.processes[].pids[] is not a pid");
              }
              x.pids.push_back(pid.get<uint32_t>());
            }
          }
          p.processes.push_back(std::move(x));
        }
      }
      return EventBody(std::move(p));
    }
    case EventKind::kHealth: {
      SensorHealth h;
      TL_RETURN_IF_ERROR(r.Num("ringbuf_drops", &h.ringbuf_drops));
      TL_RETURN_IF_ERROR(r.Num("helper_errors", &h.helper_errors));
      TL_RETURN_IF_ERROR(r.Num("decode_errors", &h.decode_errors));
      TL_RETURN_IF_ERROR(r.Num("spool_drops", &h.spool_drops));
      TL_RETURN_IF_ERROR(r.Num("delivery_protocol_violations", &h.delivery_protocol_violations));
      if (const json* kinds = r.Find("kinds")) {
        if (!kinds->is_array() || kinds->size() > kMaxWireListItems) {
          return Status::InvalidArgument("health.kinds must be an array");
        }
        for (const auto& kj : *kinds) {
          if (!kj.is_object()) return Status::InvalidArgument("health.kinds[] not an object");
          Reader kr(kj, "health.kinds[].");
          KindCounters k;
          TL_RETURN_IF_ERROR(kr.Str("kind", &k.kind));
          TL_RETURN_IF_ERROR(kr.Num("events", &k.events));
          TL_RETURN_IF_ERROR(kr.Num("events_per_second", &k.events_per_second));
          h.kinds.push_back(std::move(k));
        }
      }
      TL_RETURN_IF_ERROR(r.Strings("disabled_programs", kMaxWireListItems, &h.disabled_programs));
      TL_RETURN_IF_ERROR(r.Num("rss_bytes", &h.rss_bytes));
      TL_RETURN_IF_ERROR(r.Num("uptime_seconds", &h.uptime_seconds));
      if (const json* by_kind = r.Find("ringbuf_drops_by_kind")) {
        if (!by_kind->is_array() || by_kind->size() > kMaxWireListItems) {
          return Status::InvalidArgument("health.ringbuf_drops_by_kind must be an array");
        }
        for (const auto& d : *by_kind) {
          if (!d.is_number_unsigned()) {
            return Status::InvalidArgument("health.ringbuf_drops_by_kind must hold counts");
          }
          h.ringbuf_drops_by_kind.push_back(d.get<uint64_t>());
        }
      }
      if (const json* families = r.Find("families")) {
        if (!families->is_array() || families->size() > kMaxWireListItems) {
          return Status::InvalidArgument("health.families must be an array");
        }
        for (const auto& fj : *families) {
          if (!fj.is_object()) return Status::InvalidArgument("health.families[] not an object");
          Reader fr(fj, "health.families[].");
          HookFamilyStatus f;
          TL_RETURN_IF_ERROR(fr.Str("name", &f.name));
          TL_RETURN_IF_ERROR(fr.Str("state", &f.state));
          TL_RETURN_IF_ERROR(fr.Str("hooks", &f.hooks));
          TL_RETURN_IF_ERROR(fr.Str("reason", &f.reason));
          TL_RETURN_IF_ERROR(fr.Str("remedy", &f.remedy));
          if (f.name.empty() || !IsHookFamilyState(f.state)) {
            return Status::InvalidArgument(
                "health.families[] needs a name and a state of live, degraded or disabled");
          }
          h.families.push_back(std::move(f));
        }
      }
      TL_RETURN_IF_ERROR(r.Strings("warnings", kMaxWireListItems, &h.warnings));
      TL_RETURN_IF_ERROR(r.Strings("addresses", kMaxWireListItems, &h.addresses));
      return EventBody(std::move(h));
    }
  }
  return Status::InvalidArgument("unknown event kind");
}

}  // namespace

json EventToJson(const Event& e) {
  json j{{"seq", e.seq},         {"time", FormatTimeNs(e.time_ns)},
         {"time_ns", e.time_ns}, {"host", e.host},
         {"host_id", e.host_id}, {"kind", KindName(e.kind())},
         {"session", e.session}, {"process", ProcessToJson(e.process)}};
  std::visit(BodyToJson{&j}, e.body);
  if (!e.escaped_fields.empty()) j["escaped_fields"] = e.escaped_fields;
  return j;
}

Result<Event> EventFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("event must be a JSON object");
  Reader r(j, "");
  Event e;
  std::string kind_name;
  TL_RETURN_IF_ERROR(r.Str("kind", &kind_name));
  EventKind kind;
  if (!ParseKindName(kind_name, &kind)) {
    return Status::InvalidArgument("kind '" + kind_name + "' is not an event kind");
  }
  TL_RETURN_IF_ERROR(r.Num("seq", &e.seq));
  TL_RETURN_IF_ERROR(r.Num("time_ns", &e.time_ns));
  if (e.time_ns == 0) {
    std::string time;
    TL_RETURN_IF_ERROR(r.Str("time", &time));
    if (time.empty()) return Status::InvalidArgument("event has neither time_ns nor time");
    TL_ASSIGN_OR_RETURN(e.time_ns, ParseTimeNs(time));
  }
  TL_RETURN_IF_ERROR(r.Str("host", &e.host));
  TL_RETURN_IF_ERROR(r.Str("host_id", &e.host_id));
  TL_RETURN_IF_ERROR(r.Str("session", &e.session));
  TL_RETURN_IF_ERROR(r.Strings("escaped_fields", kMaxWireEscapedFields, &e.escaped_fields));
  if (const json* p = r.Find("process")) TL_RETURN_IF_ERROR(ProcessFromJson(*p, &e.process));
  const json* body = r.Find(std::string(KindName(kind)).c_str());
  if (!body) return Status::InvalidArgument("event of kind " + kind_name + " has no body");
  TL_ASSIGN_OR_RETURN(e.body, BodyFromJson(kind, *body));
  return e;
}

Result<Event> EventFromJsonLine(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  return EventFromJson(j);
}

}  // namespace tripline
