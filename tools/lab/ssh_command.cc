#include "tools/lab/ssh_command.h"

namespace tripline::lab {

std::string ShellQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::vector<std::string> SshArgv(const SshHop& hop, std::string_view remote_command) {
  return {"sshpass", "-p", hop.password, "ssh", "-o", "StrictHostKeyChecking=no", "-o",
          "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=password", "-o",
          "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=5",
          // Keeps "Permanently added ... to the list of known hosts" out of stderr, which
          // the tests compare; real errors are still printed.
          "-o", "LogLevel=ERROR", "-p", std::to_string(hop.port), hop.user + "@" + hop.address,
          std::string(remote_command)};
}

std::string SshShellCommand(const SshHop& hop, std::string_view remote_command) {
  std::string out;
  for (const std::string& word : SshArgv(hop, remote_command)) {
    if (!out.empty()) out += ' ';
    out += ShellQuote(word);
  }
  return out;
}

std::string ChainedSshCommand(const std::vector<SshHop>& hops, std::string_view final_command) {
  // Built from the last hop outwards: each layer quotes the command of the layer inside it
  // once, so every shell on the way removes exactly one level of quoting.
  std::string command(final_command);
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) command = SshShellCommand(*it, command);
  return command;
}

}  // namespace tripline::lab
