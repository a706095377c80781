#include "sensor/session_tracker.h"

#include <cstdio>

#include "common/log.h"
#include "sensor/proc_stat.h"

namespace tripline::sensor {
namespace {

constexpr size_t kMaxProcStatBytes = 4096;

bool IsSessionStart(const LoginEvent& login) {
  return login.outcome == Outcome::kSuccess &&
         (login.stage == LoginStage::kAccount || login.stage == LoginStage::kSessionOpen);
}

}  // namespace

SessionTracker::SessionTracker(SessionTrackerOptions options, const HostFiles& files)
    : options_(options), files_(files) {}

const LoginRecord* SessionTracker::FindLogin(const std::string& session) const {
  auto it = logins_.find(session);
  return it == logins_.end() ? nullptr : &it->second;
}

void SessionTracker::Attribute(Event* event, int64_t now_ns) {
  ProcessInfo& p = event->process;
  Evict(now_ns);
  if (p.tgid != 0) {
    if (event->kind() == EventKind::kExec) {
      // A new image: whatever a previous process with this pid was is no longer true. An
      // authenticating sshd never execs after its login, so a remembered login on this
      // pid belonged to an earlier process.
      login_by_pid_.erase(p.tgid);
      Remember(p.tgid, p.ppid, 0, now_ns);
    } else if (processes_.find(p.tgid) == processes_.end()) {
      // The header's ppid is the *current* parent; the first one seen is kept because an
      // orphan is reparented to init (or a subreaper) and would lose its login.
      Remember(p.tgid, p.ppid, 0, now_ns);
    }
  }
  const LoginEvent* login = event->As<LoginEvent>();
  if (login != nullptr && IsSessionStart(*login)) RecordLogin(*event, now_ns);

  if (p.audit_session != kUnsetId) {
    event->session = "audit:" + std::to_string(p.audit_session);
    return;
  }
  // Login events before the session opens (authenticate, account, failures) describe the
  // attempt, not a session: giving them a fallback id would split one login over two ids
  // on hosts where the session-open event then carries an audit id.
  if (login != nullptr && login->stage != LoginStage::kSessionOpen &&
      login->stage != LoginStage::kSessionClose) {
    event->session.clear();
    return;
  }
  event->session = p.tgid == 0 ? std::string() : AncestrySession(p.tgid, now_ns);
}

void SessionTracker::RecordLogin(const Event& event, int64_t now_ns) {
  const LoginEvent& login = *event.As<LoginEvent>();
  const ProcessInfo& p = event.process;
  uint32_t auth_pid = login.auth_pid != 0 ? login.auth_pid : p.tgid;
  if (auth_pid == 0) return;

  std::string session;
  if (p.audit_session != kUnsetId && auth_pid == p.tgid) {
    session = "audit:" + std::to_string(p.audit_session);
  } else {
    auto existing = login_by_pid_.find(auth_pid);
    if (existing != login_by_pid_.end()) {
      session = existing->second;
    } else {
      uint64_t start = StartTicks(auth_pid, now_ns);
      session = "login:" + std::to_string(auth_pid) + "." + std::to_string(start);
    }
  }
  // The audit id, once known, replaces a fallback id given at the account stage, so the
  // processes of this login that carry no audit id still land in the same session.
  login_by_pid_[auth_pid] = session;

  auto [it, inserted] = logins_.try_emplace(session);
  LoginRecord& rec = it->second;
  rec.session = session;
  rec.user = login.user;
  rec.remote_addr = login.remote_addr;
  rec.auth_pid = auth_pid;
  if (rec.time_ns == 0) rec.time_ns = event.time_ns;
  if (inserted) {
    // Logins are rare next to file and exec events; one line each helps an operator
    // match a session id in the aggregator to what happened here.
    TL_LOG(INFO) << "session " << session << ": " << login.service << " login of " << login.user
                 << (login.remote_addr.empty() ? "" : " from ") << login.remote_addr
                 << " (auth pid " << auth_pid << ")";
    login_order_.push_back(session);
    while (logins_.size() > options_.max_logins && !login_order_.empty()) {
      auto victim = logins_.find(login_order_.front());
      if (victim != logins_.end()) {
        auto by_pid = login_by_pid_.find(victim->second.auth_pid);
        if (by_pid != login_by_pid_.end() && by_pid->second == victim->first) {
          login_by_pid_.erase(by_pid);
        }
        logins_.erase(victim);
      }
      login_order_.pop_front();
    }
  }
}

void SessionTracker::Remember(uint32_t pid, uint32_t ppid, uint64_t start_ticks, int64_t now_ns) {
  auto it = processes_.find(pid);
  if (it != processes_.end()) {
    it->second.ppid = ppid;
    if (start_ticks != 0) it->second.start_ticks = start_ticks;
    it->second.seen_ns = now_ns;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  while (processes_.size() >= options_.max_processes && !lru_.empty()) {
    processes_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(pid);
  ProcessNode& node = processes_[pid];
  node.ppid = ppid;
  node.start_ticks = start_ticks;
  node.seen_ns = now_ns;
  node.lru = lru_.begin();
}

const SessionTracker::ProcessNode* SessionTracker::Node(uint32_t pid, int64_t now_ns) {
  auto it = processes_.find(pid);
  if (it != processes_.end()) {
    it->second.seen_ns = now_ns;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
  }
  char path[48];
  std::snprintf(path, sizeof(path), "/proc/%u/stat", pid);
  if (!files_.ReadPrefix(path, kMaxProcStatBytes, &scratch_).ok()) {
    // Gone: remember it as a root so the next walk through it does not read /proc again.
    Remember(pid, 0, 0, now_ns);
    return nullptr;
  }
  auto stat = ParseProcStat(scratch_);
  Remember(pid, stat.ok() ? stat->ppid : 0, stat.ok() ? stat->start_ticks : 0, now_ns);
  return &processes_.find(pid)->second;
}

uint64_t SessionTracker::StartTicks(uint32_t pid, int64_t now_ns) {
  const ProcessNode* node = Node(pid, now_ns);
  if (node != nullptr && node->start_ticks != 0) return node->start_ticks;
  // Known from an event only: the start time is in /proc while the process lives (the
  // login event is handled milliseconds after the call returned, so it normally is).
  char path[48];
  std::snprintf(path, sizeof(path), "/proc/%u/stat", pid);
  if (!files_.ReadPrefix(path, kMaxProcStatBytes, &scratch_).ok()) return 0;
  auto stat = ParseProcStat(scratch_);
  if (!stat.ok()) return 0;
  auto it = processes_.find(pid);
  if (it != processes_.end()) it->second.start_ticks = stat->start_ticks;
  return stat->start_ticks;
}

std::string SessionTracker::AncestrySession(uint32_t tgid, int64_t now_ns) {
  if (login_by_pid_.empty()) return {};
  uint32_t pid = tgid;
  for (size_t depth = 0; depth < options_.max_depth && pid > 1; ++depth) {
    auto login = login_by_pid_.find(pid);
    if (login != login_by_pid_.end()) return login->second;
    const ProcessNode* node = Node(pid, now_ns);
    if (node == nullptr || node->ppid == pid) break;
    pid = node->ppid;
  }
  return {};
}

void SessionTracker::Evict(int64_t now_ns) {
  // Amortised O(1): only the least recently seen entries are looked at.
  while (!lru_.empty()) {
    auto it = processes_.find(lru_.back());
    if (it != processes_.end() && now_ns - it->second.seen_ns < options_.process_ttl_ns) break;
    if (it != processes_.end()) processes_.erase(it);
    lru_.pop_back();
  }
}

}  // namespace tripline::sensor
