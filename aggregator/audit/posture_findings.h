// Posture findings: what a host's standing privileges allow, per identity, each with a
// severity and a fix a person can apply (docs/audit.md).
//
// Pure functions over one PostureSnapshot: no I/O, no clock. The checks:
//
//   uid-zero               an account other than root with uid 0: it is root     critical
//   root-equivalent-group  member of root, sudo, wheel, adm, docker, lxd, disk or shadow:
//                          each gives root or root's secrets without sudo's log  high*
//   sudo-nopasswd-all      may run any command as root without a password        high*
//   sudo-all               may run any command as root (with its password)       medium*
//   password-never-expires a usable password whose ageing is off                 medium*
//   password-on-service    a non-human identity with a usable password           medium
//   authorized-keys-unrestricted
//                          authorized keys without a from= restriction           medium*
//
// And for the running processes of declared agents, service accounts and MCP servers
// (PostureSnapshot.processes; an account declared by name, or a ProcessRule):
//   process-root           runs as uid 0                                         high
//   process-capabilities   effective capabilities while not root: high with one that
//                          gives root (sys_admin, sys_ptrace, sys_module, dac_override,
//                          dac_read_search, setuid, setgid, chown, fowner, setfcap,
//                          sys_rawio, bpf, mknod), else medium
//   runtime-socket         may connect to a container runtime's socket (Docker,
//                          containerd, ...): a root container with the host's / mounted high
//
// (*) for a service account or agent; one level lower for a person, who is expected to
// log in and may need to administer. A never-expiring password on an identity that also
// has a root-equivalent group or unrestricted sudo is raised to high: that is the
// combination an attacker guesses or reuses once and keeps (the seed's AI integration
// account in group root with a password that never expires).
//
// Identity kinds: "agent" or "service" when the configuration declares the account so
// (IdentityRule by user), else "human" for an account with an interactive shell and a uid of
// 1000 or more, else "service". Root itself is only checked for unrestricted keys: being
// root is not a finding.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"
#include "model/incident.h"
#include "model/posture_checks.h"

namespace tripline::audit {

using ::tripline::kRootEquivalentGroups;  // model/posture_checks.h
using ::tripline::SudoRuleRunsAll;

struct Finding {
  std::string host;
  std::string identity;  // account name
  std::string kind;      // "human", "service" or "agent"
  std::string check;     // "root-equivalent-group", ...
  std::string subject;   // what within the check: the group, the sudo rule; "" when one
  Severity severity = Severity::kInfo;
  std::string detail;  // a sentence: "service account aiops is in group root"
  std::string fix;     // a command or step a person can apply

  // Identifies the finding across snapshots: host, identity, check, subject.
  std::string Key() const;
};

// Processes declared an identity (IdentityRule with an exe, a cgroup or a Kubernetes
// service account, or mcp_server): the privilege audit checks theirs. Patterns are globs
// unless `exact`; an empty one matches anything.
struct ProcessRule {
  std::string user;  // account name of the process's uid
  std::string exe;
  std::string cgroup;  // the processes' container id
  std::string kind;    // "service" or "agent"
  // Identity name; when empty the service account's (a rule with `k8s_service_account`),
  // the executable's (a rule with `exe` or `cgroup`), else the account's.
  std::string name;
  bool mcp_server = false;
  bool exact = false;
  // "<namespace>/<name>" of the processes' pod's service account.
  std::string k8s_service_account;
};

struct AuditPolicy {
  // Declared identities: account name -> "service" or "agent" (from IdentityRule.user).
  std::map<std::string, std::string, std::less<>> declared;
  // Declared processes: those of `declared` accounts are checked too.
  std::vector<ProcessRule> processes;
  // Privilege drift (privilege_drift.h): how long a host must have been watched before a
  // privilege never exercised there is called unused.
  int64_t drift_min_period_ns = 14LL * 86400 * 1000 * 1000 * 1000;
};

// The findings of one snapshot of `host`, in account order, each account's in check order.
std::vector<Finding> FindingsFromPosture(std::string_view host, const PostureSnapshot& snapshot,
                                         const AuditPolicy& policy);

// "human", "service" or "agent" for `account` under `policy` (see the header comment).
std::string IdentityKind(const Account& account, const AuditPolicy& policy);

}  // namespace tripline::audit
