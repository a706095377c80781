#include "model/event_proto.h"

#include <cmath>

#include "common/text_escape.h"

namespace tripline {
namespace {

Status CheckString(const std::string& s, std::string_view field) {
  if (s.size() > kMaxWireString) {
    return Status::InvalidArgument(std::string(field) + " longer than " +
                                   std::to_string(kMaxWireString) + " bytes");
  }
  // A parsed message cannot hold anything else; one built in memory can, and would then
  // be unreadable once stored or forwarded.
  if (!IsValidUtf8(s)) {
    return Status::InvalidArgument(std::string(field) +
                                   " is not valid UTF-8 (escape it with EscapeInvalidUtf8)");
  }
  return Status::Ok();
}

template <typename Enum>
Status CheckEnum(int value, int max, std::string_view field, Enum* out) {
  if (value < 0 || value > max) {
    return Status::InvalidArgument(std::string(field) + " has unknown value " +
                                   std::to_string(value));
  }
  *out = static_cast<Enum>(value);
  return Status::Ok();
}

Status CopyStrings(const google::protobuf::RepeatedPtrField<std::string>& in, size_t max,
                   std::string_view field, std::vector<std::string>* out) {
  if (static_cast<size_t>(in.size()) > max) {
    return Status::InvalidArgument(std::string(field) + " has more than " + std::to_string(max) +
                                   " entries");
  }
  out->reserve(in.size());
  for (const auto& s : in) {
    TL_RETURN_IF_ERROR(CheckString(s, field));
    out->push_back(s);
  }
  return Status::Ok();
}

void ProcessToProto(const ProcessInfo& p, v1::Process* out) {
  out->set_pid(p.pid);
  out->set_tgid(p.tgid);
  out->set_ppid(p.ppid);
  out->set_uid(p.uid);
  out->set_gid(p.gid);
  out->set_login_uid(p.login_uid);
  out->set_audit_session(p.audit_session);
  out->set_cgroup_id(p.cgroup_id);
  out->set_uts_inum(p.uts_inum);
  out->set_comm(p.comm);
  out->set_exe(p.exe);
  out->set_user(p.user);
  out->set_login_user(p.login_user);
  out->set_container_id(p.container_id);
  out->set_k8s_pod_uid(p.k8s_pod_uid);
  out->set_k8s_namespace(p.k8s_namespace);
  out->set_k8s_pod(p.k8s_pod);
  out->set_k8s_node(p.k8s_node);
  out->set_k8s_service_account(p.k8s_service_account);
}

Status ProcessFromProto(const v1::Process& in, ProcessInfo* p) {
  for (const auto* s :
       {&in.comm(), &in.exe(), &in.user(), &in.login_user(), &in.container_id(), &in.k8s_pod_uid(),
        &in.k8s_namespace(), &in.k8s_pod(), &in.k8s_node(), &in.k8s_service_account()}) {
    TL_RETURN_IF_ERROR(CheckString(*s, "process string"));
  }
  p->pid = in.pid();
  p->tgid = in.tgid();
  p->ppid = in.ppid();
  p->uid = in.uid();
  p->gid = in.gid();
  p->login_uid = in.login_uid();
  p->audit_session = in.audit_session();
  p->cgroup_id = in.cgroup_id();
  p->uts_inum = in.uts_inum();
  p->comm = in.comm();
  p->exe = in.exe();
  p->user = in.user();
  p->login_user = in.login_user();
  p->container_id = in.container_id();
  p->k8s_pod_uid = in.k8s_pod_uid();
  p->k8s_namespace = in.k8s_namespace();
  p->k8s_pod = in.k8s_pod();
  p->k8s_node = in.k8s_node();
  p->k8s_service_account = in.k8s_service_account();
  return Status::Ok();
}

void AccountToProto(const Account& a, v1::Account* out) {
  out->set_name(a.name);
  out->set_uid(a.uid);
  out->set_gid(a.gid);
  for (const auto& g : a.groups) out->add_groups(g);
  out->set_shell(a.shell);
  out->set_home(a.home);
  out->set_interactive_shell(a.interactive_shell);
  out->set_password_set(a.password_set);
  out->set_password_locked(a.password_locked);
  out->set_max_password_age_days(a.max_password_age_days);
  out->set_last_password_change_days(a.last_password_change_days);
  for (const auto& r : a.sudo_rules) out->add_sudo_rules(r);
  out->set_sudo_nopasswd(a.sudo_nopasswd);
  out->set_authorized_keys(a.authorized_keys);
  out->set_authorized_keys_unrestricted(a.authorized_keys_unrestricted);
  for (const auto& f : a.readable_files) out->add_readable_files(f);
}

Status AccountFromProto(const v1::Account& in, Account* a) {
  for (const auto* s : {&in.name(), &in.shell(), &in.home()}) {
    TL_RETURN_IF_ERROR(CheckString(*s, "account string"));
  }
  a->name = in.name();
  a->uid = in.uid();
  a->gid = in.gid();
  TL_RETURN_IF_ERROR(CopyStrings(in.groups(), kMaxWireListItems, "account.groups", &a->groups));
  a->shell = in.shell();
  a->home = in.home();
  a->interactive_shell = in.interactive_shell();
  a->password_set = in.password_set();
  a->password_locked = in.password_locked();
  a->max_password_age_days = in.max_password_age_days();
  a->last_password_change_days = in.last_password_change_days();
  TL_RETURN_IF_ERROR(
      CopyStrings(in.sudo_rules(), kMaxWireListItems, "account.sudo_rules", &a->sudo_rules));
  a->sudo_nopasswd = in.sudo_nopasswd();
  a->authorized_keys = in.authorized_keys();
  a->authorized_keys_unrestricted = in.authorized_keys_unrestricted();
  TL_RETURN_IF_ERROR(CopyStrings(in.readable_files(), kMaxWireListItems, "account.readable_files",
                                 &a->readable_files));
  return Status::Ok();
}

struct BodyToProto {
  v1::Event* out;
  void operator()(const LoginEvent& l) const {
    auto* m = out->mutable_login();
    m->set_service(l.service);
    m->set_user(l.user);
    m->set_remote_addr(l.remote_addr);
    m->set_remote_port(l.remote_port);
    m->set_local_addr(l.local_addr);
    m->set_local_port(l.local_port);
    m->set_outcome(static_cast<v1::LoginEvent::Outcome>(l.outcome));
    m->set_reason(l.reason);
    m->set_pam_code(l.pam_code);
    m->set_source(static_cast<v1::LoginEvent::Source>(l.source));
    m->set_stage(static_cast<v1::LoginEvent::Stage>(l.stage));
    m->set_auth_pid(l.auth_pid);
    m->set_tty(l.tty);
  }
  void operator()(const FileOpenEvent& f) const {
    auto* m = out->mutable_file_open();
    m->set_path(f.path);
    m->set_flags(f.flags);
    m->set_access(static_cast<v1::FileOpenEvent::Access>(f.access));
    m->set_result(f.result);
    m->set_rule(f.rule);
  }
  void operator()(const ExecEvent& x) const {
    auto* m = out->mutable_exec();
    m->set_filename(x.filename);
    for (const auto& a : x.argv) m->add_argv(a);
    m->set_argv_truncated(x.argv_truncated);
    m->set_parent_comm(x.parent_comm);
  }
  void operator()(const NetConnectEvent& n) const {
    auto* m = out->mutable_net();
    m->set_direction(static_cast<v1::NetConnectEvent::Direction>(n.direction));
    m->set_local_addr(n.local_addr);
    m->set_local_port(n.local_port);
    m->set_remote_addr(n.remote_addr);
    m->set_remote_port(n.remote_port);
    m->set_family(n.family);
    m->set_protocol(n.protocol);
  }
  void operator()(const PostureSnapshot& p) const {
    auto* m = out->mutable_posture();
    for (const auto& a : p.accounts) AccountToProto(a, m->add_accounts());
    for (const auto& r : p.root_group_members) m->add_root_group_members(r);
    for (const auto& e : p.errors) m->add_errors(e);
    for (const auto& x : p.processes) {
      auto* pm = m->add_processes();
      pm->set_exe(x.exe);
      pm->set_uid(x.uid);
      pm->set_user(x.user);
      pm->set_cap_effective(x.cap_effective);
      for (const auto& s : x.runtime_sockets) pm->add_runtime_sockets(s);
      pm->set_processes(x.processes);
      for (uint32_t pid : x.pids) pm->add_pids(pid);
      pm->set_container_id(x.container_id);
      pm->set_k8s_service_account(x.k8s_service_account);
    }
  }
  void operator()(const SensorHealth& h) const {
    auto* m = out->mutable_health();
    m->set_ringbuf_drops(h.ringbuf_drops);
    m->set_helper_errors(h.helper_errors);
    m->set_decode_errors(h.decode_errors);
    m->set_spool_drops(h.spool_drops);
    m->set_delivery_protocol_violations(h.delivery_protocol_violations);
    for (const auto& k : h.kinds) {
      auto* c = m->add_kinds();
      c->set_kind(k.kind);
      c->set_events(k.events);
      c->set_events_per_second(k.events_per_second);
    }
    for (const auto& d : h.disabled_programs) m->add_disabled_programs(d);
    m->set_rss_bytes(h.rss_bytes);
    m->set_uptime_seconds(h.uptime_seconds);
    for (const auto d : h.ringbuf_drops_by_kind) m->add_ringbuf_drops_by_kind(d);
    for (const auto& w : h.warnings) m->add_warnings(w);
    for (const auto& a : h.addresses) m->add_addresses(a);
    for (const auto& f : h.families) {
      auto* p = m->add_families();
      p->set_name(f.name);
      p->set_state(f.state);
      p->set_hooks(f.hooks);
      p->set_reason(f.reason);
      p->set_remedy(f.remedy);
    }
  }
};

Result<EventBody> BodyFromProto(const v1::Event& in) {
  switch (in.body_case()) {
    case v1::Event::kLogin: {
      const auto& m = in.login();
      LoginEvent l;
      for (const auto* s :
           {&m.service(), &m.user(), &m.remote_addr(), &m.local_addr(), &m.reason(), &m.tty()}) {
        TL_RETURN_IF_ERROR(CheckString(*s, "login string"));
      }
      if (m.remote_port() > 65535 || m.local_port() > 65535) {
        return Status::InvalidArgument("login port out of range");
      }
      l.service = m.service();
      l.user = m.user();
      l.remote_addr = m.remote_addr();
      l.remote_port = m.remote_port();
      l.local_addr = m.local_addr();
      l.local_port = m.local_port();
      TL_RETURN_IF_ERROR(CheckEnum(m.outcome(), 2, "login.outcome", &l.outcome));
      l.reason = m.reason();
      l.pam_code = m.pam_code();
      TL_RETURN_IF_ERROR(CheckEnum(m.source(), 3, "login.source", &l.source));
      TL_RETURN_IF_ERROR(CheckEnum(m.stage(), 5, "login.stage", &l.stage));
      l.auth_pid = m.auth_pid();
      l.tty = m.tty();
      return EventBody(std::move(l));
    }
    case v1::Event::kFileOpen: {
      const auto& m = in.file_open();
      TL_RETURN_IF_ERROR(CheckString(m.path(), "file_open.path"));
      TL_RETURN_IF_ERROR(CheckString(m.rule(), "file_open.rule"));
      if (m.path().empty()) return Status::InvalidArgument("file_open.path is empty");
      FileOpenEvent f;
      f.path = m.path();
      f.flags = m.flags();
      TL_RETURN_IF_ERROR(CheckEnum(m.access(), 3, "file_open.access", &f.access));
      f.result = m.result();
      f.rule = m.rule();
      return EventBody(std::move(f));
    }
    case v1::Event::kExec: {
      const auto& m = in.exec();
      TL_RETURN_IF_ERROR(CheckString(m.filename(), "exec.filename"));
      TL_RETURN_IF_ERROR(CheckString(m.parent_comm(), "exec.parent_comm"));
      ExecEvent x;
      x.filename = m.filename();
      TL_RETURN_IF_ERROR(CopyStrings(m.argv(), kMaxWireArgs, "exec.argv", &x.argv));
      x.argv_truncated = m.argv_truncated();
      x.parent_comm = m.parent_comm();
      return EventBody(std::move(x));
    }
    case v1::Event::kNet: {
      const auto& m = in.net();
      TL_RETURN_IF_ERROR(CheckString(m.local_addr(), "net.local_addr"));
      TL_RETURN_IF_ERROR(CheckString(m.remote_addr(), "net.remote_addr"));
      if (m.remote_port() > 65535 || m.local_port() > 65535) {
        return Status::InvalidArgument("net port out of range");
      }
      NetConnectEvent n;
      TL_RETURN_IF_ERROR(CheckEnum(m.direction(), 2, "net.direction", &n.direction));
      n.local_addr = m.local_addr();
      n.local_port = m.local_port();
      n.remote_addr = m.remote_addr();
      n.remote_port = m.remote_port();
      n.family = m.family();
      n.protocol = m.protocol();
      return EventBody(std::move(n));
    }
    case v1::Event::kPosture: {
      const auto& m = in.posture();
      if (static_cast<size_t>(m.accounts_size()) > kMaxWireAccounts) {
        return Status::InvalidArgument("posture has too many accounts");
      }
      PostureSnapshot p;
      p.accounts.resize(m.accounts_size());
      for (int i = 0; i < m.accounts_size(); ++i) {
        TL_RETURN_IF_ERROR(AccountFromProto(m.accounts(i), &p.accounts[i]));
      }
      TL_RETURN_IF_ERROR(CopyStrings(m.root_group_members(), kMaxWireListItems,
                                     "posture.root_group_members", &p.root_group_members));
      TL_RETURN_IF_ERROR(CopyStrings(m.errors(), kMaxWireListItems, "posture.errors", &p.errors));
      if (static_cast<size_t>(m.processes_size()) > kMaxWireListItems) {
        return Status::InvalidArgument("posture has too many process groups");
      }
      p.processes.resize(m.processes_size());
      for (int i = 0; i < m.processes_size(); ++i) {
        const auto& pm = m.processes(i);
        ProcessPrivilege& x = p.processes[i];
        TL_RETURN_IF_ERROR(CheckString(pm.exe(), "posture.processes.exe"));
        TL_RETURN_IF_ERROR(CheckString(pm.user(), "posture.processes.user"));
        TL_RETURN_IF_ERROR(CheckString(pm.container_id(), "posture.processes.container_id"));
        TL_RETURN_IF_ERROR(
            CheckString(pm.k8s_service_account(), "posture.processes.k8s_service_account"));
        x.exe = pm.exe();
        x.uid = pm.uid();
        x.user = pm.user();
        x.cap_effective = pm.cap_effective();
        x.container_id = pm.container_id();
        x.k8s_service_account = pm.k8s_service_account();
        TL_RETURN_IF_ERROR(CopyStrings(pm.runtime_sockets(), kMaxWireListItems,
                                       "posture.processes.runtime_sockets", &x.runtime_sockets));
        x.processes = pm.processes();
        if (pm.pids_size() > 4)
          return Status::InvalidArgument("posture.processes.pids: more than 4");
        x.pids.assign(pm.pids().begin(), pm.pids().end());
      }
      return EventBody(std::move(p));
    }
    case v1::Event::kHealth: {
      const auto& m = in.health();
      SensorHealth h;
      h.ringbuf_drops = m.ringbuf_drops();
      h.helper_errors = m.helper_errors();
      h.decode_errors = m.decode_errors();
      h.spool_drops = m.spool_drops();
      h.delivery_protocol_violations = m.delivery_protocol_violations();
      if (static_cast<size_t>(m.kinds_size()) > kMaxWireListItems ||
          static_cast<size_t>(m.ringbuf_drops_by_kind_size()) > kMaxWireListItems) {
        return Status::InvalidArgument("health has too many counters");
      }
      for (const auto& k : m.kinds()) {
        TL_RETURN_IF_ERROR(CheckString(k.kind(), "health.kinds.kind"));
        if (!std::isfinite(k.events_per_second()) || k.events_per_second() < 0) {
          return Status::InvalidArgument("health.kinds.events_per_second must be a finite rate");
        }
        h.kinds.push_back({k.kind(), k.events(), k.events_per_second()});
      }
      TL_RETURN_IF_ERROR(CopyStrings(m.disabled_programs(), kMaxWireListItems,
                                     "health.disabled_programs", &h.disabled_programs));
      h.rss_bytes = m.rss_bytes();
      h.uptime_seconds = m.uptime_seconds();
      h.ringbuf_drops_by_kind.assign(m.ringbuf_drops_by_kind().begin(),
                                     m.ringbuf_drops_by_kind().end());
      if (static_cast<size_t>(m.families_size()) > kMaxWireListItems) {
        return Status::InvalidArgument("health has too many hook families");
      }
      for (const auto& f : m.families()) {
        for (const auto* s : {&f.name(), &f.state(), &f.hooks(), &f.reason(), &f.remedy()}) {
          TL_RETURN_IF_ERROR(CheckString(*s, "health.families"));
        }
        if (f.name().empty() || !IsHookFamilyState(f.state())) {
          return Status::InvalidArgument(
              "health.families needs a name and a state of live, degraded or disabled");
        }
        h.families.push_back({f.name(), f.state(), f.hooks(), f.reason(), f.remedy()});
      }
      TL_RETURN_IF_ERROR(
          CopyStrings(m.warnings(), kMaxWireListItems, "health.warnings", &h.warnings));
      TL_RETURN_IF_ERROR(
          CopyStrings(m.addresses(), kMaxWireListItems, "health.addresses", &h.addresses));
      return EventBody(std::move(h));
    }
    case v1::Event::BODY_NOT_SET: break;
  }
  return Status::InvalidArgument("event has no body");
}

}  // namespace

void ToProto(const Event& e, v1::Event* out) {
  out->Clear();
  out->set_seq(e.seq);
  out->set_time_ns(e.time_ns);
  out->set_host(e.host);
  out->set_host_id(e.host_id);
  ProcessToProto(e.process, out->mutable_process());
  out->set_session(e.session);
  for (const auto& f : e.escaped_fields) out->add_escaped_fields(f);
  std::visit(BodyToProto{out}, e.body);
}

Result<Event> FromProto(const v1::Event& in) {
  Event e;
  TL_RETURN_IF_ERROR(CheckString(in.host(), "host"));
  TL_RETURN_IF_ERROR(CheckString(in.host_id(), "host_id"));
  TL_RETURN_IF_ERROR(CheckString(in.session(), "session"));
  if (in.host().empty()) return Status::InvalidArgument("event has no host");
  if (in.time_ns() <= 0) return Status::InvalidArgument("event time must be positive");
  e.seq = in.seq();
  e.time_ns = in.time_ns();
  e.host = in.host();
  e.host_id = in.host_id();
  TL_RETURN_IF_ERROR(ProcessFromProto(in.process(), &e.process));
  e.session = in.session();
  TL_RETURN_IF_ERROR(
      CopyStrings(in.escaped_fields(), kMaxWireEscapedFields, "escaped_fields", &e.escaped_fields));
  TL_ASSIGN_OR_RETURN(e.body, BodyFromProto(in));
  return e;
}

}  // namespace tripline
