#include "model/event.h"

#include <sstream>

#include "common/text_escape.h"

namespace tripline {
namespace {

constexpr std::string_view kKindNames[] = {"login", "file_open", "exec",
                                           "net",   "posture",   "health"};

std::string Endpoint(const std::string& addr, uint32_t port) {
  if (addr.empty()) return "?";
  if (port == 0) return addr;
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

}  // namespace

std::string_view KindName(EventKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < std::size(kKindNames) ? kKindNames[i] : "unknown";
}

bool ParseKindName(std::string_view name, EventKind* out) {
  for (size_t i = 0; i < std::size(kKindNames); ++i) {
    if (kKindNames[i] == name) {
      *out = static_cast<EventKind>(i);
      return true;
    }
  }
  return false;
}

bool IsPriorityKind(EventKind kind) {
  return kind == EventKind::kLogin || kind == EventKind::kNet || kind == EventKind::kHealth;
}

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kSuccess: return "success";
    case Outcome::kFailure: return "failure";
    case Outcome::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view LoginSourceName(LoginSource s) {
  switch (s) {
    case LoginSource::kPam: return "pam";
    case LoginSource::kUtmp: return "utmp";
    case LoginSource::kCred: return "cred";
    case LoginSource::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view LoginStageName(LoginStage s) {
  switch (s) {
    case LoginStage::kAuthenticate: return "authenticate";
    case LoginStage::kAccount: return "account";
    case LoginStage::kSessionOpen: return "session_open";
    case LoginStage::kSessionClose: return "session_close";
    case LoginStage::kFailedRecord: return "failed_record";
    case LoginStage::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view FileAccessName(FileAccess a) {
  switch (a) {
    case FileAccess::kRead: return "read";
    case FileAccess::kWrite: return "write";
    case FileAccess::kReadWrite: return "read_write";
    case FileAccess::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view NetDirectionName(NetDirection d) {
  switch (d) {
    case NetDirection::kOutbound: return "outbound";
    case NetDirection::kAccepted: return "accepted";
    case NetDirection::kUnspecified: break;
  }
  return "unspecified";
}

std::string Summarize(const Event& e) {
  std::ostringstream out;
  const std::string who =
      e.process.user.empty() ? "uid " + std::to_string(e.process.uid) : e.process.user;
  if (const auto* l = e.As<LoginEvent>()) {
    out << "login " << (l->service.empty() ? "?" : l->service) << ' '
        << (l->user.empty() ? "?" : l->user);
    if (!l->remote_addr.empty()) out << " from " << Endpoint(l->remote_addr, l->remote_port);
    out << ' ' << LoginStageName(l->stage) << ' ' << OutcomeName(l->outcome);
    if (l->outcome == Outcome::kFailure && !l->reason.empty()) out << " (" << l->reason << ')';
  } else if (const auto* f = e.As<FileOpenEvent>()) {
    out << who << " (" << e.process.comm << ") opened " << f->path << " for "
        << FileAccessName(f->access);
    if (f->result != 0) out << ", failed with errno " << -f->result;
  } else if (const auto* x = e.As<ExecEvent>()) {
    out << who << " ran";
    if (x->argv.empty()) {
      out << ' ' << x->filename;
    } else {
      for (const auto& a : x->argv) out << ' ' << a;
      if (x->argv_truncated) out << " ...";
    }
  } else if (const auto* n = e.As<NetConnectEvent>()) {
    out << e.process.comm << ' '
        << (n->direction == NetDirection::kAccepted ? "accepted " : "connected ")
        << Endpoint(n->local_addr, n->local_port)
        << (n->direction == NetDirection::kAccepted ? " <- " : " -> ")
        << Endpoint(n->remote_addr, n->remote_port);
  } else if (const auto* p = e.As<PostureSnapshot>()) {
    out << "posture snapshot, " << p->accounts.size() << " accounts";
  } else if (const auto* h = e.As<SensorHealth>()) {
    out << "sensor health, " << h->ringbuf_drops << " ring-buffer drops, " << h->spool_drops
        << " spool drops";
    if (h->delivery_protocol_violations != 0) {
      out << ", " << h->delivery_protocol_violations << " aggregator acks refused";
    }
    for (const HookFamilyStatus& f : h->families) {
      if (f.state != "live") out << ", " << f.name << " " << f.state;
    }
    for (const std::string& w : h->warnings) out << "; warning: " << w;
  }
  return out.str();
}

namespace {

// Applies the rule to one string and names it in `fields` when it was rewritten.
class Utf8Repair {
 public:
  explicit Utf8Repair(std::vector<std::string>* fields) : fields_(fields) {}

  void Fix(std::string* s, std::string_view name) {
    if (EscapeInvalidUtf8(s)) fields_->emplace_back(name);
  }
  void Fix(std::string* s, std::string_view prefix, size_t index, std::string_view suffix = {}) {
    if (!EscapeInvalidUtf8(s)) return;
    std::string name(prefix);
    name += "[" + std::to_string(index) + "]";
    name += suffix;
    fields_->push_back(std::move(name));
  }
  void FixAll(std::vector<std::string>* v, std::string_view prefix) {
    for (size_t i = 0; i < v->size(); ++i) Fix(&(*v)[i], prefix, i);
  }
  size_t count() const { return fields_->size(); }

 private:
  std::vector<std::string>* fields_;
};

}  // namespace

size_t EscapeInvalidUtf8(Event* e) {
  const size_t before = e->escaped_fields.size();
  Utf8Repair r(&e->escaped_fields);
  r.Fix(&e->host, "host");
  r.Fix(&e->host_id, "host_id");
  r.Fix(&e->session, "session");
  ProcessInfo& p = e->process;
  r.Fix(&p.comm, "process.comm");
  r.Fix(&p.exe, "process.exe");
  r.Fix(&p.user, "process.user");
  r.Fix(&p.login_user, "process.login_user");
  r.Fix(&p.container_id, "process.container_id");
  r.Fix(&p.k8s_pod_uid, "process.k8s_pod_uid");
  r.Fix(&p.k8s_namespace, "process.k8s_namespace");
  r.Fix(&p.k8s_pod, "process.k8s_pod");
  r.Fix(&p.k8s_node, "process.k8s_node");
  r.Fix(&p.k8s_service_account, "process.k8s_service_account");
  if (auto* l = e->As<LoginEvent>()) {
    r.Fix(&l->service, "login.service");
    r.Fix(&l->user, "login.user");
    r.Fix(&l->remote_addr, "login.remote_addr");
    r.Fix(&l->local_addr, "login.local_addr");
    r.Fix(&l->reason, "login.reason");
    r.Fix(&l->tty, "login.tty");
  } else if (auto* f = e->As<FileOpenEvent>()) {
    r.Fix(&f->path, "file_open.path");
    r.Fix(&f->rule, "file_open.rule");
  } else if (auto* x = e->As<ExecEvent>()) {
    r.Fix(&x->filename, "exec.filename");
    r.FixAll(&x->argv, "exec.argv");
    r.Fix(&x->parent_comm, "exec.parent_comm");
  } else if (auto* n = e->As<NetConnectEvent>()) {
    r.Fix(&n->local_addr, "net.local_addr");
    r.Fix(&n->remote_addr, "net.remote_addr");
  } else if (auto* ps = e->As<PostureSnapshot>()) {
    for (size_t i = 0; i < ps->accounts.size(); ++i) {
      Account& a = ps->accounts[i];
      r.Fix(&a.name, "posture.accounts", i, ".name");
      r.Fix(&a.shell, "posture.accounts", i, ".shell");
      r.Fix(&a.home, "posture.accounts", i, ".home");
      for (size_t k = 0; k < a.groups.size(); ++k) {
        r.Fix(&a.groups[k], "posture.accounts", i, ".groups[" + std::to_string(k) + "]");
      }
      for (size_t k = 0; k < a.readable_files.size(); ++k) {
        r.Fix(&a.readable_files[k], "posture.accounts", i,
              ".readable_files[" + std::to_string(k) + "]");
      }
      for (size_t k = 0; k < a.sudo_rules.size(); ++k) {
        r.Fix(&a.sudo_rules[k], "posture.accounts", i, ".sudo_rules[" + std::to_string(k) + "]");
      }
    }
    r.FixAll(&ps->root_group_members, "posture.root_group_members");
    r.FixAll(&ps->errors, "posture.errors");
    for (size_t i = 0; i < ps->processes.size(); ++i) {
      ProcessPrivilege& x = ps->processes[i];
      r.Fix(&x.exe, "posture.processes", i, ".exe");
      r.Fix(&x.user, "posture.processes", i, ".user");
      r.Fix(&x.container_id, "posture.processes", i, ".container_id");
      r.Fix(&x.k8s_service_account, "posture.processes", i, ".k8s_service_account");
      for (size_t k = 0; k < x.runtime_sockets.size(); ++k) {
        r.Fix(&x.runtime_sockets[k], "posture.processes", i,
              ".runtime_sockets[" + std::to_string(k) + "]");
      }
    }
  } else if (auto* h = e->As<SensorHealth>()) {
    for (size_t i = 0; i < h->kinds.size(); ++i) {
      r.Fix(&h->kinds[i].kind, "health.kinds", i, ".kind");
    }
    r.FixAll(&h->disabled_programs, "health.disabled_programs");
    for (size_t i = 0; i < h->families.size(); ++i) {
      HookFamilyStatus& f = h->families[i];
      const std::pair<std::string*, const char*> strings[] = {{&f.name, ".name"},
                                                              {&f.state, ".state"},
                                                              {&f.hooks, ".hooks"},
                                                              {&f.reason, ".reason"},
                                                              {&f.remedy, ".remedy"}};
      for (const auto& [s, name] : strings) r.Fix(s, "health.families", i, name);
    }
    r.FixAll(&h->warnings, "health.warnings");
    r.FixAll(&h->addresses, "health.addresses");
  }
  return r.count() - before;
}

}  // namespace tripline
