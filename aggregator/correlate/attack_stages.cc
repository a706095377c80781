#include "aggregator/correlate/attack_stages.h"

#include <fcntl.h>

#include <algorithm>
#include <array>

namespace tripline::correlate {
namespace {

template <size_t N>
bool OneOf(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view ProcessName(const ProcessInfo& p) {
  if (!p.exe.empty()) return Basename(p.exe);
  return p.comm;
}

// The programs that read the password database to check a password or change one.
bool IsAuthenticationHelper(const ProcessInfo& p) {
  static constexpr std::array<std::string_view, 18> kHelpers = {
      "sshd",    "sshd-session", "sshd-auth", "sudo",     "su",      "login",
      "passwd",  "unix_chkpwd",  "chage",     "chpasswd", "useradd", "usermod",
      "userdel", "groupadd",     "gpasswd",   "pkexec",   "cron",    "polkit-agent-helper-1"};
  return OneOf(ProcessName(p), kHelpers) || OneOf(std::string_view(p.comm), kHelpers);
}

bool IsSshTool(const ProcessInfo& p) {
  static constexpr std::array<std::string_view, 8> kTools = {
      "ssh", "scp", "sftp", "ssh-add", "ssh-agent", "sshd", "sshd-session", "sshd-auth"};
  return OneOf(ProcessName(p), kTools) || OneOf(std::string_view(p.comm), kTools);
}

bool IsPrivateKeyPath(std::string_view path) {
  std::string_view base = Basename(path);
  if (EndsWith(base, ".pub")) return false;
  static constexpr std::array<std::string_view, 6> kUserKeys = {
      "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"};
  if (OneOf(base, kUserKeys)) return true;
  return StartsWith(path, "/etc/ssh/ssh_host_") && EndsWith(base, "_key");
}

}  // namespace

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsUninformativeAddress(std::string_view a) {
  return a.empty() || a == "0.0.0.0" || a == "::" || a == "::1" || StartsWith(a, "127.") ||
         StartsWith(a, "::ffff:127.");
}

bool OpensForWrite(const FileOpenEvent& open) {
  if (open.access == FileAccess::kWrite || open.access == FileAccess::kReadWrite) return true;
  if (open.access == FileAccess::kRead) return false;
  constexpr uint32_t kWriteFlags = O_WRONLY | O_RDWR | O_APPEND | O_CREAT | O_TRUNC;
  return (open.flags & kWriteFlags) != 0;
}

std::string_view ClassifyFileOpen(const FileOpenEvent& open, const ProcessInfo& process) {
  std::string_view path = open.path;
  if (path == "/etc/shadow" || path == "/etc/gshadow" || path == "/etc/shadow-" ||
      path == "/etc/gshadow-") {
    return IsAuthenticationHelper(process) ? std::string_view() : kShadowDump;
  }
  std::string_view base = Basename(path);
  if (base == "authorized_keys" || base == "authorized_keys2") {
    return OpensForWrite(open) ? kAuthorizedKeys : std::string_view();
  }
  if (IsPrivateKeyPath(path)) return IsSshTool(process) ? std::string_view() : kPrivateKeys;
  return {};
}

bool IsDiscoveryCommand(std::string_view filename) {
  static constexpr std::array<std::string_view, 21> kCommands = {
      "ls",      "find", "cat", "id",       "whoami",   "uname", "ps",
      "netstat", "ss",   "ip",  "ifconfig", "hostname", "w",     "who",
      "last",    "env",  "df",  "mount",    "lsblk",    "arp",   "route"};
  return OneOf(Basename(filename), kCommands);
}

bool IsEscalationProgram(std::string_view filename) {
  static constexpr std::array<std::string_view, 5> kPrograms = {"sudo", "su", "pkexec", "doas",
                                                                "runuser"};
  return OneOf(Basename(filename), kPrograms);
}

bool IsSshDaemon(const ProcessInfo& p) {
  static constexpr std::array<std::string_view, 3> kDaemons = {"sshd", "sshd-session", "sshd-auth"};
  return OneOf(std::string_view(p.comm), kDaemons) || OneOf(Basename(p.exe), kDaemons);
}

}  // namespace tripline::correlate
