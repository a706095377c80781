// Lab: simulated Linux hosts on one machine, for end-to-end tests and the demo.
//
// Every host and client gets its own network namespace, wired to a Linux bridge in a
// private "switch" namespace, and its own persistent UTS namespace carrying its hostname.
// Hosts also run a real sshd (password logins through PAM) inside both namespaces, so a
// login to 198.18.0.2 lands on a shell whose `hostname` says "hostb". A Tripline sensor for
// a host runs in the root network namespace but in the host's UTS namespace
// (`tripline-sensor --scope uts`), via LabHost::SpawnUtsOnly().
//
//   LabOptions options;
//   options.hosts = {{"hosta", "198.18.0.1"}, {"hostb", "198.18.0.2", 2222}};
//   options.clients = {{"attacker", "198.18.0.66"}};
//   TL_ASSIGN_OR_RETURN(std::unique_ptr<Lab> lab, Lab::Create(options));
//   TL_ASSIGN_OR_RETURN(LabUser alice, lab->AddUser("alice", "pw1"));
//   Result<RunResult> r = lab->SshCommand("attacker", alice.Hop(*lab->host("hosta")), "id");
//
// Names: each lab draws a random prefix ("tl" + 5 hex digits) and uses it for everything
// visible outside its own namespaces: network namespaces "<prefix>-<name>", the switch
// "<prefix>-sw", the temp dir /tmp/tripline-lab-<prefix>-XXXXXX, user accounts
// "<prefix>-<name>". Interface names only exist inside the lab's namespaces.
//
// Cleanup: Close() (and the destructor) removes exactly what this Lab created and nothing
// else: it ends the sshd processes it started and their descendants (sessions left open),
// deletes its users (userdel -r), its network namespaces (which takes the bridge and veths
// with them), unmounts its UTS namespace files and deletes its temp dir. Labs running
// concurrently in other processes are never touched. A process killed with SIGKILL cannot
// clean up; its sshds die with it (PR_SET_PDEATHSIG) but namespaces and users remain.
//
// Threading: a Lab is used from one thread at a time, the one that created it (see
// SpawnOptions::kill_on_parent_death).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/lab/ssh_command.h"
#include "tools/lab/subprocess.h"

namespace tripline::lab {

struct HostSpec {
  // Lower-case letters, digits and '-', at most 20 characters. Also the hostname.
  std::string name;
  // IPv4 address in 198.18.0.0/15 (the benchmarking range, never routed); all machines of
  // a lab share one subnet of `LabOptions::prefix_length`.
  std::string address;
  // Port sshd listens on; ignored for clients.
  int ssh_port = 22;
};

struct LabOptions {
  std::vector<HostSpec> hosts;    // with sshd
  std::vector<HostSpec> clients;  // without sshd, e.g. {"attacker", "198.18.0.66"}
  int prefix_length = 24;
  // sshd's PermitRootLogin: "yes" when true, "prohibit-password" otherwise.
  bool permit_root_password = false;
  // Parent of the lab's temp dir.
  std::string temp_root = "/tmp";
  // How long Create() waits for each sshd to listen.
  std::chrono::milliseconds sshd_ready_timeout{10000};
};

// One simulated machine: a host (with sshd) or a client. Owned by its Lab.
class LabHost {
 public:
  const std::string& name() const { return spec_.name; }
  const std::string& address() const { return spec_.address; }
  bool has_sshd() const { return has_sshd_; }
  int ssh_port() const { return spec_.ssh_port; }
  // "<prefix>-<name>", usable with `ip netns exec` / `ip -n`.
  const std::string& netns_name() const { return netns_name_; }
  // /run/netns/<netns_name>.
  const std::string& netns_path() const { return netns_path_; }
  // A file with the UTS namespace bind-mounted on it, for setns(2) or `nsenter --uts=`.
  const std::string& uts_ns_path() const { return uts_ns_path_; }
  // This machine's directory inside the lab's temp dir (sshd config, key, log).
  const std::string& dir() const { return dir_; }
  // sshd's stderr (LogLevel VERBOSE); empty for clients.
  const std::string& sshd_log_path() const { return sshd_log_path_; }
  // pid of the sshd listener; -1 for clients or once the lab is closed.
  pid_t sshd_pid() const;

  // Starts a process inside this machine's network and UTS namespaces: it sees only the
  // lab network and this hostname. Overrides options.netns_path / utsns_path.
  Result<Subprocess> Spawn(SpawnOptions options) const;
  // Starts a process in this machine's UTS namespace only: it keeps the root network
  // namespace (127.0.0.1 is the real loopback) but reports this hostname. This is how a
  // sensor with `--scope uts` runs for this host.
  Result<Subprocess> SpawnUtsOnly(SpawnOptions options) const;
  // Runs argv in the network and UTS namespaces and collects its output.
  Result<RunResult> Run(std::vector<std::string> argv, std::chrono::milliseconds timeout) const;

 private:
  friend class Lab;
  LabHost(HostSpec spec, bool has_sshd, const std::string& prefix, const std::string& lab_dir);

  HostSpec spec_;
  bool has_sshd_;
  std::string netns_name_;
  std::string netns_path_;
  std::string uts_ns_path_;
  std::string dir_;
  std::string sshd_log_path_;
  std::optional<Subprocess> sshd_;
  bool netns_created_ = false;
  bool uts_mounted_ = false;
};

// A local account created for the lab.
struct LabUser {
  std::string name;   // as passed to AddUser
  std::string login;  // the real account name, "<prefix>-<name>"
  std::string password;
  uid_t uid = 0;
  std::string home;

  // A login as this user to `host` on its sshd port.
  SshHop Hop(const LabHost& host) const {
    return {login, password, host.address(), host.ssh_port()};
  }
};

class Lab {
 public:
  // Ok when this process can build labs; otherwise the status says what is missing (not
  // root, a missing tool, no network namespace or bridge support), for GTEST_SKIP().
  static Status CheckPrerequisites();

  // Builds the lab and returns once every sshd is listening. On failure everything
  // created so far is removed again.
  static Result<std::unique_ptr<Lab>> Create(LabOptions options);

  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  // Calls Close() when it has not been called; errors are logged.
  ~Lab();

  // Removes everything this lab created (see the file comment). Every step is attempted
  // even when an earlier one fails; the first error is returned. Idempotent.
  Status Close();

  const std::string& prefix() const { return prefix_; }
  const std::string& dir() const { return dir_; }
  // Hosts first, then clients, in the order of LabOptions.
  const std::vector<std::unique_ptr<LabHost>>& machines() const { return machines_; }
  // The host or client called `name`, or nullptr.
  const LabHost* host(std::string_view name) const;

  // Creates account "<prefix>-<name>" (useradd -m, shell /bin/bash) with `password`, as a
  // member of the existing `groups`. `name`: lower-case letters and digits, at most 16.
  // The account is shared by all machines of the lab (they share /etc/passwd).
  Result<LabUser> AddUser(std::string_view name, std::string_view password,
                          const std::vector<std::string>& groups = {});

  // Runs a password login from machine `from` (inside its network and UTS namespaces) and
  // `remote_command` there; see SshArgv(). A wrong password gives a non-zero exit_code
  // (5 from sshpass or 255 from ssh), not an error; errors mean the command could not run
  // or did not finish within `timeout`.
  Result<RunResult> SshCommand(std::string_view from, const SshHop& hop,
                               std::string_view remote_command,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));
  Result<RunResult> SshCommand(std::string_view from, std::string_view user,
                               std::string_view password, std::string_view to_address, int port,
                               std::string_view remote_command,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Every pid this lab started (sshd listeners and SshCommand() clients), for tests that
  // check nothing survives Close().
  const std::vector<pid_t>& started_pids() const { return started_pids_; }
  // The network namespaces this lab created (hosts, clients, switch).
  std::vector<std::string> netns_names() const;

 private:
  Lab() = default;

  Status Build(const LabOptions& options);
  Status CreateNetns(const std::string& name);
  Status WireNetwork(const LabOptions& options);
  Status CreateUtsNamespace(LabHost& machine);
  Status StartSshd(LabHost& machine, const LabOptions& options);
  Status WaitSshdListening(LabHost& machine, Deadline deadline);
  Status StopSshd(LabHost& machine);

  std::string prefix_;
  std::string dir_;
  std::string switch_netns_;
  bool switch_created_ = false;
  std::vector<std::unique_ptr<LabHost>> machines_;
  std::vector<LabUser> users_;
  std::vector<pid_t> started_pids_;
  bool closed_ = false;
};

}  // namespace tripline::lab
