// Privilege drift: for each non-human account on each host, the privileges it is
// provisioned with (from the host's latest posture snapshot) against those it was seen
// exercising (from the events), and the unused ones as least-privilege recommendations
// with their evidence (docs/audit.md, "Drift").
//
//   privilege       provisioned when                         exercised by
//   login           an interactive shell and a password      a successful login to the host
//                   or authorized keys
//   sudo            sudoers rules that apply to it           running sudo, su, doas or pkexec
//   group:docker    member of docker                         running docker, podman, nerdctl,
//                                                            ctr or crictl
//   group:lxd       member of lxd                            running lxc or lxd
//   group:shadow    member of shadow                         opening /etc/shadow or /etc/gshadow
//   group:adm       member of adm                            opening a file under /var/log/
//   group:sudo,     member of it                             as sudo
//   group:wheel
//   group:disk,     member of it                             not observable: the sensor does not
//   group:root                                               report what these grant
//   read:PATH       may read a sensitive file as its owner   opening PATH
//                   or through a group that is not
//                   root-equivalent (Account.readable_files)
//
// A privilege is "used" when exercised since the account was first seen on the host,
// "unused" when not and the host was watched for at least the policy's period (then it
// is recommended for removal), "watching" while the period is shorter, and "unobservable"
// where the events cannot tell.
//
// DriftBook keeps both sides in the `posture` column family:
//   "p/" HOST \0 ACCOUNT -> what is provisioned (JSON), rewritten when a snapshot changes it
//   "u/" HOST \0 ACCOUNT -> when each privilege was last exercised and first exercised
//                          (JSON {"l": {...}, "f": {...}}; a record of only last times,
//                          as written before first times were kept, reads with each first
//                          time equal to its last), written when a privilege is first
//                          exercised or its last time moves by an hour
// and a copy in memory (a fleet's non-human accounts: hosts x a few).
//
// Threading: thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/correlate/drift_view.h"
#include "common/status.h"
#include "model/event.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tripline::audit {

struct AuditPolicy;

struct Provisioned {
  std::string kind;  // "service" or "agent"
  bool login = false;
  std::vector<std::string> sudo_rules;
  std::vector<std::string> groups;  // root-equivalent groups
  std::vector<std::string> files;   // sensitive files it may read (Account.readable_files)
  int64_t first_seen_ns = 0;        // the first snapshot that showed the account on the host
  int64_t seen_ns = 0;              // the latest
};

struct Usage {
  std::map<std::string, int64_t> last_ns;   // privilege -> when last exercised
  std::map<std::string, int64_t> first_ns;  // privilege -> when first exercised
};

struct DriftItem {
  std::string host;
  std::string identity;
  std::string kind;
  std::string privilege;  // "login", "sudo", "group:docker", ...
  std::string state;      // "used", "unused", "watching", "unobservable"
  int64_t last_used_ns = 0;
  int64_t since_ns = 0;  // watched since
  std::string evidence;  // a sentence
  std::string fix;       // for "unused": what a person can apply
};

// The privileges `p` grants, each judged against `u` at `now_ns`.
std::vector<DriftItem> JudgeDrift(std::string_view host, std::string_view account,
                                  const Provisioned& p, const Usage& u, int64_t now_ns,
                                  int64_t min_period_ns);

// The privilege `e` exercises and the account that exercises it, if any: ("login",
// "alice") for alice's successful login, ("group:docker", "ci") for ci running docker, ...
// One event may exercise two (sudo also uses group:sudo and group:wheel).
std::vector<std::pair<std::string, std::string>> PrivilegesExercised(const Event& e);

// One stored record as DriftBook::Open reads it: "p/" HOST \0 ACCOUNT (what is provisioned)
// or "u/" HOST \0 ACCOUNT (when each privilege was last exercised). Corruption naming what
// is wrong for anything else.
struct DriftRecord {
  std::string host;
  std::string account;
  bool provisioned = false;  // which of the two below
  Provisioned p;
  Usage u;
};
Result<DriftRecord> DecodeDriftRecord(std::string_view key, std::string_view value);

class DriftBook final : public correlate::DriftView {
 public:
  // Reads what the family holds. Corruption for a record that does not decode.
  static Result<std::unique_ptr<DriftBook>> Open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf);

  // A host's snapshot: the non-human accounts' privileges (humans are not tracked).
  // Accounts no longer in the snapshot are dropped with their usage.
  Status SetProvisioned(std::string_view host, int64_t time_ns, const PostureSnapshot& snapshot,
                        const AuditPolicy& policy);
  // The privileges the events exercise, for tracked accounts.
  Status Observe(const std::vector<Event>& events);

  // Every tracked account's privileges (host, identity: exact; empty for all), unused first.
  std::vector<DriftItem> Report(std::string_view host, std::string_view identity, int64_t now_ns,
                                int64_t min_period_ns) const;

  // correlate::DriftView: the account's privileges unused before `before_ns`, judged with
  // the watch period of SetWatchPeriod (the audit policy's drift_min_period_ns).
  correlate::UnusedPrivileges Unused(std::string_view host, std::string_view account,
                                     int64_t before_ns) const override;
  void SetWatchPeriod(int64_t min_period_ns) { watch_period_ns_.store(min_period_ns); }

 private:
  DriftBook(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) : db_(db), cf_(cf) {}
  using Key = std::pair<std::string, std::string>;  // host, account
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  mutable std::mutex mu_;
  std::map<Key, Provisioned> provisioned_;  // GUARDED_BY(mu_)
  std::map<Key, Usage> usage_;              // GUARDED_BY(mu_)
  std::atomic<int64_t> watch_period_ns_{14LL * 86400 * 1000 * 1000 * 1000};
};

}  // namespace tripline::audit
