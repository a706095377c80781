#include "tools/lab/lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/log.h"

namespace tripline::lab {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kToolTimeout = seconds(20);
// Lab network namespaces are named "<prefix>-<name>"; the switch takes the name "sw".
constexpr char kSwitchName[] = "sw";

// Where the tools live on Debian even when PATH (e.g. under sudo or ctest) lacks sbin.
constexpr char kFallbackPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Result<std::string> FindTool(std::string_view name) {
  const char* env_path = getenv("PATH");
  std::string search = env_path != nullptr ? std::string(env_path) + ":" : "";
  search += kFallbackPath;
  std::istringstream dirs(search);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + std::string(name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Status::NotFound(std::string(name) + " not found (install it or fix PATH)");
}

// Runs a tool to completion and turns a non-zero exit into an error carrying its stderr.
Result<RunResult> RunTool(std::vector<std::string> argv, std::optional<std::string> stdin_data,
                          milliseconds timeout = kToolTimeout) {
  TL_ASSIGN_OR_RETURN(argv[0], FindTool(argv[0]));
  SpawnOptions options;
  options.argv = argv;
  options.stdin_data = std::move(stdin_data);
  TL_ASSIGN_OR_RETURN(RunResult r, Subprocess::Run(std::move(options), timeout));
  if (r.exit_code != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    std::string err = r.err.empty() ? r.out : r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Status::Internal(cmd + " exited with " + std::to_string(r.exit_code) + ": " + err);
  }
  return r;
}

Status RunToolOk(std::vector<std::string> argv, std::optional<std::string> stdin_data = {}) {
  return RunTool(std::move(argv), std::move(stdin_data)).status();
}

std::string RandomHex(int digits) {
  std::random_device rd;
  std::uniform_int_distribution<int> dist(0, 15);
  std::string out;
  for (int i = 0; i < digits; ++i) out += "0123456789abcdef"[dist(rd)];
  return out;
}

bool ValidName(std::string_view name, size_t max_len, bool allow_dash) {
  if (name.empty() || name.size() > max_len) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [allow_dash](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (allow_dash && c == '-');
  });
}

// Host-order IPv4 address, only inside 198.18.0.0/15: the lab must never put an address
// that could be routed somewhere real onto an interface.
Result<uint32_t> ParseLabAddress(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) {
    return Status::InvalidArgument("not an IPv4 address: " + text);
  }
  uint32_t host_order = ntohl(addr.s_addr);
  if ((host_order & 0xfffe0000u) != 0xc6120000u) {
    return Status::InvalidArgument(text + " is outside 198.18.0.0/15");
  }
  return host_order;
}

// Children of every process, from /proc/<pid>/stat.
std::multimap<pid_t, pid_t> ChildrenByParent() {
  std::multimap<pid_t, pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // exited meanwhile
    // The command name (field 2) may contain spaces and ')'; ppid follows the last ')'.
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    children.emplace(ppid, static_cast<pid_t>(std::stoi(name)));
  }
  return children;
}

std::vector<pid_t> DescendantsOf(pid_t root) {
  std::multimap<pid_t, pid_t> children = ChildrenByParent();
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [begin, end] = children.equal_range(p);
    for (auto it = begin; it != end; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

// Ends the given processes: lets them exit on their own for `linger`, then SIGTERM, then
// SIGKILL after `grace`. Each is held by a pidfd from before the first signal, so a pid that
// exits and is reused is never signalled.
// `what` names them in the log line written when they have to be signalled.
Status EndProcesses(const std::vector<pid_t>& pids, milliseconds linger, milliseconds grace,
                    std::string_view what) {
  std::vector<int> fds;
  for (pid_t p : pids) {
    int fd = static_cast<int>(syscall(SYS_pidfd_open, p, 0));
    if (fd >= 0) fds.push_back(fd);  // ESRCH: already gone
  }
  auto signal_all = [&fds](int sig) {
    for (int fd : fds) syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
  };
  // A pidfd of a process that is not our child turns readable when the process exits.
  auto wait_all = [&fds](Deadline deadline) {
    for (int fd : fds) {
      pollfd p{fd, POLLIN, 0};
      while (true) {
        auto left = std::chrono::ceil<milliseconds>(deadline - std::chrono::steady_clock::now());
        int r = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        break;
      }
    }
    return true;
  };
  bool gone = wait_all(DeadlineIn(linger));
  if (!gone) {
    TL_LOG(INFO) << "lab: terminating " << what << " (" << fds.size() << " processes)";
    signal_all(SIGTERM);
    gone = wait_all(DeadlineIn(grace));
  }
  if (!gone) {
    signal_all(SIGKILL);
    gone = wait_all(DeadlineIn(seconds(10)));
  }
  for (int fd : fds) close(fd);
  return gone ? Status::Ok() : Status::Internal("processes survived SIGKILL");
}

// True when the network namespace of `pid` has a TCP socket listening on address:port.
// Reading the socket table instead of connecting keeps readiness probes out of sshd's log
// and out of what a sensor sees as connections.
bool ListeningInNetnsOf(pid_t pid, uint32_t address_host_order, int port) {
  std::ifstream tcp("/proc/" + std::to_string(pid) + "/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state != "0A") continue;  // TCP_LISTEN
    size_t colon = local.find(':');
    if (colon == std::string::npos) continue;
    // The kernel prints the address as the raw network-order word in hex.
    uint32_t raw = static_cast<uint32_t>(std::stoul(local.substr(0, colon), nullptr, 16));
    int local_port = std::stoi(local.substr(colon + 1), nullptr, 16);
    if (local_port == port && (raw == htonl(address_host_order) || raw == 0)) return true;
  }
  return false;
}

std::string TailOfFile(const std::string& path, size_t max_bytes = 1500) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = write(fd, content.data() + off, content.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno(err, "write " + path);
    }
    off += static_cast<size_t>(w);
  }
  if (close(fd) != 0) return Status::FromErrno(errno, "close " + path);
  return Status::Ok();
}

Status KeepFirstError(Status current, const Status& next) {
  if (!current.ok()) {
    if (!next.ok()) {
      TL_LOG(ERROR) << "lab cleanup: " << next.ToString();
    }
    return current;
  }
  return next;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// LabHost

LabHost::LabHost(HostSpec spec, bool has_sshd, const std::string& prefix,
                 const std::string& lab_dir)
    : spec_(std::move(spec)),
      has_sshd_(has_sshd),
      netns_name_(prefix + "-" + spec_.name),
      netns_path_("/run/netns/" + netns_name_),
      uts_ns_path_(lab_dir + "/" + spec_.name + "/uts"),
      dir_(lab_dir + "/" + spec_.name),
      sshd_log_path_(has_sshd ? dir_ + "/sshd.log" : "") {}

pid_t LabHost::sshd_pid() const { return sshd_.has_value() ? sshd_->pid() : -1; }

Result<Subprocess> LabHost::Spawn(SpawnOptions options) const {
  options.netns_path = netns_path_;
  options.utsns_path = uts_ns_path_;
  return Subprocess::Spawn(std::move(options));
}

Result<Subprocess> LabHost::SpawnUtsOnly(SpawnOptions options) const {
  options.netns_path.clear();
  options.utsns_path = uts_ns_path_;
  return Subprocess::Spawn(std::move(options));
}

Result<RunResult> LabHost::Run(std::vector<std::string> argv, milliseconds timeout) const {
  SpawnOptions options;
  options.argv = std::move(argv);
  options.netns_path = netns_path_;
  options.utsns_path = uts_ns_path_;
  return Subprocess::Run(std::move(options), timeout);
}

// ---------------------------------------------------------------------------------------
// Lab

Status Lab::CheckPrerequisites() {
  if (geteuid() != 0) return Status::PermissionDenied("the lab needs root (run the test as root)");
  std::vector<std::string> missing;
  for (const char* tool : {"ip", "unshare", "sshd", "ssh", "ssh-keygen", "sshpass", "useradd",
                           "userdel", "chpasswd"}) {
    if (!FindTool(tool).ok()) missing.push_back(tool);
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Status::NotFound("missing tools: " + list +
                            " (Debian: iproute2 util-linux openssh-server openssh-client "
                            "sshpass passwd)");
  }
  if (access("/proc/self/ns/net", F_OK) != 0 || access("/proc/self/ns/uts", F_OK) != 0) {
    return Status::Unsupported("kernel without network or UTS namespaces");
  }
  if (access("/etc/pam.d/sshd", F_OK) != 0) {
    return Status::NotFound("/etc/pam.d/sshd missing: sshd with UsePAM cannot authenticate");
  }
  // Build a bridge and a veth pair in a throwaway namespace: proves namespaces, bridge and
  // veth support without touching anything shared.
  Result<RunResult> probe =
      RunTool({"unshare", "--net", "--uts", "ip", "-batch", "-"},
              "link add probe-br type bridge\nlink add probe-a type veth peer name probe-b\n");
  if (!probe.ok()) {
    return Status::Unsupported("cannot create a network namespace with a bridge and veth: " +
                               probe.status().message());
  }
  return Status::Ok();
}

Result<std::unique_ptr<Lab>> Lab::Create(LabOptions options) {
  // Validate everything before creating anything.
  std::set<std::string> names;
  std::set<uint32_t> addresses;
  uint32_t subnet = 0;
  if (options.prefix_length < 15 || options.prefix_length > 30) {
    return Status::InvalidArgument("prefix_length must be within 15..30");
  }
  const uint32_t mask = ~0u << (32 - options.prefix_length);
  bool first = true;
  for (const auto* list : {&options.hosts, &options.clients}) {
    for (const HostSpec& spec : *list) {
      if (!ValidName(spec.name, 20, true) || spec.name == kSwitchName) {
        return Status::InvalidArgument("bad machine name '" + spec.name +
                                       "' (a-z, 0-9, '-', at most 20, not 'sw')");
      }
      if (!names.insert(spec.name).second) {
        return Status::InvalidArgument("duplicate machine name " + spec.name);
      }
      TL_ASSIGN_OR_RETURN(uint32_t addr, ParseLabAddress(spec.address));
      if (!addresses.insert(addr).second) {
        return Status::InvalidArgument("duplicate address " + spec.address);
      }
      if (first) subnet = addr & mask;
      first = false;
      if ((addr & mask) != subnet) {
        return Status::InvalidArgument(spec.address + " is not in the subnet of the others");
      }
      if (spec.ssh_port < 1 || spec.ssh_port > 65535) {
        return Status::InvalidArgument("bad ssh port for " + spec.name);
      }
    }
  }
  if (names.empty()) return Status::InvalidArgument("a lab needs at least one machine");
  TL_RETURN_IF_ERROR(CheckPrerequisites());

  std::unique_ptr<Lab> lab(new Lab());
  Status built = lab->Build(options);
  if (!built.ok()) {
    Status cleanup = lab->Close();
    if (!cleanup.ok()) {
      TL_LOG(ERROR) << "lab cleanup after failed create: " << cleanup.ToString();
    }
    return built.WithContext("creating lab");
  }
  return lab;
}

Status Lab::Build(const LabOptions& options) {
  // A fresh prefix per lab, checked against what exists, so concurrent labs never share a
  // name. The temp dir comes from mkdtemp, which is unique by construction.
  for (int attempt = 0;; ++attempt) {
    prefix_ = "tl" + RandomHex(5);
    if (access(("/run/netns/" + prefix_ + "-" + kSwitchName).c_str(), F_OK) != 0) break;
    if (attempt == 20) return Status::AlreadyExists("no free lab prefix");
  }
  std::string tmpl = options.temp_root + "/tripline-lab-" + prefix_ + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp " + tmpl);
  dir_ = tmpl;
  switch_netns_ = prefix_ + "-" + kSwitchName;

  for (const HostSpec& spec : options.hosts) {
    machines_.push_back(std::unique_ptr<LabHost>(new LabHost(spec, true, prefix_, dir_)));
  }
  for (const HostSpec& spec : options.clients) {
    machines_.push_back(std::unique_ptr<LabHost>(new LabHost(spec, false, prefix_, dir_)));
  }
  for (auto& m : machines_) {
    if (mkdir(m->dir_.c_str(), 0755) != 0) return Status::FromErrno(errno, "mkdir " + m->dir_);
  }

  TL_RETURN_IF_ERROR(CreateNetns(switch_netns_));
  switch_created_ = true;
  for (auto& m : machines_) {
    TL_RETURN_IF_ERROR(CreateNetns(m->netns_name_));
    m->netns_created_ = true;
    TL_RETURN_IF_ERROR(CreateUtsNamespace(*m));
  }
  TL_RETURN_IF_ERROR(WireNetwork(options));

  // Start every sshd first and wait afterwards, so their start-ups overlap.
  for (auto& m : machines_) {
    if (m->has_sshd_) TL_RETURN_IF_ERROR(StartSshd(*m, options));
  }
  const Deadline deadline = DeadlineIn(options.sshd_ready_timeout);
  for (auto& m : machines_) {
    if (m->has_sshd_) TL_RETURN_IF_ERROR(WaitSshdListening(*m, deadline));
  }
  TL_LOG(INFO) << "lab " << prefix_ << " ready in " << dir_ << " (" << machines_.size()
               << " machines)";
  return Status::Ok();
}

Status Lab::CreateNetns(const std::string& name) { return RunToolOk({"ip", "netns", "add", name}); }

Status Lab::WireNetwork(const LabOptions& options) {
  // One veth pair per machine: "<prefix>s<i>" on the bridge in the switch namespace and
  // "eth0" in the machine's namespace. The peer is created directly inside the machine's
  // namespace, so neither name ever appears in the root namespace.
  const std::string bridge = prefix_ + "br";
  std::string switch_batch = "link add " + bridge + " type bridge\nlink set " + bridge + " up\n";
  for (size_t i = 0; i < machines_.size(); ++i) {
    const std::string port = prefix_ + "s" + std::to_string(i);
    switch_batch +=
        "link add " + port + " type veth peer name eth0 netns " + machines_[i]->netns_name_ + "\n";
    switch_batch += "link set " + port + " master " + bridge + " up\n";
  }
  TL_RETURN_IF_ERROR(RunToolOk({"ip", "-n", switch_netns_, "-batch", "-"}, switch_batch));
  for (auto& m : machines_) {
    std::string batch = "link set lo up\naddr add " + m->spec_.address + "/" +
                        std::to_string(options.prefix_length) + " dev eth0\nlink set eth0 up\n";
    TL_RETURN_IF_ERROR(RunToolOk({"ip", "-n", m->netns_name_, "-batch", "-"}, batch));
  }
  return Status::Ok();
}

Status Lab::CreateUtsNamespace(LabHost& machine) {
  // A UTS namespace lives as long as a process or a mount holds it. A forked child
  // unshares one, sets the hostname and bind-mounts its own ns file onto a file in the lab
  // dir (what `unshare --uts=FILE` does), then exits; the mount keeps the namespace.
  const std::string& path = machine.uts_ns_path_;
  TL_RETURN_IF_ERROR(WriteFile(path, "", 0644));
  const std::string& hostname = machine.spec_.name;
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    if (unshare(CLONE_NEWUTS) != 0) _exit(10);
    if (sethostname(hostname.data(), hostname.size()) != 0) _exit(11);
    if (mount("/proc/self/ns/uts", path.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(12);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char* step = code == 10   ? "unshare(CLONE_NEWUTS)"
                       : code == 11 ? "sethostname"
                       : code == 12 ? "bind mount of the UTS namespace"
                                    : "UTS namespace child";
    return Status::Internal(std::string(step) + " failed for " + machine.name());
  }
  machine.uts_mounted_ = true;
  return Status::Ok();
}

Status Lab::StartSshd(LabHost& machine, const LabOptions& options) {
  // sshd refuses to start without its privilege separation directory. It is the system's
  // (shared with a system sshd), so it is created when missing and never removed.
  if (mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir /run/sshd");
  }
  const std::string key = machine.dir_ + "/ssh_host_ed25519_key";
  TL_RETURN_IF_ERROR(
      RunToolOk({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", machine.name(), "-f", key}));
  const std::string config = machine.dir_ + "/sshd_config";
  std::ostringstream cfg;
  cfg << "# sshd for lab host " << machine.name() << " (tripline_lab " << prefix_ << ")\n"
      << "Port " << machine.spec_.ssh_port << "\n"
      << "ListenAddress " << machine.spec_.address << "\n"
      << "HostKey " << key << "\n"
      << "PidFile " << machine.dir_ << "/sshd.pid\n"
      << "UsePAM yes\n"
      << "PasswordAuthentication yes\n"
      << "KbdInteractiveAuthentication no\n"
      << "PubkeyAuthentication yes\n"
      << "PermitRootLogin " << (options.permit_root_password ? "yes" : "prohibit-password")
      << "\n"
      // Test homes and the lab dir are not owned the way StrictModes expects.
      << "StrictModes no\n"
      // No resolver inside the lab: a reverse lookup would only add a timeout per login.
      << "UseDNS no\n"
      << "LogLevel VERBOSE\n"
      << "PrintMotd no\n"
      // Tests may open many logins at once; the default (10:30:100) drops some at random.
      << "MaxStartups 100\n"
      << "Subsystem sftp internal-sftp\n";
  TL_RETURN_IF_ERROR(WriteFile(config, cfg.str(), 0644));

  // sshd re-executes itself and insists on an absolute path.
  TL_ASSIGN_OR_RETURN(std::string sshd, FindTool("sshd"));
  SpawnOptions spawn;
  spawn.argv = {sshd, "-D", "-e", "-f", config};
  spawn.stdout_options = {false, machine.sshd_log_path_};
  spawn.stderr_options = {false, machine.sshd_log_path_};
  TL_ASSIGN_OR_RETURN(Subprocess process, machine.Spawn(std::move(spawn)));
  started_pids_.push_back(process.pid());
  machine.sshd_.emplace(std::move(process));
  return Status::Ok();
}

Status Lab::WaitSshdListening(LabHost& machine, Deadline deadline) {
  TL_ASSIGN_OR_RETURN(uint32_t address, ParseLabAddress(machine.spec_.address));
  Subprocess& sshd = *machine.sshd_;
  // Nothing announces the listening socket without connecting to it, so poll the socket
  // table, backing off from 2 ms: sshd is usually up within a few tens of milliseconds.
  milliseconds pause(2);
  while (true) {
    if (!sshd.running()) {
      return Status::Aborted("sshd on " + machine.name() + " exited with " +
                             std::to_string(sshd.exit_code().value_or(-1)) + ":\n" +
                             TailOfFile(machine.sshd_log_path_));
    }
    if (ListeningInNetnsOf(sshd.pid(), address, machine.spec_.ssh_port)) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          "sshd on " + machine.name() + " not listening on " + machine.spec_.address + ":" +
          std::to_string(machine.spec_.ssh_port) + ":\n" + TailOfFile(machine.sshd_log_path_));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(50));
  }
}

Status Lab::StopSshd(LabHost& machine) {
  if (!machine.sshd_.has_value()) return Status::Ok();
  Subprocess& sshd = *machine.sshd_;
  Status status;
  if (sshd.running()) {
    // Sessions left open by a test are sshd's children (they keep their parent even after
    // setsid), so they are found from the listener while it is still alive. Repeated
    // because a session may fork while it is being ended. A session whose client has just
    // gone is usually still closing (PAM close_session, wtmp): it gets a moment to finish
    // on its own, so the logout is recorded as it would be on a real host.
    for (int round = 0; round < 3; ++round) {
      std::vector<pid_t> sessions = DescendantsOf(sshd.pid());
      if (sessions.empty()) break;
      status = KeepFirstError(status, EndProcesses(sessions, milliseconds(500), seconds(1),
                                                   "open sessions on " + machine.name()));
    }
  }
  Result<int> exit = sshd.Terminate(seconds(3));
  if (!exit.ok()) status = KeepFirstError(status, exit.status());
  machine.sshd_.reset();
  return status;
}

Result<LabUser> Lab::AddUser(std::string_view name, std::string_view password,
                             const std::vector<std::string>& groups) {
  if (closed_) return Status::Aborted("lab is closed");
  if (!ValidName(name, 16, false)) {
    return Status::InvalidArgument("bad user name '" + std::string(name) +
                                   "' (a-z, 0-9, at most 16)");
  }
  if (password.empty() || password.find('\n') != std::string_view::npos) {
    return Status::InvalidArgument("password must be non-empty and on one line");
  }
  LabUser user;
  user.name = std::string(name);
  user.login = prefix_ + "-" + user.name;
  user.password = std::string(password);
  if (getpwnam(user.login.c_str()) != nullptr) {
    return Status::AlreadyExists("user " + user.login + " exists");
  }
  std::vector<std::string> argv = {"useradd",   "-m", "-s",
                                   "/bin/bash", "-c", "tripline lab " + prefix_};
  if (!groups.empty()) {
    std::string list;
    for (const std::string& g : groups) list += (list.empty() ? "" : ",") + g;
    argv.insert(argv.end(), {"-G", list});
  }
  argv.push_back(user.login);
  // Concurrent labs (parallel ctest) contend for the lock on /etc/passwd; useradd gives up
  // at once instead of waiting, so retry while that is the reason.
  milliseconds pause(20);
  for (int attempt = 0;; ++attempt) {
    Result<RunResult> r = RunTool(argv, std::nullopt);
    if (r.ok()) break;
    if (attempt < 10 && r.status().message().find("lock") != std::string::npos) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, milliseconds(500));
      continue;
    }
    return r.status();
  }
  // Recorded before anything else can fail, so Close() removes it.
  users_.push_back(user);
  TL_RETURN_IF_ERROR(RunToolOk({"chpasswd"}, user.login + ":" + user.password + "\n"));
  passwd* pw = getpwnam(user.login.c_str());
  if (pw == nullptr) return Status::NotFound("useradd succeeded but " + user.login + " is unknown");
  user.uid = pw->pw_uid;
  user.home = pw->pw_dir;
  users_.back() = user;
  return user;
}

const LabHost* Lab::host(std::string_view name) const {
  for (const auto& m : machines_) {
    if (m->name() == name) return m.get();
  }
  return nullptr;
}

Result<RunResult> Lab::SshCommand(std::string_view from, const SshHop& hop,
                                  std::string_view remote_command, milliseconds timeout) {
  if (closed_) return Status::Aborted("lab is closed");
  const LabHost* machine = host(from);
  if (machine == nullptr) return Status::NotFound("no lab machine " + std::string(from));
  SpawnOptions options;
  options.argv = SshArgv(hop, remote_command);
  const Deadline deadline = DeadlineIn(timeout);
  TL_ASSIGN_OR_RETURN(Subprocess client, machine->Spawn(std::move(options)));
  started_pids_.push_back(client.pid());
  return client.Finish(deadline);
}

Result<RunResult> Lab::SshCommand(std::string_view from, std::string_view user,
                                  std::string_view password, std::string_view to_address, int port,
                                  std::string_view remote_command, milliseconds timeout) {
  SshHop hop{std::string(user), std::string(password), std::string(to_address), port};
  return SshCommand(from, hop, remote_command, timeout);
}

std::vector<std::string> Lab::netns_names() const {
  std::vector<std::string> out;
  if (!switch_netns_.empty()) out.push_back(switch_netns_);
  for (const auto& m : machines_) out.push_back(m->netns_name_);
  return out;
}

Status Lab::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  Status status;
  // Processes first: sessions hold the users, sshd holds the namespaces.
  for (auto& m : machines_) status = KeepFirstError(status, StopSshd(*m));
  for (const LabUser& user : users_) {
    status = KeepFirstError(status, RunToolOk({"userdel", "-r", user.login}));
  }
  users_.clear();
  for (auto& m : machines_) {
    if (m->netns_created_) {
      status = KeepFirstError(status, RunToolOk({"ip", "netns", "del", m->netns_name_}));
      m->netns_created_ = false;
    }
    if (m->uts_mounted_) {
      if (umount2(m->uts_ns_path_.c_str(), MNT_DETACH) != 0) {
        status = KeepFirstError(status, Status::FromErrno(errno, "umount " + m->uts_ns_path_));
      }
      m->uts_mounted_ = false;
    }
  }
  if (switch_created_) {
    status = KeepFirstError(status, RunToolOk({"ip", "netns", "del", switch_netns_}));
    switch_created_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    if (ec)
      status = KeepFirstError(status, Status::IoError("remove " + dir_ + ": " + ec.message()));
  }
  if (status.ok()) {
    TL_LOG(INFO) << "lab " << prefix_ << " removed";
  }
  return status;
}

Lab::~Lab() {
  Status s = Close();
  if (!s.ok()) {
    TL_LOG(ERROR) << "lab " << prefix_ << " cleanup: " << s.ToString();
  }
}

}  // namespace tripline::lab
