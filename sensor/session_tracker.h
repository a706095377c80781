// SessionTracker: which login session a process belongs to, so that `cat /etc/shadow` or
// an outbound `ssh` run from a login shell is attributed to the login that spawned it.
//
// Primary key: the kernel audit session id. pam_loginuid (in sshd's and login's PAM
// session stack) gives the session a fresh id that every descendant inherits, even across
// setsid(); the sshd monitor that called pam_open_session already carries it when the call
// returns. Checked with a real sshd on kernel 6.18 (Debian 12, OpenSSH 9.2): the monitor
// (uid 0), the privilege-separated child and the user's shell all read the same
// /proc/<pid>/sessionid (1, then 2 for the next login), while the listening sshd keeps
// 4294967295. Such processes get session "audit:<id>".
//
// Fallback when audit is off (CONFIG_AUDIT=n, or no pam_loginuid): process ancestry. A
// successful login (account or session-open stage) marks its authenticating process
// (auth_pid); a process is attributed to the nearest ancestor so marked, session
// "login:<auth_pid>.<start_ticks>" (the start time keeps sessions of a reused pid apart).
// Parents come from exec events and, for pids never seen, from /proc/<pid>/stat. The
// ancestry map is bounded (LRU) and entries age out.
//
// Threading: not thread-safe; owned and used by the event loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "model/event.h"
#include "sensor/host_files.h"

namespace tripline::sensor {

struct SessionTrackerOptions {
  size_t max_processes = 32768;  // ancestry entries kept
  size_t max_logins = 4096;      // fallback logins remembered
  size_t max_depth = 64;         // ancestry walk limit (pid 1 is usually reached far sooner)
  int64_t process_ttl_ns = 6LL * 3600 * 1000 * 1000 * 1000;  // forget idle processes
};

// A successful login as the tracker remembers it.
struct LoginRecord {
  std::string session;  // "audit:<id>" or "login:<auth_pid>.<start>"
  std::string user;
  std::string remote_addr;
  uint32_t auth_pid = 0;
  int64_t time_ns = 0;
};

class SessionTracker {
 public:
  // `files` (for /proc/<pid>/stat of unknown pids) must outlive the tracker.
  SessionTracker(SessionTrackerOptions options, const HostFiles& files);

  // Learns from `event` (exec: parentage; login: a new session) and sets event->session.
  // `now_mono_ns` drives ageing.
  void Attribute(Event* event, int64_t now_mono_ns);

  // The login remembered for a session string, or nullptr.
  const LoginRecord* FindLogin(const std::string& session) const;

  size_t tracked_processes() const { return processes_.size(); }

 private:
  struct ProcessNode {
    uint32_t ppid = 0;
    uint64_t start_ticks = 0;  // 0 when only known from an event
    int64_t seen_ns = 0;
    std::list<uint32_t>::iterator lru;
  };

  void RecordLogin(const Event& event, int64_t now_ns);
  void Remember(uint32_t pid, uint32_t ppid, uint64_t start_ticks, int64_t now_ns);
  // The node for `pid`, from the map or /proc; nullptr when unknown and gone.
  const ProcessNode* Node(uint32_t pid, int64_t now_ns);
  // Start time of `pid` (clock ticks since boot), 0 when unknown.
  uint64_t StartTicks(uint32_t pid, int64_t now_ns);
  std::string AncestrySession(uint32_t tgid, int64_t now_ns);
  void Evict(int64_t now_ns);

  const SessionTrackerOptions options_;
  const HostFiles& files_;
  std::unordered_map<uint32_t, ProcessNode> processes_;
  std::list<uint32_t> lru_;  // front = most recently used
  // Fallback sessions by authenticating pid, and every remembered login by session.
  std::unordered_map<uint32_t, std::string> login_by_pid_;
  std::unordered_map<std::string, LoginRecord> logins_;
  std::list<std::string> login_order_;  // oldest first, bounds logins_
  std::string scratch_;
};

}  // namespace tripline::sensor
