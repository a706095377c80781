#include "aggregator/audit/posture_findings.h"

#include <algorithm>
#include <optional>

#include "aggregator/baseline/identity.h"

namespace tripline::audit {
namespace {

// A person gets one level less than a non-human identity (see the header).
Severity ForKind(Severity non_human, const std::string& kind) {
  if (kind != "human" || non_human == Severity::kInfo) return non_human;
  return static_cast<Severity>(static_cast<uint8_t>(non_human) - 1);
}

std::string Who(const std::string& kind, const std::string& name) {
  if (kind == "human") return "user " + name;
  if (kind == "agent") return "agent account " + name;
  return "service account " + name;
}

// Why each root-equivalent group is root in all but name, for the finding's detail.
std::string_view GroupPower(std::string_view group) {
  if (group == "root") return "files owned by group root, /etc and /root among them";
  if (group == "sudo" || group == "wheel") return "root through sudo or su";
  if (group == "adm") return "every system log, with the secrets they record";
  if (group == "docker") return "a root container with the host's / mounted";
  if (group == "lxd") return "a privileged container with the host's / mounted";
  if (group == "disk") return "raw read and write of every disk";
  return "every password hash in /etc/shadow";
}

// The declared identity `p` runs as, if any: its kind, name and what to call it.
struct ProcessIdentity {
  std::string kind;
  std::string name;
  std::string who;  // "agent aiops", "MCP server files-mcp (agent)"
};

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Matches(const ProcessRule& rule, const std::string& pattern, const std::string& text) {
  if (pattern.empty()) return true;
  return rule.exact ? pattern == text : baseline::GlobMatch(pattern, text);
}

std::optional<ProcessIdentity> DeclaredProcess(const ProcessPrivilege& p,
                                               const AuditPolicy& policy) {
  for (const ProcessRule& rule : policy.processes) {
    if (!Matches(rule, rule.user, p.user) || !Matches(rule, rule.exe, p.exe) ||
        !Matches(rule, rule.cgroup, p.container_id) ||
        (!rule.cgroup.empty() && p.container_id.empty()) ||
        !Matches(rule, rule.k8s_service_account, p.k8s_service_account) ||
        (!rule.k8s_service_account.empty() && p.k8s_service_account.empty())) {
      continue;
    }
    ProcessIdentity id;
    id.kind = rule.kind;
    // A rule that names a pod's service account names its processes after it; one that
    // names an executable or container, after the executable (an MCP server run as root
    // is not "root"); one that names only an account, after the account.
    if (!rule.name.empty()) {
      id.name = rule.name;
    } else if (!rule.k8s_service_account.empty()) {
      id.name = p.k8s_service_account;
    } else if (!rule.exe.empty() || !rule.cgroup.empty() || p.user.empty()) {
      id.name = Basename(p.exe);
    } else {
      id.name = p.user;
    }
    id.who = rule.mcp_server ? "MCP server " + id.name : Who(rule.kind, id.name);
    return id;
  }
  if (auto it = policy.declared.find(p.user); !p.user.empty() && it != policy.declared.end()) {
    return ProcessIdentity{it->second, p.user, Who(it->second, p.user)};
  }
  return std::nullopt;
}

std::string CapabilityList(uint64_t caps) {
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if (((caps >> cap) & 1) == 0) continue;
    if (!out.empty()) out += ", ";
    out += CapabilityName(cap);
  }
  return out;
}

std::string Processes(const ProcessPrivilege& p) {
  std::string out = std::to_string(p.processes) + (p.processes == 1 ? " process" : " processes");
  if (!p.pids.empty()) {
    out += p.pids.size() == 1 ? ", pid " : ", pids ";
    for (size_t i = 0; i < p.pids.size(); ++i) {
      out += (i > 0 ? " " : "") + std::to_string(p.pids[i]);
    }
  }
  if (!p.container_id.empty()) out += ", container " + p.container_id;
  return out;
}

void ProcessFindings(std::string_view host, const PostureSnapshot& snapshot,
                     const AuditPolicy& policy, std::vector<Finding>* out) {
  for (const ProcessPrivilege& p : snapshot.processes) {
    const std::optional<ProcessIdentity> id = DeclaredProcess(p, policy);
    if (!id) continue;
    const std::string exe = p.exe.empty() ? "(unreadable executable)" : p.exe;
    const auto add = [&](std::string check, std::string subject, Severity severity,
                         std::string detail, std::string fix) {
      out->push_back(Finding{std::string(host), id->name, id->kind, std::move(check),
                             std::move(subject), severity, std::move(detail), std::move(fix)});
    };
    if (p.uid == 0) {
      add("process-root", exe, Severity::kHigh,
          id->who + " runs " + exe + " as root (" + Processes(p) +
              "): everything it is talked into doing, it does as root",
          "run " + exe +
              " under an unprivileged account of its own (User= in its systemd "
              "unit, runAsUser and runAsNonRoot in its pod)");
      continue;  // root reaches every socket and holds every capability: said above
    }
    if (p.cap_effective != 0) {
      const bool root_power = HasRootEquivalentCapability(p.cap_effective);
      add("process-capabilities", exe, root_power ? Severity::kHigh : Severity::kMedium,
          id->who + " runs " + exe + " with the capabilities " + CapabilityList(p.cap_effective) +
              " (" + Processes(p) + ")" + (root_power ? ", one of which gives it root" : ""),
          "drop the capabilities it does not need (CapabilityBoundingSet= and "
          "AmbientCapabilities= in its systemd unit, securityContext.capabilities.drop in its "
          "pod)");
    }
    for (const std::string& socket : p.runtime_sockets) {
      add("runtime-socket", exe + " " + socket, Severity::kHigh,
          id->who + " runs " + exe + " (" + Processes(p) + "), which may connect to " + socket +
              ": a container runtime's socket, from which it can start a root container with "
              "the host's / mounted",
          "take its account out of the socket's group (gpasswd -d " +
              (p.user.empty() ? std::string("ACCOUNT") : p.user) +
              " docker) or give it a rootless runtime of its own");
    }
  }
}

}  // namespace

std::string Finding::Key() const {
  std::string key = host;
  for (const std::string* part : {&identity, &check, &subject}) {
    key.push_back('\0');
    key += *part;
  }
  return key;
}

std::string IdentityKind(const Account& account, const AuditPolicy& policy) {
  if (auto it = policy.declared.find(account.name); it != policy.declared.end()) {
    return it->second;
  }
  return LooksHuman(account) ? "human" : "service";
}

std::vector<Finding> FindingsFromPosture(std::string_view host, const PostureSnapshot& snapshot,
                                         const AuditPolicy& policy) {
  std::vector<Finding> out;
  for (const Account& a : snapshot.accounts) {
    const std::string kind = IdentityKind(a, policy);
    const std::string who = Who(kind, a.name);
    const bool is_root = a.name == "root";
    const auto add = [&](std::string check, std::string subject, Severity severity,
                         std::string detail, std::string fix) {
      out.push_back(Finding{std::string(host), a.name, kind, std::move(check), std::move(subject),
                            severity, std::move(detail), std::move(fix)});
    };
    bool root_power = false;  // a root-equivalent group, uid 0 or sudo ALL

    if (!is_root && a.uid == 0) {
      root_power = true;
      add("uid-zero", "", Severity::kCritical, who + " has uid 0: it is root under another name",
          "give " + a.name + " its own uid (usermod -u UID " + a.name +
              "), or remove it (userdel " + a.name + ")");
    }
    if (!is_root) {
      std::vector<std::string> groups = a.groups;
      std::sort(groups.begin(), groups.end());
      groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
      for (const std::string& g : groups) {
        if (!IsRootEquivalentGroup(g)) continue;
        root_power = true;
        // The primary group cannot be dropped with gpasswd.
        const bool primary = g == "root" && a.gid == 0;
        add("root-equivalent-group", g, ForKind(Severity::kHigh, kind),
            who + " is in group " + g + ", which gives " + std::string(GroupPower(g)),
            primary
                ? "give " + a.name + " a primary group of its own (usermod -g GROUP " + a.name + ")"
                : "remove " + a.name + " from " + g + " (gpasswd -d " + a.name + " " + g +
                      ") and grant what it needs with a narrow sudo rule");
      }
      for (const std::string& rule : a.sudo_rules) {
        bool nopasswd = false;
        if (!SudoRuleRunsAll(rule, &nopasswd)) continue;
        root_power = true;
        if (nopasswd) {
          add("sudo-nopasswd-all", rule, ForKind(Severity::kHigh, kind),
              who + " may run any command as root without a password: " + rule,
              "replace the rule with the commands " + a.name +
                  " needs, and drop NOPASSWD unless it runs unattended");
        } else {
          add("sudo-all", rule, ForKind(Severity::kMedium, kind),
              who + " may run any command as root: " + rule,
              "replace the rule with the commands " + a.name + " needs");
        }
      }
    }

    const bool usable_password = HasUsablePassword(a);
    if (PasswordNeverExpires(a)) {
      const Severity s = root_power ? Severity::kHigh : ForKind(Severity::kMedium, kind);
      add("password-never-expires", "", s,
          "the password of " + a.name + " never expires" +
              (root_power ? ", and the account has root's power" : ""),
          kind == "human" ? "set a maximum age (chage -M 90 " + a.name + ")"
                          : "lock the password (passwd -l " + a.name +
                                "); a service authenticates with a key or token");
    }
    if (!is_root && usable_password && kind != "human") {
      add("password-on-service", "", Severity::kMedium,
          who + " has a usable password: it can be guessed or reused to log in",
          "lock the password (passwd -l " + a.name + ")");
    }
    if (a.authorized_keys_unrestricted > 0) {
      add("authorized-keys-unrestricted", "", ForKind(Severity::kMedium, kind),
          who + " has " + std::to_string(a.authorized_keys) + " authorized key" +
              (a.authorized_keys == 1 ? "" : "s") + ", " +
              std::to_string(a.authorized_keys_unrestricted) + " without a from= restriction",
          "prefix each key in ~" + a.name +
              "/.ssh/authorized_keys with from=\"ADDRESSES\" of the hosts it comes from");
    }
  }
  ProcessFindings(host, snapshot, policy, &out);
  return out;
}

}  // namespace tripline::audit
