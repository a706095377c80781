#include "model/event.h"

#include <sstream>

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
    for (const HookFamilyStatus& f : h->families) {
      if (f.state != "live") out << ", " << f.name << " " << f.state;
    }
  }
  return out.str();
}

}  // namespace tripline
