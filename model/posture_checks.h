// What an account's posture gives it: the predicates that both the privilege audit
// (aggregator/audit/posture_findings.h, docs/audit.md) and the correlation engine
// (aggregator/correlate/, an incident that involves such an identity is more severe) judge
// accounts by, so the two never disagree about which accounts hold root's power.
//
// Pure and header-only: no I/O, no clock, nothing beyond model/event.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"

namespace tripline {

// Groups whose members are root in all but name: root (gid 0 files), sudo and wheel (sudo
// and su), adm (every log, with its secrets), docker and lxd (a root container with the
// host's / mounted), disk (raw block devices), shadow (every password hash).
inline constexpr std::string_view kRootEquivalentGroups[] = {"root",   "sudo", "wheel", "adm",
                                                             "docker", "lxd",  "disk",  "shadow"};

inline bool IsRootEquivalentGroup(std::string_view group) {
  return std::find(std::begin(kRootEquivalentGroups), std::end(kRootEquivalentGroups), group) !=
         std::end(kRootEquivalentGroups);
}

namespace posture_detail {
inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace posture_detail

// Whether a sudo rule as the sensor reports it ("user ALL=(ALL) NOPASSWD: ALL (/etc/sudoers:3)")
// lets its user run every command: its command list is ALL. Sets *nopasswd when the rule
// says NOPASSWD for it.
inline bool SudoRuleRunsAll(std::string_view rule, bool* nopasswd) {
  using posture_detail::Trim;
  *nopasswd = false;
  // The sensor appends " (FILE:LINE)".
  if (!rule.empty() && rule.back() == ')') {
    if (const size_t open = rule.rfind(" ("); open != std::string_view::npos) {
      rule = rule.substr(0, open);
    }
  }
  const size_t eq = rule.find('=');
  if (eq == std::string_view::npos) return false;
  std::string_view spec = Trim(rule.substr(eq + 1));
  if (!spec.empty() && spec.front() == '(') {
    const size_t close = spec.find(')');
    if (close == std::string_view::npos) return false;
    spec = Trim(spec.substr(close + 1));
  }
  // Tags: NOPASSWD:, PASSWD:, SETENV:, NOEXEC:, ...: upper-case words ending in ':'.
  for (;;) {
    size_t i = 0;
    while (i < spec.size() && spec[i] >= 'A' && spec[i] <= 'Z') ++i;
    if (i == 0 || i >= spec.size() || spec[i] != ':') break;
    const std::string_view tag = spec.substr(0, i);
    if (tag == "NOPASSWD") *nopasswd = true;
    if (tag == "PASSWD") *nopasswd = false;
    spec = Trim(spec.substr(i + 1));
  }
  bool all = false;
  size_t start = 0;
  for (size_t i = 0; i <= spec.size(); ++i) {
    if (i == spec.size() || spec[i] == ',' || spec[i] == ':') {
      if (Trim(spec.substr(start, i - start)) == "ALL") all = true;
      if (i < spec.size() && spec[i] == ':') break;  // another Host_List = spec follows
      start = i + 1;
    }
  }
  return all;
}

// A password someone can log in with: set and not locked.
inline bool HasUsablePassword(const Account& a) { return a.password_set && !a.password_locked; }

// A usable password whose ageing is off (root's own is not judged: being root is not a
// finding).
inline bool PasswordNeverExpires(const Account& a) {
  return a.name != "root" && HasUsablePassword(a) && a.max_password_age_days < 0;
}

// What gives `a` root's power, each a phrase a person reads after the account's name:
// "has uid 0", "is in group docker", "may run any command as root without a password".
// Empty for root itself and for an account without any.
inline std::vector<std::string> RootPowers(const Account& a) {
  std::vector<std::string> out;
  if (a.name == "root") return out;
  if (a.uid == 0) out.emplace_back("has uid 0");
  std::vector<std::string> groups = a.groups;
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  for (const std::string& g : groups) {
    if (IsRootEquivalentGroup(g)) out.push_back("is in group " + g);
  }
  bool any_all = false, any_nopasswd = false;
  for (const std::string& rule : a.sudo_rules) {
    bool nopasswd = false;
    if (!SudoRuleRunsAll(rule, &nopasswd)) continue;
    any_all = true;
    any_nopasswd = any_nopasswd || nopasswd;
  }
  if (any_all) {
    out.emplace_back(any_nopasswd ? "may run any command as root without a password"
                                  : "may run any command as root");
  }
  return out;
}

// The kind the account's own entry suggests when the configuration declares nothing: an
// interactive shell and a uid of 1000 or more is a person; anything else a service.
inline bool LooksHuman(const Account& a) { return a.interactive_shell && a.uid >= 1000; }

// Linux capability names without the CAP_ prefix, by number (linux/capability.h).
inline constexpr std::string_view kCapabilityNames[] = {"chown",
                                                        "dac_override",
                                                        "dac_read_search",
                                                        "fowner",
                                                        "fsetid",
                                                        "kill",
                                                        "setgid",
                                                        "setuid",
                                                        "setpcap",
                                                        "linux_immutable",
                                                        "net_bind_service",
                                                        "net_broadcast",
                                                        "net_admin",
                                                        "net_raw",
                                                        "ipc_lock",
                                                        "ipc_owner",
                                                        "sys_module",
                                                        "sys_rawio",
                                                        "sys_chroot",
                                                        "sys_ptrace",
                                                        "sys_pacct",
                                                        "sys_admin",
                                                        "sys_boot",
                                                        "sys_nice",
                                                        "sys_resource",
                                                        "sys_time",
                                                        "sys_tty_config",
                                                        "mknod",
                                                        "lease",
                                                        "audit_write",
                                                        "audit_control",
                                                        "setfcap",
                                                        "mac_override",
                                                        "mac_admin",
                                                        "syslog",
                                                        "wake_alarm",
                                                        "block_suspend",
                                                        "audit_read",
                                                        "perfmon",
                                                        "bpf",
                                                        "checkpoint_restore"};

// "cap_sys_admin", or "cap_63" for a number the table does not name.
inline std::string CapabilityName(int cap) {
  if (cap >= 0 && static_cast<size_t>(cap) < std::size(kCapabilityNames)) {
    return "cap_" + std::string(kCapabilityNames[cap]);
  }
  return "cap_" + std::to_string(cap);
}

// Capabilities any one of which gives its holder root: loading modules, tracing root's
// processes, writing or reading any file (shadow, sudoers, keys), becoming any uid or gid,
// taking files over, setting file capabilities, raw devices, BPF, device nodes.
inline constexpr int kRootEquivalentCapabilities[] = {0, 1, 2, 3, 6, 7, 16, 17, 19, 21, 27, 31, 39};

inline bool HasRootEquivalentCapability(uint64_t cap_effective) {
  for (int cap : kRootEquivalentCapabilities) {
    if (((cap_effective >> cap) & 1) != 0) return true;
  }
  return false;
}

}  // namespace tripline
