// Which single events are attack stages, and which ATT&CK technique each one is.
//
// Pure functions over event fields; the correlator decides what a stage means for a chain.
#pragma once

#include <cstdint>
#include <string_view>

#include "model/event.h"

namespace tripline::correlate {

inline constexpr std::string_view kBruteForce = "T1110.001";
inline constexpr std::string_view kPasswordSpraying = "T1110.003";
inline constexpr std::string_view kCredentialStuffing = "T1110.004";
inline constexpr std::string_view kValidAccounts = "T1078";
inline constexpr std::string_view kShadowDump = "T1003.008";
inline constexpr std::string_view kPrivateKeys = "T1552.004";
inline constexpr std::string_view kAuthorizedKeys = "T1098.004";
inline constexpr std::string_view kSshHop = "T1021.004";
inline constexpr std::string_view kDiscovery = "T1083";

// The technique of a file open by `process`, or "" when the open is not a stage.
//  - /etc/shadow, /etc/gshadow (also /etc/shadow-, /etc/gshadow-), any access, even denied:
//    T1003.008. Opens by the system's own authentication helpers (sshd, sudo, su, passwd,
//    unix_chkpwd, login, chage, ...) are how passwords get checked, not credential dumping.
//  - SSH private keys (id_rsa, id_ecdsa, id_ed25519, id_dsa and their -sk forms, not .pub)
//    and host keys (/etc/ssh/ssh_host_*_key): T1552.004. Reads by the SSH tools themselves
//    (ssh, scp, sftp, ssh-add, ssh-agent, sshd) are key use, not key theft.
//  - authorized_keys / authorized_keys2 opened for writing: T1098.004.
std::string_view ClassifyFileOpen(const FileOpenEvent& open, const ProcessInfo& process);

// True when the open asked for write access (by FileAccess, or by O_WRONLY/O_RDWR/O_APPEND/
// O_CREAT/O_TRUNC in the flags when the sensor did not classify it).
bool OpensForWrite(const FileOpenEvent& open);

// True for the commands an intruder runs to look around (ls, find, cat, id, whoami, uname,
// ps, netstat, ss, ip, ifconfig, hostname, w, who, last, env, df, mount, lsblk, arp, route).
bool IsDiscoveryCommand(std::string_view filename);

// True for programs whose purpose is to act as another user, root by default (sudo, su,
// pkexec, doas, runuser): their exec in a session means the session holds, or tries, root.
bool IsEscalationProgram(std::string_view filename);

// True when the SSH daemon is the process (sshd, sshd-session, sshd-auth).
bool IsSshDaemon(const ProcessInfo& process);

// The last path component.
std::string_view Basename(std::string_view path);

// Loopback, unspecified or empty: addresses that say nothing about which host is which.
bool IsUninformativeAddress(std::string_view addr);

}  // namespace tripline::correlate
