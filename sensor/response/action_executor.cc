#include "sensor/response/action_executor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace tripline::sensor {
namespace {

constexpr const char* kTable = "tripline";

bool IsIpv6(const std::string& a) { return a.find(':') != std::string::npos; }

}  // namespace

Result<std::string> ActionExecutor::Command(std::vector<std::string> argv, bool net,
                                            const std::string& stdin_text, int ok_code2) {
  if (net) argv.insert(argv.begin(), options_.net_prefix.begin(), options_.net_prefix.end());
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return Status::FromErrno(errno, "pipe");
  }
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (!stdin_text.empty()) (void)!write(in[1], stdin_text.data(), stdin_text.size());
  close(in[1]);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (output.size() < 65536) output.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string cmd;
  for (size_t i = 0; i + 1 < args.size(); ++i) cmd += (i ? " " : "") + argv[i];
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  while (!output.empty() && output.back() == '\n') output.pop_back();
  if (code != 0 && code != ok_code2) {
    return Status::Internal(cmd + ": exit " + std::to_string(code) +
                            (output.empty() ? "" : ": " + output));
  }
  return cmd + (output.empty() ? "" : ": " + output);
}

Status ActionExecutor::EnsureTable() {
  if (Command({options_.nft, "list", "table", "inet", kTable}, true).ok()) return Status::Ok();
  // Priority -10: before the host's own filter chains at priority 0, so a block holds
  // whatever they accept.
  const std::string script = std::string("table inet ") + kTable +
                             " {\n"
                             "  set blocked4 { type ipv4_addr; }\n"
                             "  set blocked6 { type ipv6_addr; }\n"
                             "  chain input { type filter hook input priority -10; policy accept;\n"
                             "    ip saddr @blocked4 drop\n    ip6 saddr @blocked6 drop\n  }\n"
                             "  chain output { type filter hook output priority -10; policy "
                             "accept;\n"
                             "    ip daddr @blocked4 drop\n    ip6 daddr @blocked6 drop\n  }\n"
                             "}\n";
  return Command({options_.nft, "-f", "-"}, true, script).status();
}

Result<std::string> ActionExecutor::Run(const v1::ActionOrder& o) {
  const bool undo = o.revert();
  switch (o.kind()) {
    case v1::Action::KIND_LOCK_ACCOUNT:
      return Command({options_.usermod, undo ? "-U" : "-L", "--", o.subject()}, false);
    case v1::Action::KIND_KILL_SESSION:
      if (undo) return std::string("ended sessions cannot be restored; nothing to revert");
      // pkill exits 1 when the account has no process left: nothing to end is success.
      return Command({options_.pkill, "-KILL", "-u", o.subject()}, false, "", 1);
    case v1::Action::KIND_BLOCK_ADDRESS: {
      unsigned char buf[16];
      const bool v6 = IsIpv6(o.subject());
      if (inet_pton(v6 ? AF_INET6 : AF_INET, o.subject().c_str(), buf) != 1) {
        return Status::InvalidArgument("not an address: " + o.subject());
      }
      TL_RETURN_IF_ERROR(EnsureTable());
      return Command({options_.nft, undo ? "delete" : "add", "element", "inet", kTable,
                      v6 ? "blocked6" : "blocked4", "{ " + o.subject() + " }"},
                     true);
    }
    case v1::Action::KIND_ISOLATE_HOST: {
      TL_RETURN_IF_ERROR(EnsureTable());
      if (undo) {
        return Command({options_.nft, "-f", "-"}, true,
                       std::string("delete chain inet ") + kTable + " isolate_in\n" +
                           "delete chain inet " + kTable + " isolate_out\n");
      }
      const size_t colon = o.keep_path().rfind(':');
      unsigned char buf[4];
      const std::string addr = o.keep_path().substr(0, colon == std::string::npos ? 0 : colon);
      const std::string port = colon == std::string::npos ? "" : o.keep_path().substr(colon + 1);
      if (inet_pton(AF_INET, addr.c_str(), buf) != 1 || port.empty() || port.size() > 5 ||
          port.find_first_not_of("0123456789") != std::string::npos) {
        // Without the path to the aggregator the sensor could never be told to revert.
        return Status::InvalidArgument("isolation needs the aggregator's IPv4 ADDRESS:PORT, got '" +
                                       o.keep_path() + "'");
      }
      const std::string t = std::string("inet ") + kTable;
      return Command({options_.nft, "-f", "-"}, true,
                     "add chain " + t +
                         " isolate_in { type filter hook input priority -5; policy drop; }\n"
                         "add rule " +
                         t +
                         " isolate_in iif lo accept\n"
                         "add rule " +
                         t + " isolate_in ip saddr " + addr + " tcp sport " + port +
                         " accept\n"
                         "add chain " +
                         t +
                         " isolate_out { type filter hook output priority -5; policy drop; }\n"
                         "add rule " +
                         t +
                         " isolate_out oif lo accept\n"
                         "add rule " +
                         t + " isolate_out ip daddr " + addr + " tcp dport " + port + " accept\n");
    }
    default: return Status::InvalidArgument("unknown action kind");
  }
}

}  // namespace tripline::sensor
