// Command lines that play a password login with sshpass + ssh, including chains of hops
// where the shell on one host logs in to the next.
//
//   attacker --ssh--> hosta --ssh--> hostb --ssh--> hostc: hostname
//
//   std::string on_hosta = ChainedSshCommand({hop_to_hostb, hop_to_hostc}, "hostname");
//   lab.SshCommand("attacker", hop_to_hosta, on_hosta);
//
// All functions are pure; quoting is for a POSIX shell (the remote login shell).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tripline::lab {

// One password login.
struct SshHop {
  std::string user;
  std::string password;
  std::string address;
  int port = 22;
};

// `text` as one single-quoted POSIX shell word: 'it'\''s'.
std::string ShellQuote(std::string_view text);

// argv that runs `remote_command` on hop.address as hop.user with a password login that
// never prompts, never trusts or records host keys, gives up after one wrong password and
// after 5 s without a connection:
//   sshpass -p PW ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
//       -o PreferredAuthentications=password -o PubkeyAuthentication=no
//       -o NumberOfPasswordPrompts=1 -o ConnectTimeout=5 -o LogLevel=ERROR
//       -p PORT USER@ADDRESS REMOTE_COMMAND
// ssh hands `remote_command` to the remote login shell as is.
std::vector<std::string> SshArgv(const SshHop& hop, std::string_view remote_command);

// SshArgv() as one shell command line, every word quoted.
std::string SshShellCommand(const SshHop& hop, std::string_view remote_command);

// The command that, run by a shell, logs in over every hop in turn and runs
// `final_command` on the last one. With no hops it is `final_command` itself. Pass the
// result as the remote command of the first login (attacker -> hops[0]'s predecessor).
std::string ChainedSshCommand(const std::vector<SshHop>& hops, std::string_view final_command);

}  // namespace tripline::lab
