#include "sensor/process_privileges.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

#include "sensor/container_id.h"

namespace tripline::sensor {
namespace {

constexpr int kCapDacOverride = 1;
constexpr int kCapDacReadSearch = 2;

bool HasCap(const ProcessCredentials& who, int cap) {
  return ((who.cap_effective >> cap) & 1) != 0;
}

bool InGroup(const ProcessCredentials& who, uint32_t gid) {
  return who.gid == gid || std::find(who.groups.begin(), who.groups.end(), gid) != who.groups.end();
}

// The permission bits (r=4, w=2, x=1) of `mode` that apply to `who`.
uint32_t ClassBits(const ProcessCredentials& who, uint32_t mode, uint32_t owner_uid,
                   uint32_t owner_gid) {
  if (who.uid == owner_uid) return (mode >> 6) & 7;
  if (InGroup(who, owner_gid)) return (mode >> 3) & 7;
  return mode & 7;
}

bool ParseU32(std::string_view s, uint32_t* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An O_PATH descriptor of `rel` (relative, no leading '/') resolved inside `root_fd` as if
// it were '/'; -1 with errno on failure: ENOSYS where the kernel has no openat2 (before
// 5.6), EPERM where a seccomp filter refuses it.
int OpenInRoot(int root_fd, const std::string& rel) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how)));
}

// stat(2) of `path` as process `pid` sees it: in its root where the kernel can, else
// through /proc/PID/root (an absolute symbolic link then resolves in the sensor's root).
bool StatAsSeenBy(const std::string& proc_dir, int pid, int root_fd, const std::string& rel,
                  struct stat* st) {
  if (root_fd >= 0) {
    const int fd = rel.empty() ? ::dup(root_fd) : OpenInRoot(root_fd, rel);
    if (fd >= 0) {
      const bool ok = ::fstat(fd, st) == 0;
      ::close(fd);
      return ok;
    }
    // No openat2: a kernel before 5.6 (ENOSYS), or a seccomp filter that refuses it.
    if (errno != ENOSYS && errno != EPERM) return false;
  }
  const std::string path = proc_dir + "/" + std::to_string(pid) + "/root/" + rel;
  return ::stat(path.c_str(), st) == 0;
}

}  // namespace

const std::vector<std::string>& DefaultRuntimeSockets() {
  static const std::vector<std::string> sockets = {
      "/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock",
      "/run/k3s/containerd/containerd.sock", "/run/podman/podman.sock"};
  return sockets;
}

Result<ProcessCredentials> ParseProcStatus(std::string_view text) {
  ProcessCredentials c;
  bool have_uid = false, have_gid = false, have_caps = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    const std::vector<std::string_view> f = Fields(line.substr(colon + 1));
    if (key == "Uid" || key == "Gid") {
      uint32_t v = 0;
      if (f.size() != 4 || !ParseU32(f[1], &v)) {
        return Status::InvalidArgument("status: malformed " + std::string(key) + " line");
      }
      (key == "Uid" ? c.uid : c.gid) = v;
      (key == "Uid" ? have_uid : have_gid) = true;
    } else if (key == "Groups") {
      for (std::string_view g : f) {
        uint32_t v = 0;
        if (!ParseU32(g, &v)) return Status::InvalidArgument("status: malformed Groups line");
        c.groups.push_back(v);
      }
    } else if (key == "CapEff") {
      if (f.size() != 1 || f[0].empty() || f[0].size() > 16) {
        return Status::InvalidArgument("status: malformed CapEff line");
      }
      const auto [p, ec] =
          std::from_chars(f[0].data(), f[0].data() + f[0].size(), c.cap_effective, 16);
      if (ec != std::errc() || p != f[0].data() + f[0].size()) {
        return Status::InvalidArgument("status: malformed CapEff line");
      }
      have_caps = true;
    }
  }
  if (!have_uid || !have_gid || !have_caps) {
    return Status::InvalidArgument("status: no Uid, Gid or CapEff line");
  }
  return c;
}

bool MaySearch(const ProcessCredentials& who, uint32_t mode, uint32_t owner_uid,
               uint32_t owner_gid) {
  if ((ClassBits(who, mode, owner_uid, owner_gid) & 1) != 0) return true;
  return HasCap(who, kCapDacReadSearch) || HasCap(who, kCapDacOverride);
}

bool MayWrite(const ProcessCredentials& who, uint32_t mode, uint32_t owner_uid,
              uint32_t owner_gid) {
  if ((ClassBits(who, mode, owner_uid, owner_gid) & 2) != 0) return true;
  return HasCap(who, kCapDacOverride);
}

std::vector<std::string> ReachableSockets(const ProcessScanOptions& options, int pid,
                                          const ProcessCredentials& who) {
  std::vector<std::string> out;
  const std::string root = options.proc_dir + "/" + std::to_string(pid) + "/root";
  const int root_fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (const std::string& socket : options.runtime_sockets) {
    if (socket.empty() || socket.front() != '/') continue;
    // Every directory from the root down must be searchable, then the socket writable.
    bool reachable = true;
    std::string rel;
    struct stat st {};
    if (!StatAsSeenBy(options.proc_dir, pid, root_fd, rel, &st) ||
        !MaySearch(who, st.st_mode, st.st_uid, st.st_gid)) {
      continue;
    }
    size_t start = 1;
    while (reachable && start <= socket.size()) {
      size_t slash = socket.find('/', start);
      if (slash == std::string::npos) slash = socket.size();
      if (slash == start) {  // "//"
        start = slash + 1;
        continue;
      }
      if (!rel.empty()) rel.push_back('/');
      rel.append(socket, start, slash - start);
      const bool last = slash == socket.size();
      if (!StatAsSeenBy(options.proc_dir, pid, root_fd, rel, &st)) {
        reachable = false;
      } else if (last) {
        reachable = S_ISSOCK(st.st_mode) && MayWrite(who, st.st_mode, st.st_uid, st.st_gid);
      } else {
        reachable = S_ISDIR(st.st_mode) && MaySearch(who, st.st_mode, st.st_uid, st.st_gid);
      }
      start = slash + 1;
    }
    if (reachable && std::find(out.begin(), out.end(), socket) == out.end()) {
      out.push_back(socket);
    }
  }
  if (root_fd >= 0) ::close(root_fd);
  return out;
}

std::vector<ProcessPrivilege> ScanProcessPrivileges(
    const ProcessScanOptions& options, const std::map<uint32_t, std::string>& user_names,
    PodDirectory* pods, std::vector<std::string>* errors) {
  std::vector<ProcessPrivilege> out;
  // Pod uid -> "<namespace>/<service account>" ("" when unknown), looked up once per scan.
  std::map<std::string, std::string> pod_accounts;
  DIR* dir = ::opendir(options.proc_dir.c_str());
  if (dir == nullptr) {
    errors->push_back("processes: " + options.proc_dir + ": " + std::strerror(errno));
    return out;
  }
  std::vector<int> pids;
  while (const dirent* d = ::readdir(dir)) {
    uint32_t pid = 0;
    if (ParseU32(d->d_name, &pid) && pid > 0) pids.push_back(static_cast<int>(pid));
  }
  ::closedir(dir);
  std::sort(pids.begin(), pids.end());

  // (exe, uid, caps, sockets, container, service account) -> index in `out`.
  std::map<std::tuple<std::string, uint32_t, uint64_t, std::vector<std::string>, std::string,
                      std::string>,
           size_t>
      index;
  size_t unreadable_exe = 0, bad_status = 0, unlisted = 0;
  int first_unreadable = 0;
  for (int pid : pids) {
    const std::string base = options.proc_dir + "/" + std::to_string(pid);
    char buf[4096];
    const ssize_t n = ::readlink((base + "/exe").c_str(), buf, sizeof(buf));
    if (n < 0) {
      // ENOENT: a kernel thread, or the process is gone. EACCES: no ptrace access.
      if (errno == EACCES || errno == EPERM) {
        if (unreadable_exe++ == 0) first_unreadable = pid;
      }
      continue;
    }
    const std::string exe(buf, static_cast<size_t>(n));
    auto status = ReadSmallFile(base + "/status");
    if (!status.ok()) continue;  // gone since
    auto creds = ParseProcStatus(*status);
    if (!creds.ok()) {
      ++bad_status;
      continue;
    }
    std::vector<std::string> sockets = ReachableSockets(options, pid, *creds);
    std::string container, service_account;
    if (auto cgroup = ReadSmallFile(base + "/cgroup"); cgroup.ok()) {
      container = ContainerIdFromProcCgroup(*cgroup);
      if (pods != nullptr) {
        if (std::optional<KubePodRef> ref = KubePodFromCgroupPath(UnifiedCgroupPath(*cgroup))) {
          auto [known, inserted] = pod_accounts.try_emplace(ref->pod_uid);
          if (inserted) {
            const KubePodName* pod = pods->Find(ref->pod_uid);
            if (pod != nullptr && !pod->service_account.empty()) {
              known->second = pod->pod_namespace + "/" + pod->service_account;
            }
          }
          service_account = known->second;
        }
      }
    }
    auto key =
        std::make_tuple(exe, creds->uid, creds->cap_effective, sockets, container, service_account);
    auto it = index.find(key);
    if (it == index.end()) {
      if (out.size() >= options.max_groups) {
        ++unlisted;
        continue;
      }
      ProcessPrivilege p;
      p.exe = exe;
      p.uid = creds->uid;
      if (auto name = user_names.find(creds->uid); name != user_names.end()) p.user = name->second;
      p.cap_effective = creds->cap_effective;
      p.runtime_sockets = std::move(sockets);
      p.container_id = std::move(container);
      p.k8s_service_account = std::move(service_account);
      it = index.emplace(std::move(key), out.size()).first;
      out.push_back(std::move(p));
    }
    ProcessPrivilege& p = out[it->second];
    ++p.processes;
    if (p.pids.size() < 4) p.pids.push_back(static_cast<uint32_t>(pid));
  }
  if (unreadable_exe > 0) {
    errors->push_back("processes: the executable of " + std::to_string(unreadable_exe) +
                      (unreadable_exe == 1 ? " process" : " processes") +
                      " could not be read (pid " + std::to_string(first_unreadable) +
                      (unreadable_exe == 1 ? "" : " the first") +
                      "): the sensor needs CAP_SYS_PTRACE over it");
  }
  if (bad_status > 0) {
    errors->push_back("processes: " + std::to_string(bad_status) +
                      " status files could not be parsed");
  }
  if (unlisted > 0) {
    errors->push_back("processes: " + std::to_string(unlisted) + " process groups beyond " +
                      std::to_string(options.max_groups) + " not listed");
  }
  return out;
}

}  // namespace tripline::sensor
